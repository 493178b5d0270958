"""What ``ttcalloc run`` takes and gives back, and when a rerun has nothing to do."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ttcalloc.artifacts import freshness
from ttcalloc.backends import replay_path
from ttcalloc.common.errors import InputError
from ttcalloc.sampler.journal import pending_journals
from ttcalloc.sampler.options import SampleOptions
from ttcalloc.sampler.result import SampleResult
from ttcalloc.stages.run.units import check_unit_flag


@dataclass(frozen=True)
class RunOptions:
    """Everything ``ttcalloc run`` takes besides the policy, the questions and the output."""

    sample: SampleOptions
    budget: float
    budget_unit: str | None = None  # when given, must be the policy's cost unit
    hard_budget: bool = False
    pace: bool = True  # a cascade re-priced each round to the budget (else calibrated prices)
    compare: str | None = None  # "uniform"
    samples_out: Path | None = None
    question_field: str = "question"
    id_field: str | None = None
    answer_field: str | None = None
    grader: str | None = None  # None: the policy's recorded grader, else auto
    split: str | None = None  # only the questions of this split (a problems table's column)
    seed: int = 0
    # several models: (NAME, SPEC) per model of the policy (``--model NAME=SPEC``); then
    # ``sample.model`` is a label naming them all (``models.model_label``)
    models: tuple[tuple[str, str], ...] = ()
    prices: tuple[str, ...] = ()  # --price MODEL=IN,OUT
    prices_file: Path | None = None  # --prices FILE
    prompt_tokens: tuple[str, ...] = ()  # --prompt-tokens MODEL=N

    def check(self) -> None:
        if self.models:
            # --max-cost is counted at each model's price (checked once the prices are known)
            replace(self.sample, max_cost=None).check()
            self.sample.check_several_models()
            m = self.sample.max_cost
            if m is not None and not (math.isfinite(m) and m > 0):
                raise InputError(f"--max-cost {m}: must be a positive number")
        else:
            self.sample.check()
        if not (math.isfinite(self.budget) and self.budget > 0):
            raise InputError(f"--budget {self.budget}: must be a positive number")
        check_unit_flag(self.budget_unit)
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
    accuracy: float | None  # over ``scored`` labeled questions
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
    stopped: str | None = None  # then accuracy is over the answered labeled questions only
    scored: int = 0  # labeled questions the accuracy is over (all, or the answered ones)
    rounds: list[dict[str, Any]] = field(default_factory=list)  # adaptive: each round's price
    models: dict[str, float] = field(default_factory=dict)  # several: share of questions each
    mean_usd: float | None = None  # several models: mean dollars per question (None: unknown)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self) | {"out": str(self.out), "samples_out": str(self.samples_out)}
        d["sampling"] = self.sampling.to_dict() if self.sampling else None
        return d


def default_samples_out(out: Path) -> Path:
    return out.with_name(f"{out.stem}-samples.parquet")


# options that change how a run draws, not what it answers: not part of its request (the
# client and the replicas beyond the first --api-base: the same model, reached another way)
HOW = ("concurrency", "rpm", "tpm", "timeout", "retries", "progress", "flush_every",
       "flush_seconds", "max_failures", "max_cost", "client", "extra_api_bases")  # fmt: skip


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
    if (replayed := replay_path(options.sample.model)) is not None:
        inputs["replayed samples"] = replayed
    for name, path in replays_of(options.models).items():
        inputs[f"replayed samples of {name}"] = path
    if options.prices_file is not None:
        inputs["prices"] = Path(options.prices_file)
    return freshness.request("run", opts, inputs)


def replays_of(models: tuple[tuple[str, str], ...]) -> dict[str, Path]:
    """The samples each ``NAME=replay:PATH`` model serves."""
    out = {}
    for name, spec in models:
        if (path := replay_path(spec)) is not None:
            out[name] = path
    return out


def up_to_date(policy_path: Path, questions_path: Path, out: Path, options: RunOptions) -> bool:
    """Whether ``out`` was written by a run that finished (nothing stopped it, no request left
    to retry) with the same options, policy, questions and samples: then rerunning would draw
    nothing and answer the same."""
    samples_out = options.samples_out or default_samples_out(Path(out))
    if pending_journals(Path(samples_out)):  # samples of a killed run to fold in
        return False
    return freshness.is_fresh(out, run_request(policy_path, questions_path, samples_out, options))
