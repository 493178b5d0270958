"""Per-model prices: the price table, dollars per sample, and `estimate` in dollars end to end.

The end-to-end tests import a slice of the shared Date Understanding file (three models on the
same questions; skipped when ../shared/data is absent) and check that gpt-4's sample costs about
56 of gpt-3.5-turbo's, so `solve` at a dollar budget no longer sends every question to gpt-4.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import shared_file
from helpers import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from ttcalloc.artifacts import io
from ttcalloc.artifacts.prices import (
    PriceTable,
    load_prices_file,
    parse_price_flags,
    parse_prompt_tokens,
    price_table,
    with_dollars,
)
from ttcalloc.artifacts.schemas import CURVES, SAMPLES
from ttcalloc.common.errors import ArtifactError, InputError
from ttcalloc.core.prices import Price, sample_dollars, tokens_from_chars
from ttcalloc.stages.estimate import EstimateOptions, estimate_curves

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "date_prices.json"

# ------------------------------------------------------------------ the price table


def test_price_flags_parse() -> None:
    table = parse_price_flags(["gpt-4=30,60", " openai/gpt-4o-mini = 0.15,0.6"])
    assert table.get("gpt-4") == Price(30.0, 60.0)
    assert table.get("openai/gpt-4o-mini") == Price(0.15, 0.6)
    assert table.sources["gpt-4"] == "--price"
    assert parse_prompt_tokens(["gpt-4=550", "m=0"]) == {"gpt-4": 550.0, "m": 0.0}
    with_len = table.with_prompt_tokens({"gpt-4": 550.0})
    assert with_len.get("gpt-4") == Price(30.0, 60.0, 550.0)
    assert with_len.to_json()["gpt-4"]["prompt_tokens"] == 550.0


@pytest.mark.parametrize(
    "flag", ["gpt-4", "gpt-4=30", "=30,60", "gpt-4=a,b", "gpt-4=-1,2", "gpt-4=1,2,3", "gpt-4=nan,1"]
)
def test_a_bad_price_flag_is_one_line_naming_it(flag: str) -> None:
    with pytest.raises(InputError, match=r"^--price ") as info:
        parse_price_flags([flag])
    assert repr(flag) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("flag", ["gpt-4", "gpt-4=x", "gpt-4=-5", "=5"])
def test_a_bad_prompt_tokens_flag_is_one_line_naming_it(flag: str) -> None:
    with pytest.raises(InputError, match=r"^--prompt-tokens ") as info:
        parse_prompt_tokens([flag])
    assert repr(flag) in str(info.value) and "\n" not in str(info.value)


def test_prices_file_round_trip_and_flags_win(tmp_path: Path) -> None:
    table = parse_price_flags(["a=1,2", "b=0.5,1.5"]).with_prompt_tokens({"a": 100.0})
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(table.to_json()))
    again = load_prices_file(path)
    assert again.to_json() == table.to_json()
    assert again.get("a") == Price(1.0, 2.0, 100.0)
    mixed = price_table(["a=3,4"], path, ["b=7"])
    assert mixed.get("a") == Price(3.0, 4.0, 100.0) and mixed.sources["a"] == "--price"
    assert mixed.get("b") == Price(0.5, 1.5, 7.0) and mixed.sources["b"] == "--price"


def test_the_date_example_prices_file() -> None:
    table = load_prices_file(EXAMPLE)
    assert table.get("gpt-4") == Price(30.0, 60.0, 550.0)
    assert table.get("gpt-3.5-turbo") == Price(0.5, 1.5, 550.0)
    assert table.get("llama-2-13b") == Price(0.25, 0.25, 550.0)
    assert all(table.sources[m] for m in table.prices)  # a source per model


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not a JSON prices file"),
        ('["gpt-4"]', "expected an object"),
        ('{"m": {"input": 1, "output": 2, "cents": 3}}', "unknown field 'cents'"),
        ('{"m": {"input": -1, "output": 2}}', "m: input"),
        ('{"m": {"input": "1", "output": 2}}', "expected a number"),
    ],
)
def test_a_bad_prices_file_is_one_line_naming_it(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(ArtifactError, match=message) as info:
        load_prices_file(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_litellm_fills_known_models_and_an_unknown_one_is_named() -> None:
    from ttcalloc.backends.prices import complete

    table = complete(parse_price_flags(["llama-2-13b=0.25,0.25"]), ["gpt-4", "gpt-3.5-turbo"])
    assert table.get("gpt-4") == Price(30.0, 60.0)
    assert table.get("gpt-3.5-turbo") == Price(0.5, 1.5)
    assert table.sources["gpt-4"] == "litellm cost map"
    assert table.sources["llama-2-13b"] == "--price"  # a given price is not looked up
    unknown = complete(PriceTable(), ["gpt-4", "llama-2-13b"])
    assert "gpt-4" in unknown and "llama-2-13b" not in unknown
    with pytest.raises(InputError, match=r"no price for model 'llama-2-13b': give --price"):
        unknown.require(["gpt-4", "llama-2-13b"])


# ------------------------------------------------------------------ dollars per sample


def _samples(**columns: list[object]) -> pl.DataFrame:
    n = len(next(iter(columns.values())))
    base: dict[str, list[object]] = {
        "problem_id": ["0"] * n,
        "model": ["m"] * n,
        "sample_idx": list(range(n)),
    }
    return pl.DataFrame(base | columns, strict=False)


def test_with_dollars_keeps_recorded_costs_without_a_price() -> None:
    samples = _samples(cost_usd=[0.1, 0.2])
    done = with_dollars(samples, PriceTable())  # no price needed: every cost recorded
    assert done.samples["cost_usd"].to_list() == [0.1, 0.2] and done.how == {"m": "recorded"}


def test_with_dollars_from_tokens_characters_and_prompt_lengths() -> None:
    table = parse_price_flags(["m=2,4"])
    samples = _samples(
        cost_usd=[0.5, None, None],
        prompt_tokens=[None, 100, 100],
        completion_tokens=[None, 50, None],
        completion_chars=[None, None, 400],
    )
    done = with_dollars(samples, table)
    costs = done.samples.sort("sample_idx")["cost_usd"].to_list()
    assert costs[0] == 0.5  # recorded: kept
    assert costs[1] == pytest.approx((100 * 2 + 50 * 4) / 1e6)  # tokens x price
    assert costs[2] == pytest.approx((100 * 2 + 400 / 4 * 4) / 1e6)  # characters / 4
    assert done.how["m"] == "characters+recorded+tokens"  # one sample each way
    assert "tokens estimated from characters" in done.summary()


def test_with_dollars_prompt_from_flag_else_question_length() -> None:
    samples = _samples(completion_chars=[40, 40])
    questions = pl.DataFrame({"problem_id": ["0"], "question": ["q" * 200]})
    by_question = with_dollars(samples, parse_price_flags(["m=1,0"]), questions)
    assert by_question.samples["cost_usd"].to_list() == pytest.approx([50 / 1e6] * 2)
    given = parse_price_flags(["m=1,0"]).with_prompt_tokens({"m": 550.0})
    by_flag = with_dollars(samples, given, questions)
    assert by_flag.samples["cost_usd"].to_list() == pytest.approx([550 / 1e6] * 2)
    assert by_flag.how["m"] == "characters+prompt_length"
    with pytest.raises(InputError, match=r"record no prompt tokens: give --prompt-tokens m=N"):
        with_dollars(samples, parse_price_flags(["m=1,0"]))  # no questions, no length


def test_with_dollars_charges_the_mean_length_where_none_is_recorded() -> None:
    samples = _samples(prompt_tokens=[0, 0, 0], completion_chars=[400, 800, None])
    done = with_dollars(samples, parse_price_flags(["m=0,1"]))
    assert done.samples.sort("sample_idx")["cost_usd"].to_list() == pytest.approx(
        [100 / 1e6, 200 / 1e6, 150 / 1e6]
    )
    assert "mean_length" in done.how["m"].split("+")
    with pytest.raises(InputError, match=r"model 'm': 2 samples have no completion tokens"):
        with_dollars(_samples(prompt_tokens=[0, 0]), parse_price_flags(["m=0,1"]))


def test_with_dollars_names_a_model_without_a_price() -> None:
    with pytest.raises(InputError, match=r"no price for model 'm'"):
        with_dollars(_samples(completion_tokens=[1], prompt_tokens=[1]), PriceTable())


money = st.floats(0.0, 100.0, allow_nan=False)
tokens = st.lists(st.floats(0.0, 1e5, allow_nan=False), min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(money, money, st.floats(0.0, 10.0), tokens, tokens)
def test_dollars_are_linear_in_prices_and_tokens(
    p_in: float, p_out: float, scale: float, prompt: list[float], completion: list[float]
) -> None:
    n = min(len(prompt), len(completion))
    p, c = np.array(prompt[:n]), np.array(completion[:n])
    base = sample_dollars(Price(p_in, p_out), p, c)
    scaled = sample_dollars(Price(p_in * scale, p_out * scale), p, c)
    np.testing.assert_allclose(scaled, scale * base, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(
        sample_dollars(Price(p_in, p_out), p * scale, c * scale),
        scale * base,
        rtol=1e-9,
        atol=1e-15,
    )
    split = sample_dollars(Price(p_in, 0.0), p, c) + sample_dollars(Price(0.0, p_out), p, c)
    np.testing.assert_allclose(split, base, rtol=1e-9, atol=1e-15)
    halves = sample_dollars(Price(p_in, p_out), p / 2, c / 2) * 2
    np.testing.assert_allclose(halves, base, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(tokens_from_chars(c * 4), c, rtol=1e-12)


# ------------------------------------------------------------------ estimate in dollars


def _write_samples(path: Path, rows: list[dict[str, object]]) -> Path:
    io.write_artifact(pl.DataFrame(rows, strict=False), path, SAMPLES, stage="test")
    return path


def _two_models(tmp_path: Path, **extra: object) -> Path:
    rows = [
        {"problem_id": "p", "model": m, "sample_idx": i, "pred_answer": "1", "correct": True}
        | {"prompt_tokens": 100, "completion_tokens": 50}
        | extra
        for m in ("cheap", "dear")
        for i in range(2)
    ]
    return _write_samples(tmp_path / "s.parquet", rows)


def test_estimate_in_dollars_records_the_table(tmp_path: Path) -> None:
    src = _two_models(tmp_path)
    options = EstimateOptions(ks=(1,), holdout=0.0, prices=("cheap=1,1", "dear=10,20"))
    result = estimate_curves(src, tmp_path / "c.parquet", options)
    art = io.read_artifact(tmp_path / "c.parquet", CURVES)
    cost = dict(art.df.select("action", "cost").iter_rows())
    assert result.cost_unit == "usd" and art.meta["cost_unit"] == "usd"
    assert cost["cheap:maj@1"] == pytest.approx(150 / 1e6)
    assert cost["dear:maj@1"] == pytest.approx((1000 + 1000) / 1e6)
    params = art.meta["params"]
    assert params["prices"]["dear"] == {
        "input": 10.0,
        "output": 20.0,
        "prompt_tokens": None,
        "source": "--price",
    }
    assert params["cost_from"] == {"cheap": "tokens", "dear": "tokens"}
    assert result.cost_note is not None and "recorded tokens x price" in result.cost_note


def test_estimate_keeps_recorded_dollars_and_single_models_stay_unpriced(tmp_path: Path) -> None:
    src = _two_models(tmp_path, cost_usd=0.25)
    result = estimate_curves(src, tmp_path / "c.parquet", EstimateOptions(ks=(1,), holdout=0.0))
    df = io.read_artifact(tmp_path / "c.parquet", CURVES).df
    assert result.cost_unit == "usd" and set(df["cost"]) == {0.25}
    # one model, no prices: tokens as before
    one = estimate_curves(
        src, tmp_path / "d.parquet", EstimateOptions(ks=(1,), holdout=0.0, models=("cheap",))
    )
    assert one.cost_unit == "tokens" and one.cost_note is None


def test_price_flags_with_another_cost_unit_are_refused(tmp_path: Path) -> None:
    src = _two_models(tmp_path)
    options = EstimateOptions(ks=(1,), cost="tokens", prices=("cheap=1,1",))
    with pytest.raises(InputError, match="--cost usd or auto, not --cost tokens"):
        estimate_curves(src, tmp_path / "c.parquet", options)


def test_cost_samples_with_several_models_warns(tmp_path: Path) -> None:
    src = _two_models(tmp_path)
    r = run_cli("estimate", src, "--ks", "1", "--cost", "samples", "--out", tmp_path / "c.parquet")
    assert r.exit_code == 0, r.stderr
    assert "--cost samples with 2 models: a sample of every model costs the same" in r.stderr


# ------------------------------------------------------------------ the Date set, end to end

MODELS = ("gpt-3.5-turbo", "gpt-4", "llama-2-13b")
PROMPT = [a for m in MODELS for a in ("--prompt-tokens", f"{m}=550")]


@pytest.fixture(scope="module")
def date_slice(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The first 20 Date questions: problems (grader guessed) and their samples imported; the
    gpt-4 rows of the samples file also carry a recorded dollar cost in a `dollars` column."""
    from conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (a fresh clone without ../shared)")
    tmp = tmp_path_factory.mktemp("date")
    problems_src = shared_file(SHARED_DATA, "date_problems.jsonl")
    raw = pl.read_parquet(shared_file(SHARED_DATA, "date_3models_mot_samples.parquet"))
    raw = raw.filter(pl.col("problem_id") < 20)
    raw.write_parquet(tmp / "slice.parquet")
    recorded = raw.with_columns(
        pl.when(pl.col("model") == "gpt-4").then(pl.lit(0.5)).otherwise(None).alias("dollars")
    )
    recorded.write_parquet(tmp / "recorded.parquet")
    p = {name: tmp / name for name in ("problems.parquet", "samples.parquet", "recorded_s.parquet")}
    r = run_cli(
        "data", "jsonl", "--source", problems_src, "--limit", "20", "--out", p["problems.parquet"]
    )
    assert r.exit_code == 0, r.stderr
    assert "grader exact 20" in r.stderr  # dates are not divisions
    r = run_cli(
        "import",
        tmp / "slice.parquet",
        "--problems",
        p["problems.parquet"],
        "--out",
        p["samples.parquet"],
        "--regrade",
    )
    assert r.exit_code == 0, r.stderr
    assert "(0 differ)" in r.stderr  # ttcalloc's grades are the file's
    r = run_cli(
        "import",
        tmp / "recorded.parquet",
        "--problems",
        p["problems.parquet"],
        "--out",
        p["recorded_s.parquet"],
        "--cost-field",
        "dollars",
    )
    assert r.exit_code == 0, r.stderr
    return p | {"tmp": tmp}


def _action_costs(curves: Path) -> dict[str, float]:
    df = io.read_artifact(curves, CURVES).df.filter(pl.col("half") == "fit")
    means = df.group_by("action").agg(pl.col("cost").mean())
    return dict(means.iter_rows())


@pytest.mark.shared_data
def test_date_set_in_dollars_and_solve_spreads_the_models(date_slice: dict[str, Path]) -> None:
    tmp, curves = date_slice["tmp"], date_slice["tmp"] / "curves.parquet"
    r = run_cli(
        "estimate", date_slice["samples.parquet"], "--problems", date_slice["problems.parquet"],
        "--price", "llama-2-13b=0.25,0.25", *PROMPT, "--out", curves,
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert "cost in usd" in r.stderr and "tokens estimated from characters" in r.stderr
    cost = _action_costs(curves)
    ratio = cost["gpt-4:maj@1"] / cost["gpt-3.5-turbo:maj@1"]
    assert 50 < ratio < 62  # measured 56 on these 20 questions (and on all 369)
    assert cost["llama-2-13b:maj@1"] < cost["gpt-3.5-turbo:maj@1"]
    meta = io.read_artifact(curves, CURVES).meta
    params = meta["params"]
    assert params["prices"]["gpt-4"]["source"] == "litellm cost map"
    assert params["prices"]["llama-2-13b"]["source"] == "--price"
    assert params["prices"]["gpt-4"]["prompt_tokens"] == 550.0
    assert params["cost_from"]["gpt-4"] == "characters+prompt_length"
    budget = cost["gpt-4:maj@1"] / 4
    alloc = tmp / "alloc.parquet"
    r = run_cli("solve", curves, "--budget", str(budget), "--out", alloc)
    assert r.exit_code == 0, r.stderr
    chosen = pl.read_parquet(alloc)
    models = chosen["action"].str.split(":").list.first().value_counts()
    by_model = dict(models.iter_rows())
    assert by_model.get("gpt-4", 0) < chosen.height / 2  # not everything to gpt-4
    assert by_model.get("gpt-3.5-turbo", 0) > 0


@pytest.mark.shared_data
def test_date_set_prices_file_gives_the_same_costs(date_slice: dict[str, Path]) -> None:
    tmp = date_slice["tmp"]
    a, b = tmp / "flags.parquet", tmp / "file.parquet"
    common = ["--problems", date_slice["problems.parquet"], "--ks", "1"]
    r = run_cli(
        "estimate",
        date_slice["samples.parquet"],
        *common,
        "--price",
        "llama-2-13b=0.25,0.25",
        *PROMPT,
        "--out",
        a,
    )
    assert r.exit_code == 0, r.stderr
    r = run_cli("estimate", date_slice["samples.parquet"], *common, "--prices", EXAMPLE, "--out", b)
    assert r.exit_code == 0, r.stderr
    assert _action_costs(a) == pytest.approx(_action_costs(b), rel=1e-12)


@pytest.mark.shared_data
def test_date_set_recorded_costs_are_kept(date_slice: dict[str, Path]) -> None:
    out = date_slice["tmp"] / "recorded_curves.parquet"
    r = run_cli(
        "estimate", date_slice["recorded_s.parquet"], "--problems", date_slice["problems.parquet"],
        "--ks", "1", "--price", "llama-2-13b=0.25,0.25", "--out", out,
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    cost = _action_costs(out)
    assert cost["gpt-4:maj@1"] == pytest.approx(0.5)  # the file's --cost-field, kept
    params = io.read_artifact(out, CURVES).meta["params"]
    assert params["cost_from"]["gpt-4"] == "recorded"
    assert params["cost_from"]["gpt-3.5-turbo"] == "characters+question_chars"


@pytest.mark.shared_data
def test_date_set_missing_price_is_one_line(date_slice: dict[str, Path]) -> None:
    out = date_slice["tmp"] / "none.parquet"
    r = run_cli(
        "estimate",
        date_slice["samples.parquet"],
        "--problems",
        date_slice["problems.parquet"],
        "--out",
        out,
    )
    assert r.exit_code != 0 and not out.exists()
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert "llama-2-13b" in lines[0] and "--price llama-2-13b=IN,OUT" in lines[0]


@pytest.mark.shared_data
def test_sequential_replays_reuse_the_curves_prices(date_slice: dict[str, Path]) -> None:
    """`train --learner stop` and `evaluate` replay the samples: with curves in dollars, the
    samples are priced again from the curves' recorded table, to the same dollars."""
    from ttcalloc.artifacts.sample_replays import ReplayGroup, load_sample_replays
    from ttcalloc.artifacts.schemas import PROBLEMS

    out = date_slice["tmp"] / "llama.parquet"
    r = run_cli(
        "estimate", date_slice["samples.parquet"], "--problems", date_slice["problems.parquet"],
        "--models", "llama-2-13b", "--price", "llama-2-13b=0.25,0.25", "--ks", "1", "--out", out,
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    art = io.read_artifact(out, CURVES)
    assert art.meta["cost_unit"] == "usd"
    assert "mean_length" in art.meta["params"]["cost_from"]["llama-2-13b"]
    fit = art.df.filter(pl.col("half") == "fit").sort("problem_id")
    ids = fit["problem_id"].to_list()
    problems = io.read_artifact(date_slice["problems.parquet"], PROBLEMS).df
    loaded = load_sample_replays(
        date_slice["samples.parquet"],
        problems,
        date_slice["problems.parquet"],
        art.meta,
        [ReplayGroup(ids, "fit", 0)],
        orders=2,
    )
    assert loaded.replays is not None, loaded.note
    rep = loaded.replays[0]
    total = rep.cost[np.arange(len(ids)), 0, rep.n - 1]  # every sample of the fit half
    np.testing.assert_allclose(total / rep.n, fit["cost"].to_numpy(), rtol=1e-9)
