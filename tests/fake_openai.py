"""A local OpenAI-compatible chat server that can inject faults, for sampler tests.

Faults are scripted per request number (1-based, counted across the whole server) or per call
pattern: ``faults={3: "429", 5: "500", 7: "hang", 9: "malformed", 11: "short"}``.  Answers are
"#### <answer>" where the answer is read from the question ("What is A+B?" gives A+B), so graded
correctness is predictable.  Asked for ``logprobs``, it returns one per word of the answer: -0.1
when the answer is right, -1.5 when ``wrong_every`` made it wrong (``logprobs="reject"``: a 400
naming the parameter, as providers without log-probs do; ``"null"``: ``logprobs: null``).
``echo=True`` makes it a careless server: every completion, and the "echo500" fault's error
message, repeats the bearer key and the query string it was sent.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeServer:
    def __init__(
        self,
        faults: dict[int, str] | None = None,
        hang_s: float = 5.0,
        wrong_every: int = 0,
        delay_s: float = 0.0,
        logprobs: str = "ok",
        fault_all: str | None = None,
        tokens_per_char: float = 0.0,
        no_usage: bool = False,
        echo: bool = False,
    ) -> None:
        self.echo = echo
        self.faults = dict(faults or {})
        self.logprobs = logprobs
        self.fault_all = fault_all  # the fault of every request
        self.tokens_per_char = tokens_per_char  # prompt tokens reported per prompt character
        self.no_usage = no_usage  # report no usage at all
        self.delay_s = delay_s
        self.hang_s = hang_s
        self.wrong_every = wrong_every
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.httpd: ThreadingHTTPServer | None = None

    @property
    def base(self) -> str:
        assert self.httpd is not None
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def answer(self, content: str, index: int) -> str:
        m = re.search(r"(\d+)\s*\+\s*(\d+)", content)
        value = int(m.group(1)) + int(m.group(2)) if m else 0
        if self.wrong_every and index % self.wrong_every == 1:
            value += 1
        return f"Adding gives {value}.\n#### {value}"

    def completion_tokens(self, content: str, n: int) -> int:
        """Completion tokens reported for ``n`` choices of a request about ``content``."""
        return 8 * n

    def token_logprobs(self, text: str, index: int) -> dict[str, Any] | None:
        if self.logprobs == "null":
            return None
        wrong = bool(self.wrong_every) and index % self.wrong_every == 1
        value = -1.5 if wrong else -0.1
        content = [
            {"token": w, "logprob": value, "bytes": None, "top_logprobs": []} for w in text.split()
        ]
        return {"content": content}


def _handler(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            payload = json.loads(self.rfile.read(length) or b"{}")
            with server.lock:
                server.requests.append(payload)
                number = len(server.requests)
            fault = server.fault_all or server.faults.get(number)
            auth = self.headers.get("Authorization") or ""
            echoed = f"key {auth.removeprefix('Bearer ').strip()} query {self.path}"
            if fault == "echo500":
                message = json.dumps({"error": {"message": f"boom for {echoed}", "type": "x"}})
                self._send(500, message.encode())
                return
            if fault == "403":
                self._send(403, b'{"error": {"message": "forbidden", "type": "permission"}}')
                return
            if fault == "429":
                self._send(
                    429,
                    b'{"error": {"message": "rate limited", "type": "rate_limit"}}',
                    {"Retry-After": "0.2"},
                )
                return
            if fault == "500":
                self._send(500, b'{"error": {"message": "boom", "type": "server_error"}}')
                return
            if fault == "401":
                self._send(
                    401,
                    b'{"error": {"message": "Incorrect API key provided: sk-secret1234567890", "type": "invalid_request_error", "code": "invalid_api_key"}}',
                )
                return
            if fault == "hang":
                time.sleep(server.hang_s)
            if server.delay_s:
                time.sleep(server.delay_s)
            if fault == "malformed":
                self._send(200, b'{"choices": [ this is not json')
                return
            if payload.get("logprobs") and server.logprobs == "reject":
                self._send(
                    400,
                    b'{"error": {"message": "logprobs is not supported with this model", '
                    b'"type": "invalid_request_error", "param": "logprobs"}}',
                )
                return
            n = int(payload.get("n") or 1)
            if fault == "short":
                n = max(1, n - 1)
            content = payload["messages"][-1]["content"]
            chars = sum(len(m["content"]) for m in payload["messages"])
            prompt = int(chars * server.tokens_per_char) if server.tokens_per_char else 20
            choices = []
            for i in range(n):
                text = server.answer(content, number + i)
                if server.echo:
                    text = f"Hello {echoed}; {auth}.\n{text}"
                choice: dict[str, Any] = {
                    "index": i,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text},
                }
                if payload.get("logprobs"):
                    choice["logprobs"] = server.token_logprobs(text, number + i)
                choices.append(choice)
            completion = server.completion_tokens(content, n)
            body = {
                "id": f"chatcmpl-{number}",
                "object": "chat.completion",
                "created": 0,
                "model": payload.get("model", "fake"),
                "choices": choices,
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            }
            if server.no_usage:
                del body["usage"]
            self._send(200, json.dumps(body).encode())

    return Handler


class ReasoningServer(FakeServer):
    """(``ttcalloc serve``'s tests) A model that reasons at length and disagrees with itself:
    completions as long as the simulated backend's (longer for longer questions), and answers
    to questions without ``A+B`` spread over a few values by request number, so that an
    adaptive policy trained on the simulated backend sees samples like its training ones."""

    def answer(self, content: str, index: int) -> str:
        if re.search(r"\d+\s*\+\s*\d+", content):
            return super().answer(content, index)
        value = len(content) % 97 + (index % 3 if index % 4 == 0 else 0)
        return f"Let me work through this step by step.\n#### {value}"

    def completion_tokens(self, content: str, n: int) -> int:
        return n * (60 + min(120, len(content) // 4))


@contextmanager
def fake_openai(server_class: type[FakeServer] = FakeServer, **kwargs: Any) -> Iterator[FakeServer]:
    server = server_class(**kwargs)
    server.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    server.httpd.daemon_threads = True
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


if __name__ == "__main__":  # a standalone server for subprocess tests: prints its base URL
    import sys

    with fake_openai(delay_s=float(sys.argv[1]) if len(sys.argv) > 1 else 0.0) as srv:
        print(srv.base, flush=True)
        threading.Event().wait()
