"""A cascade that holds escalation back until ``escalate_after`` samples of the current model:
the ladder against brute force, the choice out of fold, the policy file, ``train
--escalate-after`` and the online decisions; and a question without an answer is not stopped."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from helpers import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st
from test_cascade import _replays
from test_run_models import two_model_curves

from ttcalloc.artifacts.io import read_artifact
from ttcalloc.artifacts.schemas import SAMPLES
from ttcalloc.core import cascade as cc
from ttcalloc.learn.cascade_choice import ESCALATE_AFTER


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 10_000),
    st.lists(st.integers(1, 5), min_size=2, max_size=3),
    st.integers(1, 6),
    st.sampled_from([0.0, 0.05, 0.3, 2.0]),
)
def test_no_path_escalates_before_its_samples(seed: int, ns: list[int], m: int, lam: float) -> None:
    """On any gains, a path leaves a model only after ``min(m, cap)`` of its samples (or where
    the problem has no more), and the mask is the plain ladder's with those escalations off."""
    reps = _replays(seed, 3, ns)
    plain = cc.Ladder(tuple(ns), checkpoints=(1, 2, 4))
    lad = cc.Ladder(tuple(ns), checkpoints=(1, 2, 4), escalate_after=m)
    for s, (lv, j) in enumerate(lad.states):
        for o, (tl, _) in enumerate(lad.options):
            held = lv != cc.START and tl != lv and j < min(m, lad.caps[lv])
            assert lad.allowed[s, o] == (plain.allowed[s, o] and not held)
    _, usable = cc.labels(reps, lad)
    gains = np.random.default_rng(seed).normal(0.05, 0.3, size=usable.shape)
    extra = cc.extra_dollars(reps, lad, [1.0, 4.0, 9.0][: len(ns)])
    paths = cc.simulate(reps, lad, gains, extra, usable, lam)
    for pi in range(3):
        for r in range(reps[0].ids.shape[1]):
            last = int(paths.level[pi, r])
            for level in range(last):
                d = int(paths.drawn[pi, r, level])
                if d > 0:
                    assert d >= min(m, lad.caps[level]), (paths.drawn[pi, r], m)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.lists(st.integers(1, 5), min_size=2, max_size=3))
def test_unanswered_states_match_a_loop(seed: int, ns: list[int]) -> None:
    """A state is unanswered when every sample of its model so far gave no answer."""
    reps = _replays(seed, 3, ns)
    lad = cc.Ladder(tuple(ns))
    got = cc.unanswered(reps, lad)
    for pi in range(3):
        for r in range(reps[0].ids.shape[1]):
            for s, (lv, j) in enumerate(lad.states):
                want = lv != cc.START and all(reps[lv].ids[pi, r, t] < 0 for t in range(j))
                assert got[pi, r, s] == want


def test_a_ladder_escalates_after_at_least_one_sample() -> None:
    with pytest.raises(ValueError):
        cc.Ladder((2, 2), escalate_after=0)


@pytest.fixture(scope="module")
def curves(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("escalate")
    problems, samples, curves = two_model_curves(tmp)
    return {"problems": problems, "samples": samples, "curves": curves, "tmp": tmp}


def _train(c: dict[str, Path], out: Path, *extra: str) -> object:
    return run_cli(
        "train", c["curves"], "--problems", c["problems"], "--learner", "cascade",
        "--budget", "0.003", "--folds", "2", "--n-estimators", "20", "--out", out, *extra,
    )  # fmt: skip


def test_train_weighs_when_to_escalate_and_run_follows_it(
    curves: dict[str, Path], tmp_path: Path
) -> None:
    from ttcalloc.learn.cascade import CascadePolicy
    from ttcalloc.learn.cascade_online import options_at

    auto = _train(curves, tmp_path / "auto")
    assert auto.exit_code == 0, auto.stderr
    meta = json.loads((tmp_path / "auto" / "policy.json").read_text())
    choice = meta["metrics"]["escalate_choice"]
    assert choice["candidates"] == list(ESCALATE_AFTER)
    assert len(choice["oof_accuracy"]) == len(ESCALATE_AFTER)
    assert (
        meta["cascade"]["escalate_after"] == choice["chosen"] == meta["metrics"]["escalate_after"]
    )
    first = ESCALATE_AFTER[0]
    if choice["chosen"] != first:  # only where the data favour it
        accs = dict(zip(choice["candidates"], choice["oof_accuracy"], strict=True))
        assert accs[choice["chosen"]] > accs[first]
    assert "escalate after (out-of-fold accuracy)" in auto.stderr

    fixed = _train(curves, tmp_path / "three", "--escalate-after", "3")
    assert fixed.exit_code == 0, fixed.stderr
    meta = json.loads((tmp_path / "three" / "policy.json").read_text())
    assert meta["cascade"]["escalate_after"] == 3 and meta["metrics"]["escalate_choice"] is None
    policy = CascadePolicy.load(tmp_path / "three")
    assert policy.ladder.escalate_after == 3
    cheap = policy.models.index("cheap")
    for j in (1, 2):  # before 3 cheap samples: only more of them, or stopping
        o = options_at(policy, "What is 2 + 3?", [(cheap, "5", 1e-4)] * j)
        assert set(o.targets.tolist()) <= {cheap}
    o = options_at(policy, "What is 2 + 3?", [(cheap, "5", 1e-4)] * 3)
    assert set(o.targets.tolist()) > {cheap}  # now the strong model is open
    # a question whose samples gave no answer is never stopped while an option remains (it
    # was, on the simulated backend, when escalation was held back: answered with nothing)
    for j in (1, 2, 3):
        o = options_at(policy, "What is 2 + 3?", [(cheap, None, 1e-4)] * j)
        assert not o.choose(1e6).stop and not o.choose(o.critical() / 2).stop
    spec = f"replay:{curves['samples']}"
    out = tmp_path / "a.parquet"
    ran = run_cli("run", tmp_path / "three", curves["problems"], "--split", "test",
                  "--budget", "0.003", "--model", f"cheap={spec}", "--model", f"strong={spec}",
                  "--out", out, "--no-progress")  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    drawn = read_artifact(tmp_path / "a-samples.parquet", SAMPLES).df
    per = drawn.group_by("problem_id").agg(
        pl.col("model").n_unique().alias("models"), (pl.col("model") == "cheap").sum().alias("n")
    )
    escalated = per.filter(pl.col("models") == 2)
    assert escalated.height > 0 and (escalated["n"] >= 3).all(), escalated
    # a damaged value is one line naming the field
    bad = tmp_path / "bad"
    shutil.copytree(tmp_path / "three", bad)
    meta["cascade"]["escalate_after"] = 0
    (bad / "policy.json").write_text(json.dumps(meta))
    r = run_cli("run", bad, curves["problems"], "--split", "test", "--budget", "0.003",
                "--model", f"cheap={spec}", "--model", f"strong={spec}",
                "--out", tmp_path / "b.parquet")  # fmt: skip
    assert r.exit_code != 0 and "cascade.escalate_after" in r.stderr, r.stderr
    assert r.stderr.strip().count("\n") == 0, r.stderr
    # so is a damaged pacing ratio (a ratio per decision, written by train)
    assert len(meta["cascade"]["pace_ratio"]) > 1
    for damaged, field in (([1.0, -2.0], "cascade.pace_ratio[1]"), ("x", "cascade.pace_ratio")):
        meta["cascade"]["escalate_after"] = 3
        meta["cascade"]["pace_ratio"] = damaged
        (bad / "policy.json").write_text(json.dumps(meta))
        r = run_cli("run", bad, curves["problems"], "--split", "test", "--budget", "0.003",
                    "--model", f"cheap={spec}", "--model", f"strong={spec}",
                    "--out", tmp_path / "b.parquet")  # fmt: skip
        assert r.exit_code != 0 and field in r.stderr, r.stderr
        assert r.stderr.strip().count("\n") == 0, r.stderr


def test_bad_escalate_after_is_one_line(curves: dict[str, Path], tmp_path: Path) -> None:
    for value in ("0", "x", "1.5"):
        r = _train(curves, tmp_path / "bad", "--escalate-after", value)
        assert r.exit_code != 0 and "--escalate-after" in r.stderr, r.stderr
        assert r.stderr.strip().count("\n") == 0, r.stderr
    r = run_cli("train", curves["curves"], "--problems", curves["problems"], "--learner", "stop",
                "--budget", "2", "--escalate-after", "2", "--out", tmp_path / "s")  # fmt: skip
    assert r.exit_code != 0 and "--escalate-after is for --learner cascade" in r.stderr
    assert not (tmp_path / "bad").exists() and not (tmp_path / "s").exists()
