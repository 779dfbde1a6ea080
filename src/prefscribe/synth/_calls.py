"""Model calls of the pipeline: cached teacher generations, and judge calls spread over workers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from ..cache import ResultCache, cache_key
from ..llm.base import Backend, Completion, Conversation, Progress, Sampling

T = TypeVar("T")
R = TypeVar("R")


def generate_cached(backend: Backend, prompts: Sequence[Conversation], sampling: Sampling, *, role: str,
                    prompt_version: str, cache: ResultCache | None,
                    progress: Progress | None = None) -> list[Completion]:
    """One completion per prompt; cached ones are not asked again, the rest go in one backend call
    (a batch on local models, concurrent requests on servers). Failed calls are returned, not cached."""
    keys = [cache_key(role=role, model=backend.info.spec, prompts=prompt_version, sampling=sampling.__dict__,
                      messages=p) for p in prompts]
    hits = [cache.get(k) if cache is not None else None for k in keys]
    out: list[Completion | None] = [Completion(**h) if h is not None else None for h in hits]
    todo = [i for i, h in enumerate(hits) if h is None]
    if progress and len(todo) < len(prompts):
        progress(len(prompts) - len(todo))
    if todo:
        fresh = backend.generate([prompts[i] for i in todo], sampling, progress)
        for i, completion in zip(todo, fresh):
            out[i] = completion
            if cache is not None and completion.finish_reason != "error":
                cache.put(keys[i], completion.__dict__)
    return out  # type: ignore[return-value]


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
