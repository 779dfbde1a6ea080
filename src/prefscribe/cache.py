"""A persistent, content-addressed cache of model results (SQLite, one file), and the one cached-call
layer every role goes through.

Keys hash everything that determines a reply (role, model spec, prompt version, sampling, the messages), so a
rerun or a resumed evaluation costs nothing and any change to those makes a new entry. Failed calls are
returned to the caller and never cached, and so is a cancelled one (it raises: llm.Watch).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from platformdirs import user_cache_dir

from .llm.base import (
    Backend,
    BackendInfo,
    Completion,
    Conversation,
    OptionScores,
    Progress,
    Sampling,
    Watch,
    generate_watched,
)

UserCache = Literal["user"]
USER_CACHE: UserCache = "user"  # "the default cache in the user cache dir", as a default argument


def default_path() -> Path:
    return Path(os.environ.get("PREFSCRIBE_CACHE_DIR") or user_cache_dir("prefscribe")) / "results.sqlite"


def cache_key(**parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class ResultCache:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._db.commit()

    def get(self, key: str) -> Any | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM results WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO results (key, value) VALUES (?, ?)",
                             (key, json.dumps(value, ensure_ascii=False)))
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


_OPEN: dict[Path, ResultCache] = {}
_OPEN_LOCK = threading.Lock()


def resolve_cache(cache: ResultCache | UserCache | None) -> ResultCache | None:
    """`"user"`: the cache at default_path(), opened once per process and path; None: no caching."""
    if cache != USER_CACHE:
        return cache  # type: ignore[return-value]
    path = default_path()
    with _OPEN_LOCK:
        if path not in _OPEN:
            _OPEN[path] = ResultCache(path)
        return _OPEN[path]


@dataclass
class CachedCalls:
    """A backend's generate and option_logprobs calls, cached by (role, model spec, prompt version,
    sampling, messages). Hits are not asked again; the misses go to the backend together (one batch on
    local models, concurrent requests on servers). `cache=None` passes every call through."""

    backend: Backend
    cache: ResultCache | None
    prompt_version: str

    @property
    def info(self) -> BackendInfo:
        return self.backend.info

    def key(self, role: str, messages: Any, **parts: Any) -> str:
        return cache_key(role=role, model=self.backend.info.spec, prompts=self.prompt_version, messages=messages,
                         **parts)

    def generation_key(self, role: str, messages: Conversation, sampling: Sampling,
                       key_parts: Mapping[str, Any] | None = None) -> str:
        """The cache key `generate` files this prompt's completion under."""
        return self.key(role, messages, sampling=sampling.__dict__, **(key_parts or {}))

    def generate(self, prompts: Sequence[Conversation], sampling: Sampling, *, role: str,
                 progress: Progress | None = None, key_parts: Mapping[str, Any] | None = None,
                 watch: Watch | None = None) -> list[Completion]:
        """One completion per prompt. `key_parts`: more of what determines the reply (e.g. the profile style).
        `watch`: told each reply's text (a cached one whole, first) and able to cancel the call; a cancelled
        call raises GenerationCancelled and caches nothing."""
        keys = [self.generation_key(role, p, sampling, key_parts) for p in prompts]
        out: list[Completion | None] = [self._get(k, Completion) for k in keys]
        todo = [i for i, hit in enumerate(out) if hit is None]
        if progress and len(todo) < len(prompts):
            progress(len(prompts) - len(todo))
        if watch is not None and watch.on_text:
            for i, hit in enumerate(out):
                if hit is not None and hit.text:
                    watch.on_text(i, hit.text)
        if todo:
            asked = [prompts[i] for i in todo]
            fresh = (self.backend.generate(asked, sampling, progress) if watch is None
                     else _generate_renumbered(self.backend, asked, sampling, watch, todo, progress))
            for i, completion in zip(todo, fresh):
                out[i] = completion
                if completion.finish_reason != "error":
                    self._put(keys[i], completion.__dict__)
        return out  # type: ignore[return-value]

    def option_logprobs(self, groups: Sequence[Sequence[Conversation]], prefill: str, options: Sequence[str], *,
                        role: str, groups_per_call: int | None = None, progress: Progress | None = None,
                        key_parts: Mapping[str, Any] | None = None) -> list[list[OptionScores]]:
        """Option log-probabilities for groups of prompts (e.g. the two orders of one judgement); a group is
        one cache entry, cached only when none of its prompts failed. Missed groups go to the backend
        `groups_per_call` at a time (None: all in one call); `progress` counts groups."""
        keys = [self.key(role, list(g), **(key_parts or {})) for g in groups]
        out: list[list[OptionScores] | None] = []
        for key in keys:
            hit = self.cache.get(key) if self.cache is not None else None
            out.append([OptionScores(**s) for s in hit] if hit is not None else None)
        todo = [i for i, hit in enumerate(out) if hit is None]
        if progress and len(todo) < len(groups):
            progress(len(groups) - len(todo))
        step = groups_per_call or max(1, len(todo))
        for start in range(0, len(todo), step):
            chunk = todo[start:start + step]
            flat = [conv for i in chunk for conv in groups[i]]
            scores = iter(self.backend.option_logprobs(flat, prefill, options))
            for i in chunk:
                out[i] = [next(scores) for _ in groups[i]]
                if not any(s.error for s in out[i]):
                    self._put(keys[i], [s.__dict__ for s in out[i]])
            if progress:
                progress(len(chunk))
        return out  # type: ignore[return-value]

    def _get(self, key: str, kind: type) -> Any | None:
        hit = self.cache.get(key) if self.cache is not None else None
        return kind(**hit) if hit is not None else None

    def _put(self, key: str, value: Any) -> None:
        if self.cache is not None:
            self.cache.put(key, value)


def _generate_renumbered(backend: Backend, prompts: list[Conversation], sampling: Sampling, watch: Watch,
                         indices: list[int], progress: Progress | None) -> list[Completion]:
    """generate_watched on the prompts that missed the cache, telling `watch` their text under the caller's
    indices (`indices[i]` for the i-th prompt asked)."""
    told = watch.on_text
    inner = Watch(on_text=(lambda i, text: told(indices[i], text)) if told else None, cancel=watch.cancel)
    try:
        return generate_watched(backend, prompts, sampling, inner, progress)
    finally:
        watch.tokens += inner.tokens
