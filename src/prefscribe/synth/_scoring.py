"""Direct-prediction scores: how likely a model picks the user's true item from the raw history alone.

Used for tractability (a synthesis target must be predictable) and for curriculum pruning (weak and strong
scores of every point). The prompt is the project's direct-prediction prompt; the answer letter's
log-probabilities give a two-way probability per order, and both orders are averaged because small models
prefer whichever item is shown first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..cache import CachedCalls, ResultCache
from ..errors import InputError
from ..judge import letter_orders, mean_p_a
from ..llm.base import Backend, Conversation, Progress
from ..prompts import JUDGE_OPTIONS, JUDGE_PREFILL, PromptSet, get_prompts
from ..schema import Interaction

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
            raise InputError("a direct-prediction point needs a rejected item", field="rejected")
        count = self.backend.count_tokens
        items = count(item.chosen) + count(item.rejected) + count(item.context or "")
        budget = max(1, min(self.max_history_tokens,
                            self.backend.info.context_window - items - ANSWER_MARGIN - 256))
        return [self.prompts.direct_messages(point.history, item.context, first, second, budget, count)
                for first, second in ((item.chosen, item.rejected), (item.rejected, item.chosen))]

    def score(self, points: Sequence[Point], progress: Progress | None = None) -> list[Score]:
        """`progress` counts points."""
        calls = CachedCalls(self.backend, self.cache, self.prompts.version)
        # `prefill` and `options` in the key: these entries were always keyed by them.
        scores = calls.option_logprobs([self.messages(p) for p in points], JUDGE_PREFILL, JUDGE_OPTIONS,
                                       role="direct-score", groups_per_call=max(1, self.prompts_per_call // 2),
                                       progress=progress, key_parts={"prefill": JUDGE_PREFILL,
                                                                     "options": JUDGE_OPTIONS})
        out = []
        for pair in scores:  # the true item shown first ("ab"), then second
            orders = letter_orders(("ab", "ba"), pair)
            p_true, error = mean_p_a(orders)
            out.append(Score(p_true, (orders[0].p_a, orders[1].p_a), error))
        return out
