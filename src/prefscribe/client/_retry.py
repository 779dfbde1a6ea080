"""When a failed request is sent again, and after how long. A request that never reached the server
(connection refused, connect timeout) is always retried; one whose answer was lost or that the server
could not serve right now (a read timeout, 429, 502, 503, 504) only when sending it twice is harmless."""

from __future__ import annotations

import httpx

from ._calls import Call

RETRY_STATUSES = {429, 502, 503, 504}
MAX_DELAY = 30.0


def _backoff(attempt: int, base: float) -> float:
    return min(MAX_DELAY, base * 2**attempt)


def delay_after_error(call: Call, exc: httpx.TransportError, attempt: int, base: float) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, or None: give up."""
    never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    return _backoff(attempt, base) if never_sent or call.repeatable else None


def delay_after_response(call: Call, response: httpx.Response, attempt: int, base: float) -> float | None:
    if response.status_code not in RETRY_STATUSES or not call.repeatable:
        return None
    wait = response.headers.get("Retry-After", "")
    if wait.isdigit():
        return float(wait) if int(wait) <= MAX_DELAY else None  # a long wait is the caller's decision
    return _backoff(attempt, base)
