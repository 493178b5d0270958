"""Hostile fakes for the hostile trials: batch output files that are garbled, batches the
provider fails as a whole, and a chat endpoint whose answer never ends."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fake_openai import FakeBatches, FakeServer


class GarbledBatches(FakeBatches):
    """Batches whose output files are hostile, on the first run of each batch: garbage lines
    (bytes that are not UTF-8 among them),
    the first line twice, a line of a custom id no request has, the second line dropped (its
    request has no result), the third line's usage garbled (prompt tokens a string,
    completion tokens negative) and the fourth line's content a number.  ``dropped``,
    ``garbled`` and ``textless`` name the second, third and fourth lines' custom ids of the
    first batch."""

    def __init__(self, server: FakeServer) -> None:
        super().__init__(server)
        self.dropped: str | None = None
        self.garbled: str | None = None
        self.textless: str | None = None

    def run(self, batch: dict[str, Any]) -> None:
        super().run(batch)
        fid = batch.get("output_file_id")
        if not fid or self.dropped is not None:
            return
        name, content = self.files[fid]
        rows = [json.loads(x) for x in content.decode().splitlines()]
        self.dropped, self.garbled = rows[1]["custom_id"], rows[2]["custom_id"]
        self.textless = rows[3]["custom_id"]
        rows[2]["response"]["body"]["usage"] = {"prompt_tokens": "many", "completion_tokens": -7}
        rows[3]["response"]["body"]["choices"][0]["message"]["content"] = 5
        stranger = {**rows[0], "custom_id": "no-such-problem#0"}
        kept = [rows[0], rows[0], stranger, *rows[2:]]
        text = "".join(json.dumps(r) + "\n" for r in kept)
        self.files[fid] = (name, b"\xff\xfe not UTF-8\nnot json\n[1, 2]\n" + text.encode())


class FailingBatches(FakeBatches):
    """Batches the provider fails as a whole, every time (as a batch whose input does not
    validate): status ``failed``, no output or error file, the reason in ``errors``."""

    def run(self, batch: dict[str, Any]) -> None:
        batch["status"] = "failed"
        batch["errors"] = {
            "object": "list",
            "data": [{"code": "invalid_model", "message": "no such model"}],
        }


class EndlessAnswer(BaseHTTPRequestHandler):
    """A chat endpoint whose answer never ends: a JSON string of spaces sent as fast as the
    client reads it, without Content-Length (for clients that must stop reading)."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        self.end_headers()
        chunk = b" " * (1 << 20)
        try:
            self.wfile.write(b'{"choices": [{"message": {"content": "')
            while True:
                self.wfile.write(chunk)
        except OSError:  # the client hung up
            pass


@contextmanager
def endless_answer() -> Iterator[str]:
    """A local endpoint answering every chat request endlessly (:class:`EndlessAnswer`); its
    base URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), EndlessAnswer)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()
