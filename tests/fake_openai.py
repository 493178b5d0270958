"""A local OpenAI-compatible chat server that can inject faults, for sampler tests.

Faults are scripted per request number (1-based, counted across the whole server) or per call
pattern: ``faults={3: "429", 5: "500", 7: "hang", 9: "malformed", 11: "short"}``.  Answers are
"#### <answer>" where the answer is read from the question ("What is A+B?" gives A+B), so graded
correctness is predictable.  Asked for ``logprobs``, it returns one per word of the answer: -0.1
when the answer is right, -1.5 when ``wrong_every`` made it wrong (``logprobs="reject"``: a 400
naming the parameter, as providers without log-probs do; ``"null"``: ``logprobs: null``).
``echo=True`` makes it a careless server: every completion, and the "echo500" fault's error
message, repeats the bearer key and the query string it was sent.  A prompt asking for a
"Python program" gets one back (```python block, ``ans = <answer>``; ``failing_programs=k``: every
k-th program served raises instead).
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
        failing_programs: int = 0,
    ) -> None:
        self.echo = echo
        self.failing_programs = failing_programs  # every such program raises (0: none)
        self.programs = 0  # programs served
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
        self.batch = FakeBatches(self)  # /v1/files and /v1/batches (below)

    @property
    def base(self) -> str:
        assert self.httpd is not None
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def answer(self, content: str, index: int) -> str:
        m = re.search(r"(\d+)\s*\+\s*(\d+)", content)
        value = int(m.group(1)) + int(m.group(2)) if m else 0
        if self.wrong_every and index % self.wrong_every == 1:
            value += 1
        if "Python program" in content:  # a program-of-thought prompt: a program, not a sum
            with self.lock:  # every k-th program served, whatever order requests arrive in
                self.programs += 1
                fails = bool(self.failing_programs) and self.programs % self.failing_programs == 0
            if fails:
                return "```python\nans = 1 / 0\n```"
            return f"```python\nans = {value}\n```"
        return f"Adding gives {value}.\n#### {value}"

    def completion_tokens(self, content: str, n: int) -> int:
        """Completion tokens reported for ``n`` choices of a request about ``content``."""
        return 8 * n

    def choice(self, i: int, text: str, number: int, logprobs: bool) -> dict[str, Any]:
        """Choice ``i`` of the response to request ``number``, with its log-probs if asked."""
        out: dict[str, Any] = {
            "index": i,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": text},
        }
        if logprobs:
            out["logprobs"] = self.token_logprobs(text, number + i)
        return out

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

        def do_GET(self) -> None:
            server.batch.get(self)

        def do_POST(self) -> None:
            if self.path.startswith(("/v1/files", "/v1/batches")):
                server.batch.post(self)
                return
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
                choices.append(server.choice(i, text, number, bool(payload.get("logprobs"))))
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


# --- the batch API: /v1/files and /v1/batches ------------------------------------------------


class FakeBatches:
    """OpenAI's files and batches endpoints, for ``sample --batch`` tests.

    A batch is ``validating`` when created, ``in_progress`` from its first retrieve, and is run
    (every line answered as the chat endpoint would) at its ``complete_after``-th retrieve,
    unless ``hold`` is set (it then stays in progress).  ``faults`` maps a custom id to
    ``"fail"`` (a 500 in the error file the first time it is submitted), ``"fail-always"``, or
    ``"expire"`` (left unanswered the first time: the batch ends ``expired``, the line in the
    error file as ``batch_expired``).  ``submitted`` lists every custom id of every batch
    created, in order: what a test checks for requests sent twice.  ``refuse`` (an HTTP status,
    e.g. 401) answers every files and batches call with that error.
    """

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.complete_after = 1
        self.hold = False
        self.faults: dict[str, str] = {}
        self.files: dict[str, tuple[str, bytes]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}
        self.submitted: list[str] = []
        self.seen: dict[str, int] = {}
        self.lock = threading.Lock()
        self.refuse: int | None = None

    def refused(self, h: BaseHTTPRequestHandler) -> bool:
        if self.refuse is not None:
            key = (h.headers.get("Authorization") or "").removeprefix("Bearer ")
            message = f"Incorrect API key provided: {key}"
            _json(h, self.refuse, {"error": {"message": message, "type": "invalid_request_error"}})
        return self.refuse is not None

    def post(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length)
        if self.refused(h):
            return
        with self.lock:
            if h.path.rstrip("/") == "/v1/files":
                name, content = _multipart_file(h.headers.get("Content-Type") or "", raw)
                fid = f"file-{len(self.files) + 1}"
                self.files[fid] = (name, content)
                _json(h, 200, self.file_object(fid))
            elif h.path.rstrip("/") == "/v1/batches":
                self.create(h, json.loads(raw or b"{}"))
            else:
                _json(h, 404, {"error": {"message": f"no route {h.path}", "type": "x"}})

    def create(self, h: BaseHTTPRequestHandler, payload: dict[str, Any]) -> None:
        fid = payload.get("input_file_id")
        if fid not in self.files:
            _json(h, 404, {"error": {"message": f"no file {fid}", "type": "invalid_request"}})
            return
        lines = [json.loads(x) for x in self.files[fid][1].decode().splitlines() if x.strip()]
        bid = f"batch_{len(self.batches) + 1}"
        self.submitted += [line["custom_id"] for line in lines]
        self.batches[bid] = {
            "id": bid,
            "object": "batch",
            "endpoint": payload.get("endpoint"),
            "errors": None,
            "input_file_id": fid,
            "completion_window": payload.get("completion_window", "24h"),
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": int(time.time()),
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            "metadata": payload.get("metadata") or {},
        }
        self.polls[bid] = 0
        _json(h, 200, self.batches[bid])

    def get(self, h: BaseHTTPRequestHandler) -> None:
        if self.refused(h):
            return
        path, _, query = h.path.partition("?")
        parts = path.strip("/").split("/")
        with self.lock:
            if parts[:2] == ["v1", "files"] and len(parts) >= 3 and parts[2] in self.files:
                if parts[3:] == ["content"]:
                    body = self.files[parts[2]][1]
                    h.send_response(200)
                    h.send_header("Content-Type", "application/octet-stream")
                    h.send_header("Content-Length", str(len(body)))
                    h.end_headers()
                    h.wfile.write(body)
                else:
                    _json(h, 200, self.file_object(parts[2]))
            elif parts == ["v1", "batches"]:
                _json(h, 200, self.listing(query))
            elif parts[:2] == ["v1", "batches"] and len(parts) == 3 and parts[2] in self.batches:
                _json(h, 200, self.advance(parts[2]))
            else:
                _json(h, 404, {"error": {"message": f"no route {h.path}", "type": "x"}})

    def listing(self, query: str) -> dict[str, Any]:
        args = dict(kv.partition("=")[::2] for kv in query.split("&") if kv)
        ids = sorted(self.batches, key=lambda b: int(b.split("_")[1]), reverse=True)
        if args.get("after") in ids:
            ids = ids[ids.index(args["after"]) + 1 :]
        limit = int(args.get("limit") or 20)
        page = [self.batches[b] for b in ids[:limit]]
        return {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(ids) > limit,
        }

    def file_object(self, fid: str) -> dict[str, Any]:
        name, content = self.files[fid]
        return {
            "id": fid,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": name,
            "purpose": "batch",
            "status": "processed",
        }

    def advance(self, bid: str) -> dict[str, Any]:
        batch = self.batches[bid]
        if batch["status"] in ("validating", "in_progress"):
            self.polls[bid] += 1
            batch["status"] = "in_progress"
            if not self.hold and self.polls[bid] >= self.complete_after:
                self.run(batch)
        return batch

    def run(self, batch: dict[str, Any]) -> None:
        """Answer every line of a batch; write its output and error files."""
        lines = self.files[batch["input_file_id"]][1].decode().splitlines()
        output, errors, expired = [], [], False
        for text in lines:
            if not text.strip():
                continue
            line = json.loads(text)
            cid = line["custom_id"]
            self.seen[cid] = self.seen.get(cid, 0) + 1
            fault = self.faults.get(cid)
            first = self.seen[cid] == 1
            if fault == "expire" and first:
                expired = True
                error = {"code": "batch_expired", "message": "not completed in time"}
                errors.append(
                    {"id": f"r-{cid}", "custom_id": cid, "response": None, "error": error}
                )
            elif fault == "fail-always" or (fault == "fail" and first):
                body = {"error": {"message": "boom", "type": "server_error"}}
                response = {"status_code": 500, "request_id": cid, "body": body}
                errors.append(
                    {"id": f"r-{cid}", "custom_id": cid, "response": response, "error": None}
                )
            else:
                response = {
                    "status_code": 200,
                    "request_id": cid,
                    "body": self.answer(line["body"]),
                }
                output.append(
                    {"id": f"r-{cid}", "custom_id": cid, "response": response, "error": None}
                )
        for kind, rows in (("output_file_id", output), ("error_file_id", errors)):
            if rows:
                fid = f"file-{len(self.files) + 1}"
                content = "".join(json.dumps(r) + "\n" for r in rows).encode()
                self.files[fid] = (f"{batch['id']}-{kind}.jsonl", content)
                batch[kind] = fid
        batch["status"] = "expired" if expired else "completed"
        batch["request_counts"] = {
            "total": len(output) + len(errors),
            "completed": len(output),
            "failed": len(errors),
        }

    def answer(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A chat completion body for one line, as the chat endpoint answers."""
        server = self.server
        with server.lock:
            server.requests.append(payload)
            number = len(server.requests)
        n = int(payload.get("n") or 1)
        content = payload["messages"][-1]["content"]
        choices = []
        for i in range(n):
            text = server.answer(content, number + i)
            choices.append(server.choice(i, text, number, bool(payload.get("logprobs"))))
        usage = {"prompt_tokens": 20, "completion_tokens": 8 * n, "total_tokens": 20 + 8 * n}
        return {
            "id": f"chatcmpl-b{number}",
            "object": "chat.completion",
            "created": 0,
            "model": payload.get("model", "fake"),
            "choices": choices,
            "usage": usage,
        }


def _json(h: BaseHTTPRequestHandler, code: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    h.send_response(code)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)


def _multipart_file(content_type: str, raw: bytes) -> tuple[str, bytes]:
    """The file name and bytes of the ``file`` field of a multipart/form-data body."""
    boundary = content_type.partition("boundary=")[2].strip('"').encode()
    for part in raw.split(b"--" + boundary):
        head, _, body = part.partition(b"\r\n\r\n")
        if b'name="file"' in head:
            name = re.search(rb'filename="([^"]*)"', head)
            return (name.group(1).decode() if name else "upload"), body.removesuffix(b"\r\n")
    raise ValueError("no file field in the upload")


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
