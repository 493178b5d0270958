"""`ttcalloc estimate`: curves from samples, cross-fitting, costs, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from helpers import run_cli

from ttcalloc.artifacts import io
from ttcalloc.artifacts.schemas import CURVES, SAMPLES
from ttcalloc.artifacts.validation import validate
from ttcalloc.common.errors import DataError, InputError
from ttcalloc.stages import data
from ttcalloc.stages.estimate import (
    EstimateOptions,
    compute_curves,
    estimate_curves,
    summarize_curves,
)


def write_samples(path: Path, rows: list[dict[str, object]]) -> Path:
    io.write_artifact(pl.DataFrame(rows), path, SAMPLES, stage="test")
    return path


def sample_rows(
    problem: str, answers: list[str | None], gold: str, **extra: object
) -> list[dict[str, object]]:
    return [
        {
            "problem_id": problem,
            "model": "m",
            "sample_idx": i,
            "pred_answer": a,
            "correct": a == gold,
            **extra,
        }
        for i, a in enumerate(answers)
    ]


def test_curves_for_a_hand_computed_problem(tmp_path: Path) -> None:
    rows = sample_rows("p", ["1", "1", "2", None], "1")
    src = write_samples(tmp_path / "s.parquet", rows)
    result = estimate_curves(
        src, tmp_path / "c.parquet", EstimateOptions(ks=(1, 2, 4), holdout=0.0)
    )
    df = io.read_artifact(tmp_path / "c.parquet", CURVES).df.sort("k")
    # maj@1 = 2/4; maj@2: pairs {1,1}=1, {1,2}x2=1/2, {1,-}x2=1, {2,-}=0, {2,... } -> (1+1+2)/6
    assert df["accuracy"].to_list() == pytest.approx([0.5, 4 / 6, 1.0])
    assert df["action"].to_list() == ["maj@1", "maj@2", "maj@4"]
    assert df["cost"].to_list() == [1.0, 2.0, 4.0]  # no tokens: cost in samples
    assert set(df["half"]) == {"all"} and result.cost_unit == "samples"
    assert not result.cross_fitted


def sample_frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    """An in-memory samples table (every schema column present), no file."""
    return validate(pl.DataFrame(rows), SAMPLES, "test")


def test_compute_curves_in_memory_majority_pass_and_left_out() -> None:
    rows = sample_rows("p", ["1", "1", "2", None], "1") + sample_rows("q", ["3", "1"], "1")
    options = EstimateOptions(ks=(4, 1, 2), strategies=("majority", "pass"))
    curves, left_out = compute_curves(sample_frame(rows), options, "samples", 0.0)
    assert left_out == {"majority@4": 1, "pass@4": 1}  # q has 2 samples: no @4 for it
    p = curves.filter(pl.col("problem_id") == "p").select("action", "accuracy", "cost").rows()
    by_action = {a: (acc, cost) for a, acc, cost in p}
    assert by_action["maj@2"][0] == pytest.approx(4 / 6) and by_action["maj@4"] == (1.0, 4.0)
    assert by_action["pass@2"][0] == pytest.approx(1 - 1 / 6)  # only {2, None} misses
    assert set(curves["half"]) == {"all"} and set(curves["n_samples"]) == {2, 4}


def test_compute_curves_halves_and_prompt_once_costs() -> None:
    rows = sample_rows("p", ["1"] * 5 + ["2"] * 3, "1", prompt_tokens=100)
    for i, r in enumerate(rows):
        r["completion_tokens"] = 10 * (i + 1)
    options = EstimateOptions(ks=(1, 2), prompt_once=True, seed=3)
    curves, left_out = compute_curves(sample_frame(rows), options, "tokens", 0.5)
    assert left_out == {} and set(curves["half"]) == {"fit", "eval"}
    assert (curves["n_samples"] == 4).all()
    maj1 = curves.filter(pl.col("k") == 1)
    assert maj1["accuracy"].sum() / 2 == pytest.approx(5 / 8)  # the halves partition the 8
    assert maj1["cost"].sum() == pytest.approx(2 * 100 + sum(10 * (i + 1) for i in range(8)) / 4)
    for _, half in curves.group_by("half"):
        by_k = dict(zip(half["k"], half["cost"], strict=True))
        assert by_k[2] - by_k[1] == pytest.approx(by_k[1] - 100)  # prompt paid once per k


def test_compute_curves_prefixes_actions_with_the_model_only_for_several() -> None:
    rows = sample_rows("p", ["1", "2"], "1")
    both = rows + [dict(r, model="other") for r in sample_rows("p", ["1", "1"], "1")]
    one, _ = compute_curves(sample_frame(rows), EstimateOptions(ks=(1,)), "samples", 0.0)
    two, _ = compute_curves(sample_frame(both), EstimateOptions(ks=(1,)), "samples", 0.0)
    assert one["action"].to_list() == ["maj@1"]
    assert two.sort("action").select("action", "accuracy").rows() == [
        ("m:maj@1", 0.5),
        ("other:maj@1", 1.0),
    ]


def test_summarize_curves_averages_the_main_half_only() -> None:
    curves = pl.DataFrame(
        {
            "action": ["maj@1"] * 4,
            "model": ["m"] * 4,
            "strategy": ["majority"] * 4,
            "k": [1] * 4,
            "half": ["fit", "fit", "eval", "eval"],
            "accuracy": [0.2, 0.4, 1.0, 1.0],
            "cost": [1.0, 3.0, 9.0, 9.0],
        }
    )
    (fit,) = summarize_curves(curves, cross_fitted=True)
    assert fit["accuracy"] == pytest.approx(0.3) and fit["cost"] == 2.0 and fit["problems"] == 2
    assert summarize_curves(curves, cross_fitted=False) == []  # no 'all' half here


def test_cross_fitting_splits_each_problem_in_two(tmp_path: Path) -> None:
    rows = sample_rows("p", ["1"] * 5 + ["2"] * 3, "1") + sample_rows("q", ["3"] * 8, "1")
    src = write_samples(tmp_path / "s.parquet", rows)
    result = estimate_curves(src, tmp_path / "c.parquet", EstimateOptions(ks=(1, 2, 4)))
    assert result.cross_fitted  # 8 samples >= 2 x max(k)
    df = io.read_artifact(tmp_path / "c.parquet", CURVES).df
    assert set(df["half"]) == {"fit", "eval"}
    assert (df["n_samples"] == 4).all()
    p1 = df.filter((pl.col("problem_id") == "p") & (pl.col("k") == 1)).sort("half")
    # 5 correct of 8 split into halves: the two maj@1 values average to 5/8
    assert p1["accuracy"].sum() / 2 == pytest.approx(5 / 8)
    meta = io.read_artifact(tmp_path / "c.parquet", CURVES).meta
    assert meta["cross_fitted"] is True and meta["params"]["holdout"] == 0.5
    again = estimate_curves(src, tmp_path / "c2.parquet", EstimateOptions(ks=(1, 2, 4)))
    assert again.actions == result.actions  # deterministic for a seed


def test_actions_needing_more_samples_are_left_out(tmp_path: Path) -> None:
    rows = sample_rows("p", ["1", "2"], "1") + sample_rows("q", ["1"] * 4, "1")
    src = write_samples(tmp_path / "s.parquet", rows)
    result = estimate_curves(src, tmp_path / "c.parquet", EstimateOptions(ks=(1, 4)))
    assert result.left_out == {"majority@4": 1}
    df = io.read_artifact(tmp_path / "c.parquet", CURVES).df
    assert df.filter(pl.col("problem_id") == "p")["k"].to_list() == [1]


def test_token_costs_and_prompt_once(tmp_path: Path) -> None:
    rows = sample_rows("p", ["1", "2"], "1")
    for r, comp in zip(rows, [10, 30], strict=True):
        r.update(prompt_tokens=100, completion_tokens=comp)
    src = write_samples(tmp_path / "s.parquet", rows)
    estimate_curves(src, tmp_path / "a.parquet", EstimateOptions(ks=(1, 2), holdout=0.0))
    costs = io.read_artifact(tmp_path / "a.parquet", CURVES).df.sort("k")["cost"].to_list()
    assert costs == [120.0, 240.0]  # auto picks tokens: k x (prompt + mean completion)
    estimate_curves(
        src, tmp_path / "b.parquet", EstimateOptions(ks=(1, 2), holdout=0.0, prompt_once=True)
    )
    costs = io.read_artifact(tmp_path / "b.parquet", CURVES).df.sort("k")["cost"].to_list()
    assert costs == [120.0, 140.0]
    with pytest.raises(DataError, match="column 'cost_usd' is missing"):
        estimate_curves(src, tmp_path / "c.parquet", EstimateOptions(cost="usd"))


def test_failed_requests_are_not_samples(tmp_path: Path) -> None:
    rows = sample_rows("p", ["1", "2"], "1")
    rows.append(
        {
            "problem_id": "p",
            "model": "m",
            "sample_idx": 2,
            "pred_answer": None,
            "correct": None,
            "error": "timeout",
        }
    )
    src = write_samples(tmp_path / "s.parquet", rows)
    result = estimate_curves(src, tmp_path / "c.parquet", EstimateOptions(ks=(1,), holdout=0.0))
    assert result.failed_samples == 1 and result.samples == 2
    assert result.actions[0]["accuracy"] == pytest.approx(0.5)


def test_several_models_get_prefixed_actions(tmp_path: Path) -> None:
    rows = sample_rows("p", ["1", "2"], "1")
    rows += [dict(r, model="other") for r in sample_rows("p", ["1", "1"], "1")]
    src = write_samples(tmp_path / "s.parquet", rows)
    # several models under --cost auto are charged in dollars (tests/test_prices.py): here,
    # without prices, in samples
    options = EstimateOptions(ks=(1,), holdout=0.0, cost="samples")
    estimate_curves(src, tmp_path / "c.parquet", options)
    df = io.read_artifact(tmp_path / "c.parquet", CURVES).df.sort("action")
    assert df["action"].to_list() == ["m:maj@1", "other:maj@1"]
    estimate_curves(
        src, tmp_path / "d.parquet", EstimateOptions(ks=(1,), holdout=0.0, models=("other",))
    )
    assert io.read_artifact(tmp_path / "d.parquet", CURVES).df["action"].to_list() == ["maj@1"]
    with pytest.raises(InputError, match="--models 'nope'"):
        estimate_curves(src, tmp_path / "e.parquet", EstimateOptions(models=("nope",)))


def test_wrong_answers_cluster_by_grader(tmp_path: Path) -> None:
    """With problems, '\\frac{1}{3}' and '1/3' form one wrong cluster that beats the correct one."""
    problems = tmp_path / "p.parquet"
    (tmp_path / "m.jsonl").write_text(json.dumps({"problem": "q", "answer": "\\frac{1}{2}"}) + "\n")
    data.build_problems(tmp_path / "m.jsonl", problems, "math")
    rows = sample_rows("0", ["\\frac{1}{2}", "\\frac{1}{3}", "1/3"], "\\frac{1}{2}")
    src = write_samples(tmp_path / "s.parquet", rows)
    estimate_curves(src, tmp_path / "a.parquet", EstimateOptions(ks=(3,), holdout=0.0), problems)
    estimate_curves(src, tmp_path / "b.parquet", EstimateOptions(ks=(3,), holdout=0.0))
    assert io.read_artifact(tmp_path / "a.parquet", CURVES).df["accuracy"][0] == 0.0
    assert io.read_artifact(tmp_path / "b.parquet", CURVES).df["accuracy"][0] == pytest.approx(
        1 / 3
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (EstimateOptions(ks=(0,)), "--ks"),
        (EstimateOptions(strategies=("best",)), "--strategy 'best'"),
        (EstimateOptions(cost="euros"), "--cost 'euros'"),
        (EstimateOptions(holdout=1.0), "--holdout"),
        (EstimateOptions(prompt_once=True, cost="samples"), "--prompt-once"),
    ],
)
def test_bad_options(tmp_path: Path, options: EstimateOptions, message: str) -> None:
    src = write_samples(tmp_path / "s.parquet", sample_rows("p", ["1"], "1"))
    with pytest.raises(InputError, match=message):
        estimate_curves(src, tmp_path / "c.parquet", options)
    assert not (tmp_path / "c.parquet").exists()


def test_cli_estimate(tmp_path: Path) -> None:
    src = write_samples(tmp_path / "s.parquet", sample_rows("p", ["1", "2", "1", "1"], "1"))
    result = run_cli(
        "estimate",
        src,
        "--out",
        tmp_path / "c.parquet",
        "--ks",
        "1,2",
        "--strategy",
        "majority",
        "--strategy",
        "pass",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert {a["action"] for a in payload["actions"]} == {"maj@1", "maj@2", "pass@1", "pass@2"}
    assert "curves (" in result.stderr
    missing = run_cli("estimate", tmp_path / "none.parquet")
    assert (
        missing.exit_code == 1
        and "run `ttcalloc sample` (or `ttcalloc import`) first" in missing.stderr
    )
    bad = run_cli("estimate", src, "--ks", "1,x")
    assert bad.exit_code == 2 and "--ks '1,x'" in bad.stderr


@pytest.mark.shared_data
def test_real_gpt4_curves(gpt4: dict[str, Path], tmp_path: Path) -> None:
    result = estimate_curves(
        gpt4["samples"],
        tmp_path / "c.parquet",
        EstimateOptions(ks=(1, 2, 4, 8, 12)),
        gpt4["problems"],
    )
    curves = io.read_artifact(tmp_path / "c.parquet", CURVES).df
    samples = io.read_artifact(gpt4["samples"], SAMPLES).df
    frac = samples.group_by("problem_id").agg(pl.col("correct").mean().alias("frac"))
    maj1 = curves.filter(pl.col("k") == 1).join(frac, on="problem_id")
    assert maj1.height == 1319
    assert (maj1["accuracy"] - maj1["frac"]).abs().max() < 1e-12
    by_k = {a["k"]: a["accuracy"] for a in result.actions}
    assert by_k[1] == pytest.approx(0.942, abs=0.001)
    assert by_k[8] > by_k[4] > by_k[1]


@pytest.mark.parametrize(
    ("min_samples", "holdout", "expected"),
    [
        (8, None, (1, 2, 4)),
        (16, None, (1, 2, 4, 8)),
        (10, None, (1, 2, 4)),
        (3, None, (1,)),
        (1, None, (1,)),
        (8, 0.0, (1, 2, 4, 8)),
        (10, 0.3, (1, 2)),
    ],
)
def test_auto_ks_are_the_powers_of_two_the_halves_allow(
    min_samples: int, holdout: float | None, expected: tuple[int, ...]
) -> None:
    from ttcalloc.core.default_ks import auto_ks

    assert auto_ks(min_samples, holdout) == expected


def test_default_ks_fit_the_samples_so_cross_fitting_is_on(tmp_path: Path) -> None:
    """`sample --n 8` then `estimate` with no --ks: maj@1,2,4, cross-fitted, nothing left out."""
    rows = [r for p in ("a", "b") for r in sample_rows(p, ["1", "2"] * 4, "1")]
    src = write_samples(tmp_path / "s.parquet", rows)
    result = estimate_curves(src, tmp_path / "c.parquet")
    assert [a["k"] for a in result.actions] == [1, 2, 4]
    assert result.cross_fitted and not result.left_out
    meta = io.read_meta(tmp_path / "c.parquet")
    assert meta["params"]["ks"] == [1, 2, 4]


def test_default_ks_are_per_model(tmp_path: Path) -> None:
    """Without --ks, each model's actions go up to half its own fewest samples: a model with
    16 samples a problem gets maj@8 though another has 4; cross-fitting stays on, nothing
    is counted as left out, and the provenance records each model's ks."""
    rows = [
        dict(r, model="cheap")
        for p in ("a", "b")
        for r in sample_rows(p, ["1", "2", "1", "1"] * 4, "1")
    ]
    rows += [
        dict(r, model="dear", sample_idx=i)
        for p in ("a", "b")
        for i, r in enumerate(sample_rows(p, ["1", "1", "2", "1"], "1"))
    ]
    src = write_samples(tmp_path / "s.parquet", rows)
    result = estimate_curves(src, tmp_path / "c.parquet", EstimateOptions(cost="samples"))
    assert sorted((a["model"], a["k"]) for a in result.actions) == [
        ("cheap", 1),
        ("cheap", 2),
        ("cheap", 4),
        ("cheap", 8),
        ("dear", 1),
        ("dear", 2),
    ]
    assert result.cross_fitted and not result.left_out
    meta = io.read_meta(tmp_path / "c.parquet")
    assert meta["params"]["ks_by_model"] == {"cheap": [1, 2, 4, 8], "dear": [1, 2]}
    assert result.to_dict()["ks_by_model"] == {"cheap": [1, 2, 4, 8], "dear": [1, 2]}  # --json
    assert meta["params"]["models"] == ["cheap", "dear"]  # the models estimated (info showed [])
    # given --ks, every model gets them (one with too few samples is left out and counted)
    given = estimate_curves(
        src, tmp_path / "d.parquet", EstimateOptions(ks=(1, 8), holdout=0.0, cost="samples")
    )
    assert sorted((a["model"], a["k"]) for a in given.actions) == [
        ("cheap", 1),
        ("cheap", 8),
        ("dear", 1),
    ]
    assert given.left_out == {"majority@8": 2}


def test_default_ks_say_what_cut_them() -> None:
    """A few problems with fewer samples cut a model's default range: one line says so and how
    many; a model some problems lack gets one line; a range no problem cuts, none."""
    from ttcalloc.core.default_ks import model_ks

    counts = {"cheap": [16] * 30, "dear": [12] * 28 + [6, 6]}
    got = model_ks(counts, 32, (), None)
    assert got.by_model == {"cheap": (1, 2, 4, 8), "dear": (1, 2)}
    assert len(got.notes) == 3, got.notes
    assert "cheap has no samples of 2 of the 32 problems" in got.notes[0]
    assert "dear has no samples of 2 of the 32 problems" in got.notes[1]
    assert got.notes[2].startswith(
        "dear: k stops at 2 because 2 problem(s) have as few as 6 samples of dear (most have 12);"
        " --ks 1,2,4 --holdout 0.5 keeps"
    ), got.notes[2]
    # an even split names a count problems have, and does not call it "most"
    half = model_ks({"m": [4, 4, 4, 16, 16, 16]}, 6, (), None).notes
    assert len(half) == 1 and "as few as 4 samples (the commonest count is " in half[0], half
    # --ks given: every model takes them, and nothing is said of the defaults
    given = model_ks({"m": [12] * 9 + [6]}, 10, (1, 4), None)
    assert given.by_model == {"m": (1, 4)} and given.notes == []
    assert model_ks({"m": [8] * 5}, 5, (), None).notes == []
