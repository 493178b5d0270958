"""``ttcalloc serve`` on a policy trained on samples of several prompt variants, for real (a child
process, the fake OpenAI server as its model): each question's samples are asked with the
policy's variants in turn, as ``run`` draws them (the rotation seeded by ``--seed``, the
request's question id and the model), a program variant's answer is its program's, run; an
imported variant without ``--prompt-variant`` is one line before the server starts."""

from __future__ import annotations

import itertools
import json
import re
import socket
from pathlib import Path
from typing import Any

import pytest
from fake_openai import FakeServer, fake_openai
from helpers import run_cli, small_imitate_policy, with_variants, write_jsonl
from serve_process import serving
from test_serve import ask_all

from ttcalloc.sampler.options import request_seed
from ttcalloc.serve.answering import request_ids
from ttcalloc.text import grading, prompts
from ttcalloc.text.variants import parse_variant, variant_at

MODEL = "openai/fake"
SEED = 5
RECORDED = [parse_variant(s).as_json() for s in ("cot=numeric", "pot=program")]
IMPORTED = [
    {"name": "cot", "kind": "text", "label": "imported", "template": None},
    {"name": "pot", "kind": "program", "label": "imported", "template": None},
]


class SumPrograms(FakeServer):
    """Answers "What is A+B?" with ``#### A+B`` to a text prompt and with the program
    ``ans = A + B`` to a program prompt: the program's last number is B, so only running it
    gives A+B."""

    def answer(self, content: str, index: int) -> str:
        m = re.search(r"(\d+)\s*\+\s*(\d+)", content)
        if "Python program" in content and m:
            return f"```python\nans = {m.group(1)} + {m.group(2)}\n```"
        return super().answer(content, index)


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_imitate_policy(tmp_path_factory.mktemp("serve-variants"), questions=20)


def questions(n: int) -> list[str]:
    return [f"What is {i}+{i + 7}?" for i in range(1, n + 1)]


def check_upstream(
    sent: list[dict[str, Any]],
    asked: list[str],
    templates: dict[str, str],
    models: dict[str, str] | None = None,
) -> dict[tuple[str, str], list[str]]:
    """Each request the model received: its prompt is one of ``asked`` in the variant
    ``variant_at`` gives its first sample (its index from its seed, ``request_seed + index``,
    seeded by the question's request id and the model: ``models`` maps the model the request
    names to the policy's, default ``MODEL``), all its samples of that variant; each
    (question, model)'s variants by sample index (0, 1, ... with none missing)."""
    rendered = {
        prompts.render(t, "numeric", q): (q, name) for q in asked for name, t in templates.items()
    }
    drawn: dict[tuple[str, str], dict[int, str]] = {}
    for payload in sent:
        (message,) = payload["messages"]  # no system message: the question's prompt alone
        assert message["content"] in rendered, message["content"]
        q, name = rendered[message["content"]]
        model = models[payload["model"]] if models is not None else MODEL
        pid = request_ids([q])[0]
        first = payload["seed"] - request_seed(SEED, pid, model)
        n = payload.get("n", 1)
        names = {variant_at(["cot", "pot"], SEED, i, pid, model) for i in range(first, first + n)}
        assert names == {name}, (q, model, first, n, names)  # one variant: the prompt's
        got = drawn.setdefault((q, model), {})
        for i in range(first, first + n):
            assert i not in got
            got[i] = name
    for key, got in drawn.items():
        assert sorted(got) == list(range(len(got))), (key, got)
    return {key: [got[i] for i in range(len(got))] for key, got in drawn.items()}


def check_answers(replies: list[Any], asked: list[str]) -> int:
    """Every reply's answer is the sum; the replies whose winning sample is a program, whose
    answer came from running it (its text's last number is not the sum)."""
    programs = 0
    for q, r in zip(asked, replies, strict=True):
        a, b = map(int, re.findall(r"\d+", q))
        ext = r.model_extra["ttcalloc"]
        assert ext["answer"] == str(a + b), (q, ext)
        content = r.choices[0].message.content
        if content.startswith("```python"):
            assert content == f"```python\nans = {a} + {b}\n```"
            assert grading.extract_answer(content, "numeric") == str(b)  # not the sum
            programs += 1
    return programs


def test_serve_draws_the_policys_recorded_variants_in_turn(policy: Path, tmp_path: Path) -> None:
    pol = with_variants(policy, tmp_path, RECORDED)
    asked = questions(16)
    with fake_openai(SumPrograms) as upstream:
        with serving(
            pol, tmp_path / "state", "--model", MODEL, "--api-base", upstream.base,
            "--budget", "4", "--seed", str(SEED), "--run-programs",
        ) as served:  # fmt: skip
            replies = ask_all(served.url, asked)
            log = served.log()
        sent = list(upstream.requests)
    warned = [line for line in log.splitlines() if "NOT a sandbox" in line]
    assert warned == [
        "warning: prompt variants of kind program: the Python programs the model writes are "
        "executed in child processes on this machine (time and memory limits; NOT a sandbox)"
    ], log
    assert "Traceback" not in log
    assert check_answers(replies, asked) > 0  # some replies' answers are their program's
    templates = {v["name"]: v["template"] for v in RECORDED}
    drawn = check_upstream(sent, asked, templates)
    assert {q for q, _ in drawn} == set(asked)
    for (q, _), names in drawn.items():  # in turn: the two variants alternate from sample 0
        pid = request_ids([q])[0]
        assert names == [variant_at(["cot", "pot"], SEED, i, pid, MODEL) for i in range(len(names))]
        assert all(x != y for x, y in itertools.pairwise(names))
    assert {n for names in drawn.values() for n in names} == {"cot", "pot"}
    assert all(len(names) == 4 for names in drawn.values())  # maj@4 at a budget of 4
    assert sum(len(n) for n in drawn.values()) == sum(
        r.model_extra["ttcalloc"]["samples"] for r in replies
    )


def test_serve_takes_prompt_variant_for_imported_variants(policy: Path, tmp_path: Path) -> None:
    """The imported variants' prompts, from --prompt-variant (the program one from a file)."""
    pol = with_variants(policy, tmp_path, IMPORTED)
    program = tmp_path / "program.txt"
    program.write_text("Write a Python program setting ans.\n\nQ: {question}\n")
    asked = questions(6)
    with fake_openai(SumPrograms) as upstream:
        with serving(
            pol, tmp_path / "state", "--model", MODEL, "--api-base", upstream.base,
            "--budget", "2", "--seed", str(SEED), "--prompt-variant", "cot=numeric",
            "--prompt-variant", f"pot=program:{program}", "--run-programs",
        ) as served:  # fmt: skip
            replies = ask_all(served.url, asked)
        sent = list(upstream.requests)
    check_answers(replies, asked)
    templates = {"cot": RECORDED[0]["template"], "pot": program.read_text()}
    assert {q for q, _ in check_upstream(sent, asked, templates)} == set(asked)


def test_serve_refuses_imported_variants_without_their_prompts(
    policy: Path, tmp_path: Path
) -> None:
    pol = with_variants(policy, tmp_path, IMPORTED)
    base = ["serve", pol, "--model", MODEL, "--budget", "2", "--state-dir", tmp_path / "state"]
    cases = [
        (
            [],
            "error: the policy was trained on samples drawn with prompt variants cot, pot "
            "(imported: their prompts unknown); give --prompt-variant NAME=PROMPT for each",
        ),
        (
            ["--prompt-variant", "cot=numeric"],
            "error: the policy was trained on samples drawn with prompt variants pot (imported: "
            "their prompts unknown); give --prompt-variant NAME=PROMPT for each",
        ),
        (
            ["--prompt-variant", "x=numeric"],
            "error: --prompt-variant x: not one of the policy's prompt variants (cot, pot)",
        ),
    ]
    for extra, line in cases:
        r = run_cli(*base, *extra)
        lines = [x for x in r.stderr.splitlines() if x.strip()]
        assert r.exit_code == 2 and lines == [line], (extra, r.stderr)
    assert not (tmp_path / "state").exists()
    # a policy drawn with one prompt takes no --prompt-variant
    r = run_cli("serve", policy, *base[2:], "--prompt-variant", "a=numeric")
    assert r.exit_code == 2 and "drawn with one prompt" in r.stderr, r.stderr


PROGRAMS_REFUSED = (
    "error: prompt variants of kind program ({}): serving them executes the Python programs "
    "the model writes for questions arriving over the network, on this machine (child processes "
    "with time and memory limits; NOT a sandbox); give --run-programs to allow it"
)


def test_serve_refuses_program_variants_without_run_programs(policy: Path, tmp_path: Path) -> None:
    """Program variants need --run-programs: without it, one line naming them and the flag,
    exit code 2, before the state directory is made or the port bound (the port is held here:
    with the flag, binding it is what fails, after the programs warning)."""
    program = tmp_path / "program.txt"
    program.write_text("Write a Python program setting ans.\n\nQ: {question}\n")
    state = tmp_path / "state"
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen(1)
    port = str(held.getsockname()[1])
    try:
        for variants, given in (
            (RECORDED, []),
            (IMPORTED, ["--prompt-variant", "cot=numeric", "--prompt-variant",
                        f"pot=program:{program}"]),
        ):  # fmt: skip
            pol = with_variants(policy, tmp_path / variants[0]["label"], variants)
            base = ["serve", pol, "--model", MODEL, "--budget", "2", "--state-dir", state,
                    "--port", port, *given]  # fmt: skip
            r = run_cli(*base)
            lines = [x for x in r.stderr.splitlines() if x.strip()]
            assert r.exit_code == 2 and lines == [PROGRAMS_REFUSED.format("pot")], r.stderr
            assert not state.exists()
            r = run_cli(*base, "--run-programs")
            lines = [x for x in r.stderr.splitlines() if x.strip()]
            assert r.exit_code == 2 and len(lines) == 2, r.stderr
            assert "NOT a sandbox" in lines[0] and lines[0].startswith("warning:"), lines
            assert lines[1].startswith(f"error: --port {port}: cannot listen"), lines
            assert not state.exists()
    finally:
        held.close()


def test_request_ids_are_the_question_text_s() -> None:
    """A question's id (and so its samples' variants and seeds) depends on its text alone: the
    same in any window, at any position; a repeat within a window gets its own."""
    a, b = request_ids(["What is 1+8?", "What is 2+9?"])
    assert request_ids(["What is 2+9?"]) == [b] and request_ids(["x", "What is 1+8?"])[1] == a
    assert request_ids(["What is 1+8?"] * 2) == [a, f"{a}-2"]


def kinds_cascade(tmp: Path) -> Path:
    """A cascade whose state reads the prompt kinds: trained (at $0.003 per question) on the
    two-model samples of ``test_run_models`` drawn as with ``--prompt-variant cot=numeric
    --prompt-variant pot=program`` (sample i of a question and model takes ``variant_at``'s
    variant; the samples' params record the variants, and so policy.json does)."""
    import polars as pl
    from test_run_models import _question, _samples

    from ttcalloc.artifacts.io import read_artifact, write_artifact
    from ttcalloc.artifacts.schemas import PROBLEMS, SAMPLES
    from ttcalloc.stages import data
    from ttcalloc.stages.estimate import EstimateOptions, estimate_curves
    from ttcalloc.stages.train_cascade import CascadeTrainOptions, train_cascade

    rows = [_question(i, hard=i % 2 == 1) for i in range(80)]
    problems = tmp / "problems.parquet"
    data.build_problems(
        write_jsonl(tmp / "q.jsonl", rows), problems, "gsm8k", data.DataOptions(test_frac=0.3)
    )
    df = _samples(read_artifact(problems, PROBLEMS).df)
    names = [
        variant_at(["cot", "pot"], 0, i, pid, model)
        for pid, model, i in df.select("problem_id", "model", "sample_idx").iter_rows()
    ]
    df = df.with_columns(
        pl.Series("prompt_variant", names),
        pl.Series("answer_from", ["program" if n == "pot" else "text" for n in names]),
    )
    samples = tmp / "samples.parquet"
    write_artifact(df, samples, SAMPLES, stage="test", params={"prompt_variants": RECORDED})
    curves = tmp / "curves.parquet"
    estimate_curves(samples, curves, EstimateOptions(ks=(1, 2, 4), cost="usd"), problems)
    out = tmp / "cascade"
    train_cascade(
        curves,
        problems,
        out,
        CascadeTrainOptions(budgets=(0.003,), folds=2, n_estimators=5, orders=2),
    )
    return out


def test_serve_answers_with_a_kinds_cascade(tmp_path: Path) -> None:
    """The cascade whose state reads the prompt kinds is served: each model's samples are asked
    with both variants in turn, and the programs' answers are their runs'."""
    from test_run_models import PRICE_FLAGS, _question

    pol = kinds_cascade(tmp_path)
    info = json.loads((pol / "policy.json").read_text())
    assert info["cascade"]["prompt_kinds"] is True and info["prompt_variants"] == RECORDED
    asked = [_question(i, hard=i % 2 == 1)["question"] for i in range(1000, 1016)]
    with fake_openai(SumPrograms) as upstream:
        with serving(
            pol, tmp_path / "state", "--model", "cheap=openai/cheap", "--model",
            "strong=openai/strong", "--api-base", upstream.base, *PRICE_FLAGS,
            "--budget", "0.003", "--seed", str(SEED), "--run-programs",
        ) as served:  # fmt: skip
            replies = ask_all(served.url, asked)
            log = served.log()
        sent = list(upstream.requests)
    assert "NOT a sandbox" in log and "Traceback" not in log, log
    for q, r in zip(asked, replies, strict=True):
        ext = r.model_extra["ttcalloc"]
        a, b = map(int, re.findall(r"What is (\d+)\+(\d+)", q)[0])
        assert ext["policy"] == "cascade" and ext["answer"] == str(a + b), (q, ext)
    templates = {v["name"]: v["template"] for v in RECORDED}
    drawn = check_upstream(sent, asked, templates, {"cheap": "cheap", "strong": "strong"})
    assert {v for names in drawn.values() for v in names} == {"cot", "pot"}
    assert {m for _, m in drawn} == {"cheap", "strong"}, sorted(drawn)
