"""Token log-probs: parsed from litellm responses."""

from __future__ import annotations

import math
from typing import Any

import pytest

from ttcalloc.backends import Request, SamplingParams
from ttcalloc.backends.litellm_backend import LiteLLMBackend, import_litellm, mean_logprob


def _response(*logprobs: Any) -> Any:
    """A litellm ModelResponse with one choice per ``logprobs`` entry (``...``: key left out)."""
    from litellm.types.utils import ModelResponse

    choices = []
    for i, lp in enumerate(logprobs):
        choice: dict[str, Any] = {
            "index": i,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": f"#### {i}"},
        }
        if lp is not ...:
            choice["logprobs"] = lp
        choices.append(choice)
    usage = {"prompt_tokens": 10, "completion_tokens": 4 * len(choices), "total_tokens": 99}
    return ModelResponse(choices=choices, usage=usage)


def _content(*values: Any) -> dict[str, Any]:
    return {
        "content": [{"token": "t", "logprob": v, "bytes": None, "top_logprobs": []} for v in values]
    }


def _parsed(*logprobs: Any) -> list[float | None]:
    import_litellm()
    backend = LiteLLMBackend("openai/x", SamplingParams(price_in=0.0, price_out=0.0))
    request = Request("p", 0, len(logprobs), [{"role": "user", "content": "q"}], seed=1)
    return [c.mean_logprob for c in backend._parse(_response(*logprobs), request)]


def test_each_choice_gets_the_mean_of_its_own_tokens() -> None:
    got = _parsed(_content(-0.5, -1.5), _content(-2.0), ...)
    assert got == [pytest.approx(-1.0), pytest.approx(-2.0), None]


@pytest.mark.parametrize(
    ("logprobs", "expected"),
    [
        (None, None),  # asked but not given
        ({"content": None}, None),
        ({"content": []}, None),
        ({"content": "not a list"}, None),
        ({"refusal": None}, None),
        (_content(None, -1.0), -1.0),  # a token without a number is left out (litellm: a dict)
        (_content(float("nan"), -3.0), -3.0),
        (_content(-9999.0, -0.25), -0.25),  # OpenAI's "not in the top 20" placeholder
        (_content(True, "x", -2.0), -2.0),
        ({"token_logprobs": [-1.0, None, -2.0]}, -1.5),  # the legacy completions shape
        ("odd", None),
        (42, None),
    ],
)
def test_odd_shapes_give_none_or_the_usable_tokens(logprobs: Any, expected: float | None) -> None:
    assert _parsed(logprobs) == [expected if expected is None else pytest.approx(expected)]


def test_an_object_that_raises_gives_none() -> None:
    class Broken:
        @property
        def content(self) -> list[Any]:
            raise RuntimeError("boom")

    assert mean_logprob(Broken()) is None


def test_mean_of_typed_litellm_logprobs() -> None:
    from litellm.types.utils import ChoiceLogprobs

    typed = ChoiceLogprobs(**_content(-1.0, -2.0, -4.0))
    assert math.isclose(mean_logprob(typed) or 0.0, -7 / 3)
