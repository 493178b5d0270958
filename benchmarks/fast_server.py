"""A zero-latency OpenAI-compatible chat server (asyncio streams, keep-alive) for benchmarks;
it answers a request for ``n`` choices with ``n`` choices."""

from __future__ import annotations

import asyncio
import json
import re
import sys

N_FIELD = re.compile(rb'"n":\s*(\d+)')


def response(n: int) -> bytes:
    """The whole HTTP answer with ``n`` choices (usage: 30 prompt tokens, 6 per choice); each
    choice's text differs (as sampled reasoning does), so none is graded for free."""

    def choice(i: int) -> dict[str, object]:
        content = f"Step {i}: it is 7.\n#### 7"
        return {
            "index": i,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": content},
        }

    body = json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 0,
            "model": "bench",
            "choices": [choice(i) for i in range(n)],
            "usage": {"prompt_tokens": 30, "completion_tokens": 6 * n, "total_tokens": 30 + 6 * n},
        }
    ).encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    return head + str(len(body)).encode() + b"\r\n\r\n" + body


RESPONSES = {n: response(n) for n in range(1, 65)}


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = await reader.readexactly(length)
            found = N_FIELD.search(body)
            writer.write(RESPONSES[min(64, int(found.group(1))) if found else 1])
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionResetError):
        pass
    finally:
        writer.close()


async def main() -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"http://127.0.0.1:{port}/v1", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
