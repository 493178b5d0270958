"""The HTTP application of ``ttcalloc serve`` (Starlette): routes, the key check, errors.

``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /health`` (no key needed) and
``GET /metrics``.  With an API key every route but ``/health`` wants ``Authorization: Bearer
KEY`` (compared in constant time).  Errors are JSON in OpenAI's shape: 400 bad body, 401 key,
404, 405, 413 body too large, 422 a question the replayed samples do not hold, 502 the model
failed, 503 queue full (with Retry-After), 504 timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from ttcalloc.common.console import log
from ttcalloc.common.redact import redact
from ttcalloc.serve.replayed import NotRecorded
from ttcalloc.serve.service import Service
from ttcalloc.serve.windows import LedgerDown, QueueFull, WindowFailed
from ttcalloc.serve.wire import (
    BUDGET_HEADER,
    BadRequest,
    chunks,
    completion,
    error_body,
    parse_body,
    parse_budget,
)

KINDS = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
         405: "invalid_request_error", 413: "invalid_request_error",
         422: "invalid_request_error", 502: "upstream_error",
         503: "overloaded_error", 504: "timeout_error"}  # fmt: skip


def error(status: int, message: str, param: str | None = None, **headers: str) -> JSONResponse:
    body = error_body(message, KINDS.get(status, "server_error"), param)
    return JSONResponse(body, status_code=status, headers=headers or None)


def build_app(service: Service) -> Starlette:
    """The application answering with ``service`` (opened and closed with the app)."""

    def guarded(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def checked(request: Request) -> Response:
            if not service.authorized(request.headers.get("authorization")):
                service.metrics.request(401)
                return error(401, "invalid or missing API key (Authorization: Bearer KEY)")
            return await handler(request)

        return checked

    async def health(request: Request) -> Response:
        return JSONResponse(service.health())

    async def models(request: Request) -> Response:
        model = {"id": service.name, "object": "model", "created": 0, "owned_by": "ttcalloc"}
        return JSONResponse({"object": "list", "data": [model]})

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(service.metrics_text(), media_type="text/plain; version=0.0.4")

    async def chat(request: Request) -> Response:
        started = time.monotonic()
        try:
            raw = await _body(request, service.options.max_body)
            ask = parse_body(raw)
            header = request.headers.get(BUDGET_HEADER)
            own = parse_budget(header, service.served.floor, service.options.request_cap(),
                               service.served.unit)  # fmt: skip
        except BadRequest as exc:
            service.metrics.request(exc.status)
            return error(exc.status, exc.message, exc.param)
        try:
            reply, budget = await asyncio.wait_for(
                service.windows.ask(ask.question, own), service.options.request_timeout or None
            )
        except NotRecorded as exc:  # replay:PATH: not a question its samples hold
            service.metrics.request(422)
            return error(422, str(exc), "messages")
        except QueueFull as exc:
            service.metrics.request(503)
            return error(503, f"the server is busy ({exc}); retry shortly", **{"Retry-After": "1"})
        except LedgerDown as exc:
            service.metrics.request(503)
            return error(503, f"{exc}; not answering until it can", **{"Retry-After": "1"})
        except asyncio.CancelledError:  # stopping, and --shutdown-grace is over
            service.metrics.request(503)
            service.stopped_unanswered += 1
            grace = service.options.shutdown_grace
            return error(503, f"the server is stopping and did not answer within {grace:g} s")
        except asyncio.TimeoutError:
            service.metrics.request(504)
            return error(504, f"not answered within {service.options.request_timeout:g} s")
        except WindowFailed as exc:
            service.metrics.request(502)
            return error(502, redact(f"the model failed: {exc}"))
        if reply.error is not None:
            service.metrics.request(502)
            return error(502, redact(f"the model gave no sample: {reply.error}"))
        body = completion(reply, service.name, budget, service.served.unit, service.served.kind,
                          service.options.sample.model)  # fmt: skip
        service.metrics.request(200, time.monotonic() - started)
        if ask.stream:
            return StreamingResponse(_events(chunks(body)), media_type="text/event-stream")
        return JSONResponse(body)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with service.opened():
            log(f"serving {service.describe()}")
            yield
        if service.cancelled or service.stopped_unanswered:
            log(
                f"stopped: {service.stopped_unanswered} requests in flight got 503 and "
                f"{service.cancelled} windows were cancelled; the ledger is closed"
            )
        else:
            log("stopped: every request in flight was answered and the ledger is closed")

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/v1/models", guarded(models), methods=["GET"]),
        Route("/metrics", guarded(metrics), methods=["GET"]),
        Route("/v1/chat/completions", guarded(chat), methods=["POST"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan,
                     exception_handlers={HTTPException: http_error})  # fmt: skip


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) beyond ``limit`` bytes, whatever Content-Length says."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadRequest(413, f"the body is {declared} bytes, more than the {limit} bytes allowed")
    data = bytearray()
    async for part in request.stream():
        data += part
        if len(data) > limit:
            raise BadRequest(413, f"the body is more than the {limit} bytes allowed")
    return bytes(data)


async def _events(events: list[str]) -> AsyncIterator[str]:
    for e in events:
        yield e
