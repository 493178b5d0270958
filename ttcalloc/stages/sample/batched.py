"""``sample_in_batches``: the stage function of ``ttcalloc sample --batch``.

Load (the problems, what the folder holds, the batches its journal holds) -> work out what is
missing and not already in a batch -> submit, re-attach, poll and collect
(:mod:`ttcalloc.sampler.batches`).
"""

from __future__ import annotations

import math
from pathlib import Path

from ttcalloc.artifacts.io import check_output, read_artifact
from ttcalloc.artifacts.schemas import PROBLEMS
from ttcalloc.backends.batch_api import BatchAPI, batch_price, batch_provider, check_base
from ttcalloc.common.console import log
from ttcalloc.common.errors import InputError
from ttcalloc.sampler.batches import BatchOptions, BatchRun, Problem
from ttcalloc.sampler.journal import hold, recover
from ttcalloc.sampler.options import SampleOptions, part_params, sampling_params
from ttcalloc.sampler.parts import done_indices, existing_samples
from ttcalloc.sampler.plan import missing_indices, request_for
from ttcalloc.sampler.result import SampleResult
from ttcalloc.stages.sample.stage import _load_problems
from ttcalloc.text import prompts


def check_batch(options: SampleOptions, batch: BatchOptions) -> tuple[str, str]:
    """Refuse, in one line, what ``--batch`` cannot do; the provider and the model's name."""
    if options.prompt_variants:  # a batch's requests are planned per problem, one prompt each
        raise InputError("--prompt-variant: not with --batch (sample variants per request)")
    if batch.discount is not None and not (math.isfinite(batch.discount) and batch.discount > 0):
        raise InputError(f"--batch-discount {batch.discount}: must be a positive number")
    if not (math.isfinite(batch.poll_seconds) and batch.poll_seconds > 0):
        raise InputError(f"--poll-seconds {batch.poll_seconds}: must be a positive number")
    if batch.max_requests < 1:
        raise InputError(f"--batch-requests {batch.max_requests}: must be at least 1")
    if options.extra_api_bases:  # the others would be ignored: a batch lives at one provider
        raise InputError(
            f"--batch takes one --api-base (given {1 + len(options.extra_api_bases)}): a batch's "
            "files and results live at one endpoint"
        )
    provider, name = batch_provider(options.model)
    check_base(provider, options.api_base)
    return provider, name


def sample_in_batches(
    problems_path: Path, out: Path, options: SampleOptions, batch: BatchOptions
) -> SampleResult:
    """Sample ``options.n`` responses per problem through the provider's batch API into ``out``.

    Resumable like :func:`~ttcalloc.stages.sample.sample_problems`: a rerun (after a kill too)
    re-attaches to the batches the folder's journal holds and submits only what no batch holds.

    Raises:
        InputError: a provider without a batch API ttcalloc drives, bad flags, a journal of
            batches submitted with other settings.
    """
    options.check()
    provider, name = check_batch(options, batch)
    inputs = {"problems": Path(problems_path)}
    out = check_output(out, inputs, folder=True)
    template, prompt_label = prompts.load_template(options.prompt)
    selected = _load_problems(problems_path, options)
    everything = read_artifact(problems_path, PROBLEMS).df  # a journal's batch may hold any
    problems = {
        row["problem_id"]: Problem(
            request_for(options, template, row, 0, 1).messages,
            row["question"],
            row["answer"],
            row["grader"],
        )
        for row in everything.iter_rows(named=True)
    }
    params = part_params(options, prompt_label, template)
    prices = batch_price(options.model, options.price_in, options.price_out, batch.discount)
    sampling = sampling_params(options)
    with hold(out):
        if recovered := recover(out):
            log(f"{out}: {recovered} samples of an interrupted run recovered from its journal")
        done = done_indices(existing_samples(out, options.model, params))
        missing = missing_indices(selected, options.n, done)
        api = BatchAPI(provider, options.api_base, options.timeout, options.retries)
        run = BatchRun(
            api, name, out, options, batch, params, inputs, problems, prices, sampling, done
        )
        return run.run(missing, options.progress)
