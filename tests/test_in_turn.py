"""Curves of samples drawn with several prompt variants, taken in turn as `run` draws them:
pass@k exact against brute force, maj@k within its Monte-Carlo error, and `estimate` end to end."""

from __future__ import annotations

from collections import Counter
from itertools import permutations, product
from math import comb, sqrt
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli, write_jsonl
from hypothesis import given, settings
from hypothesis import strategies as st

from ttcalloc.artifacts.io import read_artifact
from ttcalloc.artifacts.schemas import CURVES
from ttcalloc.core import estimators, in_turn


def _credit(drawn: list[int]) -> float:
    """Majority credit: ties split, no answer never votes, no votes is wrong."""
    tally = Counter(a for a in drawn if a >= 0)
    if not tally:
        return 0.0
    top = max(tally.values())
    leaders = [a for a, c in tally.items() if c == top]
    return 1.0 / len(leaders) if 0 in leaders else 0.0


def _brute(ids: list[int], var: list[int], k: int) -> tuple[float, float]:
    """(maj@k, pass@k) of the first k draws, averaged over every rotation of the variants and
    every order of each variant's samples (all equally likely), a variant run out skipped."""
    names = sorted(set(var))
    own = {u: [i for i, x in enumerate(var) if x == u] for u in names}
    maj = solved = 0.0
    count = 0
    for cycle in permutations(names):
        for orders in product(*(permutations(own[u]) for u in names)):
            within = dict(zip(names, orders, strict=True))
            drawn = [
                ids[within[u][r]] for r in range(len(ids)) for u in cycle if r < len(within[u])
            ][:k]
            maj += _credit(drawn)
            solved += float(0 in drawn)
            count += 1
    return maj / count, solved / count


# up to 3 variants of 1 to 3 samples each; ids: 0 correct, 1-2 wrong answers, -1 none
group = st.lists(st.lists(st.integers(-1, 2), min_size=1, max_size=3), min_size=1, max_size=3)


def _flat(variants: list[list[int]]) -> tuple[list[int], list[int]]:
    ids = [a for v in variants for a in v]
    var = [u for u, v in enumerate(variants) for _ in v]
    return ids, var


@settings(max_examples=80, deadline=None)
@given(group)
def test_pass_in_turn_is_exact(variants: list[list[int]]) -> None:
    ids, var = _flat(variants)
    ks = list(range(1, len(ids) + 2))
    got = in_turn.pass_in_turn([ids], [var], ks)[0]
    want = [_brute(ids, var, k)[1] for k in ks[:-1]]
    np.testing.assert_allclose(got[:-1], want, rtol=0, atol=1e-12)
    assert np.isnan(got[-1])  # k > n: no action


ORDERS = 20_000
# credit lies in [0, 1], so its standard deviation is at most 0.5: 5 standard errors of a mean
# over ORDERS orders (a false alarm about once in 2 million comparisons)
TOLERANCE = 5 * 0.5 / sqrt(ORDERS)


@settings(max_examples=40, deadline=None)
@given(group, st.integers(0, 10_000))
def test_majority_in_turn_matches_brute_force_within_its_error(
    variants: list[list[int]], seed: int
) -> None:
    ids, var = _flat(variants)
    ks = list(range(1, len(ids) + 1))
    got = in_turn.majority_in_turn([ids], [var], ks, orders=ORDERS, seed=seed)[0]
    want = [_brute(ids, var, k)[0] for k in ks]
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-1, 3), min_size=1, max_size=8), st.integers(0, 10_000))
def test_one_variant_is_the_exact_estimator(ids: list[int], seed: int) -> None:
    """With one variant, in turn is any k samples: the U-statistic, within the error."""
    arr = np.array(ids)
    wrong = np.bincount(arr[arr > 0], minlength=4)[1:][None, :]
    ks = list(range(1, len(ids) + 1))
    got = in_turn.majority_in_turn([ids], [[7] * len(ids)], ks, orders=ORDERS, seed=seed)[0]
    n, c = np.array([len(ids)]), np.array([int((arr == 0).sum())])
    want = [estimators.majority_at_k(n, c, wrong, k)[0] for k in ks]
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE)
    exact = in_turn.pass_in_turn([ids], [[7] * len(ids)], ks)[0]
    np.testing.assert_allclose(exact, [estimators.pass_at_k(n, c, k)[0] for k in ks], atol=1e-12)


def _all_rotations(ids: list[int], var: list[int], k: int) -> float:
    """pass@k as it was computed before subsets: the exact per-rotation product of
    C(n_u - c_u, k_u) / C(n_u, k_u), averaged over every rotation of the variants."""
    names = sorted(set(var))
    n = {u: var.count(u) for u in names}
    c = {u: sum(1 for a, x in zip(ids, var, strict=True) if x == u and a == 0) for u in names}
    fails = []
    for cycle in permutations(names):
        drawn = [u for r in range(max(n.values())) for u in cycle if n[u] > r][:k]
        fails.append(
            np.prod([comb(n[u] - c[u], drawn.count(u)) / comb(n[u], drawn.count(u)) for u in names])
        )
    return 1.0 - float(np.mean(fails))


# up to 6 variants of 1 to 5 samples each (uneven counts)
wide = st.lists(st.lists(st.integers(-1, 2), min_size=1, max_size=5), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(wide)
def test_pass_in_turn_matches_every_rotation(variants: list[list[int]]) -> None:
    """Averaging over the subsets of the last round's variants gives the numbers that averaging
    over every rotation gave."""
    ids, var = _flat(variants)
    ks = list(range(1, len(ids) + 1))
    got = in_turn.pass_in_turn([ids], [var], ks)[0]
    want = [_all_rotations(ids, var, k) for k in ks]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_pass_in_turn_is_exact_beyond_seven_variants() -> None:
    """Nine variants, one sample each, one correct: the first k draws hold it with chance k/9
    (no sampled rotations).  With a wrong second sample in the correct one's variant, the first
    round draws either of the two: pass@9 is 1/2, pass@10 (every sample) 1."""
    ks = list(range(1, 10))
    got = in_turn.pass_in_turn([[0] + [1] * 8], [list(range(9))], ks)[0]
    np.testing.assert_allclose(got, [k / 9 for k in ks], rtol=0, atol=1e-12)
    two = in_turn.pass_in_turn([[1, 0] + [1] * 8], [[0, 0, *range(1, 9)]], [9, 10])[0]
    np.testing.assert_allclose(two, [0.5, 1.0], rtol=0, atol=1e-12)


def _estimate(tmp_path: Path, name: str, rows: list[dict[str, object]]) -> tuple[dict, str, dict]:
    src = write_jsonl(tmp_path / f"{name}.jsonl", rows)
    samples, curves = tmp_path / f"{name}.parquet", tmp_path / f"{name}-curves.parquet"
    r = run_cli("import", src, "--problems", tmp_path / "problems.parquet", "--out", samples)
    assert r.exit_code == 0, r.output
    r = run_cli(
        "estimate", samples, "--ks", "1,2", "--strategy", "majority", "--strategy", "pass",
        "--holdout", "0", "--cost", "samples", "--out", curves,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    art = read_artifact(curves, CURVES)
    got = dict(zip(art.df["action"], art.df["accuracy"], strict=True))
    return got, r.stderr, art.meta["params"]


def test_estimate_takes_the_variants_in_turn(tmp_path: Path) -> None:
    """Variant a always right (2 samples), b always wrong (4): two draws in turn are one of
    each, a tie in every order, so maj@2 is exactly 1/2 and pass@2 exactly 1; any two samples
    give 1/3 and 3/5 (the file without variants)."""
    probs = write_jsonl(tmp_path / "p.jsonl", [{"id": "q", "question": "1+1?", "answer": "2"}])
    run_cli("data", "jsonl", "--source", probs, "--out", tmp_path / "problems.parquet")
    rows = [
        {"problem_id": "q", "sample_idx": j, "pred_answer": "2" if v == "a" else "3",
         "prompt_variant": v}
        for j, v in enumerate(["a", "b", "a", "b", "b", "b"])
    ]  # fmt: skip
    got, stderr, params = _estimate(tmp_path, "turn", rows)
    assert got["maj@2"] == 0.5 and got["pass@2"] == 1.0
    assert "take them in turn, as `run` draws them (maj@k: mean over 400 seeded orders)" in stderr
    assert params["in_turn"] == {"orders": in_turn.DEFAULT_ORDERS, "seed": 0}
    plain = [{k: v for k, v in x.items() if k != "prompt_variant"} for x in rows]
    got, stderr, params = _estimate(tmp_path, "plain", plain)
    assert got["maj@2"] == pytest.approx(1 / 3) and got["pass@2"] == pytest.approx(3 / 5)
    assert got["maj@1"] == pytest.approx(1 / 3) and "in turn" not in stderr
    assert params["in_turn"] is None


def test_estimate_reruns_are_identical(tmp_path: Path) -> None:
    probs = write_jsonl(
        tmp_path / "p.jsonl", [{"id": str(i), "question": f"{i}?", "answer": "1"} for i in range(3)]
    )
    run_cli("data", "jsonl", "--source", probs, "--out", tmp_path / "problems.parquet")
    rows = [
        {"problem_id": str(i), "sample_idx": j, "pred_answer": str((i * j) % 3),
         "prompt_variant": "ab"[j % 2]}
        for i in range(3) for j in range(6)
    ]  # fmt: skip
    one, _, _ = _estimate(tmp_path, "one", rows)
    r = run_cli(
        "estimate", tmp_path / "one.parquet", "--ks", "1,2", "--strategy", "majority",
        "--strategy", "pass", "--holdout", "0", "--cost", "samples", "--force",
        "--out", tmp_path / "one-curves.parquet",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    art = read_artifact(tmp_path / "one-curves.parquet", CURVES)
    two = dict(zip(art.df["action"], art.df["accuracy"], strict=True))
    assert one == two  # the orders are seeded (estimate's --seed, and each group's key)


def test_a_groups_orders_do_not_depend_on_the_other_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keyed, a group's maj@k is the same estimated alone, with other groups (of more samples:
    other chunk sizes) or in other chunks."""
    rng = np.random.default_rng(5)
    groups = [
        (list(rng.integers(-1, 4, size=n)), list(rng.integers(0, 3, size=n)))
        for n in (6, 9, 40, 7, 12)
    ]
    keys = [f"p{i}\x00m\x00fit" for i in range(len(groups))]
    ks = [2, 3, 5]

    def est(which: list[int]) -> np.ndarray:
        return in_turn.majority_in_turn(
            [groups[i][0] for i in which], [groups[i][1] for i in which], ks, orders=50,
            seed=7, keys=[keys[i] for i in which],
        )  # fmt: skip

    alone = est([3])
    together = est([0, 1, 2, 3, 4])
    np.testing.assert_array_equal(together[3], alone[0])
    monkeypatch.setattr(in_turn, "_CHUNK", 1)  # one group per chunk
    np.testing.assert_array_equal(est([4, 3, 0])[1], alone[0])
