"""Prompt variants in ``sample`` and ``run``: the seeded rotation, program answers, provenance,
the resume check, and the refusals (against the fake OpenAI server on 127.0.0.1)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from fake_openai import fake_openai
from helpers import run_cli, small_imitate_policy, sum_problems, with_variants, write_jsonl

from ttcalloc.artifacts import io
from ttcalloc.artifacts.schemas import ANSWERS, SAMPLES
from ttcalloc.common.errors import InputError
from ttcalloc.stages.sample import SampleOptions, sample_problems
from ttcalloc.text.variants import PROGRAM_PROMPT, PromptVariant, parse_variant, variant_at

VARIANTS = ("cot=numeric", "pot=program")


def _variants(*specs: str) -> tuple[PromptVariant, ...]:
    return tuple(parse_variant(s) for s in specs)


def _read(folder: Path) -> pl.DataFrame:
    return io.read_artifact(folder, SAMPLES).df


def test_sample_draws_each_index_with_its_variant_and_runs_programs(tmp_path: Path) -> None:
    problems = sum_problems(tmp_path, n=6)
    with fake_openai(failing_programs=5) as server:
        opts = SampleOptions(
            model="openai/fake",
            api_base=server.base,
            n=4,
            progress=False,
            requests_per_batch=4,
            prompt_variants=_variants(*VARIANTS),
        )
        result = sample_problems(problems, tmp_path / "s", opts)
        sent = list(server.requests)
    assert result.errors == 0
    df = _read(tmp_path / "s").sort("problem_id", "sample_idx")
    assert df.height == 24
    for row in df.iter_rows(named=True):
        want = variant_at(["cot", "pot"], 0, row["sample_idx"], row["problem_id"], "openai/fake")
        assert row["prompt_variant"] == want
        assert row["answer_from"] == ("program" if want == "pot" else "text")
    pot = df.filter(pl.col("answer_from") == "program")
    assert pot.height > 0 and (df["answer_from"] == "text").sum() > 0
    assert pot["response"].str.contains("```python").all()
    # a program that raises gives no answer: wrong, not an error
    broken = pot.filter(pl.col("response").str.contains("1 / 0"))
    fine = pot.filter(~pl.col("response").str.contains("1 / 0"))
    assert broken.height > 0 and fine.height > 0
    assert broken["pred_answer"].null_count() == broken.height
    assert (~broken["correct"]).all() and broken["error"].null_count() == broken.height
    assert fine["correct"].all() and df.filter(pl.col("answer_from") == "text")["correct"].all()
    # a request holds one variant: its prompt is that variant's
    for r in sent:
        content = r["messages"][-1]["content"]
        pot_prompt = content.startswith(PROGRAM_PROMPT.split("{")[0])
        assert pot_prompt or "####" in content
    assert len(sent) > 6  # alternating variants cut the 4 samples of a problem into runs
    params = io.read_meta(sorted((tmp_path / "s").glob("part-*.parquet"))[0])["params"]
    assert params["prompt"] == "variants"
    assert [v["name"] for v in params["prompt_variants"]] == ["cot", "pot"]
    assert params["prompt_variants"][1] == {
        "name": "pot", "kind": "program", "label": "program", "template": PROGRAM_PROMPT,
    }  # fmt: skip


def test_changed_variants_or_prompt_are_refused_on_resume(tmp_path: Path) -> None:
    problems = sum_problems(tmp_path, n=3)
    out = tmp_path / "s"
    first = SampleOptions(model="sim/medium", n=2, progress=False, prompt_variants=_variants(
        "a=numeric", "b=exact"))  # fmt: skip
    sample_problems(problems, out, first)
    with pytest.raises(InputError, match="prompt_variants=a=numeric,b=exact, not a=numeric,b=math"):
        sample_problems(problems, out, SampleOptions(
            model="sim/medium", n=4, progress=False, prompt_variants=_variants(
                "a=numeric", "b=math")))  # fmt: skip
    with pytest.raises(InputError, match="prompt="):
        sample_problems(problems, out, SampleOptions(model="sim/medium", n=4, progress=False))
    # the same variants: only what is missing is drawn
    again = sample_problems(problems, out, SampleOptions(
        model="sim/medium", n=3, progress=False, prompt_variants=first.prompt_variants))  # fmt: skip
    assert again.written == 3 and _read(out).height == 9
    # the same variants in another order: the same rotation, so the same folder
    swapped = sample_problems(problems, out, SampleOptions(
        model="sim/medium", n=4, progress=False, prompt_variants=first.prompt_variants[::-1]))  # fmt: skip
    assert swapped.written == 3 and _read(out).height == 12
    # a folder drawn with one prompt refuses variants too
    plain = tmp_path / "plain"
    sample_problems(problems, plain, SampleOptions(model="sim/medium", n=1, progress=False))
    with pytest.raises(InputError, match="prompt="):
        sample_problems(problems, plain, first)


def test_cli_refusals_are_one_line(tmp_path: Path) -> None:
    problems = sum_problems(tmp_path, n=2)
    base = ["sample", problems, "--model", "sim/medium", "--out", tmp_path / "s", "--no-progress"]
    cases = [
        (["--prompt", "numeric", "--prompt-variant", "a=numeric"], "--prompt numeric"),
        (["--prompt-variant", "a=numeric", "--prompt-variant", "a=exact"], "--prompt-variant"),
        (["--prompt-variant", "nope"], "--prompt-variant"),
        (["--prompt-variant", "a=numeric", "--batch"], "--prompt-variant"),
    ]
    for extra, start in cases:
        r = run_cli(*base, *extra)
        lines = [x for x in r.stderr.splitlines() if x.strip()]
        assert r.exit_code == 2 and len(lines) == 1, (extra, r.stderr)
        assert lines[0].startswith(f"error: {start}"), lines
    assert "--batch" in run_cli(*base, "--prompt-variant", "a=numeric", "--batch").stderr
    assert not (tmp_path / "s").exists()


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_imitate_policy(tmp_path_factory.mktemp("pv"), questions=20)


def test_run_draws_the_policys_variants(policy: Path, tmp_path: Path) -> None:
    variants = [v.as_json() for v in _variants(*VARIANTS)]
    pol = with_variants(policy, tmp_path, variants)
    rows = [{"question": f"What is {i}+{i + 3}?", "answer": str(2 * i + 3)} for i in range(8)]
    q = write_jsonl(tmp_path / "q.jsonl", rows)
    out = tmp_path / "a.parquet"
    with fake_openai() as server:
        r = run_cli(
            "run", pol, q, "--model", "openai/fake", "--api-base", server.base, "--budget",
            "2", "--out", out, "--no-progress", "--seed", "3",
        )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert "NOT a sandbox" in r.stderr
    df = _read(tmp_path / "a-samples.parquet")
    assert df.height > 0 and df["correct"].all()
    for row in df.iter_rows(named=True):
        want = variant_at(["cot", "pot"], 3, row["sample_idx"], row["problem_id"], "openai/fake")
        assert row["prompt_variant"] == want
        assert row["answer_from"] == ("program" if want == "pot" else "text")
    assert io.read_artifact(out, ANSWERS).df["correct"].all()


def test_run_refuses_unknown_prompts_and_names(policy: Path, tmp_path: Path) -> None:
    imported = [
        {"name": "cot", "kind": "text", "label": "imported", "template": None},
        {"name": "pot", "kind": "program", "label": "imported", "template": None},
    ]
    pol = with_variants(policy, tmp_path, imported)
    q = write_jsonl(tmp_path / "q.jsonl", [{"question": "What is 1+2?", "answer": "3"}])
    base = ["run", pol, q, "--model", "sim/medium", "--budget", "2", "--no-progress",
            "--out", tmp_path / "a.parquet"]  # fmt: skip
    cases = [
        (
            [],
            "error: the policy was trained on samples drawn with prompt variants cot, pot "
            "(imported: their prompts unknown); give --prompt-variant NAME=PROMPT for each",
        ),
        (
            ["--prompt-variant", "cot=numeric"],
            "error: the policy was trained on samples drawn with prompt variants pot (imported",
        ),
        (
            ["--prompt-variant", "x=numeric"],
            "error: --prompt-variant x: not one of the policy's prompt variants (cot, pot)",
        ),
        (["--prompt-variant", "pot=numeric"], "error: --prompt-variant pot: the policy's variant"),
        (["--prompt", "numeric"], "error: --prompt numeric: the policy was trained"),
    ]
    for extra, start in cases:
        r = run_cli(*base, *extra)
        lines = [x for x in r.stderr.splitlines() if x.strip()]
        assert r.exit_code == 2 and len(lines) == 1, (extra, r.stderr)
        assert lines[0].startswith(start), lines
    r = run_cli(*base, "--prompt-variant", "cot=numeric", "--prompt-variant", "pot=program")
    assert r.exit_code == 0, r.stderr
    df = _read(tmp_path / "a-samples.parquet")
    assert set(df["prompt_variant"]) <= {"cot", "pot"} and df.height > 0
    # a policy drawn with one prompt takes no --prompt-variant
    r = run_cli("run", policy, q, "--model", "sim/medium", "--budget", "2", "--no-progress",
                "--out", tmp_path / "b.parquet", "--prompt-variant", "a=numeric")  # fmt: skip
    assert r.exit_code == 2 and "one prompt" in r.stderr


IMPORTED = [
    {"name": "cot", "kind": "text", "label": "imported", "template": None},
    {"name": "pot", "kind": "program", "label": "imported", "template": None},
]


def _refused(policy: Path, tmp_path: Path, *given: str) -> str:
    """The one stderr line of a run refusing ``--prompt-variant given...`` (nothing written)."""
    q = write_jsonl(tmp_path / "q.jsonl", [{"question": "What is 1+2?", "answer": "3"}])
    r = run_cli("run", policy, q, "--model", "sim/medium", "--budget", "2", "--no-progress",
                "--out", tmp_path / "x.parquet", *(a for v in given for a in ("--prompt-variant", v)))  # fmt: skip
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.exit_code == 2 and len(lines) == 1, (given, r.stderr)
    assert not (tmp_path / "x.parquet").exists() and not (tmp_path / "x-samples.parquet").exists()
    return lines[0]


def test_run_says_an_unknown_variant_name_before_its_bad_prompt(
    policy: Path, tmp_path: Path
) -> None:
    pol = with_variants(policy, tmp_path, IMPORTED)
    assert _refused(pol, tmp_path, "cot3=foo") == (
        "error: --prompt-variant cot3: not one of the policy's prompt variants (cot, pot)"
    )
    assert _refused(policy, tmp_path, "cot3=foo") == (
        "error: --prompt-variant cot3: the policy's samples were drawn with one prompt, not "
        "prompt variants (use --prompt)"
    )
    assert "'foo'" in _refused(pol, tmp_path, "cot=foo")  # a known name: its prompt is said


def test_a_missing_program_template_file_is_said(policy: Path, tmp_path: Path) -> None:
    pol = with_variants(policy, tmp_path, IMPORTED)
    assert _refused(pol, tmp_path, "cot=numeric", "pot=program:/nonexistent/p.txt") == (
        "error: --prompt-variant 'pot=program:/nonexistent/p.txt': program template file "
        "'/nonexistent/p.txt' not found"
    )


def test_on_replay_given_prompts_warn_that_they_are_not_used(policy: Path, tmp_path: Path) -> None:
    """replay serves recorded samples: a given --prompt-variant (or --prompt) warns in one
    line that the samples' own prompts are served, not the ones given."""
    pol = with_variants(policy, tmp_path, IMPORTED)
    problems = sum_problems(tmp_path, n=4)
    variants = ["--prompt-variant", "cot=numeric", "--prompt-variant", "pot=program"]
    for out, extra in (("s", variants), ("s1", [])):
        r = run_cli("sample", problems, "--model", "sim/medium", "--n", "8", "--no-progress",
                    "--out", tmp_path / out, *extra)  # fmt: skip
        assert r.exit_code == 0, r.stderr
    base = ["run", pol, problems, "--budget", "2", "--no-progress"]
    replay = ["--model", f"replay:{tmp_path / 's'}"]
    r = run_cli(*base, *replay, "--out", tmp_path / "b.parquet", *variants[:2])
    assert r.exit_code == 0, r.stderr
    warned = [x for x in r.stderr.splitlines() if "own prompts" in x]
    assert warned == [
        "warning: --prompt-variant cot: replay serves the recorded samples, drawn with their "
        "own prompts: the prompts given are not used"
    ], r.stderr
    r = run_cli(*base, *replay, "--out", tmp_path / "c.parquet")
    assert r.exit_code == 0 and "own prompts" not in r.stderr, r.stderr
    # a policy drawn with one prompt: --prompt on replay warns as well
    r = run_cli("run", policy, problems, "--model", f"replay:{tmp_path / 's1'}", "--budget",
                "2", "--no-progress", "--out", tmp_path / "e.parquet", "--prompt", "numeric")  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert "warning: --prompt numeric: replay serves the recorded samples" in r.stderr


def test_serve_loads_a_variant_policy_with_its_variants(policy: Path, tmp_path: Path) -> None:
    """serve asks with the recorded variants (tests/test_serve_variants.py serves them)."""
    from ttcalloc.serve.served import load_served

    pol = with_variants(policy, tmp_path, [v.as_json() for v in _variants(*VARIANTS)])
    with pytest.raises(InputError, match=r"kind program \(pot\).*give --run-programs"):
        load_served(pol, 2.0, None)  # programs are run only when allowed
    served = load_served(pol, 2.0, None, run_programs=True)
    assert served.variants == _variants(*VARIANTS) and served.template is None
    texts = with_variants(policy, tmp_path / "t", [v.as_json() for v in _variants("a=numeric")])
    assert load_served(texts, 2.0, None).variants == _variants("a=numeric")  # no program: no flag
    assert served.prompt_label == "variants"
    one = load_served(policy, 2.0, None)  # one prompt: served as before
    assert one.kind == "static" and one.variants == () and one.prompt_label == "auto"


def test_a_samples_prompt_kind_reaches_the_cascade() -> None:
    from ttcalloc.stages.run.items import to_got

    row = {"pred_answer": "7", "completion_tokens": 3, "answer_from": "program"}
    assert to_got(row, "numeric", "samples").kind == "program"
    assert to_got({**row, "answer_from": None}, "numeric", "samples").kind == "text"
    assert to_got({"pred_answer": None}, "numeric", "samples").kind == "text"


def test_a_cascade_sees_each_samples_prompt_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_run_models import PRICE_FLAGS, two_model_curves

    from ttcalloc.stages.run import cascade_driver
    from ttcalloc.stages.train_cascade import CascadeTrainOptions, train_cascade

    problems, _, curves = two_model_curves(tmp_path)
    opts = CascadeTrainOptions(budgets=(0.003,), folds=2, n_estimators=5, orders=2)
    train_cascade(curves, problems, tmp_path / "cascade", opts)
    pol = with_variants(
        tmp_path / "cascade", tmp_path / "v", [v.as_json() for v in _variants(*VARIANTS)]
    )
    seen: list[tuple[object, ...]] = []
    real = cascade_driver.options_at

    def spy(policy, question, drawn, qx=None):  # type: ignore[no-untyped-def]
        seen.extend(drawn)
        return real(policy, question, drawn, qx)

    monkeypatch.setattr(cascade_driver, "options_at", spy)
    out = tmp_path / "a.parquet"
    with fake_openai() as server:
        r = run_cli(
            "run", pol, problems, "--split", "test", "--budget", "0.003", "--out", out,
            "--no-progress", "--model", "cheap=openai/cheap", "--model", "strong=openai/strong",
            "--api-base", server.base, *PRICE_FLAGS,
        )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    drawn = _read(tmp_path / "a-samples.parquet")
    assert set(drawn["answer_from"]) == {"text", "program"}
    assert seen and all(len(d) == 4 and d[3] in ("text", "program") for d in seen)
    assert {d[3] for d in seen} == {"text", "program"}


def test_replaying_samples_of_uneven_variants_takes_the_rotation_they_were_drawn_in(
    tmp_path: Path,
) -> None:
    """4 samples of 3 variants: one variant of each question has 2, the others 1.  A replay
    of them takes each question's variants in the rotation they were drawn in (keyed by the
    model the samples record, not by replay:PATH), so it never asks a variant for a sample it
    does not hold, and serves each sample with the variant it was drawn with."""
    problems = sum_problems(tmp_path, n=12)
    variants = [f"--prompt-variant={v}=numeric" for v in ("x", "y", "z")]
    common = ["--n", "4", "--no-progress", *variants]
    r = run_cli("sample", problems, "--model", "sim/medium", "--out", tmp_path / "s", *common)
    assert r.exit_code == 0, r.stderr
    drawn = io.read_artifact(tmp_path / "s", SAMPLES).df
    assert sorted(drawn.group_by("problem_id", "prompt_variant").len()["len"].unique()) == [1, 2]
    r = run_cli("sample", problems, "--model", f"replay:{tmp_path / 's'}", "--out",
                tmp_path / "r", *common)  # fmt: skip
    assert r.exit_code == 0, r.stderr
    served = io.read_artifact(tmp_path / "r", SAMPLES).df
    key = ["problem_id", "sample_idx", "prompt_variant"]
    assert served.select(key).sort(key).equals(drawn.select(key).sort(key))
