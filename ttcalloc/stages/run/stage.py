"""``run_policy``: the stage function of ``ttcalloc run``.

Load (the questions, the policy, the samples the folder already holds) -> draw through the shared
sampler (:mod:`ttcalloc.sampler`) with the policy deciding what to draw (:mod:`.drive`) ->
``--compare uniform``: draw what uniform at the realized cost still lacks from the same folder ->
write ``answers.parquet`` (:mod:`.write`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ttcalloc.artifacts import freshness
from ttcalloc.artifacts.io import atomic_path, check_output
from ttcalloc.artifacts.questions import load_questions
from ttcalloc.backends import Backend, count_prompt_tokens, open_backend
from ttcalloc.common.console import log, warn
from ttcalloc.common.errors import DataError, InputError
from ttcalloc.common.wording import SMALL_TEST
from ttcalloc.core.vote import Ledger
from ttcalloc.learn.adaptive import AdaptivePolicy
from ttcalloc.learn.policy import Policy, load_policy
from ttcalloc.sampler.journal import hold, pending_journals, recover
from ttcalloc.sampler.loop import MissingSamples, Sampler, stop_on_signals
from ttcalloc.sampler.options import SampleOptions, part_params, sampling_params, worst_cost
from ttcalloc.sampler.parts import existing_samples
from ttcalloc.sampler.plan import gold_answers, request_for
from ttcalloc.sampler.result import SampleResult
from ttcalloc.stages.run.drive import AdaptiveDriver, Driver, Item, StaticDriver, to_got
from ttcalloc.stages.run.write import SAME, compare, rows, uniform_plan, write_answers
from ttcalloc.text import prompts

if TYPE_CHECKING:
    import polars as pl

ACTION = re.compile(r"^(maj|pass)@(\d+)$")


@dataclass(frozen=True)
class RunOptions:
    """Everything ``ttcalloc run`` takes besides the policy, the questions and the output."""

    sample: SampleOptions
    budget: float
    hard_budget: bool = False
    compare: str | None = None  # "uniform"
    samples_out: Path | None = None
    question_field: str = "question"
    id_field: str | None = None
    answer_field: str | None = None
    grader: str = "auto"
    split: str | None = None  # only the questions of this split (a problems table's column)
    seed: int = 0

    def check(self) -> None:
        self.sample.check()
        if not (math.isfinite(self.budget) and self.budget > 0):
            raise InputError(f"--budget {self.budget}: must be a positive number")
        if self.compare not in (None, "uniform"):
            raise InputError(f"--compare {self.compare!r}: expected uniform")


@dataclass(frozen=True)
class RunResult:
    out: Path
    samples_out: Path
    policy: str  # static or adaptive
    questions: int
    labeled: int
    answered: int
    complete: int  # questions that got every sample their policy wanted
    accuracy: float | None
    mean_cost: float
    mean_samples: float
    budget: float
    cost_unit: str
    hard_budget: bool
    total_cost: float
    sampling: SampleResult | None  # this run's requests, the policy's and uniform's
    cut_by_budget: int = 0  # questions the hard budget kept from samples their policy wanted
    drawn: int = 0  # samples this run drew for the policy
    uniform_drawn: int = 0  # samples this run drew for --compare uniform only
    comparison: dict[str, Any] | None = None
    stopped: str | None = None
    rounds: list[dict[str, Any]] = field(default_factory=list)  # adaptive: each round's price

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self) | {"out": str(self.out), "samples_out": str(self.samples_out)}
        d["sampling"] = self.sampling.to_dict() if self.sampling else None
        return d


def default_samples_out(out: Path) -> Path:
    return out.with_name(f"{out.stem}-samples.parquet")


# options that change how a run draws, not what it answers: not part of its request
HOW = ("concurrency", "rpm", "tpm", "timeout", "retries", "progress", "flush_every",
       "flush_seconds", "max_failures", "max_cost")  # fmt: skip


def run_request(
    policy_path: Path, questions_path: Path, samples_out: Path, options: RunOptions
) -> dict[str, Any]:
    """What a run is asked to do (:func:`ttcalloc.artifacts.freshness.request`): the options
    that shape the answers, and the fingerprints of the policy, the questions and the samples."""
    opts = asdict(options)
    opts["sample"] = {k: v for k, v in opts["sample"].items() if k not in HOW}
    inputs = {
        "policy": Path(policy_path) / "policy.json",
        "questions": Path(questions_path),
        "samples": Path(samples_out),
    }
    return freshness.request("run", opts, inputs)


def up_to_date(policy_path: Path, questions_path: Path, out: Path, options: RunOptions) -> bool:
    """Whether ``out`` was written by a run that finished (nothing stopped it, no request left
    to retry) with the same options, policy, questions and samples: then rerunning would draw
    nothing and answer the same."""
    samples_out = options.samples_out or default_samples_out(Path(out))
    if pending_journals(Path(samples_out)):  # samples of a killed run to fold in
        return False
    return freshness.is_fresh(out, run_request(policy_path, questions_path, samples_out, options))


def run_policy(
    policy_path: Path, questions_path: Path, out: Path, options: RunOptions
) -> RunResult:
    """Answer every question with ``policy`` on ``options.sample.model`` within the budget.

    Raises:
        InputError: bad flags, a budget below the cheapest action, a policy this cannot run.
        TtcallocError: authentication or unknown-model errors, or a run of failed requests
            (samples received so far are kept; rerun to continue).
    """
    options.check()
    so = options.sample
    samples_out = options.samples_out or default_samples_out(Path(out))
    inputs = {"policy": Path(policy_path) / "policy.json", "questions": Path(questions_path)}
    # the policy folder as a whole is an input: nothing is written inside it
    guarded = inputs | {"policy folder": Path(policy_path)}
    out = check_output(out, guarded)
    samples_out = check_output(samples_out, guarded, folder=True, flag="--samples-out")
    if Path(samples_out).resolve() == Path(out).resolve():
        raise InputError(f"--samples-out {samples_out}: the same path as --out; give another")
    policy = load_policy(policy_path)
    questions = load_questions(
        questions_path,
        options.question_field,
        options.id_field,
        options.answer_field,
        options.grader,
    )
    if options.split is not None:
        if "split" not in questions.columns:
            raise InputError(f"--split {options.split}: {questions_path} has no split column")
        questions = questions.filter(questions["split"] == options.split)
    if so.limit is not None:
        questions = questions.head(so.limit)
    if questions.height == 0:
        where = f" in split {options.split!r}" if options.split is not None else ""
        raise DataError(f"{questions_path}: no questions{where}")
    if options.compare == "uniform" and questions["answer"].null_count() == questions.height:
        raise InputError(
            f"--compare uniform: {questions_path} has no gold answers to compare accuracies on"
        )
    unit = str(policy.info.get("cost_unit") or "samples")
    metas = policy.metas(questions, Path(questions_path))
    items = [
        Item(problem=row, meta=meta)
        for row, meta in zip(questions.iter_rows(named=True), metas, strict=True)
    ]
    ks, cheapest = _ks(policy)
    if isinstance(policy, AdaptivePolicy) and unit == "samples" and options.budget < 1.0:
        raise InputError(
            f"--budget {options.budget:g}: below one sample per question, the least an adaptive "
            "policy draws"
        )
    if options.budget < cheapest[1] - 1e-12:
        raise InputError(
            f"--budget {options.budget:g}: below the cheapest action's expected cost "
            f"{cheapest[1]:g} {unit}"
        )
    template, prompt_label = prompts.load_template(so.prompt)
    params = part_params(so, prompt_label) | {"run_policy": str(policy_path)}
    _refuse_foreign(samples_out)
    with hold(samples_out):
        if recovered := recover(samples_out):
            log(f"{samples_out}: {recovered} samples of an interrupted run recovered")
        _check_questions(samples_out, items)
        existing = existing_samples(samples_out, so.model, params)
        _load_existing(items, existing, unit)
        for it in items:
            it.failed = set()

        async def go() -> tuple[Driver, SampleResult, dict[str, int] | None, SampleResult | None]:
            stop_on_signals()
            async with open_backend(so.model, sampling_params(so)) as backend:
                per_request = max(1, min(so.requests_per_batch, backend.max_n))
                ledger = _ledger(options, backend, items, template, unit, cheapest[0])
                driver = _driver(
                    policy, items, questions, options, template, per_request, unit, ledger
                )
                gold = gold_answers(questions, {it.pid: [] for it in items})
                sampler = Sampler(backend, samples_out, so, params, inputs, gold, driver, "run")
                await sampler.run()
                result = sampler.result()
                result = replace(result, requested=result.written + result.errors)
                driver.finish_all()
                uniform, uniform_result = None, None
                if options.compare == "uniform" and not sampler.stop:
                    uniform, uniform_result = await _uniform(
                        backend,
                        driver,
                        questions,
                        so,
                        template,
                        params,
                        inputs,
                        gold,
                        samples_out,
                        ks[-1] if ks else 1,
                        options.seed,
                        unit,
                        per_request,
                    )
                return driver, result, uniform, uniform_result

        try:
            driver, policy_sampling, uniform, uniform_sampling = asyncio.run(go())
        except asyncio.CancelledError:
            raise KeyboardInterrupt from None
        sampled = policy_sampling.plus(uniform_sampling) if uniform_sampling else policy_sampling
        # up to date from now on (a rerun is skipped) unless something is left to retry
        finished = sampled.stopped is None and not any(it.failed - set(it.got) for it in items)
        request = run_request(policy_path, questions_path, samples_out, options)
    table = rows(items, uniform)
    comparison = compare(table, options.seed) if uniform is not None else None
    kind = "adaptive" if isinstance(policy, AdaptivePolicy) else "static"
    total = float(sum(r["cost"] for r in table))
    extra = {"cost_unit": unit, "budget": options.budget, "comparison": comparison}
    with contextlib.ExitStack() as stack:
        if finished:
            stack.enter_context(freshness.recording(request))
        write_answers(
            table,
            out,
            {
                "policy": str(policy_path),
                "model": so.model,
                "budget": options.budget,
                "hard_budget": options.hard_budget,
                "compare": options.compare,
                "samples_out": str(samples_out),
            },
            inputs | {"samples": samples_out},
            extra,
        )
    labeled = [r for r in table if r["gold"] is not None]
    return RunResult(
        out=Path(out),
        samples_out=samples_out,
        policy=kind,
        questions=len(table),
        labeled=len(labeled),
        answered=sum(r["final_answer"] is not None for r in table),
        complete=sum(bool(r["complete"]) for r in table),
        cut_by_budget=sum(
            any(k.startswith("cut_by_hard_budget") for d in it.decisions for k in d) for it in items
        ),
        accuracy=float(np.mean([bool(r["correct"]) for r in labeled])) if labeled else None,
        mean_cost=total / len(table),
        mean_samples=float(np.mean([r["samples"] for r in table])),
        budget=options.budget,
        cost_unit=unit,
        hard_budget=options.hard_budget,
        total_cost=total,
        sampling=sampled,
        drawn=policy_sampling.written,
        uniform_drawn=uniform_sampling.written if uniform_sampling else 0,
        comparison=comparison,
        stopped=sampled.stopped,
        rounds=list(getattr(driver, "prices", [])),
    )


def _ks(policy: Policy | AdaptivePolicy) -> tuple[list[int], tuple[int, float]]:
    """Samples per action (static), and the cheapest action's (samples, expected cost)."""
    if isinstance(policy, AdaptivePolicy):
        if policy.grid.strategy != "majority":
            raise InputError(
                "run: this adaptive policy stops for pass@k (a verifier); run "
                "answers by majority vote only"
            )
        return [], (1, 0.0)
    ks = []
    for name in policy.actions:
        m = ACTION.match(name)
        if m is None:
            raise InputError(f"run: action {name!r} of the policy is not maj@k on one model")
        if m.group(1) != "maj":
            raise InputError(f"run: action {name!r} needs a verifier; run answers by majority vote")
        ks.append(int(m.group(2)))
    i = int(np.argmin(policy.costs))
    return ks, (ks[i], float(policy.costs[i]))


QUESTIONS_FILE = ".questions.json"


def _refuse_foreign(folder: Path) -> None:
    """Refuse a samples folder that ``run`` did not write (``sample``'s, say): adding to it
    would change an input that curves, policies and reports recorded."""
    if not (Path(folder) / QUESTIONS_FILE).exists() and any(Path(folder).glob("*.parquet")):
        raise InputError(
            f"--samples-out {folder}: holds samples that `ttcalloc run` did not draw (from "
            "`ttcalloc sample`?); adding to them would change an input other stages recorded: "
            "give another --samples-out"
        )


def _check_questions(folder: Path, items: list[Item]) -> None:
    """Keep each id's question (a hash of its text) beside its samples, and refuse a run that
    gives a known id another question: its samples would answer the wrong question."""
    path = Path(folder) / QUESTIONS_FILE
    known: dict[str, str] = {}
    if path.exists():
        try:
            known = dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise DataError(f"{path}: unreadable ({exc}); remove it to start afresh") from None
    for it in items:
        digest = hashlib.sha256(str(it.problem["question"]).encode()).hexdigest()[:16]
        if known.get(it.pid, digest) != digest:
            raise InputError(
                f"question {it.pid!r} is not the one its samples in {folder} were drawn for (a "
                "file without an id field numbers its rows); give another --samples-out"
            )
        known[it.pid] = digest
    Path(folder).mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(known, sort_keys=True))


def _load_existing(items: list[Item], existing: pl.DataFrame | None, unit: str) -> None:
    if existing is None:
        return
    by_pid = {it.pid: it for it in items}
    ok = existing.filter(existing["error"].is_null())
    for row in ok.iter_rows(named=True):
        it = by_pid.get(row["problem_id"])
        if it is not None:
            it.got[int(row["sample_idx"])] = to_got(row, it.problem["grader"], unit)


def _ledger(
    options: RunOptions,
    backend: Backend,
    items: list[Item],
    template: str | None,
    unit: str,
    floor: int,
) -> Ledger | None:
    """The hard budget: ``budget x questions`` in the policy's unit, each sample reserved at
    its worst case, every question owed the cheapest action's samples."""
    if not options.hard_budget:
        return None
    so = options.sample
    if unit == "samples":
        worst: float | None = 1.0
    elif unit == "completion-tokens":
        worst = float(so.max_tokens)
    else:
        prompt = max(
            count_prompt_tokens(so.model, request_for(so, template, it.problem, 0, 1).messages)
            for it in items
        )
        if unit == "tokens":
            worst = float(prompt + so.max_tokens)
        else:
            prices = getattr(backend, "prices", None)
            worst = worst_cost(so, prompt, 1, prices() if callable(prices) else None)
    if worst is None:
        raise InputError(
            "--hard-budget: no price is known for this model; give --price-in/--price-out"
        )
    ledger = Ledger(total=options.budget * len(items), worst=worst, floor=floor)
    # the budget bounds what the answers' samples cost: samples the folder already holds are
    # charged as they are used (an earlier run's uniform draws or unused samples are not)
    ledger.open([it.pid for it in items], [0] * len(items))
    if not ledger.feasible():
        raise InputError(
            f"--hard-budget: {options.budget:g} x {len(items)} questions = {ledger.total:g} {unit} "
            f"cannot guarantee every question {floor} sample(s) at their worst case ({worst:g} "
            f"{unit} each); raise --budget or lower --max-tokens"
        )
    return ledger


def _driver(
    policy: Policy | AdaptivePolicy,
    items: list[Item],
    questions: pl.DataFrame,
    options: RunOptions,
    template: str | None,
    per_request: int,
    unit: str,
    ledger: Ledger | None,
) -> Driver:
    kw: dict[str, Any] = {
        "items": items,
        "options": options.sample,
        "template": template,
        "per_request": per_request,
        "unit": unit,
        "budget": options.budget,
        "ledger": ledger,
    }
    if isinstance(policy, AdaptivePolicy):
        return AdaptiveDriver(policy, **kw)
    ks, _ = _ks(policy)
    texts = [it.problem["question"] for it in items]
    metas = [it.meta for it in items]
    scores = policy.scores(texts, metas)
    mu = policy.calibrated_mu(texts, options.budget, metas)
    return StaticDriver(policy, scores, mu, ks, **kw)


async def _uniform(
    backend: Backend,
    driver: Driver,
    questions: pl.DataFrame,
    so: SampleOptions,
    template: str | None,
    params: dict[str, Any],
    inputs: dict[str, Path],
    gold: dict[str, dict[str, Any]],
    samples_out: Path,
    cap: int,
    seed: int,
    unit: str,
    per_request: int,
) -> tuple[dict[str, int], SampleResult | None]:
    """Draw what uniform at the policy's realized mean samples still lacks (same folder);
    the plan, and what the drawing did (None: nothing was missing)."""
    items = driver.items
    if isinstance(driver, AdaptiveDriver):
        cap = driver.cap
    cap = max(cap, max(len(it.used) for it in items))
    plan = uniform_plan(items, cap, seed)
    missing = {
        it.pid: [i for i in range(plan[it.pid]) if i not in it.got]
        for it in items
        if any(i not in it.got for i in range(plan[it.pid]))
    }
    if missing:
        log(f"--compare uniform: drawing {sum(map(len, missing.values()))} more samples")
        source = MissingSamples(questions, so, template, missing, per_request)
        sampler = Sampler(
            backend,
            samples_out,
            so,
            params,
            inputs,
            gold,
            _Recorder(source, driver, unit),
            "uniform",
        )
        await sampler.run()
        if sampler.stop:
            warn(f"--compare uniform: stopped ({sampler.stop[0]}); uniform uses what arrived")
        return plan, sampler.result()
    return plan, None


class _Recorder:
    """A source that also files every sample it receives into the driver's items."""

    def __init__(self, source: MissingSamples, driver: Driver, unit: str) -> None:
        self.source, self.driver, self.unit = source, driver, unit
        self.total = source.total

    async def next(self) -> Any:
        return await self.source.next()

    def received(self, request: Any, rows: list[dict[str, Any]]) -> int:
        it = self.driver.by_pid[request.problem_id]
        for row in rows:
            if row.get("error") is None:
                it.got[int(row["sample_idx"])] = to_got(row, it.problem["grader"], self.unit)
        return self.source.received(request, rows)

    def status(self, stats: Any) -> str:
        return self.source.status(stats)

    def settled(self) -> int:
        return self.source.settled()

    def close(self) -> None:
        self.source.close()


def describe(result: RunResult) -> str:
    """The end-of-run summary line."""
    acc = (
        ""
        if result.accuracy is None
        else f", accuracy {result.accuracy:.4f} on {result.labeled} labeled"
    )
    line = (
        f"{result.policy} policy: {result.answered}/{result.questions} questions answered"
        f"{acc}; mean cost {result.mean_cost:.4g} {result.cost_unit} per question (budget "
        f"{result.budget:g}{', hard' if result.hard_budget else ''})"
        + (
            ""
            if result.cost_unit == "samples"
            else f", {result.mean_samples:.3g} samples per question"
        )
        + f"; drew {result.drawn} samples"
        f"{f' (and {result.uniform_drawn} for uniform)' if result.uniform_drawn else ''}; "
        f"wrote {result.out}, samples in {result.samples_out}"
    )
    if result.cut_by_budget:
        line += f"; {result.cut_by_budget} cut short by the hard budget"
    short = result.questions - result.complete - result.cut_by_budget
    if short > 0:
        line += f"; {short} cut short (rerun to complete)"
    if result.stopped:
        line += f"; stopped: {result.stopped}"
    c = result.comparison
    if c:
        lo, hi = c["interval"]
        line += (
            f"\ncompare uniform on {c['questions']} labeled questions: policy "
            f"{c['policy_accuracy']:.4f} ({c['policy_samples']:.3g} samples) vs uniform "
            f"{c['uniform_accuracy']:.4f} ({c['uniform_samples']:.3g} samples), difference "
            f"{c['difference']:+.4f} [{lo:+.4f}, {hi:+.4f}] (paired bootstrap 95%): "
            + (
                "the policy scores as uniform does on every question"
                if c["verdict"] == SAME
                else f"the policy is {c['verdict']}"
                + (
                    f" (with {c['questions']} questions only large differences show)"
                    if c["questions"] < SMALL_TEST
                    else ""
                )
            )
        )
    return line
