"""``sample --batch`` against hostile state: a journal edited by hand (other types, a newer
version, batch ids the provider does not have) and output files with garbage lines, missing,
duplicated and unknown custom ids, and garbled usage.  Real HTTP to the fake server."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fake_openai import FakeServer, fake_openai
from fake_openai_hostile import FailingBatches, GarbledBatches
from helpers import run_cli, sum_problems
from test_batch import FAST, _kill_while_polling, options, read

from ttcalloc.common.errors import InputError
from ttcalloc.sampler.batch_state import STATE
from ttcalloc.stages.sample import sample_in_batches


@pytest.fixture
def problems(tmp_path: Path) -> Path:
    return sum_problems(tmp_path)


def journal_of_held_batches(server: FakeServer, problems: Path, out: Path) -> dict[str, Any]:
    """The journal a run killed (``kill -9``) while its three batches were held in progress
    left behind."""
    _kill_while_polling(problems, out, server, "SIGKILL")
    data: dict[str, Any] = json.loads((out / STATE).read_text())
    return data


def test_a_journal_edited_by_hand_is_one_line(problems: Path, tmp_path: Path) -> None:
    with fake_openai() as server:
        good = journal_of_held_batches(server, problems, tmp_path / "good")
        edits = {
            "cids a string": lambda d: d["entries"][0].update(cids="sum-0#0-1"),
            "batch id a number": lambda d: d["entries"][0].update(batch_id=7),
            "entry a list": lambda d: d["entries"].__setitem__(0, [1]),
            "newer": lambda d: d.update(version=9),
        }
        for name, edit in edits.items():
            out = tmp_path / name.replace(" ", "-")
            out.mkdir()
            data = json.loads(json.dumps(good))
            edit(data)
            (out / STATE).write_text(json.dumps(data))
            with pytest.raises(InputError, match=f"{STATE}: ") as caught:
                sample_in_batches(problems, out, options(server), FAST)
            assert "\n" not in str(caught.value)
            assert ("newer ttcalloc" if name == "newer" else "unreadable") in str(caught.value)
            assert json.loads((out / STATE).read_text()) == data, name  # left as it was


def test_batch_ids_the_provider_does_not_have_are_one_line(problems: Path, tmp_path: Path) -> None:
    with fake_openai() as server:
        data = journal_of_held_batches(server, problems, tmp_path / "held")
        for e in data["entries"]:
            e["batch_id"] = f"batch-of-another-account-{e['key']}"
        out = tmp_path / "foreign"
        out.mkdir()
        (out / STATE).write_text(json.dumps(data))
        with pytest.raises(InputError, match="is not at the provider") as caught:
            sample_in_batches(problems, out, options(server), FAST)
        assert "remove the file" in str(caught.value) and "\n" not in str(caught.value)


def test_hostile_output_lines_are_skipped_resent_or_recorded_without_garbage(
    problems: Path, tmp_path: Path
) -> None:
    with fake_openai() as server:
        garbled = GarbledBatches(server)
        server.batch = garbled
        result = sample_in_batches(problems, tmp_path / "out", options(server), FAST)
        submitted = Counter(garbled.submitted)
    df = read(tmp_path / "out")
    assert df.height == result.written == 12 * 4
    assert df.select("problem_id", "sample_idx").is_unique().all()
    assert df["error"].null_count() == df.height  # every sample answered in the end
    assert garbled.dropped is not None and garbled.garbled is not None
    assert submitted[garbled.dropped] == 2  # no result: sent once more
    assert submitted[garbled.garbled] == 1  # answered; its unusable usage is unknown
    assert garbled.textless is not None and submitted[garbled.textless] == 2  # malformed
    assert "no-such-problem#0" not in submitted
    problem, span = garbled.garbled.split("#")
    first = int(span.split("-")[0])
    row = df.filter((df["problem_id"] == problem) & (df["sample_idx"] == first))
    assert row["prompt_tokens"].to_list() == [None]
    assert row["completion_tokens"].to_list() == [None]
    assert df["prompt_tokens"].drop_nulls().min() >= 0  # type: ignore[operator]
    assert df["completion_tokens"].drop_nulls().min() >= 0  # type: ignore[operator]


def test_batch_with_several_api_bases_is_one_line(problems: Path, tmp_path: Path) -> None:
    """Before, every --api-base but the first was ignored without a word."""
    with fake_openai() as one, fake_openai() as two:
        opts = options(one, extra_api_bases=(two.base,))
        with pytest.raises(InputError, match="--batch takes one --api-base"):
            sample_in_batches(problems, tmp_path / "out", opts, FAST)
        assert not one.batch.submitted and not two.batch.submitted
    assert not (tmp_path / "out").exists()


def test_batch_with_a_query_in_the_api_base_is_one_line(problems: Path, tmp_path: Path) -> None:
    """Before, litellm sent the upload to ``/v1?api-version=x/files`` (the chat route of the
    server, which broke the connection): a connection error after four retries."""
    with fake_openai() as server:
        base = f"{server.base}?api-version=x&api-key=sk-secret-in-query"
        with pytest.raises(InputError, match=r"^--api-base: --batch cannot send its query"):
            sample_in_batches(problems, tmp_path / "out", options(server, api_base=base), FAST)
        r = run_cli(
            "sample", problems, "--model", "openai/fake", "--api-base", base, "--batch",
            "--out", tmp_path / "cli",
        )  # fmt: skip
        assert not server.batch.files and not server.batch.batches and not server.requests
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and "--api-base" in lines[0], r.stderr
    assert "sk-secret-in-query" not in r.stderr + r.stdout
    assert not (tmp_path / "out").exists() and not (tmp_path / "cli").exists()


def test_batch_with_a_query_in_the_environments_base_is_one_line(
    problems: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --api-base litellm reads the base from $OPENAI_BASE_URL: the same refusal,
    naming the variable."""
    with fake_openai() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", f"{server.base}?api-version=x")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-dummy-key")
        opts = options(server, api_base=None)
        with pytest.raises(InputError, match=r"^\$OPENAI_BASE_URL: --batch cannot send"):
            sample_in_batches(problems, tmp_path / "out", opts, FAST)
        assert not server.batch.files and not server.batch.batches and not server.requests
    assert not (tmp_path / "out").exists()


def test_batches_failed_as_a_whole_forever_end_with_failed_samples_naming_why(
    problems: Path, tmp_path: Path
) -> None:
    with fake_openai() as server:
        server.batch = FailingBatches(server)
        result = sample_in_batches(problems, tmp_path / "out", options(server), FAST)
        created = len(server.batch.batches)
    assert created == 6  # three batches, their requests sent once more in three, no more
    df = read(tmp_path / "out")
    assert result.errors == df.height == 12 * 4
    errors = set(df["error"].to_list())
    assert errors == {"batch failed (invalid_model: no such model): no result"}, errors
    assert not (tmp_path / "out" / STATE).exists()
