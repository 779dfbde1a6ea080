"""Direct-prediction scores: how likely a model picks the user's true item from the raw history alone.

Used for tractability (a synthesis target must be predictable) and for curriculum pruning (weak and strong
scores of every point). The prompt is the project's direct-prediction prompt; the answer letter's
log-probabilities give a two-way probability per order, and both orders are averaged because small models
prefer whichever item is shown first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..cache import ResultCache, cache_key
from ..judge import two_way
from ..llm.base import Backend, Conversation, Progress
from ..prompts import JUDGE_OPTIONS, JUDGE_PREFILL, PromptSet, get_prompts
from ..schema import Interaction

MISSING_LOGPROB = -1e4  # a letter absent from a server's top logprobs is far less likely than any listed
ANSWER_MARGIN = 64      # tokens kept free after the prompt (prefill and answer letter)


@dataclass(frozen=True)
class Point:
    """Predict `item` (which must have a rejected item) from `history`."""

    history: Sequence[Interaction]
    item: Interaction


@dataclass(frozen=True)
class Score:
    p_true: float | None            # both orders averaged; None when no order could be scored
    orders: tuple[float | None, float | None]  # p(true) with the true item shown first, then second
    error: str | None = None


@dataclass
class DirectScorer:
    """p(true choice) under `backend` for many points; every point is one cache entry.

    prompts_per_call: prompts sent in one backend call (two per point). Local backends run them as one
    batch (sharing whatever prefix the prompts have in common); servers run them concurrently.
    """

    backend: Backend
    prompts: PromptSet | None = None
    cache: ResultCache | None = None
    max_history_tokens: int = 3000
    prompts_per_call: int = 8

    def __post_init__(self) -> None:
        self.prompts = self.prompts or get_prompts()

    def messages(self, point: Point) -> list[Conversation]:
        """The two orders: the true item as Item A, then as Item B."""
        item = point.item
        if item.rejected is None:
            raise ValueError("a direct-prediction point needs a rejected item")
        count = self.backend.count_tokens
        items = count(item.chosen) + count(item.rejected) + count(item.context or "")
        budget = max(1, min(self.max_history_tokens,
                            self.backend.info.context_window - items - ANSWER_MARGIN - 256))
        return [self.prompts.direct_messages(point.history, item.context, first, second, budget, count)
                for first, second in ((item.chosen, item.rejected), (item.rejected, item.chosen))]

    def _key(self, messages: list[Conversation]) -> str:
        return cache_key(role="direct-score", model=self.backend.info.spec, prompts=self.prompts.version,
                         prefill=JUDGE_PREFILL, options=JUDGE_OPTIONS, messages=messages)

    def score(self, points: Sequence[Point], progress: Progress | None = None) -> list[Score]:
        plans = [self.messages(p) for p in points]
        keys = [self._key(m) for m in plans]
        raw: list[list[dict] | None] = [self.cache.get(k) if self.cache is not None else None for k in keys]
        done = sum(r is not None for r in raw)
        if progress and done:
            progress(done)
        todo = [i for i, r in enumerate(raw) if r is None]
        per_call = max(1, self.prompts_per_call // 2)
        for start in range(0, len(todo), per_call):
            chunk = todo[start:start + per_call]
            flat = [conv for i in chunk for conv in plans[i]]
            scores = self.backend.option_logprobs(flat, JUDGE_PREFILL, JUDGE_OPTIONS)
            for n, i in enumerate(chunk):
                pair = scores[2 * n: 2 * n + 2]
                raw[i] = [{"logprobs": s.logprobs, "error": s.error} for s in pair]
                if self.cache is not None and not any(s.error for s in pair):
                    self.cache.put(keys[i], raw[i])
            if progress:
                progress(len(chunk))
        return [_score(r) for r in raw]  # type: ignore[arg-type]


def _score(orders: list[dict]) -> Score:
    p_true: list[float | None] = []
    errors = []
    for position, entry in enumerate(orders):  # position 0: true item first; 1: true item second
        la, lb = entry["logprobs"]
        if la is None and lb is None:
            p_true.append(None)
            errors.append(entry.get("error") or "neither answer letter observed")
            continue
        p_first = two_way(la if la is not None else MISSING_LOGPROB, lb if lb is not None else MISSING_LOGPROB)
        p_true.append(p_first if position == 0 else 1.0 - p_first)
    valid = [p for p in p_true if p is not None]
    mean = sum(valid) / len(valid) if valid else None
    return Score(mean, (p_true[0], p_true[1]), "; ".join(errors) or None)
