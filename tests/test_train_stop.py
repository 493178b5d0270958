"""Training the stop learner: several budgets from one fit, the cap, folds, atomic policy folders.

Also the exact helpers this rests on: identical rows (``core/rows.py``), the pair-row keys of
``core/stopping.PairRows`` and the one fold assignment of every learner.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st
from test_adaptive import _arith_curves, _problems

from ttcalloc.common.hashing import seeded_folds
from ttcalloc.core import replays as rp
from ttcalloc.core import stopping
from ttcalloc.core.rows import unique_rows
from ttcalloc.learn.stopping import StopOptions, calibrated, fit_gains, train_stopping


def _adaptive(folder: Path) -> dict[str, object]:
    meta = json.loads((folder / "policy.json").read_text())
    return dict(meta["adaptive"]) | {"budget": meta["budget"], "cap": meta["adaptive"]["cap"]}


@pytest.fixture(scope="module")
def curves(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 arithmetic problems x 8 simulated samples; maj@1,2 (fit half: 4 samples each)."""
    return _arith_curves(tmp_path_factory.mktemp("stop"), n=8, ks="1,2")


# ------------------------------------------------------------------------- several budgets


@pytest.mark.parametrize("signals", ["all", "none"])
def test_each_budget_gets_the_price_a_single_budget_fit_finds(curves: Path, signals: str) -> None:
    """``--budgets`` writes OUT/b<B> per budget; each one's prices and mixing weight are the
    ones ``--budget B`` alone finds with the same seed (the gain model does not depend on B)."""
    p = curves.parent
    base = ["train", curves, "--problems", p / "problems.parquet", "--signals", signals]
    out = p / f"multi-{signals}"
    res = run_cli(*base, "--budgets", "1.25,1.5,2", "--seed", "3", "--out", out)
    assert res.exit_code == 0, res.stderr
    for b in ("1.25", "1.5", "2"):
        single = p / f"single-{signals}-{b}"
        res = run_cli(*base, "--budget", b, "--seed", "3", "--out", single)
        assert res.exit_code == 0, res.stderr
        many, one = _adaptive(out / f"b{b}"), _adaptive(single)
        assert many == one
        assert many["budget"] == float(b)
        for name in ("lambda_lo", "lambda_hi", "p_lo"):  # the calibration itself, exactly
            assert many[name] == one[name]
    # a rerun with the same inputs and options is skipped; every policy loads in evaluate
    res = run_cli(*base, "--budgets", "1.25,1.5,2", "--seed", "3", "--out", out)
    assert res.exit_code == 0 and "up to date" in res.stderr, res.stderr
    res = run_cli(
        "evaluate", out / "b1.25", out / "b2", "--problems", p / "problems.parquet",
        "--out", p / f"report-{signals}",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    # the folder of folders, given where one policy is expected: one line naming them
    for cmd in (["info", out], ["evaluate", out, "--out", p / f"r2-{signals}"]):
        res = run_cli(*cmd)
        assert (
            res.exit_code != 0
            and "holds one policy folder per budget (b1.25, b1.5, b2)" in res.stderr
        )
        assert "Traceback" not in res.stderr


def test_budgets_calibrate_one_fit_as_separate_fits_do() -> None:
    """Library level: one :func:`fit_gains` calibrated at several budgets gives, at each, the
    calibration and out-of-fold figures of :func:`train_stopping` at that budget alone."""
    votes, lengths = _problems(120, 10, seed=1)
    train = rp.replay(votes, [[1.0] * 10] * 120, orders=12, seed=1, extra=lengths)
    grid = stopping.Grid(cap=10, checkpoints=(1, 2, 4, 8, 10))
    fold = np.array(seeded_folds(list(range(120)), 3, 0))
    opts = StopOptions(folds=3, n_estimators=30, seed=2)
    gain = fit_gains([(train, None)], grid, fold, opts, threads=2)[0]
    for budget in (1.5, 2.5, 4.0):
        alone = train_stopping(train, None, grid, budget, fold, opts)
        shared = calibrated(gain, train, grid, budget)
        assert shared.calibration == alone.calibration
        assert (shared.oof_accuracy, shared.oof_cost) == (alone.oof_accuracy, alone.oof_cost)


def test_fit_threads_do_not_change_the_models() -> None:
    votes, lengths = _problems(60, 8, seed=4)
    train = rp.replay(votes, [[1.0] * 8] * 60, orders=8, seed=4, extra=lengths)
    grid = stopping.Grid(cap=8, checkpoints=(1, 2, 4, 8))
    fold = np.array(seeded_folds(list(range(60)), 3, 0))
    opts = StopOptions(folds=3, n_estimators=20)
    one, two = (fit_gains([(train, None)], grid, fold, opts, threads=t)[0] for t in (1, 2))
    np.testing.assert_array_equal(one.critical, two.critical)
    np.testing.assert_array_equal(one.oof_critical, two.oof_critical)


def test_bad_budgets_and_threads_are_one_line_errors(
    curves: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = curves.parent
    base = ["train", curves, "--problems", p / "problems.parquet", "--out", p / "bad"]
    cases = [
        (["--budgets", "1.5,x"], "--budgets"),
        (["--budgets", "1.5,1.5"], "repeated"),
        (["--budget", "2", "--budgets", "1.5,2"], "not both"),
        (["--budgets", "0.5,2"], "--budgets 0.5"),
        (["--budgets", "1.5,2", "--learner", "imitate"], "--budgets is for --learner stop"),
        (["--budgets", "1.5,2", "--out", p / "one"], "a policy is there"),
    ]
    res = run_cli("train", curves, "--problems", p / "problems.parquet", "--budget", "2",
                  "--out", p / "one")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    for extra, message in cases:
        res = run_cli(*base, *extra)
        assert res.exit_code != 0 and message in res.stderr, res.stderr
        assert "Traceback" not in res.stderr
    monkeypatch.setenv("TTCALLOC_FIT_THREADS", "two")
    res = run_cli(*base, "--budget", "2")
    assert res.exit_code != 0 and "TTCALLOC_FIT_THREADS='two'" in res.stderr, res.stderr
    assert not (p / "bad").exists()


# ------------------------------------------------------------------------------------ cap


def test_the_cap_defaults_to_the_fit_half_and_the_summary_says_so(curves: Path) -> None:
    """maj@1,2 curves on 4 fit-half samples: the policy may draw all 4 (before: 2)."""
    p = curves.parent
    base = ["train", curves, "--problems", p / "problems.parquet", "--budget", "1.5"]
    res = run_cli(*base, "--out", p / "cap-default", "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["cap"] == 4
    assert _adaptive(p / "cap-default")["cap"] == 4
    assert "4 (the fit-half samples of every" in " ".join(res.stderr.split())
    res = run_cli(*base, "--cap", "3", "--out", p / "cap-3")
    assert res.exit_code == 0, res.stderr
    assert _adaptive(p / "cap-3")["cap"] == 3 and "3 (--cap)" in res.stderr
    assert _adaptive(p / "cap-3")["checkpoints"] == [1, 2, 3]
    res = run_cli(*base, "--cap", "5", "--out", p / "cap-5")
    assert res.exit_code != 0 and "--cap 5" in res.stderr and "at most 4" in res.stderr
    assert "Traceback" not in res.stderr and not (p / "cap-5").exists()


# ------------------------------------------------------------------ atomic policy folders


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(folder.iterdir())}


@pytest.mark.parametrize(
    ("learner", "patched"),
    [("stop", "ttcalloc.learn.adaptive.write_json_artifact"),
     ("imitate", "ttcalloc.stages.train.write_json_artifact")],
)  # fmt: skip
def test_a_failure_after_the_models_leaves_the_old_policy_whole(
    curves: Path, monkeypatch: pytest.MonkeyPatch, learner: str, patched: str
) -> None:
    """The new model files are written, then policy.json fails: the old folder is as it was
    (no new model file beside the old policy.json) and no temporary folder is left."""
    p = curves.parent
    if learner == "imitate":
        res = run_cli(
            "solve", curves, "--problems", p / "problems.parquet", "--budgets", "1.5,2",
            "--out", p / "alloc.parquet",
        )  # fmt: skip
        assert res.exit_code == 0, res.stderr
    source = curves if learner == "stop" else p / "alloc.parquet"
    out = p / f"atomic-{learner}" / "policy"
    base = ["train", source, "--problems", p / "problems.parquet", "--learner", learner]
    res = run_cli(*base, "--budget", "1.5", "--out", out)
    assert res.exit_code == 0, res.stderr
    before = _snapshot(out)
    assert any(name.endswith(".ubj") for name in before)

    def fail(path: Path, *args: object) -> None:
        models = [f for f in path.parent.iterdir() if f.suffix == ".ubj"]
        assert models, "the models are written first"
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(patched, fail)
    res = run_cli(*base, "--budget", "2", "--out", out)
    assert res.exit_code != 0 and "no space left" in res.stderr, res.stderr
    assert _snapshot(out) == before
    assert sorted(f.name for f in out.parent.iterdir()) == ["policy"]  # no temp folder
    monkeypatch.undo()
    (out / "gain-9.ubj").write_bytes(b"stale")  # a file an older version left
    res = run_cli(*base, "--budget", "2", "--out", out)
    assert res.exit_code == 0, res.stderr
    assert json.loads((out / "policy.json").read_text())["budget"] == 2.0
    assert not (out / "gain-9.ubj").exists()  # replaced whole, never mixed
    assert sorted(f.name for f in out.parent.iterdir()) == ["policy"]


def test_a_folder_that_is_not_a_policy_is_not_replaced(curves: Path) -> None:
    p = curves.parent
    mine = p / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    res = run_cli("train", curves, "--problems", p / "problems.parquet", "--budget", "2",
                  "--out", mine)  # fmt: skip
    assert res.exit_code != 0 and "without policy.json" in res.stderr, res.stderr
    assert (mine / "notes.txt").read_text() == "keep me"


# ---------------------------------------------------------------- exact helpers, by brute force


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from([0.0, 1.0, -0.0, 2.5, np.nan, 1e300]), min_size=3, max_size=3),
        min_size=1,
        max_size=40,
    )
)
def test_unique_rows_groups_exactly_the_equal_rows(rows: list[list[float]]) -> None:
    x = np.array(rows, dtype=np.float64)
    first, inverse = unique_rows(x)
    keys = [x[i].tobytes() for i in range(len(x))]  # brute force: equal bytes
    assert len(first) == len(set(keys))
    assert [keys[first[j]] for j in inverse] == keys
    assert all(keys.index(keys[i]) == i for i in first)  # first occurrences


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(2, 7), st.integers(1, 4), st.integers(0, 2))
def test_pair_rows_keys_and_rows_match_the_built_rows(
    problems: int, samples: int, orders: int, width: int
) -> None:
    rng = np.random.default_rng(problems * 100 + samples * 10 + orders)
    votes = [list(rng.integers(-1, 3, samples)) for _ in range(problems)]
    r = rp.replay(votes, [[1.0] * samples] * problems, orders=orders, seed=1)
    grid = stopping.Grid(cap=samples, checkpoints=(1, 2, 4))
    states = stopping.state_features(r)
    question = rng.integers(0, 2, (problems, width)).astype(np.float64)
    built = stopping.pair_rows(states, question, grid)
    table = stopping.PairRows.build(states, question, grid)
    flat = built.reshape(-1, built.shape[-1])
    np.testing.assert_array_equal(table.rows(np.arange(len(flat))), flat)
    keys = table.keys.reshape(-1)
    same_key = keys[:, None] == keys[None, :]
    same_row = (flat[:, None, :] == flat[None, :, :]).all(axis=-1)
    np.testing.assert_array_equal(same_key, same_row)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(max_size=4), unique=True, max_size=60), st.integers(2, 7))
def test_folds_are_balanced_and_depend_only_on_the_ids(ids: list[str], k: int) -> None:
    fold = seeded_folds(ids, k, seed=5)
    sizes = np.bincount(fold, minlength=k) if ids else np.zeros(k)
    assert sizes.max() - sizes.min() <= 1
    shuffled = list(reversed(ids))
    again = dict(zip(shuffled, seeded_folds(shuffled, k, seed=5), strict=True))
    assert all(again[i] == f for i, f in zip(ids, fold, strict=True))
