"""The ``ttcalloc`` command line: thin Typer wrappers over the stage modules.

Each command parses flags, calls one library function, and prints a summary on stderr (or the
result as JSON on stdout with ``--json``).  Stage modules are imported inside the commands so that
``ttcalloc --help`` stays fast.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from ttcalloc import __version__
from ttcalloc.artifacts import freshness
from ttcalloc.common.errors import TtcallocError

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
PIPELINE = "Pipeline stages"

app = typer.Typer(
    name="ttcalloc",
    help=(
        "Budgeted test-time compute allocation for reasoning LLMs.\n\n"
        "Pipeline: data -> sample (or import) -> estimate -> solve -> train -> evaluate, "
        "then allocate; "
        "each stage reads and writes Parquet. Results go to stdout only with --json."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
data_app = typer.Typer(
    help="Build problems.parquet from a dataset (gsm8k, math, jsonl).",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(data_app, name="data", rich_help_panel=PIPELINE)


def fails_cleanly(func: F) -> F:
    """Turn a :class:`TtcallocError` into one ``error:`` line on stderr and a non-zero exit."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TtcallocError as exc:
            sys.stderr.write(f"error: {exc}\n")
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            sys.stderr.write("interrupted\n")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ttcalloc {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Budgeted test-time compute allocation for reasoning LLMs."""


JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
Limit = Annotated[int | None, typer.Option(help="Keep only the first N problems.", min=1)]
TestFrac = Annotated[
    float, typer.Option(help="Share of problems in the test split (seeded hash of problem_id).")
]
Seed = Annotated[int, typer.Option(help="Seed of the train/test split.")]
IdField = Annotated[
    str | None, typer.Option(help="Field holding the problem id (default: 0-based row index).")
]
Source = Annotated[
    str, typer.Option(help="Dataset file (JSONL, JSON, CSV, Parquet) or http(s) URL (cached).")
]
Out = Annotated[Path, typer.Option("--out", "-o", help="Output problems.parquet.")]
Force = Annotated[bool, typer.Option("--force", help="Rerun even when the output is up to date.")]


def _run_stage(
    command: str,
    out: Path,
    options: Any,
    inputs: Mapping[str, Path | None],
    force: bool,
    as_json: bool,
    run: Callable[[], T],
    json_name: str | None = None,
) -> T | None:
    """Run a stage, recording its request in what it writes; None when skipped as up to date.

    Up to date: ``out`` was written by the same command and ttcalloc version, with the same
    options, from inputs with the same content.  Then the stage is skipped (``--force`` reruns).
    """
    from ttcalloc.common.console import emit_json, log

    req = freshness.request(command, options, inputs)
    if force or not freshness.is_fresh(out, req, json_name):
        with freshness.recording(req):
            return run()
    log(f"{out} is up to date (same inputs and options): {command} skipped; --force reruns it")
    if as_json:
        emit_json({"skipped": True, "out": str(out)})
    return None


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
    question_field: Annotated[str, typer.Option(help="Field with the question.")] = "question",
    answer_field: Annotated[str, typer.Option(help="Field with the gold final answer.")] = "answer",
    meta_field: Annotated[
        list[str] | None,
        typer.Option(help="Extra field to keep as a metadata column (repeatable)."),
    ] = None,
    grader: Annotated[
        str,
        typer.Option(
            help="auto (numeric if every answer is a number, else math), numeric, math, exact."
        ),
    ] = "auto",
    out: Out = Path("problems.parquet"),
    limit: Limit = None,
    test_frac: TestFrac = 0.2,
    seed: Seed = 0,
    id_field: IdField = None,
    as_json: JsonFlag = False,
    force: Force = False,
) -> None:
    """Any JSONL/JSON/CSV/Parquet file of questions and gold answers, fields named by flags."""
    from ttcalloc.stages.data import JsonlFields

    fields = JsonlFields(
        question=question_field, answer=answer_field, grader=grader, meta=tuple(meta_field or ())
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
    model: Annotated[
        str | None,
        typer.Option(help="Model name when the file has no model column (default: file name)."),
    ] = None,
    regrade: Annotated[
        bool, typer.Option(help="Use ttcalloc's grades even when the file has a correct column.")
    ] = False,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="jsonl, json, csv or parquet (default: by extension)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Bring samples someone already has into samples.parquet (graded against the gold answers)."""
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
    }
    options = ImportOptions(
        fields={k: v for k, v in mapping.items() if v is not None},
        model=model,
        regrade=regrade,
        format=fmt,
    )
    result = import_samples(samples, problems, out, options)
    models = ", ".join(f"{m} ({n})" for m, n in result.models.items())
    log(
        f"wrote [bold]{result.out}[/bold]: {result.samples} samples of {result.problems} problems; "
        f"accuracy {result.accuracy:.3f}, {result.no_answer} without an answer; graded by "
        f"{result.graded_by}; models: {models}"
    )
    if result.agreement is not None:
        log(
            f"ttcalloc's grader agrees with the file's grades on {100 * result.agreement:.2f}% "
            f"of samples ({result.disagreements} differ)"
        )
    if as_json:
        emit_json(result.to_dict())


@app.command("sample", rich_help_panel=PIPELINE)
@fails_cleanly
def sample_cmd(
    problems: Annotated[Path, typer.Argument(help="problems.parquet written by `ttcalloc data`.")],
    model: Annotated[
        str,
        typer.Option(
            help="litellm model (openai/gpt-4o-mini, hosted_vllm/..., ollama/...), "
            "local/smollm2 (real local model, offline) or sim/weak|medium|strong (simulated)."
        ),
    ],
    n: Annotated[
        int, typer.Option(help="Samples per problem (a rerun adds only what is missing).")
    ] = 16,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output folder of Parquet parts.")
    ] = Path("samples.parquet"),
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.7,
    max_tokens: Annotated[int, typer.Option(help="Maximum completion tokens.")] = 512,
    prompt: Annotated[
        str | None,
        typer.Option(
            help="auto (per grader), numeric, math, exact, or a template file with {question}."
        ),
    ] = None,
    system: Annotated[str | None, typer.Option(help="System message.")] = None,
    seed: Annotated[int, typer.Option(help="Base seed (each sample gets its own).")] = 0,
    concurrency: Annotated[int, typer.Option(help="Requests in flight.")] = 8,
    rpm: Annotated[float | None, typer.Option(help="Requests per minute limit.")] = None,
    tpm: Annotated[float | None, typer.Option(help="Tokens per minute limit (estimated).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per request.")] = 120.0,
    retries: Annotated[
        int, typer.Option(help="Retries of 429/5xx/timeouts (exponential backoff).")
    ] = 4,
    max_cost: Annotated[
        float | None, typer.Option(help="Stop cleanly before spending more dollars than this.")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N problems.", min=1)] = None,
    shard: Annotated[
        str | None,
        typer.Option(help="i/n: this machine's deterministic share of problems (0 <= i < n)."),
    ] = None,
    requests_per_batch: Annotated[
        int, typer.Option(help="Choices per request via the API's n parameter (prompt paid once).")
    ] = 1,
    api_base: Annotated[
        str | None, typer.Option(help="Base URL of an OpenAI-compatible server (vLLM, llama.cpp).")
    ] = None,
    price_in: Annotated[
        float | None, typer.Option(help="Dollars per million prompt tokens (unknown/local models).")
    ] = None,
    price_out: Annotated[
        float | None, typer.Option(help="Dollars per million completion tokens.")
    ] = None,
    flush_every: Annotated[
        int, typer.Option(help="Samples per Parquet part (parts are also written every 5 s).")
    ] = 64,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
    as_json: JsonFlag = False,
) -> None:
    """Sample n responses per problem from an LLM: resumable, concurrent, graded."""
    from ttcalloc.common.console import emit_json, log
    from ttcalloc.stages.sample import SampleOptions, describe, parse_shard, sample_problems

    options = SampleOptions(
        model=model,
        n=n,
        temperature=temperature,
        max_tokens=max_tokens,
        prompt=prompt,
        system=system,
        seed=seed,
        concurrency=concurrency,
        rpm=rpm,
        tpm=tpm,
        timeout=timeout,
        retries=retries,
        max_cost=max_cost,
        limit=limit,
        shard=parse_shard(shard) if shard else None,
        requests_per_batch=requests_per_batch,
        api_base=api_base,
        price_in=price_in,
        price_out=price_out,
        progress=progress,
        flush_every=flush_every,
    )
    result = sample_problems(problems, out, options)
    log(describe(result))
    if result.errors:
        log(
            f"{result.errors} samples failed and were recorded; "
            "rerun the same command to retry them"
        )
    if as_json:
        emit_json(result.to_dict())


def _csv(text: str, flag: str, cast: Callable[[str], T]) -> tuple[T, ...]:
    """Comma-separated values of ``flag`` (e.g. ``--ks 1,2,4``), one error line if malformed."""
    from ttcalloc.common.errors import InputError

    try:
        values = tuple(cast(x) for x in text.split(",") if x.strip())
    except ValueError:
        kind = "integers" if cast is int else "numbers"
        raise InputError(f"{flag} {text!r}: expected comma-separated {kind}, e.g. 1,2,4") from None
    if not values:
        raise InputError(f"{flag}: give at least one value")
    return values


@app.command("estimate", rich_help_panel=PIPELINE)
@fails_cleanly
def estimate_cmd(
    samples: Annotated[Path, typer.Argument(help="samples.parquet (file or folder of parts).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output curves.parquet.")] = Path(
        "curves.parquet"
    ),
    ks: Annotated[str, typer.Option(help="Sample counts k of the actions.")] = "1,2,4,8,16",
    strategy: Annotated[
        list[str] | None,
        typer.Option(help="majority (vote) or pass (any correct); repeat for both."),
    ] = None,
    models: Annotated[
        str | None, typer.Option(help="Comma-separated models to keep (default: all).")
    ] = None,
    cost: Annotated[
        str,
        typer.Option(help="tokens, completion-tokens, usd, samples, or auto (tokens if known)."),
    ] = "auto",
    prompt_once: Annotated[
        bool, typer.Option(help="Charge prompt tokens once per k (APIs with an n parameter).")
    ] = False,
    holdout: Annotated[
        float | None,
        typer.Option(
            help="Share of each problem's samples held out for scoring (0 = in-sample; "
            "default 0.5 when every problem has >= 2 x max(k) samples)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the fit/eval split of samples.")] = 0,
    problems: Annotated[
        Path | None,
        typer.Option(help="problems.parquet: cluster wrong answers with the problem's grader."),
    ] = None,
    as_json: JsonFlag = False,
    force: Force = False,
) -> None:
    """Exact per-problem success and cost curves p_i(a), c_i(a) for every action."""
    from ttcalloc.cli.summaries import print_estimate
    from ttcalloc.common.console import emit_json
    from ttcalloc.stages.estimate import EstimateOptions, estimate_curves

    options = EstimateOptions(
        ks=_csv(ks, "--ks", int),
        strategies=tuple(strategy or ("majority",)),
        models=tuple(m.strip() for m in models.split(",")) if models else (),
        cost=cost,
        prompt_once=prompt_once,
        holdout=holdout,
        seed=seed,
    )
    inputs = {"samples": samples, "problems": problems}
    result = _run_stage(
        "estimate",
        out,
        options,
        inputs,
        force,
        as_json,
        lambda: estimate_curves(samples, out, options, problems),
    )
    if result is None:
        return
    print_estimate(result)
    if as_json:
        emit_json(result.to_dict())


@app.command("solve", rich_help_panel=PIPELINE)
@fails_cleanly
def solve_cmd(
    curves: Annotated[Path, typer.Argument(help="curves.parquet written by `ttcalloc estimate`.")],
    budget: Annotated[
        float | None, typer.Option(help="Average cost budget B per problem (in the curves' unit).")
    ] = None,
    budgets: Annotated[
        str | None, typer.Option(help="Several budgets, comma-separated: one allocation each.")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output allocation.parquet.")] = Path(
        "allocation.parquet"
    ),
    method: Annotated[
        str, typer.Option(help="exact (sorted hull slopes) or bisect (the paper's search).")
    ] = "exact",
    rounding: Annotated[
        str,
        typer.Option(help="mix (tied problems mixed: cost == B in expectation) or floor (<= B)."),
    ] = "mix",
    half: Annotated[
        str | None, typer.Option(help="Curves to optimize: fit, eval or all (default fit if any).")
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(help="Problems: train, test or all (default train with --problems)."),
    ] = None,
    problems: Annotated[
        Path | None, typer.Option(help="problems.parquet, to select a split.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for tie order and mixed rounding.")] = 0,
    as_json: JsonFlag = False,
    force: Force = False,
) -> None:
    """The exact budgeted oracle: best action per problem with mean cost <= B."""
    from ttcalloc.cli.summaries import print_solve
    from ttcalloc.common.console import emit_json
    from ttcalloc.common.errors import InputError
    from ttcalloc.stages.solve import SolveOptions, solve_allocation

    if (budget is None) == (budgets is None):
        raise InputError("give exactly one of --budget B or --budgets B1,B2,...")
    values = (budget,) if budget is not None else _csv(budgets or "", "--budgets", float)
    options = SolveOptions(
        budgets=values, method=method, rounding=rounding, half=half, split=split, seed=seed
    )
    result = _run_stage(
        "solve",
        out,
        options,
        {"curves": curves, "problems": problems},
        force,
        as_json,
        lambda: solve_allocation(curves, out, options, problems),
    )
    if result is None:
        return
    print_solve(result)
    if as_json:
        emit_json(result.to_dict())


@app.command("train", rich_help_panel=PIPELINE)
@fails_cleanly
def train_cmd(
    allocation: Annotated[Path, typer.Argument(help="allocation.parquet from `ttcalloc solve`.")],
    problems: Annotated[
        Path, typer.Option(help="problems.parquet (questions, metadata, split).")
    ] = Path("problems.parquet"),
    out: Annotated[Path, typer.Option("--out", "-o", help="Output policy folder.")] = Path(
        "policy"
    ),
    curves: Annotated[
        Path | None, typer.Option(help="curves.parquet (default: the one the allocation used).")
    ] = None,
    budget: Annotated[
        float | None, typer.Option(help="Which budget of the allocation (needed if several).")
    ] = None,
    learner: Annotated[
        str, typer.Option(help="imitate (classify the oracle action) or plugin (predict p(a)).")
    ] = "imitate",
    weight: Annotated[
        str, typer.Option(help="none, or gap: weight problems by their gap.")
    ] = "none",
    features: Annotated[
        str, typer.Option(help="Feature groups, comma-separated: text, numbers, symbols, meta.")
    ] = "text,numbers,symbols,meta",
    folds: Annotated[int, typer.Option(help="Folds for out-of-fold calibration.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of folds and XGBoost.")] = 0,
    n_estimators: Annotated[int, typer.Option(help="Boosting rounds.")] = 200,
    max_depth: Annotated[int, typer.Option(help="Tree depth.")] = 4,
    as_json: JsonFlag = False,
    force: Force = False,
) -> None:
    """Learn the oracle from cheap features; calibrate to the budget out of fold."""
    from ttcalloc.cli.summaries import print_train
    from ttcalloc.common.console import emit_json
    from ttcalloc.stages.train import TrainOptions, train_policy

    options = TrainOptions(
        budget=budget,
        learner=learner,
        weight=weight,
        features=tuple(f.strip() for f in features.split(",") if f.strip()),
        folds=folds,
        seed=seed,
        n_estimators=n_estimators,
        max_depth=max_depth,
    )
    inputs = {"allocation": allocation, "problems": problems, "curves": curves}
    result = _run_stage(
        "train",
        out,
        options,
        inputs,
        force,
        as_json,
        lambda: train_policy(allocation, problems, out, options, curves),
        "policy.json",
    )
    if result is None:
        return
    print_train(result)
    if as_json:
        emit_json(result.to_dict())


@app.command("evaluate", rich_help_panel=PIPELINE)
@fails_cleanly
def evaluate_cmd(
    policies: Annotated[
        list[str] | None,
        typer.Argument(
            help="Policy folders from `ttcalloc train`; NAME=FOLDER names one, and folders "
            "sharing a NAME are one policy trained at several budgets.",
            show_default=False,
        ),
    ] = None,
    policy: Annotated[
        list[str] | None,
        typer.Option("--policy", help="Another policy folder (same forms; repeatable)."),
    ] = None,
    curves: Annotated[
        Path | None, typer.Option(help="curves.parquet (default: the first policy's).")
    ] = None,
    problems: Annotated[
        Path | None, typer.Option(help="problems.parquet with the split (default: the policy's).")
    ] = None,
    samples: Annotated[
        Path | None,
        typer.Option(
            help="samples.parquet for the early-stopping baselines (default: the curves')."
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output report folder.")] = Path(
        "report"
    ),
    budgets: Annotated[
        str | None,
        typer.Option(
            help="Budgets, comma-separated (default: each policy's own budget, with the "
            "baselines at the policy's realized cost)."
        ),
    ] = None,
    baselines: Annotated[
        str, typer.Option(help="Baselines, comma-separated.")
    ] = "uniform,random,length,esc,adaptive",
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the intervals.")] = 2000,
    orders: Annotated[
        int, typer.Option(help="Random sample orders replayed per problem for early stopping.")
    ] = 60,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap and the replay orders.")] = 0,
    plot: Annotated[bool, typer.Option(help="Draw accuracy_vs_budget.png.")] = True,
    recalibrate: Annotated[
        bool,
        typer.Option(
            help="Recalibrate learned policies' mu on the test questions (no labels) so their "
            "expected cost meets each budget."
        ),
    ] = False,
    as_json: JsonFlag = False,
    force: Force = False,
) -> None:
    """Score policies, baselines and the oracle on the test split at matched cost; report."""
    from ttcalloc.cli.summaries import print_report
    from ttcalloc.common.console import emit_json
    from ttcalloc.stages.evaluate import EvaluateOptions, PolicySpec, evaluate_policies

    specs = [PolicySpec.parse(p) for p in [*(policies or []), *(policy or [])]]
    options = EvaluateOptions(
        budgets=_csv(budgets, "--budgets", float) if budgets else (),
        baselines=_csv(baselines, "--baselines", str),
        n_boot=bootstrap,
        orders=orders,
        seed=seed,
        plot=plot,
        recalibrate=recalibrate,
    )
    inputs: dict[str, Path | None] = {
        f"policy {i} {s.name}": s.path / "policy.json" for i, s in enumerate(specs)
    }
    inputs |= {"curves": curves, "problems": problems, "samples": samples}
    result = _run_stage(
        "evaluate",
        out,
        options,
        inputs,
        force,
        False,
        lambda: evaluate_policies(specs, out, options, curves, problems, samples),
        "report.json",
    )
    if result is None:  # up to date: show the report that is there
        from ttcalloc.artifacts.io import read_json_artifact
        from ttcalloc.artifacts.schemas import REPORT

        report = read_json_artifact(out / "report.json", REPORT)
    else:
        report = result.report
    print_report(report)
    if as_json:
        emit_json(report)


@app.command("allocate", rich_help_panel=PIPELINE)
@fails_cleanly
def allocate_cmd(
    policy: Annotated[Path, typer.Argument(help="Policy folder from `ttcalloc train`.")],
    problems: Annotated[Path, typer.Argument(help="problems.parquet to allocate compute to.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output plan.parquet.")] = Path(
        "plan.parquet"
    ),
    budget: Annotated[
        float | None,
        typer.Option(
            help="Meet this mean budget on these problems (recalibrates mu on them, no labels "
            "needed; default: the trained mu)."
        ),
    ] = None,
    as_json: JsonFlag = False,
    force: Force = False,
) -> None:
    """Choose the action for each new problem with a trained policy (no model calls)."""
    from ttcalloc.common.console import emit_json, log
    from ttcalloc.stages.allocate import allocate

    inputs = {"policy": policy / "policy.json", "problems": problems}
    result = _run_stage(
        "allocate",
        out,
        {"budget": budget},
        inputs,
        force,
        as_json,
        lambda: allocate(policy, problems, out, budget),
    )
    if result is None:
        return
    counts = ", ".join(f"{a} {n}" for a, n in result.actions.items())
    log(
        f"wrote [bold]{result.out}[/bold]: {result.problems} problems; expected mean cost "
        f"{result.expected_cost:.4g} {result.cost_unit} (budget {result.budget:g}"
        + (", mu recalibrated on these problems" if result.recalibrated else "")
        + f"); {counts}"
    )
    if as_json:
        emit_json(result.to_dict())


@app.command("info", rich_help_panel="Tools")
@fails_cleanly
def info_cmd(
    path: Annotated[
        Path, typer.Argument(help="Any artifact: Parquet file or folder, policy/ or report/.")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Show what an artifact is: kind, rows, columns and provenance (stage, parameters, inputs)."""
    from ttcalloc.artifacts.info import describe, render
    from ttcalloc.common.console import emit_json

    info = describe(path)
    render(info)
    if as_json:
        emit_json(info)


def main() -> None:
    """Console-script entry point."""
    app()
