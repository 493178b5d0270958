"""The replay backend (``--model replay:PATH``): recorded samples served again as a model.

``PATH`` is a samples file or folder (what ``ttcalloc import`` or ``ttcalloc sample`` write).
Each question's recorded samples (those received without error) are served one per request, in
an order seeded by the run's ``--seed`` and the question's id: sample ``i`` of question ``q`` is
its recorded sample ``perm(seed, q)[i]``.  The order depends on nothing else (not on the order
requests arrive in, nor on concurrency), so a rerun or a resumed run serves the same samples for
the same indices, and a folder never holds one recorded sample twice for a question.

A sample keeps what was recorded: the response text, the answer as recorded (not extracted
again: an imported sample may have no text), prompt and completion tokens, dollars, the
completion's length in characters, its mean token log-prob and finish reason.  The run grades
it against its own gold answers with its own grader.

A run that draws prompt variants asks for sample ``i`` of a variant: the ``i``-th of the
question's recorded samples of that variant in its own seeded order (as :mod:`ttcalloc.core.
replays` takes them in training).

A file of several models' samples serves one model's: the one ``SamplingParams.extra``
names (:data:`MODEL_KEY`; ``run --model NAME=replay:PATH`` serves NAME's rows).

Samples recorded without a dollar cost (an imported file without token counts) are priced when
the file is loaded, as ``estimate`` prices them (:func:`ttcalloc.artifacts.prices.with_dollars`
over the whole file: completion characters / 4, else the model's mean completion), when the run
gives the model a price and a prompt length (:data:`PROMPT_KEY`, from ``--prompt-tokens`` or a
prices file); so a replayed sample costs in ``run`` what it cost in the curves.

A question the file does not hold, or one whose recorded samples are all served, stops the run
with one line naming the question (and how many samples it had): nothing is invented.  Named
REPLAYED wherever it appears, as the simulated backend is named SIMULATED.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Collection
from pathlib import Path
from typing import Any

import numpy as np

from ttcalloc.backends.base import (
    Backend,
    Choice,
    FatalError,
    Recorded,
    Request,
    SamplingParams,
)
from ttcalloc.backends.registry import priced, register
from ttcalloc.common.errors import InputError, TtcallocError
from ttcalloc.common.hashing import seeded_int
from ttcalloc.core.prices import Price

PREFIX = "replay:"
MODEL_KEY = "replay_model"  # SamplingParams.extra: the model of a multi-model file to serve
PROMPT_KEY = "replay_prompt_tokens"  # SamplingParams.extra: prompt length to price samples by
FIELDS = (
    "response",
    "pred_answer",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "mean_logprob",
    "completion_chars",
    "finish_reason",
)


def replay_path(model: str) -> Path | None:
    """The samples file or folder a ``replay:PATH`` model string names (None: not a replay)."""
    if not model.startswith(PREFIX):
        return None
    rest = model[len(PREFIX) :]
    if not rest:
        raise InputError(
            f"--model {model!r}: name the samples to replay, e.g. replay:samples.parquet"
        )
    return Path(rest).expanduser()


def rotation_key(model: str) -> str:
    """The model a question's rotation of prompt variants is keyed by: ``model`` itself, and for
    ``replay:PATH`` the one model its samples record, the model they were drawn with.  So a
    replay of samples drawn in turn (``sample`` or ``run`` with variants) takes each question's
    variants in the rotation they were drawn in (with the same ``--seed``), and never asks a
    variant for more samples than it holds where the variants' counts differ (keyed by
    ``replay:PATH``, another rotation could).  Samples of several models, or unreadable: the
    spec itself (the backend says what is wrong)."""
    path = replay_path(model)
    if path is None:
        return model
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return model
    return _drawn_with(path, stamp) or model


@functools.lru_cache(maxsize=8)
def _drawn_with(path: Path, stamp: int) -> str | None:
    """The one model the samples at ``path`` record (None: several, none, or unreadable);
    ``stamp``: the path's modification time, so a rewritten file is read again."""
    import polars as pl

    from ttcalloc.artifacts.io import parquet_files

    try:
        frame = pl.scan_parquet(parquet_files(path)).select("model").unique().collect()
    except (OSError, TtcallocError, pl.exceptions.PolarsError):
        return None
    models = frame["model"].drop_nulls().to_list()
    return str(models[0]) if len(models) == 1 else None


def order(seed: int, problem_id: str, n: int) -> np.ndarray:
    """The order a question's ``n`` recorded samples are served in (seeded by seed and id)."""
    return np.random.default_rng(seeded_int("replay", seed, problem_id)).permutation(n)


def load_pools(
    path: Path, model: str | None = None, price: Price | None = None
) -> tuple[dict[str, list[dict[str, Any]]], str]:
    """Every question's recorded samples (received without error) and the model they are of.

    ``model``: the model whose samples to serve from a file of several (``run --model
    NAME=replay:PATH`` serves NAME's); a file of one model's samples serves them whatever
    ``model`` is (the policy may call the model by another name).  ``price`` (with a prompt
    length): the dollars of samples recorded without a cost, as ``estimate`` counts them.

    Raises:
        InputError: the path holds no samples, samples of several models and ``model`` is not
            one of them (or not given).
    """
    import polars as pl

    from ttcalloc.artifacts.io import read_artifact
    from ttcalloc.artifacts.schemas import SAMPLES

    try:
        df = read_artifact(path, SAMPLES).df.filter(pl.col("error").is_null())
    except TtcallocError as exc:
        if not path.exists() or _provenance(path):
            raise
        # a file another tool wrote (no ttcalloc provenance): its columns are not yet samples'
        raise type(exc)(
            f"{exc}; not a samples artifact (run `ttcalloc import` on it first?)"
        ) from None
    if df.height == 0:
        raise InputError(f"{path}: no samples to replay (none received without error)")
    models = sorted(df["model"].unique().to_list())
    if len(models) > 1 and model is not None:
        if model not in models:
            raise InputError(
                f"{path}: holds no samples of model {model!r} (it holds {len(models)} models: "
                f"{', '.join(models[:4])}); map the name to its own samples, NAME=replay:PATH"
            )
        df, models = df.filter(pl.col("model") == model), [model]
    if len(models) > 1:
        raise InputError(
            f"{path}: holds samples of {len(models)} models ({', '.join(models[:4])}); replay "
            "serves one model's: give a file of one model's samples"
        )
    for name in FIELDS:
        if name not in df.columns:
            df = df.with_columns(pl.lit(None).alias(name))
    if price is not None and price.prompt_tokens is not None and df["cost_usd"].null_count():
        from ttcalloc.artifacts.prices import PriceTable, with_dollars

        df = with_dollars(df, PriceTable({models[0]: price}), None).samples
    if "prompt_variant" not in df.columns:
        df = df.with_columns(pl.lit(None, pl.String).alias("prompt_variant"))
    pools: dict[str, list[dict[str, Any]]] = {}
    for row in (
        df.sort("problem_id", "sample_idx")
        .select("problem_id", "prompt_variant", *FIELDS)
        .iter_rows(named=True)
    ):
        pid, variant = str(row.pop("problem_id")), row.pop("prompt_variant")
        pools.setdefault(pid, []).append(row)
        if variant is not None:  # also served by variant (a run drawing prompt variants)
            pools.setdefault(variant_key(pid, variant), []).append(row)
    return pools, models[0]


def _provenance(path: Path) -> dict[str, Any]:
    """The ttcalloc provenance of a samples file or folder ({}: none, or not readable)."""
    from ttcalloc.artifacts.io import parquet_files, read_meta

    try:
        files = parquet_files(path)
        return read_meta(files[0]) if files else {}
    except (OSError, TtcallocError):
        return {}


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def check_asked(spec: str, asked: Any) -> None:
    """The questions asked (``asked``: a frame of problem_id, question) are those the samples of
    ``spec`` (``replay:PATH``) were drawn for, where both name a problem id: its samples record
    their problems file (``sample``, ``import``), whose questions are compared, whitespace
    aside.  Samples without a problems file (or whose run read another format) are served as
    they are; a recorded problems file no longer found, or changed since, is a one-line warning.

    Raises:
        InputError: one line naming the first problem asked another question than its samples.
    """
    from ttcalloc.artifacts.io import read_artifact, recorded_input
    from ttcalloc.artifacts.schemas import PROBLEMS
    from ttcalloc.common.console import warn

    path = replay_path(spec)
    meta = _provenance(path) if path is not None and path.exists() else {}
    raw = meta.get("inputs")
    inputs: dict[str, Any] = raw if isinstance(raw, dict) else {}
    key = next((k for k in ("problems", "questions") if isinstance(inputs.get(k), dict)), None)
    if path is None or key is None:
        return
    try:
        found = recorded_input(meta, key, path, spec)
    except TtcallocError:  # there, but rewritten since: what it holds now proves nothing
        warn(f"{spec}: the problems its samples were drawn for ({inputs[key].get('path')}) "
             "have changed since: whether they are the questions asked is not checked")  # fmt: skip
        return
    if found is None:
        warn(f"{spec}: the problems its samples were drawn for ({inputs[key].get('path')}) "
             "are not found: whether they are the questions asked is not checked")  # fmt: skip
        return
    try:
        recorded = read_artifact(found, PROBLEMS).df
    except TtcallocError:  # a run's questions in another format (ids may be read otherwise)
        return
    theirs = dict(zip(recorded["problem_id"], recorded["question"], strict=True))
    for pid, question in zip(asked["problem_id"], asked["question"], strict=True):
        own = theirs.get(pid)
        if own is not None and normalised(str(question)) != normalised(str(own)):
            raise InputError(
                f"{spec}: problem {pid!r} was asked {_short(str(question))!r} here but its "
                f"recorded samples answer {_short(str(own))!r}; replay serves a question only "
                "its own samples"
            )


def normalised(text: str) -> str:
    """A question's text with its whitespace made single spaces (as questions are compared)."""
    return " ".join(str(text).split())


def recorded_questions(path: Path) -> tuple[dict[str, str] | None, str]:
    """The questions the samples at ``path`` were drawn for, from the problems file their
    provenance records (``sample``, ``import``): normalised text -> problem id (the first id of
    a text), and where they were read; None and why when there is no such file to read."""
    from ttcalloc.artifacts.io import read_artifact, recorded_input
    from ttcalloc.artifacts.schemas import PROBLEMS

    meta = _provenance(path)
    raw = meta.get("inputs")
    inputs: dict[str, Any] = raw if isinstance(raw, dict) else {}
    key = next((k for k in ("problems", "questions") if isinstance(inputs.get(k), dict)), None)
    if key is None:
        return None, "its samples record no problems file"
    where = str(inputs[key].get("path"))
    try:
        found = recorded_input(meta, key, path, f"replay:{path}")
    except TtcallocError:
        return None, f"the problems its samples were drawn for ({where}) have changed since"
    if found is None:
        return None, f"the problems its samples were drawn for ({where}) are not found"
    try:
        df = read_artifact(found, PROBLEMS).df
    except TtcallocError as exc:
        return None, f"the problems its samples were drawn for ({where}) are unreadable: {exc}"
    out: dict[str, str] = {}
    for pid, question in zip(df["problem_id"], df["question"], strict=True):
        out.setdefault(normalised(str(question)), str(pid))
    return out, str(found)


class NothingToReplay(FatalError):
    """A question has no recorded sample to serve (none, or every one served): fatal to a run;
    ``serve`` fails that question's request alone."""


def variant_key(problem_id: str, variant: str) -> str:
    """The pool of a question's recorded samples of one prompt variant."""
    return f"{problem_id}\x00{variant}"


class ReplayBackend:
    """Serves the recorded samples of ``path``: one per request, in a seeded order."""

    simulated = False
    replayed = True
    max_n = 1

    def __init__(self, model: str, params: SamplingParams) -> None:
        path = replay_path(model)
        assert path is not None
        self.name, self.path, self.seed = model, path, params.seed
        price = None
        if params.price_in is not None and params.price_out is not None:
            price = Price(params.price_in, params.price_out, params.extra.get(PROMPT_KEY))
        self.pools, self.recorded_model = load_pools(path, params.extra.get(MODEL_KEY), price)
        self.price = None if price is None else (price.input, price.output)
        # a file of several models serves one: its errors name it
        self._of_model = f" of {params.extra[MODEL_KEY]}" if params.extra.get(MODEL_KEY) else ""
        self.orders: dict[str, np.ndarray] = {}

    def choice(self, problem_id: str, idx: int, variant: str | None = None) -> Recorded:
        """Sample ``idx`` of a question: its recorded sample at position ``idx`` of its order;
        with ``variant``, position ``idx`` among the question's samples of that variant."""
        of, key = self._of_model, problem_id
        if variant is not None:
            of += f" drawn with prompt variant {variant!r}"
            key = variant_key(problem_id, variant)
        pool = self.pools.get(key)
        if pool is None:
            tail = "" if variant is None else variant_key("", variant)  # pools of that variant
            held = sum(k.endswith(tail) if tail else "\x00" not in k for k in self.pools)
            raise NothingToReplay(
                f"question {problem_id!r} has no samples{of} in {self.path} (it records "
                f"{held} questions{of}): nothing to replay for it"
            )
        n = len(pool)
        if idx >= n:
            raise NothingToReplay(
                f"question {problem_id!r} has no recorded sample{of} left in {self.path}: "
                f"it had {n}, and sample {idx + 1} was asked for (a recorded sample is served "
                "once per question)"
            )
        if key not in self.orders:
            self.orders[key] = order(self.seed, key, n)
        return _recorded(pool[int(self.orders[key][idx])])

    def most_cost(self, unit: str, questions: Collection[str]) -> float:
        """The most one recorded sample of ``questions`` costs in ``unit`` (samples, tokens,
        completion-tokens or usd), as ``run`` counts it: replay serves samples as they were
        drawn, never cut at ``--max-tokens``, so this bounds what a served sample costs.  A
        sample without a dollar cost counts its tokens at the price the run gives the model
        (completion tokens from characters, 4 a token, as a run over several models prices
        it); unknown parts count nothing, as they are charged."""
        if unit == "samples":
            return 1.0
        asked = set(questions)
        most = 0.0
        for key, pool in self.pools.items():
            if key.partition("\x00")[0] not in asked:
                continue
            for row in pool:
                most = max(most, _cost(row, unit, self.price))
        return most

    async def complete(self, request: Request) -> list[Choice]:
        await asyncio.sleep(0)  # let the event loop run (signals, other workers)
        if request.variant is not None:
            first, variant = request.variant_idx, request.variant
        else:
            first, variant = request.first_idx, None
        return [self.choice(request.problem_id, first + j, variant) for j in range(request.n)]


def _recorded(row: dict[str, Any]) -> Recorded:
    """A recorded sample, served again."""
    text, chars = row["response"], row["completion_chars"]
    return Recorded(
        text=text,
        finish_reason=row["finish_reason"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        cost_usd=row["cost_usd"],
        mean_logprob=row["mean_logprob"],
        pred_answer=row["pred_answer"],
        completion_chars=chars if chars is not None or text is None else len(text),
    )


def _cost(row: dict[str, Any], unit: str, price: tuple[float, float] | None) -> float:
    """What a recorded sample costs in ``unit`` once served (:meth:`ReplayBackend.most_cost`):
    in dollars as :func:`ttcalloc.backends.registry.priced` prices it for a run over several
    models, else its tokens as the run counts them."""
    completion = float(row["completion_tokens"] or 0)
    if unit == "completion-tokens":
        return completion
    if unit != "usd":
        return completion + float(row["prompt_tokens"] or 0)
    return float(priced(_recorded(row), price).cost_usd or 0.0)


@register("replay", separator=":")
@contextlib.asynccontextmanager
async def _replay_factory(model: str, params: SamplingParams) -> AsyncIterator[Backend]:
    yield ReplayBackend(model, params)
