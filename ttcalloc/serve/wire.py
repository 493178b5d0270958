"""The OpenAI chat-completions wire format: a request's question, the reply, errors, chunks.

The question is the last user message (text, or the text parts of a list); ``n`` must be 1;
``stream`` streams the final answer.  Errors are OpenAI's shape:
``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

from ttcalloc.serve.answering import Reply

BUDGET_HEADER = "x-ttcalloc-budget"


class BadRequest(Exception):
    """A request the server cannot answer: its status, message and offending parameter."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param = status, message, param


def error_body(message: str, kind: str, param: str | None = None, code: str | None = None) -> Any:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


@dataclass(frozen=True)
class Ask:
    """What a chat-completions request asks: the question, streaming, the model it named."""

    question: str
    stream: bool
    model: str | None


def parse_body(raw: bytes) -> Ask:
    """The question of a chat-completions body; :class:`BadRequest` (400) otherwise."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(400, f"the body is not JSON: {exc}") from None
    except RecursionError:  # arrays or objects nested thousands deep
        raise BadRequest(400, "the body is not JSON this server reads: nested too deep") from None
    if not isinstance(body, dict):
        raise BadRequest(400, "the body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest(400, "messages: a non-empty list of messages is required", "messages")
    question = None
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise BadRequest(400, f"messages[{i}]: an object with a role is expected", "messages")
        if m["role"] == "user":
            question = _text(m.get("content"), i)
    if question is None or not question.strip():
        raise BadRequest(400, "messages: no user message with text (the question)", "messages")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise BadRequest(400, "model: a string is expected", "model")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest(400, "stream: true or false is expected", "stream")
    n = body.get("n", 1)
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n != 1):
        raise BadRequest(400, "n: only 1 is supported (the policy decides the samples)", "n")
    return Ask(question=question, stream=stream, model=model)


def _text(content: Any, i: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        texts = [p for p in parts if isinstance(p, str)]
        if texts and len(texts) == len(parts):
            return "\n".join(texts)
    raise BadRequest(400, f"messages[{i}].content: text or a list of text parts", "messages")


def parse_budget(text: str | None, floor: float, cap: float, unit: str) -> float | None:
    """The budget header: a mean cost for this request, within ``[floor, cap]``."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise BadRequest(400, f"{BUDGET_HEADER}: {text!r} is not a number") from None
    if not math.isfinite(value) or value < floor - 1e-12 or value > cap + 1e-12:
        raise BadRequest(
            400, f"{BUDGET_HEADER}: {text} is outside [{floor:g}, {cap:g}] {unit} per request"
        )
    return value


def completion(
    reply: Reply, model: str, budget: float, unit: str, kind: str, upstream: str
) -> dict[str, Any]:
    """The chat.completion object of a reply, with the ``ttcalloc`` extension field."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.content or ""},
                "finish_reason": "stop",
            }
        ],
        "usage": usage(reply),
        "ttcalloc": extension(reply, budget, unit, kind, upstream),
    }


def usage(reply: Reply) -> dict[str, int]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


def extension(reply: Reply, budget: float, unit: str, kind: str, upstream: str) -> dict[str, Any]:
    return {
        "answer": reply.answer,
        "samples": reply.samples,
        "failed_samples": reply.failed,
        "models": reply.models or {upstream: reply.samples},
        "votes": reply.votes,
        "cost": reply.cost,
        "cost_unit": unit,
        "budget": budget,
        "policy": kind,
        "action": reply.action,
        "complete": reply.complete,
    }


def chunks(body: dict[str, Any], piece: int = 64) -> list[str]:
    """The server-sent events of a streamed reply: the role, the answer in pieces, the
    finish with usage and the extension, then ``[DONE]``."""
    content = body["choices"][0]["message"]["content"]
    base = {k: body[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}

    def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return f"data: {json.dumps(base | {'choices': [choice]} | extra)}\n\n"

    out = [event({"role": "assistant", "content": ""})]
    out += [event({"content": content[i : i + piece]}) for i in range(0, len(content), piece)]
    out.append(event({}, "stop", usage=body["usage"], ttcalloc=body["ttcalloc"]))
    out.append("data: [DONE]\n\n")
    return out
