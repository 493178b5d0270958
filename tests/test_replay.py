"""The replay backend (``--model replay:PATH``): recorded samples served again, one per request, in
an order seeded by ``--seed`` and the question; refused in one line when a question is unknown or
has none left; ``run`` on it resumes without serving a sample twice, and compares with uniform."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from helpers import make_questions, run_cli, signal_when, sim_pipeline, train_both, write_jsonl

from ttcalloc.artifacts.io import read_artifact, write_artifact
from ttcalloc.artifacts.schemas import ANSWERS, PROBLEMS, SAMPLES
from ttcalloc.backends.replay import order

ROOT = Path(__file__).resolve().parents[1]
KEEP = ["pred_answer", "response", "completion_tokens", "completion_chars", "mean_logprob"]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """60 simulated questions x 8 samples, re-written as one file with a log-prob per sample
    and no response text for some (as imported samples have), and stop and imitate policies."""
    tmp = tmp_path_factory.mktemp("replay")
    p = sim_pipeline(tmp, 60)
    df = read_artifact(tmp / "samples", SAMPLES).df.sort("problem_id", "sample_idx")
    df = df.with_columns(
        mean_logprob=-(pl.col("sample_idx") + 1) / 10.0,
        response=pl.when(pl.col("sample_idx") % 3 == 0).then(None).otherwise(pl.col("response")),
        model=pl.lit("my-model"),
    )
    write_artifact(df, tmp / "recorded.parquet", SAMPLES, stage="test")
    p["recorded"] = tmp / "recorded.parquet"
    p.update(train_both(p["alloc"], p["problems"], "1.5", tmp))
    return p


def _served(folder: Path) -> pl.DataFrame:
    return read_artifact(folder, SAMPLES).df.sort("problem_id", "sample_idx")


def _check_seeded_order(served: pl.DataFrame, recorded: Path, seed: int) -> None:
    """Sample i of question q is q's recorded sample order(seed, q)[i], fields as recorded."""
    rec = read_artifact(recorded, SAMPLES).df.sort("problem_id", "sample_idx")
    pools = {str(k[0]): g for k, g in rec.group_by("problem_id")}
    for pid, group in served.group_by("problem_id"):
        pool = pools[str(pid[0])]
        perm = order(seed, str(pid[0]), pool.height)
        want = pool[[int(perm[i]) for i in group["sample_idx"].to_list()]]
        assert group.select(KEEP).equals(want.select(KEEP))


def test_sample_on_replay_serves_each_recorded_sample_once_in_a_seeded_order(
    recorded: dict[str, Path], tmp_path: Path
) -> None:
    model = f"replay:{recorded['recorded']}"
    outs = {}
    for name, seed, conc in (("a", 3, 1), ("b", 3, 8), ("c", 4, 8)):
        outs[name] = tmp_path / name
        r = run_cli(
            "sample", recorded["problems"], "--model", model, "--n", "8", "--seed", str(seed),
            "--concurrency", str(conc), "--no-progress", "--out", outs[name],
        )  # fmt: skip
        assert r.exit_code == 0, r.stderr
        assert "REPLAY backend" in r.stderr and "(REPLAYED recorded samples)" in r.stderr
    a, b, c = (_served(outs[k]) for k in "abc")
    cols = ["problem_id", "sample_idx", *KEEP, "correct"]
    assert a.select(cols).equals(b.select(cols))  # same seed, other concurrency: same samples
    assert not a.select(cols).equals(c.select(cols))  # another seed: another order
    _check_seeded_order(a, recorded["recorded"], 3)
    _check_seeded_order(c, recorded["recorded"], 4)
    # every recorded sample served exactly once per question: the same answers, reordered
    rec = read_artifact(recorded["recorded"], SAMPLES).df
    for df in (a, c):
        key = ["problem_id", "pred_answer", "mean_logprob"]
        assert df.select(key).sort(key).equals(rec.select(key).sort(key))
    # sims of the same answers are graded against the problems' gold: as recorded
    assert a["correct"].sum() == rec["correct"].sum()


def test_replay_refuses_in_one_line_an_exhausted_or_unknown_question(
    recorded: dict[str, Path], tmp_path: Path
) -> None:
    model = f"replay:{recorded['recorded']}"
    r = run_cli(
        "sample", recorded["problems"], "--model", model, "--n", "9", "--concurrency", "1",
        "--no-progress", "--out", tmp_path / "s",
    )  # fmt: skip
    assert r.exit_code == 1
    lines = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "no recorded sample left" in lines[0] and "it had 8" in lines[0]
    assert "question '0'" in lines[0]
    # questions the file does not hold
    q = write_jsonl(tmp_path / "new.jsonl", [{"id": "x1", "question": "What is 2+2?"}])
    r = run_cli(
        "run", recorded["stop"], q, "--model", model, "--budget", "1.5", "--grader", "numeric",
        "--out", tmp_path / "a.parquet", "--no-progress",
    )  # fmt: skip
    lines = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert r.exit_code == 1 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "question 'x1' has no samples in" in lines[0]
    # a missing file, a file of several models, and writing into the replayed samples
    r = run_cli("sample", recorded["problems"], "--model", "replay:nowhere.parquet",
                "--out", tmp_path / "m")  # fmt: skip
    assert r.exit_code != 0 and r.stderr.count("error:") == 1 and "nowhere.parquet" in r.stderr
    two = tmp_path / "two.parquet"
    df = read_artifact(recorded["recorded"], SAMPLES).df
    both = pl.concat([df, df.with_columns(model=pl.lit("other"))])
    write_artifact(both, two, SAMPLES, stage="test")
    r = run_cli("sample", recorded["problems"], "--model", f"replay:{two}", "--out", tmp_path / "t")
    assert r.exit_code != 0 and "2 models" in r.stderr and r.stderr.count("error:") == 1
    r = run_cli(
        "run", recorded["stop"], recorded["problems"], "--model", model, "--budget", "1.5",
        "--samples-out", recorded["recorded"], "--out", tmp_path / "b.parquet",
    )  # fmt: skip
    assert r.exit_code == 2 and "replayed samples" in r.stderr


def test_run_on_replay_compares_with_uniform_and_keeps_the_signals(
    recorded: dict[str, Path], tmp_path: Path
) -> None:
    model = f"replay:{recorded['recorded']}"
    for learner in ("stop", "imitate"):
        out = tmp_path / f"{learner}.parquet"
        r = run_cli(
            "run", recorded[learner], recorded["problems"], "--split", "test", "--model", model,
            "--budget", "1.5", "--compare", "uniform", "--seed", "1", "--out", out,
            "--no-progress", "--json",
        )  # fmt: skip
        assert r.exit_code == 0, r.stderr
        result = json.loads(r.stdout)
        assert result["sampling"]["replayed"] is True
        assert "(REPLAYED recorded samples)" in r.stderr
        c = result["comparison"]
        assert c is not None and c["interval"][0] <= c["difference"] <= c["interval"][1]
        answers = read_artifact(out, ANSWERS).df
        assert answers["uniform_correct"].null_count() == 0
        samples = _served(tmp_path / f"{learner}-samples.parquet")
        assert samples["model"].unique().to_list() == [model]
        _check_seeded_order(samples, recorded["recorded"], 1)  # signals as recorded
        assert samples["mean_logprob"].null_count() == 0
    # at any concurrency: the same samples, answers and decisions
    frames = []
    for conc in ("1", "8"):
        out = tmp_path / f"c{conc}.parquet"
        r = run_cli(
            "run", recorded["stop"], recorded["problems"], "--split", "test", "--model", model,
            "--budget", "1.5", "--seed", "2", "--concurrency", conc, "--out", out, "--no-progress",
        )  # fmt: skip
        assert r.exit_code == 0, r.stderr
        cols = ["problem_id", "final_answer", "samples", "action", "decisions", "correct"]
        frames.append(read_artifact(out, ANSWERS).df.select(cols))
    assert frames[0].equals(frames[1])


def _replay_run(policy: Path, q: Path, out: Path, model: str, *extra: str) -> subprocess.Popen[str]:
    cmd = [
        sys.executable, "-m", "ttcalloc", "run", str(policy), str(q), "--model", model,
        "--out", str(out), "--flush-every", "100000", "--no-progress", "--budget", "1.5",
        "--concurrency", "4", *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_killed_run_on_replay_resumes_without_serving_a_sample_twice(
    recorded: dict[str, Path], tmp_path: Path
) -> None:
    from ttcalloc.stages.sample import SampleOptions, sample_problems

    # 400 questions recorded (simulated, 4 each), answered by the adaptive policy on replay
    q = write_jsonl(tmp_path / "q.jsonl", make_questions(400, seed=5))
    problems = tmp_path / "problems.parquet"
    r = run_cli("data", "jsonl", "--source", q, "--grader", "numeric", "--out", problems)
    assert r.exit_code == 0, r.stderr
    sample_problems(
        problems, tmp_path / "rec", SampleOptions(model="sim/medium", n=4, progress=False)
    )
    model = f"replay:{tmp_path / 'rec'}"
    out, samples = tmp_path / "a.parquet", tmp_path / "a-samples.parquet"
    proc = _replay_run(recorded["stop"], problems, out, model)

    def drawn() -> int:
        journals = list(samples.glob(".journal-*.jsonl")) if samples.exists() else []
        return sum(len(p.read_text().splitlines()) for p in journals)

    # checked while the run is stopped: it cannot end between the check and the kill
    signal_when(proc, lambda: drawn() >= 40, signal.SIGKILL, "40 journal lines")
    proc.communicate(timeout=60)
    assert not out.exists()
    again = _replay_run(recorded["stop"], problems, out, model, "--json")
    stdout, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert "recovered" in err
    held = _served(samples)
    assert not held.select("problem_id", "sample_idx").is_duplicated().any()
    _check_seeded_order(held, tmp_path / "rec", 0)  # each recorded sample served at most once
    # the same answers and decisions as a run never interrupted
    ref = _replay_run(recorded["stop"], problems, tmp_path / "ref.parquet", model)
    _, err = ref.communicate(timeout=300)
    assert ref.returncode == 0, err
    cols = ["problem_id", "final_answer", "samples", "cost", "action", "decisions"]
    a = read_artifact(out, ANSWERS).df.select(cols)
    b = read_artifact(tmp_path / "ref.parquet", ANSWERS).df.select(cols)
    assert a.equals(b)
    assert json.loads(stdout)["questions"] == 400


def test_replay_serves_each_prompt_variant_from_its_own_recorded_samples(
    recorded: dict[str, Path], tmp_path: Path
) -> None:
    """Drawing prompt variants from recorded samples: sample i takes variant_at's variant, and
    is that variant's recorded sample at position i // V of its own seeded order (as training's
    replays take the variants in turn); every recorded sample served once."""
    from ttcalloc.backends.replay import variant_key
    from ttcalloc.text.variants import variant_at

    df = read_artifact(recorded["recorded"], SAMPLES).df
    odd = pl.col("sample_idx") % 2 == 1
    marker = tmp_path / "ran.txt"  # a recorded program is never run again: its answer is kept
    program = f"```python\nopen({str(marker)!r}, 'w').write('x')\nans = 'nope'\n```"
    df = df.with_columns(
        prompt_variant=pl.when(odd).then(pl.lit("pot")).otherwise(pl.lit("cot")),
        answer_from=pl.when(odd).then(pl.lit("program")).otherwise(pl.lit("text")),
        response=pl.when(odd).then(pl.lit(program)).otherwise(pl.col("response")),
    )
    rec = tmp_path / "variants.parquet"
    write_artifact(df, rec, SAMPLES, stage="test")
    model = f"replay:{rec}"
    r = run_cli(
        "sample", recorded["problems"], "--model", model, "--n", "8", "--seed", "3",
        "--prompt-variant", "cot=numeric", "--prompt-variant", "pot=program",
        "--no-progress", "--out", tmp_path / "s",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    served = _served(tmp_path / "s")
    pools = {
        (str(k[0]), str(k[1])): g.sort("sample_idx")
        for k, g in df.group_by("problem_id", "prompt_variant")
    }
    for row in served.iter_rows(named=True):
        pid, idx = row["problem_id"], row["sample_idx"]
        want = variant_at(["cot", "pot"], 3, idx, pid, "my-model")  # the samples' model
        assert row["prompt_variant"] == want
        assert row["answer_from"] == ("program" if want == "pot" else "text")
        pool = pools[(pid, want)]
        pos = int(order(3, variant_key(pid, want), pool.height)[idx // 2])
        assert row["mean_logprob"] == pool["mean_logprob"][pos]
        assert row["pred_answer"] == pool["pred_answer"][pos]
    key = ["problem_id", "prompt_variant", "mean_logprob"]
    assert served.select(key).sort(key).equals(df.select(key).sort(key))
    assert not marker.exists()
    # a question without samples of a variant: the count is of questions, not of pools
    from ttcalloc.backends.base import FatalError, SamplingParams
    from ttcalloc.backends.replay import ReplayBackend

    backend = ReplayBackend(model, SamplingParams())
    held = df["problem_id"].n_unique()
    with pytest.raises(FatalError, match=rf"it records {held} questions drawn with prompt variant"):
        backend.choice("nope", 0, "cot")


def _one_error(r: object, code: int) -> str:
    lines = [x for x in r.stderr.splitlines() if x.strip()]  # type: ignore[attr-defined]
    assert r.exit_code == code and len(lines) == 1, r.stderr  # type: ignore[attr-defined]
    assert lines[0].startswith("error: ")
    return lines[0]


def test_replay_serves_a_question_only_its_own_samples(
    recorded: dict[str, Path], tmp_path: Path
) -> None:
    """The samples' recorded problems file says which question each id was: a run (or
    `sample`) asking another question under that id is refused in one line, nothing written;
    the same questions, whitespace aside, are served."""
    from ttcalloc.stages import data

    samples = recorded["tmp"] / "samples"  # drawn by `sample`: records its problems file
    mine = read_artifact(recorded["problems"], PROBLEMS).df.sort("problem_id")
    other = "Each pack of dvds costs 76 dollars. If there is a discount of 25 dollars on each " \
        "pack, how much do you have to pay to buy each pack?"  # fmt: skip
    rows = [{"id": pid, "question": f"  {q}\n".replace(" ", "  "), "answer": "1"}
            for pid, q in zip(mine["problem_id"], mine["question"], strict=True)]  # fmt: skip
    rows[1]["question"] = other
    asked = write_jsonl(tmp_path / "svamp.jsonl", rows)
    out = tmp_path / "a.parquet"
    r = run_cli("run", recorded["stop"], asked, "--model", f"replay:{samples}", "--budget",
                "1.5", "--grader", "numeric", "--out", out, "--no-progress")  # fmt: skip
    pid = mine["problem_id"][1]
    assert _one_error(r, 2) == (
        f"error: replay:{samples}: problem {pid!r} was asked 'Each pack of dvds costs 76 dollars. "
        f"If there is a discount …' here but its recorded samples answer "
        f"{mine['question'][1][:59] + '…'!r}; replay serves a question only its own samples"
    )
    assert not out.exists() and not (tmp_path / "a-samples.parquet").exists()
    problems = tmp_path / "svamp.parquet"
    data.build_problems(asked, problems, "gsm8k", data.DataOptions(test_frac=0.3))
    r = run_cli("sample", problems, "--model", f"replay:{samples}", "--n", "2",
                "--no-progress", "--out", tmp_path / "s")  # fmt: skip
    assert "was asked 'Each pack of dvds" in _one_error(r, 2)
    assert not (tmp_path / "s").exists()
    # the same questions, spaced otherwise: served
    del rows[1]
    same = write_jsonl(tmp_path / "same.jsonl", rows)
    r = run_cli("run", recorded["stop"], same, "--model", f"replay:{samples}", "--budget",
                "1.5", "--grader", "numeric", "--out", out, "--no-progress")  # fmt: skip
    assert r.exit_code == 0, r.stderr


def test_replay_of_a_file_not_imported_says_so(recorded: dict[str, Path], tmp_path: Path) -> None:
    raw = tmp_path / "raw.parquet"
    pl.DataFrame(
        {"problem_id": [0, 1], "model": "m", "sample_idx": 0, "pred_answer": "1", "correct": True}
    ).write_parquet(raw)
    r = run_cli("run", recorded["stop"], recorded["problems"], "--model", f"replay:{raw}",
                "--budget", "1.5", "--out", tmp_path / "a.parquet", "--no-progress")  # fmt: skip
    line = _one_error(r, 1)
    assert "column 'problem_id' has type Int64, expected text" in line
    assert line.endswith("; not a samples artifact (run `ttcalloc import` on it first?)")
    assert not (tmp_path / "a.parquet").exists()


def test_replay_warns_when_its_problems_file_is_gone(
    recorded: dict[str, Path], tmp_path: Path
) -> None:
    import shutil

    gone = tmp_path / "gone.parquet"
    shutil.copy(recorded["problems"], gone)
    df = read_artifact(recorded["recorded"], SAMPLES).df
    samples = tmp_path / "r.parquet"
    write_artifact(df, samples, SAMPLES, stage="test", inputs={"problems": gone})
    gone.unlink()
    r = run_cli("run", recorded["stop"], recorded["problems"], "--model", f"replay:{samples}",
                "--budget", "1.5", "--out", tmp_path / "a.parquet", "--no-progress")  # fmt: skip
    assert r.exit_code == 0, r.stderr
    warned = [x for x in r.stderr.splitlines() if "not checked" in x]
    assert warned == [
        f"warning: replay:{samples}: the problems its samples were drawn for ({gone}) are not "
        "found: whether they are the questions asked is not checked"
    ], r.stderr


def test_replay_does_not_check_against_a_rewritten_problems_file(
    recorded: dict[str, Path], tmp_path: Path
) -> None:
    """The samples' problems file rewritten since (other questions under the same ids): what it
    holds now proves nothing, so the check is not made, and one warning line says so."""
    import shutil

    mine = tmp_path / "mine.parquet"
    shutil.copy(recorded["problems"], mine)
    df = read_artifact(recorded["recorded"], SAMPLES).df
    samples = tmp_path / "r.parquet"
    write_artifact(df, samples, SAMPLES, stage="test", inputs={"problems": mine})
    probs = read_artifact(mine, PROBLEMS)
    rewritten = probs.df.with_columns(pl.lit("What is 2 + 2?").alias("question"))
    write_artifact(rewritten, mine, PROBLEMS, stage="test")
    r = run_cli("run", recorded["stop"], mine, "--model", f"replay:{samples}",
                "--budget", "1.5", "--out", tmp_path / "a.parquet", "--no-progress")  # fmt: skip
    warned = [x for x in r.stderr.splitlines() if "not checked" in x]
    assert warned == [
        f"warning: replay:{samples}: the problems its samples were drawn for ({mine}) have "
        "changed since: whether they are the questions asked is not checked"
    ], r.stderr


def test_replay_warns_that_sampling_flags_given_are_not_used(
    recorded: dict[str, Path], tmp_path: Path
) -> None:
    """--temperature, --max-tokens and --system set away from their defaults warn in one line
    each on a replay (the samples are served as drawn), in `sample` and `run`; not when left
    at their defaults, nor on a model that is sent them."""
    model = f"replay:{recorded['recorded']}"
    flags = ["--temperature", "0.2", "--max-tokens", "64", "--system", "Be terse."]
    want = [
        "warning: --temperature 0.2: replay serves the recorded samples, drawn with their own "
        "settings: the temperature given is not used",
        "warning: --max-tokens 64: replay serves the recorded samples, drawn with their own "
        "settings: the recorded completions are not cut to it",
        "warning: --system: replay serves the recorded samples, drawn with their own settings: "
        "the system prompt given is not used",
    ]

    def warned(stderr: str) -> list[str]:
        return [x for x in stderr.splitlines() if "drawn with their own settings" in x]

    sample = ["sample", recorded["problems"], "--n", "2", "--no-progress"]
    r = run_cli(*sample, "--model", model, "--out", tmp_path / "s", *flags)
    assert r.exit_code == 0, r.stderr
    assert warned(r.stderr) == want, r.stderr
    r = run_cli(*sample, "--model", model, "--out", tmp_path / "s0")
    assert r.exit_code == 0 and warned(r.stderr) == [], r.stderr
    r = run_cli(*sample, "--model", "sim/medium", "--out", tmp_path / "s1", *flags)
    assert r.exit_code == 0 and warned(r.stderr) == [], r.stderr
    run = ["run", recorded["stop"], recorded["problems"], "--budget", "1.5", "--no-progress"]
    r = run_cli(*run, "--model", model, "--out", tmp_path / "a.parquet", *flags[:4])
    assert r.exit_code == 0, r.stderr
    assert warned(r.stderr) == want[:2], r.stderr
    r = run_cli(*run, "--model", model, "--out", tmp_path / "b.parquet")
    assert r.exit_code == 0 and warned(r.stderr) == [], r.stderr


def test_sample_on_replay_warns_that_a_prompt_given_is_not_used(
    recorded: dict[str, Path], tmp_path: Path
) -> None:
    """`sample --prompt` on a replay warns in one line, as `run` does: the recorded samples were
    drawn with their own prompts; not on a model the prompt is sent to."""
    want = (
        "warning: --prompt numeric: replay serves the recorded samples, drawn with their own "
        "prompts: the prompt given is not used"
    )

    def warned(stderr: str) -> list[str]:
        return [x for x in stderr.splitlines() if "drawn with their own prompts" in x]

    sample = ["sample", recorded["problems"], "--n", "2", "--no-progress", "--prompt", "numeric"]
    r = run_cli(*sample, "--model", f"replay:{recorded['recorded']}", "--out", tmp_path / "s")
    assert r.exit_code == 0, r.stderr
    assert warned(r.stderr) == [want], r.stderr
    r = run_cli(*sample, "--model", "sim/medium", "--out", tmp_path / "s1")
    assert r.exit_code == 0 and warned(r.stderr) == [], r.stderr
