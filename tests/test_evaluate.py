"""`ttcalloc evaluate`: baselines, early stopping, metrics and verdicts, on hand-made cases."""

from __future__ import annotations

import itertools

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

from ttcalloc.core import replays as sequential
from ttcalloc.core.baselines import length_heuristic, random_policy, uniform
from ttcalloc.core.curves import Dense
from ttcalloc.core.metrics import bootstrap_means, confusion, imitation, interval, share_of_gain
from ttcalloc.core.mixes import EvalData, Unavailable, gibbs_weights, mix_at_budget

# ---------------------------------------------------------------- early stopping, by hand


def test_esc_stops_at_the_first_unanimous_window() -> None:
    rep = sequential.replay([[0, 0, 0, 0]], [[1.0] * 4], orders=4)
    acc, cost = sequential.esc(rep, window=2, cap=4)
    assert acc.tolist() == [1.0] and cost.tolist() == [2.0]


def test_esc_without_agreement_runs_to_the_cap_and_splits_ties() -> None:
    # two different answers never agree in a window of 2; at the cap, a 1-1 tie: credit 1/2
    rep = sequential.replay([[0, 1]], [[1.0, 1.0]], orders=6)
    acc, cost = sequential.esc(rep, window=2, cap=5)
    assert acc.tolist() == [0.5] and cost.tolist() == [2.0]


def test_abstentions_never_agree_and_earn_nothing() -> None:
    rep = sequential.replay([[-1, -1, -1]], [[1.0] * 3], orders=3)
    acc, cost = sequential.esc(rep, window=2, cap=3)
    assert acc.tolist() == [0.0] and cost.tolist() == [3.0]


def test_adaptive_consistency_beta_criterion_by_hand() -> None:
    # P(p1 > p2) after v1 agreeing answers: 1 - 0.5**(v1 + 1): 0.75, 0.875, 0.9375
    assert sequential.leader_probability(np.array([1, 2, 3]), np.array([0, 0, 0])) == (
        pytest.approx([0.75, 0.875, 0.9375])
    )
    rep = sequential.replay([[0, 0, 0, 0]], [[2.0] * 4], orders=2, fixed=[10.0])
    acc, cost = sequential.adaptive(rep, threshold=0.8, cap=4)
    assert acc.tolist() == [1.0] and cost.tolist() == [14.0]  # 2 samples + the fixed prompt
    acc, cost = sequential.adaptive(rep, threshold=0.9, cap=4)
    assert cost.tolist() == [16.0]  # three samples
    acc, cost = sequential.adaptive(rep, threshold=0.99, cap=4)
    assert cost.tolist() == [18.0]  # never confident enough: the cap


def test_cap_is_limited_by_the_samples_a_problem_has() -> None:
    rep = sequential.replay([[0, 1, 2], [0]], [[1.0] * 3, [1.0]], orders=4)
    _, cost = sequential.esc(rep, window=3, cap=10)
    assert cost.tolist() == [3.0, 1.0]


def _loop_rule(ids: list[int], rule: str, param: float, cap: int) -> tuple[float, int]:
    """The same rules, written as the obvious loop over one order."""
    counts: dict[int, int] = {}
    last = min(cap, len(ids))
    for t in range(1, last + 1):
        if ids[t - 1] >= 0:
            counts[ids[t - 1]] = counts.get(ids[t - 1], 0) + 1
        ranked = sorted(counts.values(), reverse=True)
        stop = t == last
        if rule == "esc" and t % int(param) == 0:
            window = ids[t - int(param) : t]
            stop |= window[0] >= 0 and len(set(window)) == 1
        if rule == "adaptive" and ranked:
            top2 = ranked[1] if len(ranked) > 1 else 0
            p = float(sequential.leader_probability(np.array([ranked[0]]), np.array([top2]))[0])
            stop |= p >= param
        if stop:
            if not ranked or counts.get(0, 0) != ranked[0]:
                return 0.0, t
            return 1.0 / ranked.count(ranked[0]), t
    raise AssertionError("unreachable")


@settings(max_examples=60, deadline=None)
@given(
    votes=st.lists(
        st.lists(st.integers(min_value=-1, max_value=3), min_size=1, max_size=9),
        min_size=1,
        max_size=4,
    ),
    rule=st.sampled_from(["esc", "adaptive"]),
    param_i=st.integers(min_value=0, max_value=3),
    cap=st.integers(min_value=1, max_value=10),
)
def test_vectorized_rules_match_a_plain_loop(
    votes: list[list[int]], rule: str, param_i: int, cap: int
) -> None:
    rep = sequential.replay(votes, [[1.0] * len(v) for v in votes], orders=5, seed=3)
    param = [2, 3, 4, 5][param_i] if rule == "esc" else [0.6, 0.8, 0.9, 0.95][param_i]
    acc, cost = sequential.run(
        rule,
        rep,
        {"window": param, "cap": cap} if rule == "esc" else {"threshold": param, "cap": cap},
    )
    for i, v in enumerate(votes):
        runs = [
            _loop_rule([int(x) for x in rep.ids[i, r, : len(v)]], rule, param, cap)
            for r in range(5)
        ]
        assert acc[i] == pytest.approx(np.mean([a for a, _ in runs]), abs=1e-12)
        assert cost[i] == pytest.approx(np.mean([t for _, t in runs]), abs=1e-12)


def test_replay_orders_are_permutations_and_reproducible() -> None:
    votes = [[0, 1, 1, 2, -1], [3, 0]]
    a = sequential.replay(votes, [[1.0] * 5, [1.0] * 2], orders=7, seed=1)
    b = sequential.replay(votes, [[1.0] * 5, [1.0] * 2], orders=7, seed=1)
    assert np.array_equal(a.ids, b.ids)
    for r in range(7):
        assert sorted(a.ids[0, r].tolist()) == sorted(votes[0])
        assert sorted(a.ids[1, r, :2].tolist()) == sorted(votes[1])


def test_replay_averages_match_exact_expectation_over_all_orders() -> None:
    # votes (1, 1, 0), ESC window 2, cap 3: the first two agree only when both are the wrong 1
    # (probability 1/3, cost 2); otherwise all 3 are drawn; the majority is always wrong.
    votes = [1, 1, 0]
    exact_cost = np.mean(
        [_loop_rule(list(p), "esc", 2, 3)[1] for p in itertools.permutations(votes)]
    )
    rep = sequential.replay([votes], [[1.0] * 3], orders=4000, seed=0)
    acc, cost = sequential.esc(rep, window=2, cap=3)
    assert exact_cost == pytest.approx(8 / 3)
    assert acc[0] == 0.0 and cost[0] == pytest.approx(exact_cost, abs=0.03)


# ---------------------------------------------------------------- baselines, by hand


def _data(acc: list[list[float]], cost: list[list[float]], questions: list[str]) -> EvalData:
    a, c = np.array(acc), np.array(cost)
    ids = [str(i) for i in range(len(acc))]
    dense = Dense(ids, [f"maj@{j + 1}" for j in range(a.shape[1])], a, c)
    return EvalData(
        actions=dense.actions,
        test=dense,
        train=dense,
        test_questions=questions,
        train_questions=questions,
    )


def test_uniform_mixes_two_adjacent_actions_to_the_budget() -> None:
    d = _data([[0.2, 0.5, 0.6], [0.4, 0.5, 0.8]], [[1, 2, 4], [1, 2, 4]], ["a", "b"])
    out = uniform(d, 3.0)  # halfway between k=2 (0.5) and k=4 (0.7)
    assert out.cost.mean() == pytest.approx(3.0, abs=1e-12)
    assert out.acc.mean() == pytest.approx(0.6)
    assert out.params == {"lo": "maj@2", "hi": "maj@3", "p_hi": pytest.approx(0.5)}
    with pytest.raises(Unavailable):
        uniform(d, 0.5)


@settings(max_examples=80, deadline=None)
@given(
    acc=st.lists(
        st.lists(st.floats(0, 1, allow_nan=False), min_size=4, max_size=4), min_size=1, max_size=6
    ),
    frac=st.floats(0, 1),
)
def test_uniform_and_random_meet_the_budget_to_1e9(acc: list[list[float]], frac: float) -> None:
    costs = [[1.0, 2.0, 4.0, 8.0]] * len(acc)
    d = _data(acc, costs, ["q"] * len(acc))
    budget = 1.0 + 7.0 * frac
    u = uniform(d, budget)
    r = random_policy(d, budget)
    assert abs(r.cost.mean() - budget) <= 1e-9
    assert r.probs is not None and np.allclose(r.probs.sum(axis=1), 1)
    # uniform spends the budget unless the best action is cheaper (slack)
    best = float(np.array(acc).mean(axis=0).max())
    assert abs(u.cost.mean() - budget) <= 1e-9 or u.acc.mean() == pytest.approx(best)


def test_random_is_the_max_entropy_mix() -> None:
    assert gibbs_weights(np.array([1.0, 3.0]), 2.0) == pytest.approx([0.5, 0.5])
    w = gibbs_weights(np.array([1.0, 2.0, 3.0]), 2.5)
    assert w @ [1, 2, 3] == pytest.approx(2.5, abs=1e-9)
    assert w[0] < w[1] < w[2]  # geometric weights in the cost
    assert w[1] ** 2 == pytest.approx(w[0] * w[2])
    assert gibbs_weights(np.array([1.0, 3.0]), 9.0).tolist() == [0.0, 1.0]  # slack
    with pytest.raises(Unavailable):
        gibbs_weights(np.array([1.0, 3.0]), 0.5)


def test_length_heuristic_gives_the_longest_questions_more() -> None:
    questions = ["x" * n for n in (10, 40, 20, 30)]
    # the long questions gain from k=2, the short ones do not
    acc = [[0.5, 0.5], [0.2, 0.9], [0.5, 0.5], [0.3, 0.8]]
    d = _data(acc, [[1, 2]] * 4, questions)
    out = length_heuristic(d, 1.5)
    assert out.probs is not None
    assert out.probs[:, 1].tolist() == [0, 1, 0, 1]  # the two longest get k=2
    assert out.cost.mean() == pytest.approx(1.5)
    assert out.acc.mean() == pytest.approx((0.5 + 0.9 + 0.5 + 0.8) / 4)
    assert out.params["min_chars_long"] == 30


def test_mix_at_budget_skips_dominated_options() -> None:
    mix = mix_at_budget(np.array([0.5, 0.4, 0.9]), np.array([1.0, 2.0, 3.0]), 2.0)
    assert mix is not None and (mix.lo, mix.hi) == (0, 2) and mix.p_hi == pytest.approx(0.5)
    assert mix_at_budget(np.array([0.5]), np.array([1.0]), 0.5) is None


# ---------------------------------------------------------------- metrics, by hand


def test_bootstrap_is_deterministic_by_seed_and_paired() -> None:
    values = np.random.default_rng(0).random((50, 2))
    a = bootstrap_means(values, 300, seed=4)
    b = bootstrap_means(values, 300, seed=4)
    c = bootstrap_means(values, 300, seed=5)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    same = bootstrap_means(np.column_stack([values[:, 0], values[:, 0]]), 300, seed=4)
    assert np.array_equal(same[:, 0], same[:, 1])  # paired: both columns see the same problems
    lo, hi = interval(a[:, 0])
    assert lo < values[:, 0].mean() < hi


def test_bootstrap_of_a_constant_is_that_constant() -> None:
    draws = bootstrap_means(np.full((10, 1), 0.25), 500, seed=0)
    assert interval(draws[:, 0]) == pytest.approx((0.25, 0.25))


def test_share_of_gain_and_confusion() -> None:
    assert share_of_gain(0.6, 0.5, 0.7) == pytest.approx(0.5)
    assert share_of_gain(0.6, 0.5, 0.5) is None
    m = confusion(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]), 3)
    assert m.tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]


def test_imitation_regret_and_the_papers_bound_by_hand() -> None:
    acc = np.array([[0.2, 0.6], [0.5, 0.5], [0.9, 0.1], [0.3, 0.4]])
    truth = np.array([1, 0, 0, 1])
    chosen = np.array([0, 0, 1, 1])  # wrong on problems 0 (loses 0.4) and 2 (loses 0.8)
    imi = imitation(acc, truth, chosen)
    assert imi.accuracy == 0.5
    assert imi.regret == pytest.approx((0.4 + 0.8) / 4)
    assert imi.max_gap == pytest.approx(0.8)
    assert imi.bound == pytest.approx(0.5 * 0.8)
    assert imi.mean_gap_bound == pytest.approx((0.4 + 0.8) / 4)
    assert imi.holds


def test_first_draw_is_stratified_so_one_sample_rules_are_exact() -> None:
    votes = [[0, 1, 1, -1], [0, 0, 2]]
    rep = sequential.replay(votes, [[1.0] * 4, [1.0] * 3], orders=12, seed=7)
    acc, cost = sequential.esc(rep, window=2, cap=1)
    assert acc.tolist() == [0.25, pytest.approx(2 / 3)] and cost.tolist() == [1.0, 1.0]


@settings(max_examples=60, deadline=None)
@given(
    acc=st.lists(st.lists(st.integers(0, 1000), min_size=3, max_size=3), min_size=2, max_size=8),
    lengths=st.lists(st.integers(1, 50), min_size=8, max_size=8),
    frac=st.floats(0, 1),
)
def test_oracle_is_never_below_a_one_action_policy_at_its_cost(
    acc: list[list[int]], lengths: list[int], frac: float
) -> None:
    from ttcalloc.core import oracle

    a = np.sort(np.array(acc, dtype=float) / 1000, axis=1)  # more samples never hurt here
    d = _data(a.tolist(), [[1, 2, 4]] * len(acc), ["x" * n for n in lengths[: len(acc)]])
    target = 1 + 3 * frac
    for policy in (uniform, random_policy, length_heuristic):
        out = policy(d, target)
        best = oracle.solve_exact(d.test.acc, d.test.cost, float(out.cost.mean())).objective
        assert best >= out.acc.mean() - 1e-9


def test_verdicts_read_the_intervals() -> None:
    from ttcalloc.stages.evaluate import verdicts

    def rec(policy: str, kind: str, gain: float, ci: list[float], regret: float = 0.1) -> dict:
        return {
            "policy": policy,
            "kind": kind,
            "budget": 2.0,
            "gain_vs_uniform": gain,
            "gain_vs_uniform_ci": ci,
            "regret": regret,
        }

    out = verdicts(
        [
            rec("uniform", "baseline", 0.0, [0.0, 0.0]),
            rec("esc", "baseline", 0.02, [0.01, 0.03], regret=-0.001),
            rec("a", "learned", -0.01, [-0.02, -0.001]),
            rec("b", "learned", 0.001, [-0.01, 0.01]),
            rec("c", "learned", 0.05, [0.01, 0.09]),
            rec("d", "learned", 0.0, [0.0, 0.0]),
        ]
    )
    assert out[0].startswith("esc at 2 is above the fixed-k oracle by 0.0010")
    assert out[1].startswith("a at 2 is behind uniform at the same cost: -0.0100")
    assert "; esc has the higher point gain over uniform (+0.0200 against -0.0100)" in out[1]
    assert out[2].startswith("b at 2 is not distinguishable from uniform")
    assert out[3].startswith("c at 2 is ahead of uniform") and "higher point" not in out[3]
    assert out[4].startswith("d at 2 scores as uniform does on every test problem")
    # three intervals read (a, b, c; d's is a point): the chance note; no 'problems' given
    assert out[5].startswith("These notes read 3 intervals at 95%") and len(out) == 6


def test_verdicts_pair_rivals_and_warn_on_small_test_sets() -> None:
    from ttcalloc.stages.evaluate.verdicts import compared, verdicts

    assert [compared(0.01, 0.02), compared(-0.02, -0.01), compared(-0.01, 0.01)] == [
        "ahead of",
        "behind",
        "not distinguishable from",
    ]
    stop = {
        "policy": "stop",
        "kind": "learned",
        "budget": 1.5,
        "cost": 1.49,
        "gain_vs_uniform": 0.02,
        "gain_vs_uniform_ci": [-0.01, 0.05],
        "regret": 0.05,
        "problems": 25,
        "gain_vs": {"esc": (-0.003, -0.006, -0.001, 1.52)},
    }
    length = {"policy": "length", "kind": "baseline", "budget": 1.5, "regret": 0.1,
              "cost": 2.12, "target_cost": 1.49, "gain_vs_uniform": 0.0}  # fmt: skip
    assert verdicts([length]) == [
        "length at 1.5 spent 2.12 per problem, 42% above the cost it was tuned to (1.49): its "
        "rule cannot reach that cost on these problems; its gain over uniform is at its own cost."
    ]
    assert verdicts([{**length, "cost": 1.52}]) == []
    out = verdicts([stop])
    assert out[0] == (
        "stop at 1.5 is not distinguishable from uniform at the same cost: +0.0200 "
        "[-0.0100, +0.0500]; behind esc (-0.0030 [-0.0060, -0.0010] in accuracy, paired, "
        "at cost 1.49 against 1.52)."
    )
    assert out[1].startswith("These notes read 2 intervals")
    assert out[2].startswith("25 test problems: the intervals are wide")
    assert len(verdicts([{**stop, "problems": 500}])) == 2


def test_paired_comparisons_only_at_matched_cost() -> None:
    from ttcalloc.core.mixes import Outcome
    from ttcalloc.stages.evaluate.score import _same_cost

    def at(cost: float) -> Outcome:
        return Outcome(acc=np.zeros(4), cost=np.full(4, cost))

    assert _same_cost(at(1.46), at(1.48))
    assert not _same_cost(at(1.0), at(1.48))  # a policy at cost 1 does not 'lose' to one at 1.48
