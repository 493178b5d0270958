"""Token log-probs: parsed from litellm responses, recorded by `sample`, used by `train --learner
stop` and named by `ttcalloc info`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from fake_openai import fake_openai
from helpers import run_cli, sum_problems

from ttcalloc.artifacts import io, validation
from ttcalloc.artifacts.schemas import SAMPLES
from ttcalloc.backends import Request, SamplingParams
from ttcalloc.backends.litellm_backend import LiteLLMBackend, import_litellm, mean_logprob
from ttcalloc.common.errors import TtcallocError
from ttcalloc.stages.sample import SampleOptions, sample_problems


def _response(*logprobs: Any) -> Any:
    """A litellm ModelResponse with one choice per ``logprobs`` entry (``...``: key left out)."""
    from litellm.types.utils import ModelResponse

    choices = []
    for i, lp in enumerate(logprobs):
        choice: dict[str, Any] = {
            "index": i,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": f"#### {i}"},
        }
        if lp is not ...:
            choice["logprobs"] = lp
        choices.append(choice)
    usage = {"prompt_tokens": 10, "completion_tokens": 4 * len(choices), "total_tokens": 99}
    return ModelResponse(choices=choices, usage=usage)


def _content(*values: Any) -> dict[str, Any]:
    return {
        "content": [{"token": "t", "logprob": v, "bytes": None, "top_logprobs": []} for v in values]
    }


def _parsed(*logprobs: Any) -> list[float | None]:
    import_litellm()
    backend = LiteLLMBackend("openai/x", SamplingParams(price_in=0.0, price_out=0.0))
    request = Request("p", 0, len(logprobs), [{"role": "user", "content": "q"}], seed=1)
    return [c.mean_logprob for c in backend._parse(_response(*logprobs), request)]


def test_each_choice_gets_the_mean_of_its_own_tokens() -> None:
    got = _parsed(_content(-0.5, -1.5), _content(-2.0), ...)
    assert got == [pytest.approx(-1.0), pytest.approx(-2.0), None]


@pytest.mark.parametrize(
    ("logprobs", "expected"),
    [
        (None, None),  # asked but not given
        ({"content": None}, None),
        ({"content": []}, None),
        ({"content": "not a list"}, None),
        ({"refusal": None}, None),
        (_content(None, -1.0), -1.0),  # a token without a number is left out (litellm: a dict)
        (_content(float("nan"), -3.0), -3.0),
        (_content(-9999.0, -0.25), -0.25),  # OpenAI's "not in the top 20" placeholder
        (_content(True, "x", -2.0), -2.0),
        ({"token_logprobs": [-1.0, None, -2.0]}, -1.5),  # the legacy completions shape
        ("odd", None),
        (42, None),
    ],
)
def test_odd_shapes_give_none_or_the_usable_tokens(logprobs: Any, expected: float | None) -> None:
    assert _parsed(logprobs) == [expected if expected is None else pytest.approx(expected)]


def test_an_object_that_raises_gives_none() -> None:
    class Broken:
        @property
        def content(self) -> list[Any]:
            raise RuntimeError("boom")

    assert mean_logprob(Broken()) is None


@pytest.fixture
def problems(tmp_path: Path) -> Path:
    return sum_problems(tmp_path, 24, test_frac=0.3)


def _fake(server: Any, n: int, **kw: Any) -> SampleOptions:
    kw.setdefault("concurrency", 2)
    return SampleOptions(model="openai/fake", api_base=server.base, n=n, progress=False, **kw)


def test_sample_asks_for_logprobs_unless_told_not_to(tmp_path: Path, problems: Path) -> None:
    with fake_openai(wrong_every=3) as server:
        sample_problems(problems, tmp_path / "on", _fake(server, 2, limit=3))
        asked = [r.get("logprobs") for r in server.requests]
        server.requests.clear()
        sample_problems(problems, tmp_path / "off", _fake(server, 2, limit=3, logprobs=False))
        assert [r.get("logprobs") for r in server.requests] == [None] * 6
    assert asked == [True] * 6
    on = io.read_artifact(tmp_path / "on", SAMPLES).df
    assert (
        set(on["mean_logprob"].to_list()) <= {-0.1, -1.5} and on["mean_logprob"].null_count() == 0
    )
    wrong = on.filter(~pl.col("correct"))
    assert wrong.height and (wrong["mean_logprob"] == -1.5).all()
    assert on["completion_chars"].to_list() == on["response"].str.len_chars().to_list()
    off = io.read_artifact(tmp_path / "off", SAMPLES).df
    assert off["mean_logprob"].null_count() == off.height == 6
    assert io.read_meta(next((tmp_path / "off").glob("part-*")))["params"]["logprobs"] is False


def test_a_provider_rejecting_logprobs_stops_with_a_hint(tmp_path: Path, problems: Path) -> None:
    with fake_openai(logprobs="reject") as server:
        with pytest.raises(TtcallocError, match="rerun with --no-logprobs") as info:
            sample_problems(problems, tmp_path / "s", _fake(server, 2, limit=2))
        assert "logprobs is not supported" in str(info.value)
        result = sample_problems(
            problems, tmp_path / "s", _fake(server, 2, limit=2, logprobs=False)
        )
    assert result.written == 4 and result.errors == 0


def test_a_server_returning_null_logprobs_records_nulls(tmp_path: Path, problems: Path) -> None:
    with fake_openai(logprobs="null") as server:
        result = sample_problems(problems, tmp_path / "s", _fake(server, 2, limit=2))
    df = io.read_artifact(tmp_path / "s", SAMPLES).df
    assert result.errors == 0 and df["mean_logprob"].null_count() == 4


def _drop_new_columns(folder: Path) -> None:
    """Rewrite every part as ttcalloc wrote it before mean_logprob and completion_chars."""
    import pyarrow.parquet as pq

    for part in folder.glob("part-*.parquet"):
        table = pq.read_table(part)
        pq.write_table(table.drop_columns(["mean_logprob", "completion_chars"]), part)


def test_old_and_new_parts_mix_in_one_folder(tmp_path: Path, problems: Path) -> None:
    from ttcalloc.artifacts.info import describe

    out = tmp_path / "s"
    with fake_openai() as server:
        sample_problems(problems, out, _fake(server, 2, limit=4))
        _drop_new_columns(out)
        old = describe(out)
        assert "mean_logprob" not in old["columns"] and old["provenance"]["stage"] == "sample"
        again = sample_problems(problems, out, _fake(server, 3, limit=4))
    assert again.requests == 4 and again.total_samples == 12  # only the missing third samples
    df = io.read_artifact(out, SAMPLES).df.sort("problem_id", "sample_idx")
    assert df.height == 12
    new = pl.col("sample_idx") == 2
    assert df.filter(~new)["mean_logprob"].null_count() == 8
    assert df.filter(new)["mean_logprob"].null_count() == 0
    assert df.filter(~new)["completion_chars"].null_count() == 8
    assert "mean_logprob" in describe(out)["columns"]  # from the newer parts
    assert run_cli("info", out).exit_code == 0


def test_replayed_chars_come_from_completion_chars_else_the_response() -> None:
    from ttcalloc.artifacts.sample_replays import _values

    df = validation.validate(
        pl.DataFrame(
            {
                "problem_id": ["0", "0", "0"],
                "model": ["m"] * 3,
                "sample_idx": [0, 1, 2],
                "pred_answer": ["1", "2", "1"],
                "correct": [True, False, True],
                "response": ["abc", None, "abcdef"],
                "completion_chars": [None, 40, 5],
                "mean_logprob": [-0.5, None, -1.0],
            }
        ),
        SAMPLES,
        "s",
    )
    out, names = _values(df)
    assert names == ["chars"]  # no tokens; a log-prob is missing, so mean_logprob is not used
    assert out["_v_chars"].to_list() == [3.0, 40.0, 5.0]
    _, names = _values(df.with_columns(pl.lit(None, pl.String).alias("response")))
    assert names == []


def _pipeline(tmp: Path, problems: Path, server: Any, signals: str = "auto") -> Path:
    """sample (fake server) -> estimate -> train --learner stop; returns the policy folder."""
    sample_problems(problems, tmp / "s", _fake(server, 8, concurrency=4))
    for args in (
        ("estimate", tmp / "s", "--problems", problems, "--ks", "1,2,4", "--cost", "samples"),
        ("train", tmp / "curves.parquet", "--problems", problems, "--learner", "stop"),
    ):
        extra = ("--out", tmp / "curves.parquet")
        if args[0] == "train":
            extra = ("--budget", "2", "--folds", "3", "--orders", "10", "--signals", signals)
            extra += ("--out", tmp / "policy")
        res = run_cli(*args, *extra)
        assert res.exit_code == 0, res.stderr
    return tmp / "policy"


def test_logprobs_reach_the_stop_policy_and_info_names_them(tmp_path: Path, problems: Path) -> None:
    with fake_openai(wrong_every=3) as server:
        policy = _pipeline(tmp_path, problems, server)
    meta = json.loads((policy / "policy.json").read_text())
    assert meta["adaptive"]["sample_values"] == ["tokens", "chars", "mean_logprob"]
    assert "mean_mean_logprob" in meta["state_features"]
    res = run_cli("info", policy, "--json")
    assert res.exit_code == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["summary"]["sample_values"] == ["tokens", "chars", "mean_logprob"]
    assert info["notes"] == [
        "per-sample signals in the state (running means): tokens (completion tokens), "
        "chars (completion characters), mean_logprob (mean token log-prob)"
    ]
    assert "mean_logprob (mean token log-prob)" in " ".join(res.stderr.split())


def test_info_says_when_a_stop_policy_has_no_logprobs(tmp_path: Path, problems: Path) -> None:
    with fake_openai(logprobs="null") as server:
        policy = _pipeline(tmp_path, problems, server, signals="all")
    info = json.loads(run_cli("info", policy, "--json").stdout)
    assert info["summary"]["sample_values"] == ["tokens", "chars"]
    assert info["notes"][0].endswith("; not in every training sample, so unused: mean_logprob")


def test_signals_that_do_not_gain_out_of_fold_are_left_out(tmp_path: Path, problems: Path) -> None:
    # the fake server's lengths say nothing about correctness; without log-probs nothing is left
    with fake_openai(logprobs="null") as server:
        policy = _pipeline(tmp_path, problems, server)
    meta = json.loads((policy / "policy.json").read_text())
    assert meta["adaptive"]["sample_values"] == []
    assert meta["metrics"]["sample_values_available"] == ["tokens", "chars"]
    assert meta["metrics"]["sample_values_oof_gain"] <= meta["metrics"]["sample_values_oof_se"]
    info = json.loads(run_cli("info", policy, "--json").stdout)
    assert info["notes"][0] == (
        "per-sample signals in the state (running means): none; left out, no out-of-fold gain: "
        "tokens, chars; not in every training sample, so unused: mean_logprob"
    )


def test_describe_values_says_none() -> None:
    from ttcalloc.artifacts.sample_replays import describe_values

    text = describe_values([])
    assert text.startswith("per-sample signals in the state (running means): none;")
    assert text.endswith("unused: tokens, chars, mean_logprob")


def test_mean_of_typed_litellm_logprobs() -> None:
    from litellm.types.utils import ChoiceLogprobs

    typed = ChoiceLogprobs(**_content(-1.0, -2.0, -4.0))
    assert math.isclose(mean_logprob(typed) or 0.0, -7 / 3)
