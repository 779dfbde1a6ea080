"""Judge calls of the pipeline spread over worker threads (caching is the library's CachedCalls)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from ..llm.base import Progress

T = TypeVar("T")
R = TypeVar("R")


def map_chunks(fn: Callable[[list[T]], list[R]], items: Sequence[T], workers: int, chunk: int = 4,
               progress: Progress | None = None) -> list[R]:
    """`fn` over consecutive chunks of `items`, on `workers` threads (1: in this thread), results in order.

    Threads help only with servers (each call waits on the network); local models already use every core.
    """
    chunks = [list(items[i:i + chunk]) for i in range(0, len(items), chunk)]

    def run(part: list[T]) -> list[R]:
        result = fn(part)
        if progress:
            progress(len(part))
        return result

    if workers <= 1 or len(chunks) <= 1:
        parts = [run(c) for c in chunks]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(run, chunks))
    return [r for part in parts for r in part]
