"""The limits a run keeps to: requests and tokens per minute, and ``--max-cost``."""

from __future__ import annotations

import asyncio
import collections
import time


class RateLimiter:
    """Requests and tokens per minute: requests spaced ``60 / rpm`` seconds apart (so no more
    than ``rpm`` in any minute, and no burst of a minute's worth at the start), and tokens
    counted over a sliding 60 s window."""

    def __init__(self, rpm: float | None, tpm: float | None) -> None:
        self.rpm, self.tpm = rpm, tpm
        self.events: collections.deque[tuple[float, float]] = collections.deque()
        self.lock = asyncio.Lock()
        self.next_at = -float("inf")  # earliest time of the next request under --rpm

    async def acquire(self, tokens: float) -> None:
        if self.rpm is None and self.tpm is None:
            return
        async with self.lock:
            while True:
                now = time.monotonic()
                while self.events and now - self.events[0][0] >= 60.0:
                    self.events.popleft()
                if now < self.next_at:
                    await asyncio.sleep(self.next_at - now)
                    continue
                used = sum(t for _, t in self.events)
                if self.tpm is None or used + tokens <= self.tpm or not self.events:
                    self.events.append((now, tokens))
                    if self.rpm is not None:
                        self.next_at = now + 60.0 / self.rpm
                    return
                await asyncio.sleep(max(0.01, 60.0 - (now - self.events[0][0])))


class CostGuard:
    """``--max-cost``: never send a request whose worst case could take the spend over the cap.

    A request is sent only when the dollars spent, plus the worst case of every request in
    flight, plus its own worst case (prompt tokens as counted, ``max_tokens`` per completion)
    stay within the cap; when they do not but requests are in flight, it waits for them to
    finish and free their reservation.  When nothing is in flight and it still does not fit,
    the cap is reached.  A finished request is charged its reported cost, and samples without
    one are charged their worst case.  Without prices (``worst`` None; ``SampleOptions.check``
    refuses ``--max-cost`` then, so only a library caller gets here) requests go one at a time
    and the run stops once the charged spend reaches the cap: at most one request over.
    """

    def __init__(self, max_cost: float | None) -> None:
        self.max_cost = max_cost
        self.spent = 0.0  # reported costs, and worst cases where none was reported
        self.reserved = 0.0
        self.in_flight = 0
        self.changed = asyncio.Condition()

    async def reserve(self, worst: float | None) -> bool:
        """Reserve a request's worst case, waiting for requests in flight if need be; False
        when the cap is reached (then the request must not be sent)."""
        if self.max_cost is None:
            return True
        async with self.changed:
            while True:
                if self.spent >= self.max_cost:
                    return False
                if worst is None:
                    fits = self.in_flight == 0
                else:
                    fits = self.spent + self.reserved + worst <= self.max_cost
                if fits:
                    self.reserved += worst or 0.0
                    self.in_flight += 1
                    return True
                if self.in_flight == 0:
                    return False
                await self.changed.wait()

    async def settle(self, worst: float | None, charged: float) -> None:
        """A reserved request is done: replace its reservation by what it is charged."""
        if self.max_cost is None:
            return
        async with self.changed:
            self.reserved -= worst or 0.0
            self.in_flight -= 1
            self.spent += charged
            self.changed.notify_all()

    def stop_reason(self) -> str:
        return f"--max-cost ${self.max_cost:g} reached (${self.spent:.4f} spent)"
