"""``ttcalloc serve --model replay:PATH``, for real (a child process): a request's question is
matched by its text to the problem its recorded samples were drawn for (the problems file their
provenance records), and answered with that problem's recorded samples; a question they do not
hold is refused (422, naming it) without failing its window's other requests."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from helpers import small_imitate_policy
from serve_process import serving

from ttcalloc.serve.answering import request_ids
from ttcalloc.serve.replayed import Replayed, ReplayIndex

UNKNOWN = "What is the capital of the moon?"


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The imitate policy of the tests (40 questions, 8 samples each on sim/medium), next to
    its samples folder and problems file."""
    return small_imitate_policy(tmp_path_factory.mktemp("serve-replay"), questions=40)


def post_all(
    url: str, questions: list[str], headers: dict[str, str] | None = None
) -> list[httpx.Response]:
    """Every question sent at once (one window: ``--window-ms`` is long)."""

    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=120) as client:
            calls = [
                client.post(
                    f"{url}/chat/completions",
                    json={"model": "ttcalloc", "messages": [{"role": "user", "content": q}]},
                    headers=headers,
                )
                for q in questions
            ]
            return list(await asyncio.gather(*calls))

    return asyncio.run(go())


def recorded(tmp: Path) -> dict[str, dict[str, Any]]:
    """Each question's recorded samples: its responses and answers (received without error)."""
    problems = pl.read_parquet(tmp / "problems.parquet")
    samples = pl.read_parquet(sorted((tmp / "samples").rglob("*.parquet")))
    samples = samples.filter(pl.col("error").is_null())
    text = dict(zip(problems["problem_id"], problems["question"], strict=True))
    out: dict[str, dict[str, Any]] = {}
    for row in samples.iter_rows(named=True):
        q = out.setdefault(text[row["problem_id"]], {"responses": set(), "answers": []})
        q["responses"].add(row["response"])
        q["answers"].append(row["pred_answer"])
    return out


def test_replayed_questions_answered_unknown_refused_alone(policy: Path) -> None:
    tmp = policy.parent
    held = recorded(tmp)
    known = sorted(held)[:6]
    # a repeat, and one with its whitespace changed (matched as run compares questions)
    asked = [*known, known[0], "  " + known[1].replace(" ", "\n  ", 1), UNKNOWN]
    spec = f"replay:{tmp / 'samples'}"
    with serving(policy, tmp / "state", "--model", spec, "--budget", "1.5",
                 "--window-ms", "1500") as served:  # fmt: skip
        got = post_all(served.url, asked)
        log = served.log()
    *answered, unknown = got
    for question, r in zip(asked[:-1], answered, strict=True):
        assert r.status_code == 200, r.text
        body = r.json()
        own = held[" ".join(question.split())]
        ext = body["ttcalloc"]
        assert body["choices"][0]["message"]["content"] in own["responses"]
        assert ext["answer"] in own["answers"]
        for answer, votes in ext["votes"].items():  # no more votes than recorded samples
            assert own["answers"].count(answer) >= votes
    assert unknown.status_code == 422, unknown.text
    message = unknown.json()["error"]["message"]
    assert UNKNOWN in message and "not among the recorded questions" in message
    assert spec in message
    assert "Traceback" not in log and "failed" not in log


def test_replay_without_its_problems_file_refuses_with_one_line(
    policy: Path, tmp_path: Path
) -> None:
    tmp = policy.parent
    samples = tmp_path / "samples"
    shutil.copytree(tmp / "samples", samples)
    moved = tmp_path / "elsewhere.parquet"
    (tmp / "problems.parquet").rename(moved)
    try:
        question = str(pl.read_parquet(moved)["question"][0])
        with serving(policy, tmp_path / "state", "--model", f"replay:{samples}",
                     "--budget", "1.5") as served:  # fmt: skip
            (r,) = post_all(served.url, [question])
            log = served.log()
    finally:
        moved.rename(tmp / "problems.parquet")
    assert r.status_code == 422, r.text
    assert "are not found" in r.json()["error"]["message"]
    warnings = [line for line in log.splitlines() if "refuses every request" in line]
    assert len(warnings) == 1, log
    assert "are not found" in warnings[0]


def test_window_ids_a_repeat_never_takes_another_recorded_id() -> None:
    held = frozenset({"a", "a-2", "b"})
    questions = {"question a": "a", "question a2": "a-2", "question b": "b"}
    index = ReplayIndex({None: Replayed("replay:x", questions, held, "problems.parquet")})
    asked = ["question a", "question   a", "question a2", "question a", "question b"]
    assert index.ids(asked, request_ids(asked)) == ["a", "a-3", "a-2", "a-4", "b"]
    assert index.recorded(" question\na ") == {None: "a"}
    assert index.missing("question c") is not None


def test_a_question_whose_samples_run_out_fails_alone(policy: Path, tmp_path: Path) -> None:
    """Samples where one question holds 1 recorded sample: at a budget of 4 (maj@4 for every
    request) its request gets what there is, and its window's others their 4 samples."""
    import pyarrow.parquet as pq

    tmp = policy.parent
    thin = tmp_path / "samples"
    shutil.copytree(tmp / "samples", thin)
    problems = pl.read_parquet(tmp / "problems.parquet")
    questions = [str(q) for q in problems["question"][:4]]
    short = str(problems["problem_id"][0])
    for part in thin.glob("*.parquet"):
        table = pq.read_table(part)  # its schema's metadata (the provenance) kept
        keep = pl.from_arrow(table).select(
            (pl.col("problem_id") != short) | (pl.col("sample_idx") == 0)
        )
        pq.write_table(table.filter(keep.to_series().to_arrow()), part)
    with serving(policy, tmp_path / "state", "--model", f"replay:{thin}", "--budget", "1.5",
                 "--window-ms", "1500") as served:  # fmt: skip
        got = post_all(served.url, questions, {"X-Ttcalloc-Budget": "4"})
        log = served.log()
    assert [r.status_code for r in got] == [200] * 4, [r.text for r in got]
    samples = [r.json()["ttcalloc"]["samples"] for r in got]
    assert samples == [1, 4, 4, 4]
    assert [r.json()["ttcalloc"]["complete"] for r in got] == [False, True, True, True]
    assert "Traceback" not in log and "failed" not in log


def test_recorded_samples_without_their_text_reply_with_the_answer(
    policy: Path, tmp_path: Path
) -> None:
    """Imported samples often record no response text: a reply's content is then the answer
    (before: an empty content, and a streaming client received nothing)."""
    import pyarrow.parquet as pq

    tmp = policy.parent
    bare = tmp_path / "samples"
    shutil.copytree(tmp / "samples", bare)
    for part in sorted(bare.rglob("*.parquet")):
        table = pq.read_table(part)
        i = table.schema.get_field_index("response")
        field = table.schema.field(i)
        table = table.set_column(i, field, pa_nulls(table.num_rows, field.type))
        pq.write_table(table, part)  # the schema's metadata (provenance) kept
    held = recorded(tmp)
    asked = [q for q in sorted(held) if None not in held[q]["answers"]][:3]  # each gave one
    with serving(policy, tmp_path / "state", "--model", f"replay:{bare}", "--budget", "1.5",
                 "--window-ms", "1000") as served:  # fmt: skip
        got = post_all(served.url, asked)
    for question, r in zip(asked, got, strict=True):
        assert r.status_code == 200, r.text
        body = r.json()
        answer = body["ttcalloc"]["answer"]
        assert answer is not None and answer in {str(a) for a in held[question]["answers"]}
        assert body["choices"][0]["message"]["content"] == answer


def pa_nulls(n: int, kind: Any) -> Any:
    import pyarrow as pa

    return pa.nulls(n, kind)
