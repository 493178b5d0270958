"""Artifact contracts and atomic, provenance-carrying IO."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from ttcalloc.artifacts import io, schemas, validation
from ttcalloc.common.errors import ArtifactError, MissingInputError


def problems_frame(**overrides: object) -> pl.DataFrame:
    data: dict[str, object] = {
        "problem_id": ["0", "1"],
        "question": ["1+1?", "2+2?"],
        "answer": ["2", "4"],
        "split": ["train", "test"],
        "grader": ["numeric", "numeric"],
    }
    data.update(overrides)
    return pl.DataFrame(data)


def test_validate_normalizes_types_and_adds_optional_columns() -> None:
    df = problems_frame(extra=[1, 2])
    out = validation.validate(df, schemas.PROBLEMS, "p")
    assert out.columns[:7] == [c.name for c in schemas.PROBLEMS.columns]
    assert out["level"].dtype == pl.Int64 and out["level"].null_count() == 2
    assert "extra" in out.columns  # problems keep metadata columns


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (problems_frame().drop("question"), "column 'question' is missing"),
        (problems_frame(answer=[2, 4]), "column 'answer' has type Int64, expected text"),
        (problems_frame(split=["train", "dev"]), "column 'split' has value(s) 'dev'"),
        (problems_frame(question=["a", None]), "column 'question' has 1 missing value(s)"),
        (problems_frame(problem_id=["0", "0"]), "2 rows share a key (problem_id)"),
    ],
)
def test_validate_names_file_and_column(frame: pl.DataFrame, message: str) -> None:
    with pytest.raises(ArtifactError) as info:
        validation.validate(frame, schemas.PROBLEMS, "problems.parquet")
    text = str(info.value)
    assert text.startswith("problems.parquet: ")
    assert message in text
    assert "\n" not in text


def test_validate_rejects_non_finite_floats() -> None:
    df = pl.DataFrame(
        {
            "problem_id": ["0"],
            "action": ["maj@1"],
            "model": ["m"],
            "strategy": ["majority"],
            "k": [1],
            "accuracy": [float("nan")],
            "cost": [1.0],
            "half": ["all"],
            "n_samples": [4],
        }
    )
    with pytest.raises(ArtifactError, match="'accuracy' has NaN or infinite"):
        validation.validate(df, schemas.CURVES, "curves.parquet")


def test_write_and_read_round_trip_with_provenance(tmp_path: Path) -> None:
    src = tmp_path / "source.txt"
    src.write_text("hello")
    out = tmp_path / "sub" / "problems.parquet"
    io.write_artifact(
        problems_frame(),
        out,
        schemas.PROBLEMS,
        stage="data",
        params={"seed": 3},
        inputs={"source": src},
    )
    art = io.read_artifact(out, schemas.PROBLEMS)
    assert art.df.height == 2
    assert art.meta["artifact"] == "problems"
    assert art.meta["schema_version"] == schemas.PROBLEMS.version
    assert art.params == {"seed": 3}
    assert art.meta["inputs"]["source"]["fingerprint"] == io.fingerprint(src)
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def test_failed_write_keeps_the_previous_file(tmp_path: Path) -> None:
    out = tmp_path / "problems.parquet"
    io.write_artifact(problems_frame(), out, schemas.PROBLEMS, stage="data")
    before = out.read_bytes()
    with pytest.raises(ArtifactError):
        io.write_artifact(problems_frame().drop("answer"), out, schemas.PROBLEMS, stage="data")
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["problems.parquet"]


def test_atomic_path_removes_temp_file_on_error(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    with pytest.raises(RuntimeError), io.atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_missing_input_names_the_stage_that_writes_it(tmp_path: Path) -> None:
    with pytest.raises(MissingInputError, match=r"run `ttcalloc data` first"):
        io.read_artifact(tmp_path / "nope.parquet", schemas.PROBLEMS)


def test_reading_the_wrong_artifact_kind_fails(tmp_path: Path) -> None:
    out = tmp_path / "problems.parquet"
    io.write_artifact(problems_frame(), out, schemas.PROBLEMS, stage="data")
    with pytest.raises(ArtifactError, match="this is a problems file, expected samples"):
        io.read_artifact(out, schemas.SAMPLES)


def test_non_parquet_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "problems.parquet"
    bad.write_text("not parquet")
    with pytest.raises(ArtifactError, match="not a readable Parquet file"):
        io.read_artifact(bad, schemas.PROBLEMS)


def test_folder_of_parts_reads_as_one_table(tmp_path: Path) -> None:
    folder = tmp_path / "samples"
    for part in range(3):
        df = pl.DataFrame(
            {
                "problem_id": [str(part)],
                "model": ["m"],
                "sample_idx": [0],
                "pred_answer": ["1"],
                "correct": [True],
            }
        )
        io.write_artifact(df, folder / f"part-{part}.parquet", schemas.SAMPLES, stage="sample")
    art = io.read_artifact(folder, schemas.SAMPLES)
    assert art.df["problem_id"].sort().to_list() == ["0", "1", "2"]
    assert io.fingerprint(folder).startswith("sha256:")


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    import json

    import pyarrow.parquet as pq

    out = tmp_path / "problems.parquet"
    io.write_artifact(problems_frame(), out, schemas.PROBLEMS, stage="data")
    table = pq.read_table(out)
    meta = json.loads(table.schema.metadata[io.META_KEY])
    meta["schema_version"] = 99
    pq.write_table(table.replace_schema_metadata({io.META_KEY: json.dumps(meta).encode()}), out)
    with pytest.raises(ArtifactError, match="newer than this ttcalloc"):
        io.read_artifact(out, schemas.PROBLEMS)


def test_json_artifact_requires_its_keys(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    io.write_json(path, {"learner": "imitate", "actions": []})
    with pytest.raises(ArtifactError, match="key 'features' is missing"):
        io.read_json_artifact(path, schemas.POLICY)


def test_schema_docs_are_generated_from_the_schemas() -> None:
    """docs/artifacts.md is the schemas module rendered; `make docs` regenerates it."""
    from ttcalloc.cli import docgen

    docs = Path(__file__).resolve().parents[1] / "docs" / "artifacts.md"
    assert docs.read_text(encoding="utf-8") == docgen.artifacts_markdown(), "run `make docs`"
    feats = docs.parent / "features.md"
    assert feats.read_text(encoding="utf-8") == docgen.features_markdown(), "run `make docs`"
    cli = docs.parent / "cli.md"
    assert cli.read_text(encoding="utf-8") == docgen.cli_markdown(), "run `make docs`"


def test_atomic_writes_get_ordinary_permissions(tmp_path: Path) -> None:
    import os
    import stat

    target = tmp_path / "out.txt"
    io.write_text(target, "x")
    mode = stat.S_IMODE(target.stat().st_mode)
    assert mode == 0o666 & ~io._UMASK
    assert mode != 0o600 or io._UMASK == 0o177
    assert os.access(target, os.R_OK)


def test_duplicate_keys_are_found_among_many_rows_and_collisions_fall_back() -> None:
    """The hash count proves distinct keys; a repeat (or a forced collision) takes the exact path."""
    from unittest import mock

    def frame(ids: list[str]) -> pl.DataFrame:
        n = len(ids)
        return problems_frame(
            problem_id=ids,
            question=["q"] * n,
            answer=["1"] * n,
            split=["train"] * n,
            grader=["numeric"] * n,
        )

    ids = [str(i) for i in range(5000)]
    validation.validate(frame(ids), schemas.PROBLEMS, "p")
    with pytest.raises(ArtifactError, match="2 rows share a key"):
        validation.validate(frame([*ids, "17"]), schemas.PROBLEMS, "p")
    with mock.patch.object(validation, "_may_repeat", lambda df, key, distinct=None: True):
        validation.validate(frame(ids), schemas.PROBLEMS, "p")  # the exact path: no repeat


@pytest.mark.parametrize("layout", ["shuffled", "grouped", "split"])
def test_to_dense_matches_a_loop_on_shuffled_curves_with_missing_actions(layout: str) -> None:
    """Rows and columns found by rank and lookup equal a dictionary fill; ids sorted as text.

    Rows grouped by problem (as estimate writes them; ids not sorted) take the path that ranks
    one id per group; shuffled rows, or a problem in two groups, the path that ranks every row."""
    import numpy as np

    from ttcalloc.artifacts.frames import to_dense

    rng = np.random.default_rng(0)
    rows = []
    for p in ["10", "2", "b", "a", "1"]:
        for k in (1, 2, 4, 8):
            if rng.random() < 0.8 or k == 1:
                rows.append((p, f"maj@{k}", "m", "majority", k, rng.random(), float(k)))
    if layout == "shuffled":
        rows = [rows[i] for i in rng.permutation(len(rows))]
    elif layout == "split":
        rows.append(rows.pop(0))  # problem "10" in two groups: first and last
    curves = pl.DataFrame(
        rows,
        schema=["problem_id", "action", "model", "strategy", "k", "accuracy", "cost"],
        orient="row",
    )
    dense = to_dense(curves)
    assert dense.problem_ids == ["1", "10", "2", "a", "b"]
    assert dense.actions == ["maj@1", "maj@2", "maj@4", "maj@8"]
    expect = np.full((5, 4), np.nan)
    for p, a, *_, acc, _ in rows:
        expect[dense.problem_ids.index(p), dense.actions.index(a)] = acc
    np.testing.assert_array_equal(dense.acc, expect)
    assert np.array_equal(np.isnan(dense.cost), np.isnan(expect))


def test_a_missing_input_names_the_commands_that_write_it(tmp_path: Path) -> None:
    with pytest.raises(MissingInputError) as exc:
        io.read_artifact(tmp_path / "nope.parquet", schemas.SAMPLES)
    assert "(run `ttcalloc sample` (or `ttcalloc import`) first)" in str(exc.value)
    with pytest.raises(MissingInputError, match=r"run `ttcalloc estimate` first"):
        io.read_artifact(tmp_path / "curves.parquet", schemas.CURVES)
