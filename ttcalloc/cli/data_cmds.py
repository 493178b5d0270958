"""``ttcalloc data gsm8k|math|jsonl`` (problems.parquet) and ``ttcalloc import`` (samples)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ttcalloc.cli.commands import PIPELINE, Force, JsonFlag, _run_stage, app, fails_cleanly

data_app = typer.Typer(
    help="Build problems.parquet from a dataset (gsm8k, math, jsonl).",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(data_app, name="data", rich_help_panel=PIPELINE)

Limit = Annotated[int | None, typer.Option(help="Keep only the first N problems.", min=1)]
TestFrac = Annotated[
    float, typer.Option(help="Share of problems in the test split (seeded hash of problem_id).")
]
Seed = Annotated[int, typer.Option(help="Seed of the train/test split.")]
IdField = Annotated[
    str | None, typer.Option(help="Field holding the problem id (default: 0-based row index).")
]
JsonlIdField = Annotated[
    str | None,
    typer.Option(
        help="Field holding the problem id (default: the first of problem_id, id, idx, "
        "question_id present, the names `import` tries; '' or none present: 0-based row index)."
    ),
]
Source = Annotated[
    str, typer.Option(help="Dataset file (JSONL, JSON, CSV, Parquet) or http(s) URL (cached).")
]
Out = Annotated[Path, typer.Option("--out", "-o", help="Output problems.parquet.")]


def _data(
    kind: str,
    source: str,
    out: Path,
    limit: int | None,
    test_frac: float,
    seed: int,
    id_field: str | None,
    as_json: bool,
    force: bool,
    fields: Any = None,
) -> None:
    from ttcalloc.common.console import emit_json, log
    from ttcalloc.stages import data

    options = data.DataOptions(limit=limit, test_frac=test_frac, seed=seed, id_field=id_field)
    local = Path(source) if "://" not in source else None
    result = _run_stage(
        f"data {kind}",
        out,
        {"options": options, "source": source, "fields": fields},
        {"source": local},
        force,
        as_json,
        lambda: data.build_problems(source, out, kind, options, fields),
    )
    if result is None:
        return
    graders = ", ".join(f"{k} {v}" for k, v in result.grader_counts.items())
    log(
        f"wrote [bold]{result.out}[/bold]: {result.problems} problems "
        f"(train {result.train}, test {result.test}; grader {graders})"
    )
    unusual = {k: v for k, v in result.found_fields.items() if k == "id" or k != v}
    if unusual:
        found = ", ".join(f"{k} from {v!r}" for k, v in unusual.items())
        log(
            f"guessed from common field names: {found} (choose others with --question-field, "
            "--answer-field, --id-field)"
        )
    if as_json:
        emit_json(result.to_dict())


@data_app.command("gsm8k")
@fails_cleanly
def data_gsm8k(
    source: Source,
    out: Out = Path("problems.parquet"),
    limit: Limit = None,
    test_frac: TestFrac = 0.2,
    seed: Seed = 0,
    id_field: IdField = None,
    as_json: JsonFlag = False,
    force: Force = False,
) -> None:
    """GSM8K JSONL (question, answer with '#### N'): gold = the number after ####."""
    _data("gsm8k", source, out, limit, test_frac, seed, id_field, as_json, force)


@data_app.command("math")
@fails_cleanly
def data_math(
    source: Source,
    out: Out = Path("problems.parquet"),
    limit: Limit = None,
    test_frac: TestFrac = 0.2,
    seed: Seed = 0,
    id_field: IdField = None,
    as_json: JsonFlag = False,
    force: Force = False,
) -> None:
    """MATH JSONL: gold = answer, else the last \\boxed{} of solution; keeps level, subject."""
    _data("math", source, out, limit, test_frac, seed, id_field, as_json, force)


@data_app.command("jsonl")
@fails_cleanly
def data_jsonl(
    source: Source,
    question_field: Annotated[
        str | None,
        typer.Option(
            help="Field with the question (default: the first of question, problem, prompt, "
            "input, query present)."
        ),
    ] = None,
    answer_field: Annotated[
        str | None,
        typer.Option(
            help="Field with the gold final answer (default: the first of answer, gold_answer, "
            "final_answer, gold, target present)."
        ),
    ] = None,
    meta_field: Annotated[
        list[str] | None,
        typer.Option(help="Extra field to keep as a metadata column (repeatable)."),
    ] = None,
    grader: Annotated[
        str,
        typer.Option(
            help="auto (numeric if every answer is a number; math if any is LaTeX or a "
            "formula; else exact: dates, options, yes/no, words), numeric, math, exact."
        ),
    ] = "auto",
    unlabeled: Annotated[
        bool,
        typer.Option(
            help="Questions without gold answers (for `run` and `allocate`; stages that need "
            "answers refuse the table); give --grader."
        ),
    ] = False,
    from_samples: Annotated[
        bool,
        typer.Option(
            help="The source is a samples file (one row per sample, the question and gold "
            "answer on every row, as `import` reads): one problem per id, taken from its rows "
            "(rows of an id that disagree are an error); --limit counts problems."
        ),
    ] = False,
    out: Out = Path("problems.parquet"),
    limit: Limit = None,
    test_frac: TestFrac = 0.2,
    seed: Seed = 0,
    id_field: JsonlIdField = None,
    as_json: JsonFlag = False,
    force: Force = False,
) -> None:
    """Any JSONL/JSON/CSV/Parquet file of questions and gold answers (fields found or named)."""
    from ttcalloc.stages.data import JsonlFields

    fields = JsonlFields(
        question=question_field,
        answer=answer_field,
        grader=grader,
        meta=tuple(meta_field or ()),
        unlabeled=unlabeled,
        from_samples=from_samples,
    )
    _data("jsonl", source, out, limit, test_frac, seed, id_field, as_json, force, fields)


def _field(help_text: str) -> Any:
    return typer.Option(help=help_text + " (default: found among common names; '' for none).")


@app.command("import", rich_help_panel=PIPELINE)
@fails_cleanly
def import_cmd(
    samples: Annotated[Path, typer.Argument(help="Samples file: JSONL, JSON, CSV or Parquet.")],
    problems: Annotated[
        Path, typer.Option(help="problems.parquet written by `ttcalloc data`.")
    ] = Path("problems.parquet"),
    out: Annotated[Path, typer.Option("--out", "-o", help="Output samples.parquet.")] = Path(
        "samples.parquet"
    ),
    id_field: Annotated[str | None, _field("Column with the problem id")] = None,
    answer_field: Annotated[str | None, _field("Column with the predicted answer")] = None,
    sample_idx_field: Annotated[str | None, _field("Column with the sample index")] = None,
    model_field: Annotated[str | None, _field("Column with the model name")] = None,
    correct_field: Annotated[str | None, _field("Column with the file's own grade")] = None,
    response_field: Annotated[str | None, _field("Column with the response text")] = None,
    prompt_tokens_field: Annotated[str | None, _field("Column with prompt tokens")] = None,
    completion_tokens_field: Annotated[str | None, _field("Column with completion tokens")] = None,
    cost_field: Annotated[str | None, _field("Column with the dollar cost")] = None,
    chars_field: Annotated[
        str | None, _field("Column with the completion's length in characters")
    ] = None,
    logprob_field: Annotated[
        str | None, _field("Column with the completion's mean token log-prob")
    ] = None,
    variant_field: Annotated[
        str | None, _field("Column with the name of the prompt variant a sample was drawn with")
    ] = None,
    program_variants: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated prompt variants whose answers came from running a program "
            "(program of thought); '' for none (default: names starting with pot, pal, program "
            "or code)."
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="Model name when the file has no model column (default: file name)."),
    ] = None,
    regrade: Annotated[
        bool,
        typer.Option(
            help="Grade every row with ttcalloc's grader and use its grades, even when the file "
            "has a correct column (slow on LaTeX answers: math-verify parses each distinct one)."
        ),
    ] = False,
    check_rows: Annotated[
        int,
        typer.Option(
            help="When the file has a correct column: how many of its graded rows ttcalloc's "
            "grader checks (a seeded sample; 0: none) for the agreement line.",
            min=0,
        ),
    ] = 1000,  # importer.options.CHECK_ROWS (not imported here: the CLI starts fast)
    check_seed: Annotated[int, typer.Option(help="Seed of the rows --check-rows draws.")] = 0,
    grader: Annotated[
        str | None,
        typer.Option(
            help="numeric, math or exact: grade the samples with it instead of each problem's "
            "grader (default: the problems', from `ttcalloc data`)."
        ),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="jsonl, json, csv or parquet (default: by extension)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Bring samples someone already has into samples.parquet (graded against the gold answers)."""
    from rich.markup import escape

    from ttcalloc.common.console import emit_json, log
    from ttcalloc.stages.importer import ImportOptions, import_samples

    mapping = {
        "problem_id": id_field,
        "pred_answer": answer_field,
        "sample_idx": sample_idx_field,
        "model": model_field,
        "correct": correct_field,
        "response": response_field,
        "prompt_tokens": prompt_tokens_field,
        "completion_tokens": completion_tokens_field,
        "cost_usd": cost_field,
        "completion_chars": chars_field,
        "mean_logprob": logprob_field,
        "prompt_variant": variant_field,
    }
    options = ImportOptions(
        fields={k: v for k, v in mapping.items() if v is not None},
        model=model,
        regrade=regrade,
        format=fmt,
        check_rows=check_rows,
        check_seed=check_seed,
        grader=grader,
        program_variants=None
        if program_variants is None
        else tuple(n.strip() for n in program_variants.split(",") if n.strip()),
    )
    result = import_samples(samples, problems, out, options)
    models = ", ".join(f"{m} ({n})" for m, n in result.models.items())
    log(
        f"wrote [bold]{result.out}[/bold]: {result.samples} samples of {result.problems} problems; "
        f"accuracy {result.accuracy:.3f}, {result.no_answer} without an answer; graded by "
        f"{result.graded_by}; models: {models}"
    )
    lines = (result.columns_line(), result.ignored_line())
    for line in (*lines, result.grading_line(), result.variants_line()):
        if line is not None:
            log(escape(line))
    if as_json:
        emit_json(result.to_dict())
