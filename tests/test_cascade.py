"""Cascades over several models: the core against brute force, the stage end to end on real data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SHARED_DATA, shared_file
from helpers import online_draws, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from ttcalloc.cli.summaries import mot_label
from ttcalloc.core import cascade as cc
from ttcalloc.core import cascade_baselines as cb
from ttcalloc.core.replays import replay


def _replays(seed: int, p: int, ns: list[int], orders: int = 4) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for level, n in enumerate(ns):
        votes = [list(rng.integers(-1, 3, size=n)) for _ in range(p)]
        costs = [list(rng.uniform(0.5, 2.0, size=n) * (level + 1) ** 2) for _ in range(p)]
        out.append(replay(votes, costs, orders=orders, seed=seed + level))
    return out


def test_ladder_options() -> None:
    lad = cc.Ladder((3, 2), checkpoints=(1, 2))
    start = lad.state_index(cc.START, 0)
    # the start may begin on any model
    assert lad.allowed[start].sum() == len(lad.options)
    last = lad.state_index(1, 2)
    assert not lad.allowed[last].any()  # the last model at its cap: only stopping is left
    s = lad.state_index(0, 1)
    assert lad.successor[s, lad.option_index(0, 3)] == lad.state_index(0, 2)
    assert lad.successor[s, lad.option_index(1, 2)] == lad.state_index(1, 1)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 10_000), st.integers(1, 3), st.lists(st.integers(1, 4), min_size=2, max_size=3)
)
def test_labels_match_a_loop(seed: int, p: int, ns: list[int]) -> None:
    reps = _replays(seed, p, ns)
    lad = cc.Ladder(tuple(ns), checkpoints=(1, 2))
    gains, valid = cc.labels(reps, lad)
    for pi in range(p):
        for r in range(reps[0].ids.shape[1]):
            for s, (lv, j) in enumerate(lad.states):
                now = 0.0 if lv == cc.START else reps[lv].credit[pi, r, j - 1]
                for o, (tl, h) in enumerate(lad.options):
                    assert valid[pi, r, s, o] == lad.allowed[s, o]
                    if valid[pi, r, s, o]:
                        want = reps[tl].credit[pi, r, h - 1] - now
                        assert gains[pi, r, s, o] == pytest.approx(want)


def _walk(reps, lad, gains, extra, usable, lam, pi, r):  # type: ignore[no-untyped-def]
    """The rule on one order, step by step: the samples drawn of each model, the dollars, the
    final answer's credit, and per step taken the taken option's extra dollars (its aim as
    `run` counts it: 0 where no option is positive, a start it must make) with the dollars
    spent before it."""
    s, drawn, steps = 0, [0] * lad.levels, []

    def spent() -> float:
        return float(sum(reps[m].cost[pi, r, d - 1] for m, d in enumerate(drawn) if d > 0))

    for step in range(len(lad.states)):
        best, value = None, -np.inf
        for o in range(len(lad.options)):
            if usable[pi, r, s, o]:
                v = gains[pi, r, s, o] - (lam * extra[pi, r, s, o] if extra[pi, r, s, o] > 0 else 0)
                if v > value and np.isfinite(v):
                    best, value = o, v
        if step == 0 and best is None:  # an infinite price: the cheapest start
            ext = [
                extra[pi, r, 0, o] if usable[pi, r, 0, o] else np.inf
                for o in range(len(lad.options))
            ]
            best, value = int(np.argmin(ext)), 0.0
        if best is None or not (value > 0 or step == 0):
            break
        steps.append((float(extra[pi, r, s, best]) if value > 0 else 0.0, spent()))
        s = lad.successor[s, best]
        lv, j = lad.states[s]
        drawn[lv] = j
    lv, j = lad.states[s]
    return drawn, spent(), reps[lv].credit[pi, r, j - 1], steps


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 10_000),
    st.lists(st.integers(1, 4), min_size=2, max_size=3),
    st.sampled_from([0.0, 0.05, 0.3, 2.0, np.inf]),
)
def test_simulate_matches_a_loop(seed: int, ns: list[int], lam: float) -> None:
    reps = _replays(seed, 3, ns)
    lad = cc.Ladder(tuple(ns), checkpoints=(1, 2, 4))
    _, usable = cc.labels(reps, lad)
    rng = np.random.default_rng(seed)
    gains = rng.normal(0.05, 0.2, size=usable.shape)
    extra = cc.extra_dollars(reps, lad, [1.0, 4.0, 9.0][: len(ns)])
    got = cc.simulate(reps, lad, gains, extra, usable, lam)
    for pi in range(3):
        for r in range(reps[0].ids.shape[1]):
            drawn, cost, credit, _ = _walk(reps, lad, gains, extra, usable, lam, pi, r)
            assert list(got.drawn[pi, r]) == drawn
            assert got.cost[pi, r] == pytest.approx(cost)
            assert got.credit[pi, r] == pytest.approx(credit)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.1, 0.9))
def test_calibration_meets_the_budget(seed: int, share: float) -> None:
    reps = _replays(seed, 6, [4, 3])
    lad = cc.Ladder((4, 3), checkpoints=(1, 2, 4))
    gains, usable = cc.labels(reps, lad)
    extra = cc.extra_dollars(reps, lad, [1.0, 4.0])
    free = cc.mean_cost(reps, lad, gains, extra, usable, 0.0)
    floor = cc.mean_cost(reps, lad, gains, extra, usable, np.inf)
    budget = floor + share * (free - floor)
    if free - floor < 1e-9:
        return
    cal = cc.calibrate(reps, lad, gains, extra, usable, budget)
    _, cost, _ = cc.mixed_outcome(reps, lad, gains, extra, usable, cal)
    assert cost.mean() == pytest.approx(budget, rel=1e-6)
    with pytest.raises(cc.CascadeBudgetError):
        cc.calibrate(reps, lad, gains, extra, usable, floor * 0.5)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0.1, 10), st.floats(0, 1)), min_size=1, max_size=7),
    st.floats(0.1, 12),
)
def test_hull_mix_is_the_best_pair(points: list[tuple[float, float]], budget: float) -> None:
    got = cb.hull_mix(points, budget)
    if min(c for c, _ in points) > budget * (1 + 1e-12):
        assert got is None
        return
    assert got is not None
    i, j, w = got
    acc = w * points[i][1] + (1 - w) * points[j][1]
    cost = w * points[i][0] + (1 - w) * points[j][0]
    assert cost <= budget + 1e-9
    best = max(a for c, a in points if c <= budget * (1 + 1e-12))
    for c1, a1 in points:  # any two points mixed to spend at most the budget
        for c2, a2 in points:
            if c1 <= budget <= c2 and c2 > c1:
                v = (budget - c1) / (c2 - c1)
                best = max(best, v * a2 + (1 - v) * a1)
    assert acc >= best - 1e-9


def test_mot_rule_matches_a_loop() -> None:
    cheap, strong = _replays(3, 5, [6, 2], orders=5)
    acc, cost, up = cb.mot_rule(cheap, strong, k=3, threshold=0.7)
    for pi in range(5):
        a = c = u = 0.0
        for r in range(5):
            ids = [int(x) for x in cheap.ids[pi, r, :3]]
            counts = {x: ids.count(x) for x in ids if x >= 0}
            share = max(counts.values(), default=0) / 3
            if share < 0.7:
                a += strong.credit[pi, r, 0]
                c += cheap.cost[pi, r, 2] + strong.cost[pi, r, 0]
                u += 1
            else:
                a += cheap.credit[pi, r, 2]
                c += cheap.cost[pi, r, 2]
        assert acc[pi] == pytest.approx(a / 5)
        assert cost[pi] == pytest.approx(c / 5)
        assert up[pi] == pytest.approx(u / 5)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), share=st.floats(0.05, 1.0))
def test_tuned_mot_rule_is_never_below_the_cheap_models_own_vote(seed: int, share: float) -> None:
    """The tuned MoT rule's settings include never escalating (threshold 0), so at any budget
    its train accuracy is at least the best mix of the cheap model's ``maj@k`` that the budget
    buys (a much weaker cheap model's leader share is often low, and every threshold from 0.3
    up escalated so much that the rule fell below the cheap model alone)."""
    cheap, strong = _replays(seed, 8, [12, 2], orders=5)
    ks = [k for k in cb.MOT_KS if k <= 12]
    points = [
        (float(c.mean()), float(a.mean())) for a, c in (cb.single_model(cheap, k) for k in ks)
    ]
    budget = share * float(np.mean([p[0] for p in points]))
    alone = cb.hull_mix(points, budget)
    mot = cb.tune_mot([cheap, strong], budget)
    if alone is None:
        return
    i, j, w = alone
    want = w * points[i][1] + (1 - w) * points[j][1]
    assert mot is not None and mot["train_accuracy"] >= want - 1e-9


@pytest.fixture(scope="module")
def date_curves(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """120 Date questions of three models, priced in dollars, estimated."""

    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    import polars as pl

    src = shared_file(SHARED_DATA, "date_3models_mot_samples.parquet")
    probs = shared_file(SHARED_DATA, "date_problems.jsonl")
    tmp = tmp_path_factory.mktemp("date")
    keep = list(range(120))
    df = pl.read_parquet(src).filter(pl.col("problem_id").is_in(keep))
    df.write_parquet(tmp / "date.parquet")
    rows = [json.loads(x) for x in probs.read_text().splitlines()]
    (tmp / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:120]))
    p = {k: tmp / f"{k}.parquet" for k in ("problems", "samples", "curves")}
    for args in (
        (
            "data",
            "jsonl",
            "--source",
            tmp / "p.jsonl",
            "--grader",
            "exact",
            "--test-frac",
            "0.5",
            "--out",
            p["problems"],
        ),
        ("import", tmp / "date.parquet", "--problems", p["problems"], "--out", p["samples"]),
        (
            "estimate",
            p["samples"],
            "--problems",
            p["problems"],
            "--out",
            p["curves"],
            "--price",
            "llama-2-13b=0.25,0.25",
            "--prompt-tokens",
            "llama-2-13b=550",
            "--prompt-tokens",
            "gpt-3.5-turbo=550",
            "--prompt-tokens",
            "gpt-4=550",
        ),
    ):
        res = run_cli(*args)
        assert res.exit_code == 0, res.output
    return p


def _train(p: dict[str, Path], *args: object) -> Any:
    """``train`` a cascade on the Date fixture's curves (``args``: the other flags)."""
    return run_cli("train", p["curves"], "--learner", "cascade", "--problems", p["problems"], *args)


def test_cascade_trains_and_evaluates_on_date(date_curves: dict[str, Path], tmp_path: Path) -> None:
    p = date_curves
    res = _train(p, "--budgets", "0.002,0.005", "--n-estimators", "20", "--out", tmp_path / "pol")
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "pol" / "b0.002" / "policy.json").read_text())
    assert meta["cascade"]["models"][-1] == "gpt-4"  # cheapest per sample first
    # the Date file's samples come from chain- and program-of-thought prompts: the state says
    # whether their answers agree, and run is told the variants to draw
    assert meta["cascade"]["prompt_kinds"] is True
    assert "kinds_agree" in meta["row_features"]
    assert [v["name"] for v in meta["prompt_variants"]] == ["cot1", "cot2", "pot1", "pot2"]
    assert [v["kind"] for v in meta["prompt_variants"]] == ["text", "text", "program", "program"]
    assert meta["metrics"]["train_expected_cost"] == pytest.approx(0.002, rel=1e-6)
    assert set(meta["metrics"]["reached"]) == set(meta["cascade"]["models"])
    # the summary names the MoT rule's settings with their shares (the mix meets the budget)
    mot, models = meta["metrics"]["mot"], meta["cascade"]["models"]
    label = mot_label(mot, models)
    for setting, share in zip(mot["settings"], (mot["weight"], 1 - mot["weight"]), strict=True):
        text = f"{share:.0%} {models[setting['cheap']]} x{setting['k']} <"
        assert share == 0 or mot["settings"][0] == mot["settings"][1] or text in label, label
    one = {"cheap": 1, "k": 6, "threshold": 0.5}
    assert mot_label(
        {"settings": [one, {"cheap": 0, "k": 2, "threshold": 0.3}], "weight": 0.25,
         "train_accuracy": 0.8}, ["a", "b", "c"]
    ) == "0.800 (25% b x6 < 0.5, 75% a x2 < 0.3)"  # fmt: skip
    for w in (1.0, 0.4):  # one setting twice is that setting for every question
        label = mot_label({"settings": [one, one], "weight": w, "train_accuracy": 0.8}, ["a", "b"])
        assert label == "0.800 (100% b x6 < 0.5)", label
    res = run_cli(
        "evaluate",
        f"c={tmp_path / 'pol' / 'b0.002'}",
        f"c={tmp_path / 'pol' / 'b0.005'}",
        "--orders",
        "12",
        "--bootstrap",
        "200",
        "--out",
        tmp_path / "rep",
        "--json",
    )
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    rows = report["policies"]["c"]["rows"]
    methods = {r["method"] for r in rows}
    assert {
        "cascade",
        "MoT rule (tuned on train)",
        "best single model (chosen on train)",
    } <= methods
    assert report["policies"]["c"]["strongest"]["model"] == "gpt-4"
    # one note naming each budget the cascade missed by more than 5% (either way), none otherwise
    off = [r for r in rows if r["method"] == "cascade" and abs(r["cost_over_budget"] - 1) > 0.05]
    notes = [n for n in report["policies"]["c"]["notes"] if n.startswith("c spent ")]
    assert len(notes) == (1 if off else 0)
    for r in off:
        assert f"at ${r['budget']:g} (" in notes[0]
    assert (tmp_path / "rep" / "report.md").exists()
    assert (tmp_path / "rep" / "accuracy_vs_dollars.png").stat().st_size > 1000
    for folder in (tmp_path / "pol" / "b0.002", tmp_path / "rep"):
        res = run_cli("info", folder)
        assert res.exit_code == 0, res.output
        assert "(schema v1)" in res.output, res.output  # a cascade report says its schema too
    shown = run_cli("info", tmp_path / "pol" / "b0.002").output
    assert "reaches (train replays)" in shown and "prompt_kinds = True" in shown
    assert "prompt variants, drawn in turn: cot1 (text), cot2 (text), pot1 (program)" in shown
    # a cascade has no plan: allocate says to use run, in one line
    res = run_cli("allocate", tmp_path / "pol" / "b0.002", p["problems"])
    assert res.exit_code != 0
    assert "cascade policy" in res.output


def test_cascade_refuses_what_it_cannot_use(date_curves: dict[str, Path], tmp_path: Path) -> None:
    p = date_curves
    res = _train(p, "--budget", "0.00001", "--out", tmp_path / "pol")
    assert res.exit_code != 0
    assert "--budget 1e-05" in res.output and "cheapest path" in res.output
    assert "one sample of llama-2-13b on the train questions" in res.output  # before any fit
    # a budget it cannot meet after one it can: nothing is written, not the first budget's folder
    res = _train(
        p, "--budgets", "0.002,0.00001", "--n-estimators", "20", "--out", tmp_path / "pols"
    )
    assert res.exit_code != 0
    assert "--budgets 1e-05" in res.output and "cheapest path" in res.output
    assert not (tmp_path / "pols").exists()
    res = _train(p, "--budget", "0.002", "--models", "gpt-4,gpt-5", "--out", tmp_path / "pol")
    assert res.exit_code != 0 and "'gpt-5'" in res.output


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([0.0, 0.02, 0.1, 0.5, np.inf]))
def test_online_decisions_follow_the_replayed_rule(seed: int, lam: float) -> None:
    """``decide_one`` on the samples as they arrive takes the path :func:`simulate` takes."""
    from ttcalloc.learn.cascade import CascadePolicy, fit_cascade, predict, prepare
    from ttcalloc.learn.stopping import StopOptions

    ns = [4, 3, 2]
    rng = np.random.default_rng(seed)
    p = 8
    votes = [[list(rng.integers(-1, 3, size=n)) for _ in range(p)] for n in ns]
    costs = [
        [list(rng.uniform(0.5, 1.5, size=n) * (lv + 1) ** 2) for _ in range(p)]
        for lv, n in enumerate(ns)
    ]
    train = [
        replay(v, c, orders=3, seed=seed + i)
        for i, (v, c) in enumerate(zip(votes, costs, strict=True))
    ]
    lad = cc.Ladder(tuple(ns), checkpoints=(1, 2, 4))
    units = [1.0, 4.0, 9.0]
    prep = prepare(train, None, lad, units)
    fold = np.arange(p) % 2
    model, _ = fit_cascade(prep, lad, fold, StopOptions(folds=2, fit_orders=3, n_estimators=5))
    policy = CascadePolicy(
        ["a", "b", "c"], lad, units, [], None, model, cc.Calibration(lam, lam, 0.0, 0.0), {}
    )
    recorded = [replay(v, c, orders=1, shuffle=False) for v, c in zip(votes, costs, strict=True)]
    got = predict(model, prepare(recorded, None, lad, units), lad)
    assert got.gains is not None
    paths = cc.simulate(recorded, lad, got.gains, got.extra, got.usable, lam)
    for i, counts in enumerate(online_draws(policy, votes, costs, lam)):
        assert counts == list(paths.drawn[i, 0]), i


def test_recalibrated_evaluation_compares_at_the_same_dollars(
    date_curves: dict[str, Path], tmp_path: Path
) -> None:
    p = date_curves
    res = _train(p, "--budget", "0.004", "--n-estimators", "20", "--out", tmp_path / "pol")
    assert res.exit_code == 0, res.output
    res = run_cli(
        "evaluate",
        tmp_path / "pol",
        "--orders",
        "12",
        "--bootstrap",
        "100",
        "--recalibrate",
        "--out",
        tmp_path / "rep",
        "--json",
    )
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["policies"]["pol"]["rows"]
    by = {r["method"]: r for r in rows}
    assert by["cascade"]["cost"] == pytest.approx(0.004, rel=1e-6)
    assert by["MoT rule (tuned on train)"]["cost"] == pytest.approx(0.004, rel=1e-6)
    assert by["gpt-3.5-turbo only"]["cost"] == pytest.approx(0.004, rel=1e-6)


def test_evaluate_refuses_budgets_and_baselines_for_a_cascade(
    date_curves: dict[str, Path], tmp_path: Path
) -> None:
    """A cascade is scored at the budget it was trained at: --budgets was silently ignored."""
    p = date_curves
    res = _train(p, "--rule", "single", "--budget", "0.004", "--out", tmp_path / "pol")
    assert res.exit_code == 0, res.output
    res = run_cli("evaluate", tmp_path / "pol", "--budgets", "0.002", "--out", tmp_path / "rep")
    assert res.exit_code != 0
    assert "--budgets" in res.output and "train" in res.output
    assert not (tmp_path / "rep").exists()
    # and --baselines, which names the one-model baselines a cascade is not scored against
    res = run_cli("evaluate", tmp_path / "pol", "--baselines", "uniform", "--out", tmp_path / "rep")
    assert res.exit_code != 0 and "--baselines" in res.output, res.output
    assert not (tmp_path / "rep").exists()


def test_a_cascade_off_its_budget_gets_a_note() -> None:
    """Over or under by more than 5% at the trained prices: one note naming each such budget and
    which way, and what compares at the budget; none within 5%, for other methods, or when
    recalibrated."""
    from ttcalloc.stages.evaluate.cascade import budget_notes

    def row(method: str, budget: float, cost: float) -> dict[str, object]:
        return {"method": method, "budget": budget, "cost": cost, "cost_over_budget": cost / budget}

    rows = [
        row("cascade", 0.001, 0.00064),
        row("cascade", 0.002, 0.00204),
        row("cascade", 0.004, 0.0044),
        row("MoT rule (tuned on train)", 0.001, 0.0005),
    ]
    notes = budget_notes("c", rows, recalibrated=False)
    assert len(notes) == 1
    assert notes[0].startswith(
        "c spent 36% under at $0.001 ($0.00064 per question), 10% over at $0.004 ($0.0044 per "
        "question) at the prices calibrated on train"
    ), notes[0]
    assert "--recalibrate" in notes[0] and "$0.002" not in notes[0]
    assert budget_notes("c", rows, recalibrated=True) == []


@settings(max_examples=15, deadline=None, derandomize=True)
@given(st.integers(0, 10_000), st.floats(0.0, 1.0))
def test_the_single_model_rule_draws_alike_for_cheap_and_dear_questions(
    seed: int, at: float
) -> None:
    """The best single model written as a cascade rule weighs a sample at its model's mean
    dollars, not the question's own: at one price every question draws the same hull point
    (the baseline's ``maj@k``), offline and online alike, whatever its samples cost (before,
    questions with cheap samples drew more, and those tend to be the easy ones)."""
    from ttcalloc.core import cascade_rule as cr
    from ttcalloc.learn.cascade import CascadePolicy, predict, prepare

    ns, p = [3, 6], 8
    rng = np.random.default_rng(seed)
    votes = [[list(rng.integers(-1, 3, size=n)) for _ in range(p)] for n in ns]
    scale = rng.uniform(0.2, 5.0, size=p)  # each question's samples cost alike, questions not
    costs = [[[float(scale[i] * (lv + 1) ** 2)] * n for i in range(p)] for lv, n in enumerate(ns)]
    recorded = [replay(v, c, orders=1, shuffle=False) for v, c in zip(votes, costs, strict=True)]
    rule = cr.UniformRule(1, (1, 2, 4, 6), (0.5, 0.62, 0.7, 0.72))
    lad = rule.ladder(2)
    units = [float(np.mean(scale)), 4.0 * float(np.mean(scale))]
    lam = (0.12 * (1 - at) + 0.01 * at) / units[1]  # a price between the hull's slopes
    got = predict(rule, prepare(recorded, None, lad, units, rule), lad)
    assert got.gains is not None
    paths = cc.simulate(recorded, lad, got.gains, got.extra, got.usable, lam)
    drawn = paths.drawn[:, 0, 1]
    assert (drawn == drawn[0]).all() and drawn[0] >= 1
    policy = CascadePolicy(
        ["a", "b"], lad, units, [], None, rule, cc.Calibration(lam, lam, 0.0, 0.0), {}
    )
    online = online_draws(policy, votes, costs, lam)
    assert [c[1] for c in online] == [int(drawn[0])] * p
