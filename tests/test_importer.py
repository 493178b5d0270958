"""`ttcalloc import`: existing samples into the samples schema, graded and checked."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from conftest import shared_file
from helpers import GSM8K_ROWS, run_cli, write_jsonl

from ttcalloc.artifacts.io import read_artifact
from ttcalloc.artifacts.schemas import PROBLEMS, SAMPLES
from ttcalloc.common.errors import DataError, InputError
from ttcalloc.stages import data
from ttcalloc.stages.importer import ImportOptions, import_samples


@pytest.fixture
def problems(tmp_path: Path) -> Path:
    out = tmp_path / "problems.parquet"
    data.build_problems(write_jsonl(tmp_path / "g.jsonl", GSM8K_ROWS), out, "gsm8k")
    return out


def test_jsonl_samples_are_graded_and_numbered(tmp_path: Path, problems: Path) -> None:
    rows = [
        {"problem_id": 0, "pred_answer": "7"},
        {"problem_id": 0, "pred_answer": "7.0"},
        {"problem_id": 0, "pred_answer": None},
        {"problem_id": 2, "pred_answer": "1,250"},
        {"problem_id": 3, "pred_answer": "[invalid]"},
    ]
    src = write_jsonl(tmp_path / "s.jsonl", rows)
    result = import_samples(src, problems, tmp_path / "s.parquet", ImportOptions(model="m1"))
    df = read_artifact(tmp_path / "s.parquet", SAMPLES).df
    assert df["sample_idx"].to_list() == [0, 1, 2, 0, 0]
    assert df["pred_answer"].to_list() == ["7", "7", None, "1250", None]
    assert df["correct"].to_list() == [True, True, False, True, False]
    assert set(df["model"]) == {"m1"}
    assert result.no_answer == 2 and result.graded_by == "ttcalloc"
    assert result.agreement is None


def test_file_grades_are_kept_and_compared(tmp_path: Path, problems: Path) -> None:
    rows = [
        {"id": "0", "prediction": 7, "is_correct": True, "model": "a"},
        {"id": "1", "prediction": 11, "is_correct": True, "model": "a"},  # the file is wrong here
        {"id": "1", "prediction": 10, "is_correct": True, "model": "b"},
    ]
    src = write_jsonl(tmp_path / "s.jsonl", rows)
    kept = import_samples(src, problems, tmp_path / "a.parquet")
    assert kept.agreement == pytest.approx(2 / 3) and kept.disagreements == 1
    assert kept.disagreement_examples[0]["pred_answer"] == "11"
    assert read_artifact(tmp_path / "a.parquet", SAMPLES).df["correct"].to_list() == [
        True,
        True,
        True,
    ]
    regraded = import_samples(src, problems, tmp_path / "b.parquet", ImportOptions(regrade=True))
    assert regraded.graded_by == "ttcalloc"
    assert read_artifact(tmp_path / "b.parquet", SAMPLES).df["correct"].to_list() == [
        True,
        False,
        True,
    ]


def test_answers_extracted_from_responses(tmp_path: Path, problems: Path) -> None:
    rows = [
        {"problem_id": 4, "completion": "12*12 = 144\n#### 144"},
        {"problem_id": 4, "completion": "I think it is 140."},
        {"problem_id": 4, "completion": "no idea"},
    ]
    src = write_jsonl(tmp_path / "s.jsonl", rows)
    import_samples(src, problems, tmp_path / "s.parquet")
    df = read_artifact(tmp_path / "s.parquet", SAMPLES).df
    assert df["pred_answer"].to_list() == ["144", "140", None]
    assert df["correct"].to_list() == [True, False, False]
    assert df["response"][0].startswith("12*12")


def test_csv_with_mapped_columns(tmp_path: Path, problems: Path) -> None:
    src = tmp_path / "s.csv"
    src.write_text("qid,guess,run,toks\n0,7,5,12\n0,8,9,30\n")
    fields = {
        "problem_id": "qid",
        "pred_answer": "guess",
        "sample_idx": "run",
        "completion_tokens": "toks",
    }
    import_samples(src, problems, tmp_path / "s.parquet", ImportOptions(fields=fields))
    df = read_artifact(tmp_path / "s.parquet", SAMPLES).df
    assert df["sample_idx"].to_list() == [5, 9]
    assert df["completion_tokens"].to_list() == [12, 30]


def test_repeated_sample_idx_is_renumbered(tmp_path: Path, problems: Path) -> None:
    rows = [{"problem_id": 0, "pred_answer": "7", "sample_idx": 0} for _ in range(3)]
    src = write_jsonl(tmp_path / "s.jsonl", rows)
    result = import_samples(src, problems, tmp_path / "s.parquet")
    assert result.renumbered
    assert read_artifact(tmp_path / "s.parquet", SAMPLES).df["sample_idx"].to_list() == [0, 1, 2]


@pytest.mark.parametrize(
    ("rows", "options", "error", "message"),
    [
        (
            [{"problem_id": 99, "pred_answer": "1"}],
            ImportOptions(),
            DataError,
            "1 problem_id(s) not in",
        ),
        ([{"qid": 0, "pred_answer": "1"}], ImportOptions(), DataError, "no problem id column"),
        ([{"problem_id": 0, "foo": "1"}], ImportOptions(), DataError, "no answer column"),
        (
            [{"problem_id": 0, "pred_answer": "1"}],
            ImportOptions(fields={"pred_answer": "x"}),
            InputError,
            "--answer-field 'x': no such column",
        ),
        (
            [{"problem_id": 0, "pred_answer": "1", "correct": "yes"}],
            ImportOptions(),
            DataError,
            "is not boolean",
        ),
    ],
)
def test_bad_samples_fail_clearly(
    tmp_path: Path,
    problems: Path,
    rows: list[dict[str, object]],
    options: ImportOptions,
    error: type[Exception],
    message: str,
) -> None:
    src = write_jsonl(tmp_path / "s.jsonl", rows)
    with pytest.raises(error) as info:
        import_samples(src, problems, tmp_path / "s.parquet", options)
    assert message in str(info.value)
    assert not (tmp_path / "s.parquet").exists()


def test_cli_import_without_problems_says_which_stage(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "s.jsonl", [{"problem_id": 0, "pred_answer": "1"}])
    result = run_cli(
        "import", src, "--problems", tmp_path / "p.parquet", "--out", tmp_path / "s.parquet"
    )
    assert result.exit_code == 1
    assert "run `ttcalloc data` first" in result.stderr
    assert result.stderr.count("\n") == 1


def test_cli_import_json_output(tmp_path: Path, problems: Path) -> None:
    src = write_jsonl(
        tmp_path / "s.jsonl", [{"problem_id": 0, "pred_answer": "7", "correct": True}]
    )
    result = run_cli(
        "import", src, "--problems", problems, "--out", tmp_path / "s.parquet", "--json"
    )
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["samples"] == 1 and payload["agreement_with_file"] == 1.0


def test_lengths_and_logprobs_are_found_under_common_names(tmp_path: Path, problems: Path) -> None:
    rows = [
        {"problem_id": 0, "pred_answer": "7", "gen_chars": 120, "avg_logprob": -0.25},
        {"problem_id": 0, "pred_answer": "8", "gen_chars": 80.0, "avg_logprob": float("nan")},
        {"problem_id": 1, "pred_answer": "10", "gen_chars": None, "avg_logprob": None},
    ]
    src = write_jsonl(tmp_path / "s.jsonl", rows)
    result = import_samples(src, problems, tmp_path / "s.parquet")
    df = read_artifact(tmp_path / "s.parquet", SAMPLES).df
    assert result.columns["completion_chars"] == "gen_chars"
    assert result.columns["mean_logprob"] == "avg_logprob"
    assert df["completion_chars"].to_list() == [120, 80, None]
    assert df["mean_logprob"].to_list() == [-0.25, None, None]  # NaN counts as absent


def test_a_tokens_column_it_does_not_read_is_named(tmp_path: Path, problems: Path) -> None:
    """A ``tokens`` column (the shared files' layout) may count completion or all tokens, so
    it is not read unless mapped; filled, it is named on stderr in one line."""
    rows = [{"problem_id": 0, "pred_answer": "7", "tokens": 120}]
    src = write_jsonl(tmp_path / "s.jsonl", rows)
    res = run_cli("import", src, "--problems", problems, "--out", tmp_path / "s.parquet")
    assert res.exit_code == 0, res.stderr
    notes = [line for line in res.stderr.splitlines() if "'tokens'" in line]
    assert len(notes) == 1 and "--completion-tokens-field tokens" in notes[0], res.stderr
    mapped = run_cli("import", src, "--problems", problems, "--out", tmp_path / "t.parquet",
                     "--completion-tokens-field", "tokens")  # fmt: skip
    assert mapped.exit_code == 0 and "'tokens'" not in mapped.stderr, mapped.stderr
    df = read_artifact(tmp_path / "t.parquet", SAMPLES).df
    assert df["completion_tokens"].to_list() == [120]
    empty = write_jsonl(
        tmp_path / "e.jsonl", [{"problem_id": 0, "pred_answer": "7", "tokens": None}]
    )
    quiet = run_cli("import", empty, "--problems", problems, "--out", tmp_path / "e.parquet")
    assert quiet.exit_code == 0 and "'tokens'" not in quiet.stderr, quiet.stderr


@pytest.mark.parametrize("name", ["completion_chars", "num_chars", "output_chars"])
def test_other_spellings_of_the_length(tmp_path: Path, problems: Path, name: str) -> None:
    src = write_jsonl(tmp_path / "s.jsonl", [{"problem_id": 0, "pred_answer": "7", name: 33}])
    import_samples(src, problems, tmp_path / "s.parquet")
    assert read_artifact(tmp_path / "s.parquet", SAMPLES).df["completion_chars"].to_list() == [33]


def test_length_and_logprob_flags(tmp_path: Path, problems: Path) -> None:
    rows = [{"problem_id": 0, "pred_answer": "7", "gen_chars": 5, "len": 9, "lp": -1.5}]
    src = write_jsonl(tmp_path / "s.jsonl", rows)
    out = tmp_path / "s.parquet"
    args = ("import", src, "--problems", problems, "--out", out)
    res = run_cli(*args, "--chars-field", "len", "--logprob-field", "lp")
    assert res.exit_code == 0, res.stderr
    df = read_artifact(out, SAMPLES).df
    assert df["completion_chars"].to_list() == [9] and df["mean_logprob"].to_list() == [-1.5]
    assert run_cli(*args, "--chars-field", "").exit_code == 0  # '' maps the field to nothing
    assert read_artifact(out, SAMPLES).df["completion_chars"].to_list() == [None]
    res = run_cli(*args, "--logprob-field", "nope")
    assert res.exit_code != 0 and "--logprob-field 'nope': no such column" in res.stderr
    bad = write_jsonl(tmp_path / "b.jsonl", [{"problem_id": 0, "pred_answer": "7", "lp": "x"}])
    with pytest.raises(DataError, match=r"column 'lp' \(mean log-prob\) is not numeric"):
        import_samples(bad, problems, out, ImportOptions(fields={"mean_logprob": "lp"}))


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("samples", "problems_file", "rows", "n_problems", "min_agreement"),
    [
        ("gsm8k_gpt4_mot_12samples.parquet", "gsm8k_test.jsonl", 15821, 1319, 0.995),
        (
            "gsm8k_train_activeprompt_codex_10samples.parquet",
            "gsm8k_train.jsonl",
            10000,
            1000,
            0.995,
        ),
        # OVM marks 62 "[invalid]" (no answer) samples as correct; ttcalloc counts them wrong.
        ("gsm8k_ovm_examples_300_500samples.parquet", "gsm8k_test.jsonl", 8000, 10, 0.99),
    ],
)
def test_real_sample_files_import_cleanly(
    shared_data: Path,
    tmp_path: Path,
    samples: str,
    problems_file: str,
    rows: int,
    n_problems: int,
    min_agreement: float,
) -> None:
    problems = tmp_path / "p.parquet"
    data.build_problems(shared_file(shared_data, problems_file), problems, "gsm8k")
    result = import_samples(shared_file(shared_data, samples), problems, tmp_path / "s.parquet")
    df = read_artifact(tmp_path / "s.parquet", SAMPLES).df
    assert result.samples == df.height == rows
    assert result.problems == n_problems
    assert result.agreement is not None and result.agreement >= min_agreement
    # every sample keeps its problem: the problem's question is the file's own question
    src = pl.read_parquet(shared_file(shared_data, samples))
    assert df["problem_id"].to_list() == src["problem_id"].cast(pl.String).to_list()
    questions = df.join(
        read_artifact(problems, PROBLEMS).df, on="problem_id", maintain_order="left"
    )
    same = questions["question"].str.strip_chars() == src["question"].str.strip_chars()
    assert same.mean() > 0.99
    chars = src["gen_chars"].to_list() if "gen_chars" in src.columns else [None] * rows
    assert df["completion_chars"].to_list() == chars
    assert df["mean_logprob"].null_count() == rows
