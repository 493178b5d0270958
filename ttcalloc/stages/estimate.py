"""``ttcalloc estimate``: exact per-problem success and cost curves from samples.

For every problem, model and action ``(strategy, k)`` it writes the exact unbiased success
probability (:mod:`ttcalloc.estimators`) and the expected cost of the action.  With
cross-fitting, each problem's samples are split into a *fit* half (for the oracle's labels) and an
*eval* half (for scoring), so an oracle is never scored on the samples that chose it.  Samples
drawn with several prompt variants are taken in turn, as ``run`` draws them (``core.in_turn``).

Costs in dollars (``--cost usd``; ``auto`` with prices given or several models): a sample's
recorded ``cost_usd`` is kept, the others are priced from the price table (``--price``,
``--prices``, else litellm's cost map) by :func:`ttcalloc.artifacts.prices.with_dollars`, from
tokens, or characters / 4 where tokens are unknown (said so); the table and how each model was
priced go into the curves' provenance.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ttcalloc.artifacts.frames import (
    CORRECT,
    assign_halves,
    choose_cost,
    sample_cost,
    variant_groups,
    vote_labels,
)
from ttcalloc.artifacts.io import check_known_ids, check_output, read_artifact, write_artifact
from ttcalloc.artifacts.prices import Dollars, parse_price_flags, parse_prompt_tokens
from ttcalloc.artifacts.schemas import CURVES, PROBLEMS, SAMPLES, require_labels
from ttcalloc.common.console import warn
from ttcalloc.common.errors import DataError, InputError
from ttcalloc.core import estimators, in_turn
from ttcalloc.core.default_ks import model_ks

if TYPE_CHECKING:
    import polars as pl

CostUnit = Literal["tokens", "completion-tokens", "usd", "samples"]
COST_UNITS = ("tokens", "completion-tokens", "usd", "samples", "auto")
STRATEGIES = ("majority", "pass")
# (): powers of two each model's samples allow (core.default_ks)
DEFAULT_KS: tuple[int, ...] = ()


@dataclass(frozen=True)
class EstimateOptions:
    """Which actions to estimate and how to charge them (``ks`` empty: each model's defaults,
    :func:`ttcalloc.core.default_ks.model_ks`)."""

    ks: tuple[int, ...] = DEFAULT_KS
    strategies: tuple[str, ...] = ("majority",)
    models: tuple[str, ...] = ()
    cost: str = "auto"
    prompt_once: bool = False
    holdout: float | None = None  # None: cross-fit when each model's max(k) fits each half
    seed: int = 0
    prices: tuple[str, ...] = ()  # --price MODEL=IN,OUT (dollars per million tokens)
    prices_file: Path | None = None  # --prices FILE (JSON)
    prompt_tokens: tuple[str, ...] = ()  # --prompt-tokens MODEL=N

    @property
    def priced(self) -> bool:
        """Whether prices (or prompt lengths, which only dollars use) were given."""
        return bool(self.prices or self.prices_file is not None or self.prompt_tokens)

    def check(self) -> None:
        if any(k < 1 for k in self.ks):
            raise InputError(f"--ks {','.join(map(str, self.ks))}: give positive integers")
        bad = [s for s in self.strategies if s not in STRATEGIES]
        if bad or not self.strategies:
            raise InputError(f"--strategy {bad[0] if bad else ''!r}: expected majority or pass")
        if self.cost not in COST_UNITS:
            raise InputError(f"--cost {self.cost!r}: expected one of {', '.join(COST_UNITS)}")
        if self.holdout is not None and not 0.0 <= self.holdout < 1.0:
            raise InputError(f"--holdout {self.holdout}: must be in [0, 1)")
        if self.priced and self.cost not in ("usd", "auto"):
            raise InputError(
                f"--price, --prices and --prompt-tokens charge dollars: give --cost usd or auto, "
                f"not --cost {self.cost}"
            )
        parse_price_flags(self.prices)  # a malformed flag fails before any file is read
        parse_prompt_tokens(self.prompt_tokens)


@dataclass(frozen=True)
class EstimateResult:
    """What ``estimate_curves`` wrote."""

    out: Path
    problems: int
    samples: int
    failed_samples: int
    cost_unit: str
    cross_fitted: bool
    halves: tuple[str, ...]
    actions: list[dict[str, Any]]
    left_out: dict[str, int] = field(default_factory=dict)
    cost_note: str | None = None  # dollars: how each model's cost was found (one line)
    ks_by_model: dict[str, list[int]] = field(default_factory=dict)  # each model's actions' k
    in_turn: dict[str, int] | None = None  # variants taken in turn: maj@k's orders and seed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"out": str(self.out)}


def action_label(model: str, strategy: str, k: int, multi_model: bool) -> str:
    """``maj@4`` / ``pass@4``, prefixed by ``model:`` when several models are present."""
    base = f"{'maj' if strategy == 'majority' else 'pass'}@{k}"
    return f"{model}:{base}" if multi_model else base


@dataclass(frozen=True)
class SampleInputs:
    """What :func:`load_samples` read and resolved: the inputs of :func:`compute_curves`."""

    samples: pl.DataFrame  # usable samples only (failed requests out), of the chosen models
    problems: pl.DataFrame | None
    failed: int
    unit: CostUnit
    holdout: float
    ks: tuple[int, ...]  # the union of the models' sample counts (``by_model``)
    dollars: Dollars | None = None  # usd: the price table used and how each model was priced
    # each model's sample counts: --ks for every model, else auto_ks of that model's fewest
    by_model: dict[str, tuple[int, ...]] = field(default_factory=dict)


def load_samples(
    samples_path: Path, options: EstimateOptions, problems_path: Path | None = None
) -> SampleInputs:
    """Read and check samples (and problems); resolve the cost unit and the holdout."""
    import polars as pl

    options.check()
    art = read_artifact(samples_path, SAMPLES)
    samples = art.df
    failed = samples.filter(pl.col("correct").is_null() | pl.col("error").is_not_null()).height
    received = samples.filter(pl.col("error").is_null())
    samples = received.filter(pl.col("correct").is_not_null())
    if samples.height == 0 and received.height > 0:
        raise DataError(
            f"{samples_path}: its samples are of unlabeled questions (no gold answers), so "
            "their accuracy cannot be estimated"
        )
    if options.models:
        present = set(samples["model"].unique())
        unknown = [m for m in options.models if m not in present]
        if unknown:
            raise InputError(
                f"--models {unknown[0]!r}: not in {samples_path} "
                f"(models: {', '.join(sorted(present))})"
            )
        samples = samples.filter(pl.col("model").is_in(list(options.models)))
    if samples.height == 0:
        raise DataError(f"{samples_path}: no usable samples (all failed or filtered out)")
    problems = None
    if problems_path is not None:
        problems = read_artifact(problems_path, PROBLEMS).df
        require_labels(problems, problems_path, "estimate")
        check_known_ids(
            samples,
            problems,
            Path(samples_path),
            Path(problems_path),
            "were the samples drawn for these problems?",
        )
    n_models = samples["model"].n_unique()
    dollars = None
    if options.cost in ("usd", "auto") and (options.priced or n_models > 1):
        from ttcalloc.backends.prices import samples_in_dollars  # litellm only if a model needs it

        samples, dollars = samples_in_dollars(
            samples, options.prices, options.prices_file, options.prompt_tokens, problems
        )
    elif options.cost == "samples" and n_models > 1:
        warn(
            f"--cost samples with {n_models} models: a sample of every model costs the same "
            "(give prices with --price/--prices, or --cost auto, to charge dollars)"
        )
    unit: CostUnit = choose_cost(samples, options.cost, dollars is not None)  # type: ignore[assignment]
    if options.prompt_once and unit not in ("tokens",):
        raise InputError("--prompt-once needs --cost tokens (prompt and completion tokens)")

    per = samples.group_by("problem_id", "model").len()
    counts = dict(per.group_by("model").agg(pl.col("len")).iter_rows())
    chosen = model_ks(counts, samples["problem_id"].n_unique(), options.ks, options.holdout)
    for note in chosen.notes:
        warn(note)
    by_model = chosen.by_model
    fewest = {m: min(v) for m, v in counts.items()}
    ks = tuple(sorted({k for v in by_model.values() for k in v}))
    holdout = options.holdout
    if holdout is None:
        short = [(m, n) for m, n in sorted(fewest.items()) if n < 2 * max(by_model[m])]
        holdout = 0.0 if short else 0.5
        if short:
            m, n = short[0]
            of = f" of {m}" if len(fewest) > 1 else ""
            warn(
                f"cross-fitting is off: some problems have {n} sample(s){of}, fewer than "
                f"2 x max(k) = {2 * max(by_model[m])}; curves are in-sample (later stages will "
                "say so)"
            )
    return SampleInputs(samples, problems, failed, unit, holdout, ks, dollars, by_model)


def compute_curves(
    samples: pl.DataFrame,
    options: EstimateOptions,
    unit: CostUnit,
    holdout: float,
    problems: pl.DataFrame | None = None,
    by_model: dict[str, tuple[int, ...]] | None = None,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Curves from usable samples, without IO: one row per (problem, model, half, action).

    ``by_model``: the sample counts of each model's actions (default: ``options.ks`` for
    every model).  Also returns, per ``strategy@k``, how many groups were left out for having
    fewer than k samples.  ``holdout`` 0 puts every sample in half ``all``.
    """
    import polars as pl

    ks = tuple(sorted(set(options.ks)))
    samples = assign_halves(
        vote_labels(samples, clustering_problems(options, problems)), holdout, options.seed
    )
    curves, left_out = _curves(samples, ks, options, unit, by_model)
    multi = samples["model"].n_unique() > 1
    labels = curves.select("model", "strategy", "k").unique()
    labels = labels.with_columns(
        pl.Series(
            "action",
            [action_label(m, s, k, multi) for m, s, k in labels.iter_rows()],
            dtype=pl.String,
        )
    )
    curves = curves.join(labels, on=["model", "strategy", "k"], how="left", maintain_order="left")
    return curves, left_out


def clustering_problems(
    options: EstimateOptions, problems: pl.DataFrame | None
) -> pl.DataFrame | None:
    """The problems whose graders cluster wrong answers: only majority voting needs them (pass@k
    counts correct samples only), so without a majority action no answer is parsed."""
    return problems if "majority" in options.strategies else None


def summarize_curves(curves: pl.DataFrame, cross_fitted: bool) -> list[dict[str, Any]]:
    """Mean accuracy and cost of every action over the problems of the main half."""
    import polars as pl

    main_half = "fit" if cross_fitted else "all"
    return (
        curves.filter(pl.col("half") == main_half)
        .group_by("action", "model", "strategy", "k")
        .agg(
            pl.col("accuracy").mean().alias("accuracy"),
            pl.col("cost").mean().alias("cost"),
            pl.len().alias("problems"),
        )
        .sort("model", "strategy", "k")
        .to_dicts()
    )


def write_curves(
    curves: pl.DataFrame,
    out: Path,
    options: EstimateOptions,
    loaded: SampleInputs,
    samples_path: Path,
    problems_path: Path | None = None,
) -> pl.DataFrame:
    """Write ``curves.parquet`` atomically with its provenance; return the frame written."""
    params = {
        "ks": sorted(set(options.ks)),
        "ks_by_model": {m: list(v) for m, v in loaded.by_model.items()},
        "strategies": list(options.strategies),
        "models": list(options.models) or sorted(loaded.by_model),  # as given, else all
        "cost": options.cost,
        "prompt_once": options.prompt_once,
        "holdout": loaded.holdout,
        "seed": options.seed,
        "in_turn": _in_turn_params(loaded.samples, options),
    }
    if loaded.dollars is not None:  # the price table, cost_from, samples_priced
        params |= loaded.dollars.params()
    inputs = {"samples": Path(samples_path)}
    if problems_path is not None:
        inputs["problems"] = Path(problems_path)
    if options.prices_file is not None:
        inputs["prices"] = Path(options.prices_file)
    cross_fitted = loaded.holdout > 0.0
    return write_artifact(
        curves,
        out,
        CURVES,
        stage="estimate",
        params=params,
        inputs=inputs,
        extra_meta={
            "cost_unit": loaded.unit,
            "cross_fitted": cross_fitted,
            "in_sample": not cross_fitted,
        },
    )


def estimate_curves(
    samples_path: Path,
    out: Path,
    options: EstimateOptions | None = None,
    problems_path: Path | None = None,
) -> EstimateResult:
    """Estimate ``curves.parquet`` from ``samples.parquet``.

    Args:
        samples_path: samples artifact (``ttcalloc sample`` or ``ttcalloc import``).
        out: where to write the curves artifact.
        options: actions (ks, strategies, models), cost unit, cross-fitting.
        problems_path: optional problems artifact; with it, wrong answers are clustered by the
            problem's grader (numeric value, math-verify canonical form); without it, by text.

    Returns:
        An :class:`EstimateResult` with the mean accuracy and cost of every action.

    Failed requests (``error`` set, ``correct`` null) are not samples and are left out.  An action
    needs ``k`` samples of the problem (in the half); otherwise it is left out for that problem
    and counted, never extrapolated.  Steps: :func:`load_samples`, :func:`compute_curves`,
    :func:`write_curves`.
    """
    options = options or EstimateOptions()
    check_output(
        out, {"samples": samples_path, "problems": problems_path, "prices": options.prices_file}
    )
    loaded = load_samples(samples_path, options, problems_path)
    options = replace(options, ks=loaded.ks)
    curves, left_out = compute_curves(
        loaded.samples, options, loaded.unit, loaded.holdout, loaded.problems, loaded.by_model
    )
    written = write_curves(curves, out, options, loaded, samples_path, problems_path)
    cross_fitted = loaded.holdout > 0.0
    return EstimateResult(
        out=Path(out),
        problems=loaded.samples["problem_id"].n_unique(),
        samples=loaded.samples.height,
        failed_samples=loaded.failed,
        cost_unit=loaded.unit,
        cross_fitted=cross_fitted,
        halves=tuple(sorted(set(written["half"]))),
        actions=summarize_curves(written, cross_fitted),
        left_out=left_out,
        cost_note=loaded.dollars.summary if loaded.dollars is not None else None,
        ks_by_model={m: list(v) for m, v in loaded.by_model.items()},
        in_turn=_in_turn_params(loaded.samples, options),
    )


def _curves(
    samples: pl.DataFrame,
    ks: tuple[int, ...],
    options: EstimateOptions,
    unit: CostUnit,
    by_model: dict[str, tuple[int, ...]] | None = None,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Accuracy and cost of every action for every (problem, model, half) group (``k`` only for
    the models ``by_model`` gives it, default every model)."""
    import polars as pl

    group_keys = ["problem_id", "model", "half"]
    each, once = sample_cost(unit, options.prompt_once)
    groups = (
        samples.group_by(group_keys)
        .agg(
            pl.len().alias("n"),
            pl.col("correct").sum().alias("c"),
            each.mean().alias("each"),
            once.mean().alias("once"),
        )
        .sort(group_keys)
        .with_row_index("g")
    )
    wrong = (
        samples.filter(pl.col("vote").is_not_null() & (pl.col("vote") != CORRECT))
        .group_by([*group_keys, "vote"])
        .len()
        .join(groups.select([*group_keys, "g"]), on=group_keys)
        .with_columns(
            pl.col("len").rank("ordinal", descending=True).over("g").cast(pl.Int64).alias("slot")
        )
    )
    n_groups = groups.height
    width = int(wrong["slot"].to_numpy().max()) if wrong.height else 0
    sizes = np.zeros((n_groups, max(width, 1)), dtype=np.int64)
    if wrong.height:
        sizes[wrong["g"].to_numpy(), wrong["slot"].to_numpy() - 1] = wrong["len"].to_numpy()
    n = groups["n"].to_numpy().astype(np.int64)
    c = groups["c"].to_numpy().astype(np.int64)

    per_sample, fixed = groups["each"].to_numpy(), groups["once"].to_numpy()
    model = groups["model"].to_numpy()

    turned = variant_groups(samples.join(groups.select(*group_keys, "g"), on=group_keys), "g")
    ids, var = turned["_id"].to_list(), turned["_v"].to_list()
    keyed = groups.select(pl.concat_str(*group_keys, separator="\x00").alias("key"))["key"]
    keys = [keyed[g] for g in turned["g"].to_list()]  # a group's orders: by what it is
    frames = []
    left_out: dict[str, int] = {}
    for strategy in options.strategies:  # several prompt variants: the samples taken in turn
        got = in_turn.accuracy(strategy, ids, var, ks, options.seed, keys)
        for j, k in enumerate(ks):
            if strategy == "majority":
                acc = estimators.majority_at_k(n, c, sizes, k)
            else:
                acc = estimators.pass_at_k(n, c, k)
            acc[turned["g"].to_numpy()] = got[:, j]
            mine = (
                np.ones(n_groups, dtype=bool)
                if by_model is None
                else np.isin(model, [m for m, v in by_model.items() if k in v])
            )
            ok = mine & (n >= k)
            missing = int((mine & ~ok).sum())
            if missing:
                left_out[f"{strategy}@{k}"] = missing
            frames.append(
                groups.filter(pl.Series(ok)).select(
                    "problem_id",
                    "model",
                    "half",
                    pl.lit(strategy).alias("strategy"),
                    pl.lit(k, dtype=pl.Int64).alias("k"),
                    pl.Series("accuracy", acc[ok]),
                    pl.Series("cost", fixed[ok] + k * per_sample[ok]),
                    pl.col("n").cast(pl.Int64).alias("n_samples"),
                )
            )
    return pl.concat(frames), left_out


def _in_turn_params(samples: pl.DataFrame, options: EstimateOptions) -> dict[str, int] | None:
    """Provenance of the curves taken in turn (None: no problem has several variants)."""
    several = variant_groups(samples.with_columns(vote=None), "problem_id", "model").height
    return {"orders": in_turn.DEFAULT_ORDERS, "seed": options.seed} if several else None
