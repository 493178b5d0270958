"""The simulated backend (``--model sim/<skill>``): fake but structured samples, no network.

Difficulty model (documented so results can be checked against it):

- Each problem has a latent difficulty ``d = 1.2 * (log(1 + chars) - 5) + 0.8 * digits_z + e``
  where ``chars`` is the question length, ``digits_z`` a standardized count of digits in it and
  ``e ~ N(0, 1)`` drawn from a hash of the problem id.  Longer, number-heavier questions are
  harder, so cheap text features carry real (but partial) signal.
- A model has a skill ``s``: ``sim/weak`` = -1, ``sim/medium`` = 0.5, ``sim/strong`` = 2, or a
  number (``sim/1.3``).  A sample is correct with probability ``sigmoid(1.7 * (s - d))``.
- Wrong answers cluster: each problem has five plausible wrong answers (off by one, doubled,
  halved, ...) drawn with weights 0.45, 0.25, 0.15, 0.1, 0.05; 4% of samples give no answer.
- Completion tokens grow with difficulty: ``60 + 120 * sigmoid(d) + noise``; prompt tokens are the
  prompt's characters / 4.  ``--max-tokens`` is honoured as a server would: a completion that
  would be longer is cut at ``max_tokens`` (finish reason ``length``) before its final answer,
  so the sample has no answer.
- A prompt that asks for a Python program setting ``ans`` (the built-in program prompt,
  ``--prompt-variant NAME=program``) gets one: ``ans = '<answer>'`` in a python block.
- Each request yields to the event loop once (as a network call would), so Ctrl-C and SIGTERM
  are seen between requests.

Everything is a deterministic function of (seed, problem id, model, sample index).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import re
from collections.abc import AsyncIterator

import numpy as np

from ttcalloc.backends.base import Backend, Choice, Request, SamplingParams
from ttcalloc.backends.registry import register
from ttcalloc.common.errors import InputError
from ttcalloc.text import grading

PROGRAM_ASK = "variable named `ans`"  # in the built-in program prompt (text.variants)
SKILLS = {"weak": -1.0, "medium": 0.5, "strong": 2.0}
WRONG_WEIGHTS = np.array([0.45, 0.25, 0.15, 0.1, 0.05])
ABSTAIN = 0.04


def _rng(*parts: object) -> np.random.Generator:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return np.random.default_rng(int.from_bytes(digest, "big"))


def skill_of(model: str) -> float:
    name = model.split("/", 1)[1] if "/" in model else model
    if name in SKILLS:
        return SKILLS[name]
    try:
        return float(name)
    except ValueError:
        raise InputError(
            f"--model {model!r}: simulated skill must be weak, medium, strong or a number"
        ) from None


def difficulty(problem_id: str, question: str) -> float:
    """The latent difficulty of a problem (see the module docstring)."""
    digits = len(re.findall(r"\d", question))
    digits_z = (digits - 6.0) / 4.0
    noise = _rng("difficulty", problem_id).normal()
    return 1.2 * (math.log1p(len(question)) - 5.0) + 0.8 * digits_z + noise


def wrong_answers(problem_id: str, gold: str) -> list[str]:
    """Five plausible wrong answers for a problem, most likely first."""
    value = grading.parse_number(gold)
    if value is None:
        return [f"{gold} + {j}" for j in range(1, 6)]
    cands = [value + 1, value - 1, value * 2, value / 2 if value else 7, value + 10, value * 10]
    out: list[str] = []
    for c in cands:
        text = grading.format_number(c)
        if text != grading.format_number(value) and text not in out:
            out.append(text)
    order = _rng("wrong", problem_id).permutation(len(out))
    return [out[i] for i in order][:5]


class SimulatedBackend:
    """Draws samples from the difficulty model; instant and deterministic."""

    simulated = True
    max_n = 64

    def __init__(self, model: str, params: SamplingParams) -> None:
        self.name = model
        self.params = params
        self.skill = skill_of(model)

    def sample(self, request: Request, idx: int, seed: int) -> Choice:
        d = difficulty(request.problem_id, request.question)
        rng = _rng("sample", seed, request.problem_id, self.name, idx)
        p = 1.0 / (1.0 + math.exp(-1.7 * (self.skill - d)))
        u = rng.random()
        # an unlabeled question still has a right answer the simulated model may find
        gold = request.answer or str(int(_rng("gold", request.problem_id).integers(2, 1000)))
        if u < ABSTAIN:
            answer = None
        elif rng.random() < p:
            answer = gold
        else:
            wrong = wrong_answers(request.problem_id, gold)
            weights = WRONG_WEIGHTS[: len(wrong)] / WRONG_WEIGHTS[: len(wrong)].sum()
            answer = wrong[int(rng.choice(len(wrong), p=weights))]
        steps = "Let me work through this step by step (simulated)."
        text = f"{steps}\n#### {answer}" if answer is not None else f"{steps} I am not sure."
        if answer is not None and any("\\boxed" in m["content"] for m in request.messages):
            # the prompt asks for the answer in \boxed{} (the math grader's): as a model would
            text = f"{steps}\nThe answer is $\\boxed{{{answer}}}$."
        if any(PROGRAM_ASK in m["content"] for m in request.messages):
            # the prompt asks for a program (a program-of-thought variant): one that sets ans
            text = f"```python\n# {steps}\nans = {answer!r}\n```"
        prompt_chars = sum(len(m["content"]) for m in request.messages)
        completion = int(max(8, 60 + 120 / (1 + math.exp(-d)) + rng.normal(0, 15)))
        prompt = max(1, prompt_chars // 4)
        finish = "stop"
        if completion > self.params.max_tokens:  # cut before the final answer
            completion, finish, text = self.params.max_tokens, "length", f"{steps} So far"
        cost = None
        if self.params.price_in is not None or self.params.price_out is not None:
            cost = (
                prompt * (self.params.price_in or 0) + completion * (self.params.price_out or 0)
            ) / 1e6
        return Choice(text, finish, prompt, completion, cost)

    async def complete(self, request: Request) -> list[Choice]:
        await asyncio.sleep(0)  # let the event loop run (signals, other workers)
        return [
            self.sample(request, request.first_idx + j, request.seed - request.first_idx)
            for j in range(request.n)
        ]


@register("sim")
@contextlib.asynccontextmanager
async def _sim_factory(model: str, params: SamplingParams) -> AsyncIterator[Backend]:
    yield SimulatedBackend(model, params)
