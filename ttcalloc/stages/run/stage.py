"""``run_policy``: the stage function of ``ttcalloc run``.

Load (the questions, the policy, the samples the folder already holds: :mod:`.folder`) -> draw
through the shared sampler (:mod:`ttcalloc.sampler`) with the policy deciding what to draw
(:mod:`.static_driver`, :mod:`.adaptive_driver`) -> ``--compare uniform``: draw what uniform at
the realized cost still lacks from the same folder (:mod:`.uniform`) -> write
``answers.parquet`` (:mod:`.write`).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ttcalloc.artifacts import freshness
from ttcalloc.artifacts.io import check_output
from ttcalloc.artifacts.questions import load_questions
from ttcalloc.backends import (
    Backend,
    replay_path,
)
from ttcalloc.backends.replay import check_asked
from ttcalloc.common.console import log, warn
from ttcalloc.common.errors import DataError, InputError
from ttcalloc.core.vote import Ledger
from ttcalloc.learn.adaptive import AdaptivePolicy
from ttcalloc.learn.cascade import CascadePolicy
from ttcalloc.learn.policy import load_policy
from ttcalloc.sampler.journal import hold, hold_file, recover
from ttcalloc.sampler.loop import Sampler, stop_on_signals
from ttcalloc.sampler.options import (
    SampleOptions,
    part_params,
    sampling_params,
    unused_on_replay,
)
from ttcalloc.sampler.options import per_request as choices_per_request
from ttcalloc.sampler.parts import existing_samples
from ttcalloc.sampler.plan import gold_answers
from ttcalloc.sampler.result import SampleResult
from ttcalloc.stages.run.asking import asking, check_grader, grader_for
from ttcalloc.stages.run.budget import (
    dollar_worst_for,
    ledger_for,
    model_ledger,
)
from ttcalloc.stages.run.driver import Driver
from ttcalloc.stages.run.folder import (
    check_questions,
    load_existing,
    refuse_foreign,
    samples_of,
)
from ttcalloc.stages.run.items import Item
from ttcalloc.stages.run.kinds import AnyPolicy, draw_limit, policy_ks
from ttcalloc.stages.run.models import (
    ModelPlan,
    PriceFlags,
    one_model_price,
    open_for,
    plan_for,
    prompts_sent,
    unpriced,
)
from ttcalloc.stages.run.options import (
    RunOptions,
    RunResult,
    default_samples_out,
    replays_of,
    run_request,
)
from ttcalloc.stages.run.sources import make_driver
from ttcalloc.stages.run.uniform import draw_uniform
from ttcalloc.stages.run.units import budget_unit
from ttcalloc.stages.run.write import compare, rows, write_answers

if TYPE_CHECKING:
    pass


def run_policy(
    policy_path: Path, questions_path: Path, out: Path, options: RunOptions
) -> RunResult:
    """Answer every question with ``policy`` on ``options.sample.model`` within the budget.

    Raises:
        InputError: bad flags, a budget below the cheapest action, a policy this cannot run.
        TtcallocError: authentication or unknown-model errors, or a run of failed requests
            (samples received so far are kept; rerun to continue).
    """
    with contextlib.ExitStack() as locks:
        return _run_policy(policy_path, questions_path, out, options, locks)


def _run_policy(
    policy_path: Path,
    questions_path: Path,
    out: Path,
    options: RunOptions,
    locks: contextlib.ExitStack,
) -> RunResult:
    asked = options  # what the run was asked (its freshness request), before prices are applied
    options = _one_model_price(options)
    options.check()
    so = options.sample
    samples_out = options.samples_out or default_samples_out(Path(out))
    inputs = {"policy": Path(policy_path) / "policy.json", "questions": Path(questions_path)}
    if (replayed := replay_path(so.model)) is not None:  # read, never written into
        inputs["replayed samples"] = replayed
    for name, path in replays_of(options.models).items():
        inputs[f"replayed samples of {name}"] = path
    if options.prices_file is not None:
        inputs["prices"] = Path(options.prices_file)
    # the policy folder as a whole is an input: nothing is written inside it
    guarded = inputs | {"policy folder": Path(policy_path)}
    out = check_output(out, guarded)
    samples_out = check_output(samples_out, guarded, folder=True, flag="--samples-out")
    _apart(out, samples_out)
    locks.enter_context(hold_file(out))  # one run writes these answers, whatever its samples
    policy = load_policy(policy_path)
    plan = _plan(policy, options, Path(policy_path))
    if plan is None:
        _unpriced(options)
    unit = budget_unit(
        Path(policy_path), policy.info, options.budget, options.budget_unit, draw_limit(policy)
    )
    questions = load_questions(
        questions_path,
        options.question_field,
        options.id_field,
        options.answer_field,
        grader_for(options.grader, policy.info),
    )
    check_grader(questions, Path(questions_path), policy.info)
    if options.split is not None:
        if "split" not in questions.columns:
            raise InputError(f"--split {options.split}: {questions_path} has no split column")
        questions = questions.filter(questions["split"] == options.split)
    if so.limit is not None:
        questions = questions.head(so.limit)
    if options.split == "test":  # the questions answered: after --limit
        _trained_on(Path(policy_path), policy.info, questions["question"].to_list())
    if questions.height == 0:
        where = f" in split {options.split!r}" if options.split is not None else ""
        raise DataError(f"{questions_path}: no questions{where}")
    for spec in [so.model, *(plan.specs.values() if plan is not None else ())]:
        check_asked(spec, questions)  # replay:PATH serves the questions its samples answer
    if options.compare == "uniform" and plan is not None:
        raise InputError(
            "--compare uniform: the policy chooses among several models; uniform allocation "
            "is on one model (run a single-model policy to compare)"
        )
    if plan is not None:
        # dollars: a replayed sample brings its recorded cost (a price is needed for those
        # without, said when one is served); --max-cost and the hard budget price every model
        priced = so.max_cost is not None or options.hard_budget
        drawn = [m for m in plan.names if priced or m not in plan.replayed()]
        if unit == "usd" or so.max_cost is not None:
            plan.prices.require(drawn, hint=" (--prices FILE)")
    if options.compare == "uniform" and questions["answer"].null_count() == questions.height:
        raise InputError(
            f"--compare uniform: {questions_path} has no gold answers to compare accuracies on"
        )
    metas = policy.metas(questions, Path(questions_path))
    items = [
        Item(problem=row, meta=meta)
        for row, meta in zip(questions.iter_rows(named=True), metas, strict=True)
    ]
    ks, cheapest = policy_ks(policy)
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
    sent = prompts_sent(so.model, plan)
    for line in [] if sent else unused_on_replay(so):  # every model replayed
        warn(line)
    variants, template, prompt_label = asking(
        policy, Path(policy_path), so.prompt_variants, so.prompt, sent
    )
    if variants:  # the policy's prompt variants, drawn in turn as `sample` drew them
        so = replace(so, prompt_variants=variants)
        options = replace(options, sample=so)
    params = part_params(so, prompt_label, template) | {"run_policy": str(policy_path)}
    if plan is not None:  # which backend drew each model's samples (checked on a rerun)
        params["models"] = dict(plan.specs)
    refuse_foreign(samples_out)
    with hold(samples_out):
        if recovered := recover(samples_out):
            log(f"{samples_out}: {recovered} samples of an interrupted run recovered")
        check_questions(samples_out, items)
        existing = existing_samples(samples_out, so.model, params, "--samples-out")
        if plan is not None:  # the samples of the policy's models, whichever run drew them
            existing = samples_of(samples_out, plan.specs)
        load_existing(items, existing, unit, models=plan is not None)
        for it in items:
            it.failed = set()

        async def go() -> tuple[Driver, SampleResult, dict[str, int] | None, SampleResult | None]:
            stop_on_signals()
            async with _open(so, plan, dollars=unit == "usd") as backend:
                shares = getattr(backend, "shares_prompt", False)
                per_request = choices_per_request(so, backend.max_n, shares)
                worst = dollar_worst_for(plan, options, items, template, unit, backend)
                ledger: Ledger | None = None
                if worst is not None:  # several models, a hard budget in dollars
                    checked = model_ledger(options, policy, items, worst)
                    # a cascade's driver holds the budget round by round, once it is checked
                    ledger = None if isinstance(policy, CascadePolicy) else checked
                else:
                    ledger = ledger_for(options, backend, items, template, unit, cheapest[0])
                driver = make_driver(
                    policy, items, questions, options, template, per_request, unit, ledger,
                    worst,
                )  # fmt: skip
                gold = gold_answers(questions, {it.pid: [] for it in items})
                sampler = Sampler(backend, samples_out, so, params, inputs, gold, driver, "run")
                await sampler.run()
                result = sampler.result()
                result = replace(result, requested=result.written + result.errors)
                driver.finish_all()
                uniform, uniform_result = None, None
                if options.compare == "uniform" and not sampler.stop:
                    uniform, uniform_result = await draw_uniform(
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
        request = run_request(policy_path, questions_path, samples_out, asked)
    table = rows(items, uniform, models=plan is not None)
    comparison = compare(table, options.seed) if uniform is not None else None
    kind = (
        "cascade"
        if isinstance(policy, CascadePolicy)
        else "adaptive"
        if isinstance(policy, AdaptivePolicy)
        else "static"
    )
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
                "models": dict(options.models) or None,
                "prices": plan.prices.to_json() if plan is not None else None,
                "budget": options.budget,
                "hard_budget": options.hard_budget,
                "compare": options.compare,
                "samples_out": str(samples_out),
            },
            inputs | {"samples": samples_out},
            extra,
        )
    labeled = [r for r in table if r["gold"] is not None]
    scored = labeled  # a stopped run: questions never answered are not wrong answers
    if sampled.stopped:
        scored = [r for r in labeled if r["final_answer"] is not None]
    return RunResult(
        out=Path(out),
        samples_out=samples_out,
        policy=kind,
        questions=len(table),
        labeled=len(labeled),
        scored=len(scored),
        answered=sum(r["final_answer"] is not None for r in table),
        complete=sum(bool(r["complete"]) for r in table),
        cut_by_budget=sum(
            any(k.startswith("cut_by_hard_budget") for d in it.decisions for k in d) for it in items
        ),
        accuracy=float(np.mean([bool(r["correct"]) for r in scored])) if scored else None,
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
        models=_shares(table) if plan is not None else {},
        mean_usd=_mean_usd(table),
    )


def _trained_on(folder: Path, info: dict[str, Any], questions: list[str]) -> None:
    """Warn (one line) when the policy was trained on some of the test questions it answers."""
    from ttcalloc.artifacts.trained_on import trained_hits

    hit, source = trained_hits(info, folder, questions)
    if hit:
        warn(
            f"the policy was trained on {hit} of the {len(questions)} test questions ({source}): "
            "its answers to them say nothing of new questions"
        )


def _apart(out: Path, samples_out: Path) -> None:
    """``--out`` and ``--samples-out`` neither the same path nor one inside the other (answers
    inside the samples folder would make it unreadable to ``estimate``)."""
    a, s = Path(out).resolve(), Path(samples_out).resolve()
    if a == s:
        raise InputError(f"--samples-out {samples_out}: the same path as --out; give another")
    if s in a.parents:
        raise InputError(
            f"--out {out}: inside --samples-out {samples_out}; the samples folder holds only "
            "samples (estimate reads it), write the answers elsewhere"
        )
    if a in s.parents:
        raise InputError(f"--samples-out {samples_out}: inside --out {out}; give another path")


def _plan(policy: AnyPolicy, options: RunOptions, policy_path: Path) -> ModelPlan | None:
    """The backends and prices of a multi-model policy's models (None: one model)."""
    return plan_for(
        policy,
        options.models,
        options.sample.model,
        PriceFlags(options.prices, options.prices_file, options.prompt_tokens),
        policy_path,
    )


def _open(
    so: SampleOptions, plan: ModelPlan | None, dollars: bool = False
) -> contextlib.AbstractAsyncContextManager[Backend]:
    """The backend of ``--model SPEC``, or one per model of ``plan`` behind one (``dollars``:
    a sample that has no dollar cost and no price to count one stops the run)."""
    return open_for(so.model, sampling_params(so), plan, dollars)


def _shares(table: list[dict[str, Any]]) -> dict[str, float]:
    """The share of questions each model answered (by the model of their action)."""
    models = [r["model"] for r in table if r.get("model")]
    return {m: models.count(m) / len(table) for m in sorted(set(models))} if table else {}


def _mean_usd(table: list[dict[str, Any]]) -> float | None:
    """Mean dollars per question, when every question's samples have a dollar cost."""
    usd = [r.get("cost_usd") for r in table]
    if not table or "cost_usd" not in table[0] or any(u is None for u in usd):
        return None
    return float(np.mean([float(u) for u in usd]))  # type: ignore[arg-type]


def _one_model_price(options: RunOptions) -> RunOptions:
    """One model: a ``--price``/``--prices`` entry for the ``--model`` string is its price (as
    ``--price-in``/``--price-out``, which win)."""
    if options.models:
        return options
    sample = one_model_price(
        options.sample, PriceFlags(options.prices, options.prices_file, options.prompt_tokens)
    )
    return replace(options, sample=sample)


def _unpriced(options: RunOptions) -> None:
    """One model and prices given, none of them for the ``--model`` string: one line."""
    if not options.models:
        unpriced(
            options.sample.model,
            PriceFlags(options.prices, options.prices_file, options.prompt_tokens),
        )
