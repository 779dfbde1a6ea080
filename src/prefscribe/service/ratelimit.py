"""A per-client limit on failed authentication, so API keys cannot be guessed at speed.

A client (by address) that fails `limit` times within `window` seconds is refused, whatever key it sends
next, until the oldest of those failures is `window` seconds old: answering a right key while refusing
wrong ones would still tell a guesser when it had hit. Counts live in this process; behind a proxy the
address is the proxy's unless uvicorn is told to trust forwarded headers (--forwarded-allow-ips).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable


class FailureLimiter:
    def __init__(self, limit: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 max_clients: int = 100_000) -> None:
        self.limit, self.window, self.clock, self.max_clients = limit, window, clock, max_clients
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures.get(client)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[client]
        return times

    def retry_after(self, client: str) -> int | None:
        """Whole seconds until `client` may try again, or None when it may now."""
        with self._lock:
            now = self.clock()
            times = self._recent(client, now)
            if len(times) < self.limit:
                return None
            return max(1, math.ceil(times[-self.limit] + self.window - now))

    def fail(self, client: str) -> None:
        with self._lock:
            now = self.clock()
            if client not in self._failures and len(self._failures) >= self.max_clients:
                self._forget_idle(now)
            self._recent(client, now)
            self._failures.setdefault(client, deque(maxlen=self.limit)).append(now)

    def _forget_idle(self, now: float) -> None:
        """Bound the memory a flood of addresses can take: drop clients with no recent failure, then the
        oldest half if that was not enough."""
        for client in list(self._failures):
            self._recent(client, now)
        if len(self._failures) >= self.max_clients:
            oldest = sorted(self._failures, key=lambda c: self._failures[c][-1])
            for client in oldest[: len(oldest) // 2]:
                del self._failures[client]
