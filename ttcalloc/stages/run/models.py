"""Several models under one budget: a static policy whose actions are ``MODEL:maj@k``.

- ``--model NAME=SPEC`` (repeatable) names the backend of each of the policy's models (SPEC as
  for one model: ``sim/...``, ``replay:PATH``, ``openai/...`` with ``--api-base``); one plain
  ``--model SPEC`` keeps answering a single-model policy as before.
- Each model's price (dollars per million input and output tokens) comes from ``--price
  NAME=IN,OUT`` / ``--prices FILE`` on ``run``, else the table the policy's costs were counted
  with (:func:`ttcalloc.artifacts.answering.recorded_prices`), else litellm's cost map; a sample
  whose backend reports no dollars is charged its tokens at its model's price.
- The hard budget in dollars reserves each sample at its own model's worst case
  (:func:`dollar_worst`, :class:`ttcalloc.stages.run.ledger.ModelLedger`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ttcalloc.artifacts.answering import recorded_prices
from ttcalloc.artifacts.prices import PriceTable, price_table
from ttcalloc.backends import (
    Backend,
    SamplingParams,
    backend_prefix,
    count_prompt_tokens,
    open_backend,
    open_backends,
    replay_path,
)
from ttcalloc.backends.replay import MODEL_KEY, PREFIX, PROMPT_KEY
from ttcalloc.common.errors import InputError
from ttcalloc.core.actions import CONTROL, action_models
from ttcalloc.learn.adaptive import AdaptivePolicy
from ttcalloc.learn.cascade import CascadePolicy
from ttcalloc.sampler.options import SampleOptions
from ttcalloc.stages.run.kinds import AnyPolicy

SPEC_HINT = "sim/..., replay:PATH, or a litellm model such as openai/... with --api-base"


def split_model_flags(values: Sequence[str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``--model`` values as ``(model, pairs)``: one plain SPEC gives ``(SPEC, ())``; NAME=SPEC
    pairs give a label naming them all (``a=sim/weak, b=sim/strong``) and the pairs.

    A value is a pair when it holds ``=`` and is not itself a ``replay:PATH`` (a path may hold
    ``=``); a pair's SPEC is everything after its first ``=``.
    """
    if not values:
        raise InputError("--model: give the model (SPEC), or NAME=SPEC for each of several")
    pairs: list[tuple[str, str]] = []
    plain: list[str] = []
    for v in values:
        if "=" in v and not v.startswith(PREFIX):
            name, spec = (s.strip() for s in v.split("=", 1))
            if not name or CONTROL.search(name) or not spec:
                raise InputError(
                    f"--model {v!r}: expected NAME=SPEC (a model name of the policy, then its "
                    f"backend: {SPEC_HINT})"
                )
            if name in dict(pairs):
                raise InputError(f"--model {v!r}: model {name!r} is given twice")
            pairs.append((name, spec))
        else:
            plain.append(v)
    if plain and (pairs or len(plain) > 1):
        raise InputError(
            f"--model {plain[-1]!r}: several --model flags name one backend each: give each as "
            "NAME=SPEC (NAME a model of the policy)"
        )
    if not pairs:
        return plain[0], ()
    return model_label(pairs), tuple(pairs)


def model_label(pairs: Sequence[tuple[str, str]]) -> str:
    """One string naming every model and its backend (the samples' params, logs)."""
    return ", ".join(f"{name}={spec}" for name, spec in pairs)


@dataclass(frozen=True)
class ModelPlan:
    """Which backend answers each of the policy's models, and each model's price."""

    specs: dict[str, str]  # policy model name -> backend model string, in the policy's order
    prices: PriceTable

    @property
    def names(self) -> list[str]:
        return list(self.specs)

    def price_pairs(self) -> dict[str, tuple[float, float]]:
        """Dollars per million prompt and completion tokens of each model with a price."""
        out = {}
        for name in self.specs:
            p = self.prices.get(name)
            if p is not None:
                out[name] = (p.input, p.output)
        return out

    def replayed(self) -> dict[str, Path]:
        """The samples each ``replay:PATH`` model serves (inputs of the run)."""
        out = {}
        for name, spec in self.specs.items():
            path = replay_path(spec)
            if path is not None:
                out[name] = path
        return out

    def params(self, base: SamplingParams) -> dict[str, SamplingParams]:
        """Each model's backend parameters: ``base`` with the model's price (the backend
        charges tokens at it) and, for ``replay:``, which model of the file to serve."""
        out = {}
        for name, spec in self.specs.items():
            p = self.prices.get(name)
            extra = base.extra
            if replay_path(spec):
                extra = {**base.extra, MODEL_KEY: name}
                if p is not None and p.prompt_tokens is not None:
                    extra[PROMPT_KEY] = p.prompt_tokens
            out[name] = replace(
                base,
                price_in=p.input if p else None,
                price_out=p.output if p else None,
                extra=extra,
            )
        return out


def plan_models(
    policy_models: list[str],
    pairs: Sequence[tuple[str, str]],
    model: str,
    table: PriceTable | None,
) -> ModelPlan | None:
    """The backends of a multi-model policy (None: a single-model policy on ``--model SPEC``).

    Raises:
        InputError: one line: pairs for a single-model policy, one plain SPEC for several
            models, a model of the policy without ``--model NAME=SPEC``, or a NAME the policy
            does not have.
    """
    if not policy_models:
        if pairs:
            raise InputError(
                f"--model {pairs[0][0]}={pairs[0][1]}: the policy answers with one model (its "
                "actions are maj@k); give --model SPEC"
            )
        return None
    names = ", ".join(policy_models)
    if not pairs:
        raise InputError(
            f"--model {model}: the policy chooses among {len(policy_models)} models ({names}); "
            "give --model NAME=SPEC for each"
        )
    specs = dict(pairs)
    for name in specs:
        if name not in policy_models:
            raise InputError(f"--model {name}={specs[name]}: the policy has no model {name!r} "
                             f"(its models: {names})")  # fmt: skip
    for name in policy_models:
        if name not in specs:
            raise InputError(
                f"--model: no backend for the policy's model {name!r}; give --model "
                f"{name}=SPEC ({SPEC_HINT})"
            )
    return ModelPlan({m: specs[m] for m in policy_models}, table or PriceTable())


@dataclass(frozen=True)
class PriceFlags:
    """``--price MODEL=IN,OUT`` (repeated), ``--prices FILE``, ``--prompt-tokens MODEL=N``."""

    prices: tuple[str, ...] = ()
    file: Path | None = None
    prompt_tokens: tuple[str, ...] = ()


def policy_models(policy: AnyPolicy) -> list[str]:
    """The models a policy chooses among: a cascade's, a static policy's ``MODEL:maj@k``
    actions' ([]: one model)."""
    if isinstance(policy, CascadePolicy):
        return list(policy.models)
    return [] if isinstance(policy, AdaptivePolicy) else action_models(policy.actions)


def plan_for(
    policy: AnyPolicy,
    pairs: Sequence[tuple[str, str]],
    model: str,
    flags: PriceFlags,
    policy_path: Path,
) -> ModelPlan | None:
    """The backends and prices of ``policy``'s models (None: a single-model policy): the
    ``--model NAME=SPEC`` pairs, each model priced by :func:`prices_for` (``run`` and ``serve``
    alike)."""
    names = policy_models(policy)
    table = None
    if names and pairs:
        unknown_priced(flags, names, "the policy")
        table = prices_for(
            names, flags.prices, flags.file, flags.prompt_tokens, policy.info, policy_path
        )
    return plan_models(names, pairs, model, table)


def prices_for(
    models: list[str],
    flags: Sequence[str],
    file: Path | None,
    prompt_tokens: Sequence[str],
    info: dict[str, Any],
    policy_path: Path,
) -> PriceTable:
    """Each model's price: ``--price``/``--prices`` first, then the table the policy recorded,
    then litellm's cost map (looked up only for the models still without one)."""
    given = price_table(flags, file, prompt_tokens)
    recorded = recorded_prices(info, Path(policy_path) / "policy.json")
    where = f"{Path(policy_path) / 'policy.json'}: its curves' prices"
    table = (PriceTable.from_json(recorded, where) if recorded else PriceTable()).merged(given)
    from ttcalloc.backends.prices import complete  # litellm only for a model still unpriced

    return complete(table, models)


def prompts_sent(model: str, plan: ModelPlan | None) -> bool:
    """Whether some model is asked with prompts (False: ``replay:PATH`` alone, which serves
    recorded samples drawn with their own prompts)."""
    return replay_path(model) is None and (plan is None or len(plan.replayed()) < len(plan.specs))


def open_for(
    model: str, base: SamplingParams, plan: ModelPlan | None, dollars: bool = False
) -> contextlib.AbstractAsyncContextManager[Backend]:
    """The backend of ``--model SPEC``, or one per model of ``plan`` behind one (``dollars``:
    a sample that has no dollar cost and no price to count one is an error); ``run`` and
    ``serve`` alike."""
    if plan is None:
        return open_backend(model, base)
    return open_backends(plan.specs, plan.params(base), plan.price_pairs(), dollars)


def dollar_worst(
    plan: ModelPlan, messages: Sequence[list[dict[str, str]]], max_tokens: int
) -> dict[str, float]:
    """The most one sample of each model may cost in dollars: its longest prompt among
    ``messages`` (litellm's tokenizer, never under 4 characters a token) and ``max_tokens``
    completion tokens, at the model's price (every model has one)."""
    out = {}
    for name, spec in plan.specs.items():
        price = plan.prices.require([name])[name]
        counter = spec if backend_prefix(spec) == "litellm" else name
        prompt = max(count_prompt_tokens(counter, m) for m in messages)
        out[name] = (prompt * price.input + max_tokens * price.output) / 1e6
    return out


def one_model_price(so: SampleOptions, flags: PriceFlags) -> SampleOptions:
    """One model: a ``--price``/``--prices`` entry for the ``--model`` string is its price (as
    ``--price-in``/``--price-out``, which win)."""
    if not (flags.prices or flags.file):
        return so
    price = price_table(flags.prices, flags.file, flags.prompt_tokens).get(so.model)
    if price is None:  # refused once the policy is known to be on one model (unpriced)
        return so
    if so.price_in is not None or so.price_out is not None:
        return so
    return replace(so, price_in=price.input, price_out=price.output)


def unpriced(model: str, flags: PriceFlags) -> None:
    """One model and prices given, none of them for the ``--model`` string: one line."""
    if not (flags.prices or flags.file):
        return
    table = price_table(flags.prices, flags.file, flags.prompt_tokens)
    if table.get(model) is None:
        raise InputError(
            f"--price: no price for model {model!r} among {', '.join(sorted(table.prices))}; "
            f"give --price {model}=IN,OUT"
        )
    unknown_priced(flags, [model], "the run")


def unknown_priced(flags: PriceFlags, models: Sequence[str], whose: str) -> None:
    """A ``--price NAME=IN,OUT`` or ``--prompt-tokens NAME=N`` naming none of ``models`` (a
    typo would go unused): one line.  A ``--prices`` file may price other models too (a shared
    table)."""
    for flag, values in (("--price", flags.prices), ("--prompt-tokens", flags.prompt_tokens)):
        for value in values:
            name = value.rpartition("=")[0].strip()
            if name and name not in models:
                its = "its models" if len(models) > 1 else "its model"
                raise InputError(
                    f"{flag} {value}: {whose} has no model {name!r} ({its}: {', '.join(models)})"
                )
