"""The limits a run keeps to: requests and tokens per minute, and ``--max-cost``."""

from __future__ import annotations

import asyncio
import collections
import time


class RateLimiter:
    """Requests and tokens per minute, over a sliding 60 s window."""

    def __init__(self, rpm: float | None, tpm: float | None) -> None:
        self.rpm, self.tpm = rpm, tpm
        self.events: collections.deque[tuple[float, float]] = collections.deque()
        self.lock = asyncio.Lock()

    async def acquire(self, tokens: float) -> None:
        if self.rpm is None and self.tpm is None:
            return
        async with self.lock:
            while True:
                now = time.monotonic()
                while self.events and now - self.events[0][0] >= 60.0:
                    self.events.popleft()
                used = sum(t for _, t in self.events)
                ok_r = self.rpm is None or len(self.events) < self.rpm
                ok_t = self.tpm is None or used + tokens <= self.tpm or not self.events
                if ok_r and ok_t:
                    self.events.append((now, tokens))
                    return
                await asyncio.sleep(max(0.01, 60.0 - (now - self.events[0][0])))


class CostGuard:
    """``--max-cost``: stop cleanly before spending more than ``max_cost`` dollars.

    With prices known (``worst``, one sample's worst-case cost), a request is sent only if the
    dollars spent, plus the worst case of the requests in flight and of this one, stay within the
    cap.  Without them, the run stops once the reported costs reach the cap.
    """

    def __init__(self, max_cost: float | None, worst: float | None) -> None:
        self.max_cost, self.worst = max_cost, worst
        self.reserved = 0.0

    def reserve(self, n: int, spent: float) -> bool:
        """Reserve the worst case of ``n`` samples; False when that could exceed the cap."""
        if self.max_cost is None or self.worst is None:
            return True
        need = self.worst * n
        if spent + self.reserved + need > self.max_cost:
            return False
        self.reserved += need
        return True

    def release(self, n: int) -> None:
        """Give back what :meth:`reserve` took once the request is done."""
        if self.max_cost is not None and self.worst is not None:
            self.reserved -= self.worst * n

    def reached(self, spent: float, known: bool) -> bool:
        return self.max_cost is not None and known and spent >= self.max_cost

    def stop_reason(self, spent: float) -> str:
        return f"--max-cost ${self.max_cost:g} reached (${spent:.4f} spent)"
