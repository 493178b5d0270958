"""``import_samples``: load the file and the problems -> build the samples table -> write it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ttcalloc.artifacts import sources
from ttcalloc.artifacts.io import check_output, read_artifact, write_artifact
from ttcalloc.artifacts.schemas import PROBLEMS, SAMPLES, require_labels
from ttcalloc.common.console import warn
from ttcalloc.common.errors import DataError
from ttcalloc.stages.importer.frame import Imported, samples_frame
from ttcalloc.stages.importer.options import ImportOptions, ImportResult
from ttcalloc.text.variants import PromptVariant

if TYPE_CHECKING:
    import polars as pl


def import_samples(
    samples_path: Path, problems_path: Path, out: Path, options: ImportOptions | None = None
) -> ImportResult:
    """Import existing samples into ``samples.parquet``.

    Args:
        samples_path: JSONL, JSON, CSV or Parquet file (or a folder of Parquet parts), one row per
            sample.  Required: a problem id and a predicted answer (or a response text to extract
            it from); optional: sample index, model, correct, response, token counts, cost,
            completion length in characters, mean token log-prob.
        problems_path: the problems artifact (``ttcalloc data``); ids are compared as strings.
        out: where to write the samples artifact.
        options: column mapping, model name for files without a model column, how the file's
            own grades are checked (a seeded sample of rows) or replaced (``regrade``).

    Returns:
        An :class:`ImportResult` (counts, accuracy, agreement with the file's own grades on
        the rows checked).
    """
    options = options or ImportOptions()
    options.check()
    check_output(out, {"samples": samples_path, "problems": problems_path})
    raw, problems, path = load_samples(Path(samples_path), problems_path, options)
    _warn_other_grader(problems, options.grader, problems_path)
    imported = samples_frame(raw, problems, options, path, problems_path)
    written = write_samples(imported, out, options, path, problems_path)
    return _summarize(written, Path(out), imported, options)


def load_samples(
    samples_path: Path, problems_path: Path, options: ImportOptions
) -> tuple[pl.DataFrame, pl.DataFrame, Path]:
    """The samples file as read (not empty), the problems, and the file's resolved path."""
    problems = read_artifact(problems_path, PROBLEMS).df
    require_labels(problems, problems_path, "import")
    path = sources.resolve(samples_path)
    raw = sources.read_frame(path, options.format)
    if raw.height == 0:
        raise DataError(f"{path}: no samples found (empty file)")
    return raw, problems, path


def _warn_other_grader(problems: pl.DataFrame, grader: str | None, problems_path: Path) -> None:
    """One line when ``--grader`` differs from the problems' own (estimate clusters with theirs)."""
    if grader is None:
        return
    other = problems.filter(problems["grader"] != grader)
    if other.height:
        theirs = ", ".join(sorted(set(other["grader"])))
        warn(
            f"--grader {grader}: {problems_path} grades {other.height} problem(s) with {theirs}, "
            "and `estimate --problems` clusters wrong answers with the problems' grader; "
            f"rebuild them with `ttcalloc data jsonl --grader {grader}` to match"
        )


def write_samples(
    imported: Imported, out: Path, options: ImportOptions, source: Path, problems_path: Path
) -> pl.DataFrame:
    """Write the samples artifact with its provenance; returns what was written."""
    params: dict[str, Any] = {
        "columns": imported.columns,
        "model": options.model,
        "regrade": options.regrade,
        "format": options.format,
        "check_rows": options.check_rows,
        "check_seed": options.check_seed,
    }
    if options.grader is not None:
        params["grader"] = options.grader
    if imported.variants:  # as `sample` records its variants; the prompts' text is unknown
        params["prompt_variants"] = [
            PromptVariant(name, kind, None, "imported").as_json()
            for name, kind in imported.variants.items()
        ]
        params["program_variants"] = (
            list(options.program_variants) if options.program_variants is not None else None
        )
    return write_artifact(
        imported.samples,
        out,
        SAMPLES,
        stage="import",
        params=params,
        inputs={"samples": source, "problems": Path(problems_path)},
        extra_meta={"grading": imported.grading.record()},
    )


def _summarize(
    written: pl.DataFrame, out: Path, imported: Imported, options: ImportOptions
) -> ImportResult:
    import polars as pl

    models = written["model"].value_counts(sort=True)
    return ImportResult(
        out=out,
        samples=written.height,
        problems=written["problem_id"].n_unique(),
        models=dict(zip(models["model"].to_list(), models["count"].to_list(), strict=True)),
        no_answer=int(written["pred_answer"].null_count()),
        accuracy=float(written["correct"].cast(pl.Float64).mean() or 0.0),
        columns=imported.columns,
        renumbered=imported.renumbered,
        graded_by=imported.grading.graded_by,
        agreement=imported.grading.agreement,
        disagreements=imported.grading.disagreements,
        disagreement_examples=imported.grading.examples,
        file_graded=imported.grading.file_graded,
        checked=imported.grading.checked,
        agreement_interval=imported.grading.agreement_interval,
        variants=imported.variants,
        kinds_guessed=bool(imported.variants) and options.program_variants is None,
        ignored=imported.ignored,
    )
