"""Target selection: tractable interactions of the next segment, a seeded draw of a few, and the random
order in which each target's two items will be shown to the teacher."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from ..schema import Interaction
from ._scoring import Score

NO_REJECTED = "no rejected item"
SCORE_FAILED = "scoring failed"
BELOW_THRESHOLD = "score below threshold"
NOT_DRAWN = "not drawn (over max_targets)"
REPEATS = "repeats an earlier interaction"


@dataclass(frozen=True)
class Target:
    index: int                 # position in the user's working history
    interaction: Interaction
    score: float               # tractability: p(true choice) from the raw history
    chosen_first: bool         # the chosen item is shown as Item A to the teacher

    @property
    def shown(self) -> tuple[str, str]:
        """(Item A, Item B) as the teacher sees them."""
        h = self.interaction
        assert h.rejected is not None
        return (h.chosen, h.rejected) if self.chosen_first else (h.rejected, h.chosen)


def pair_key(h: Interaction) -> tuple[str, ...]:
    """The unordered pair, as text compares (case and spacing ignored), with its context."""
    items = sorted(" ".join(x.split()).casefold() for x in (h.chosen, h.rejected or ""))
    return (" ".join((h.context or "").split()).casefold(), *items)


def candidate_indices(indices: list[int], history: list[Interaction], prefix_end: int) -> list[int]:
    """The indices worth scoring: a rejected item, and not a repeat of an interaction in history[:prefix_end]
    (some P-Soups users repeat a pair; its label would then sit in the summarized history)."""
    seen = {pair_key(h) for h in history[:prefix_end]}
    return [i for i in indices if history[i].rejected is not None and pair_key(history[i]) not in seen]


def select_targets(indices: list[int], history: list[Interaction], scores: dict[int, Score], threshold: float,
                   max_targets: int, rng: random.Random, prefix_end: int = 0) -> tuple[list[Target], Counter]:
    """Keep interactions with a rejected item, not repeating one of history[:prefix_end], with score >=
    threshold; draw up to `max_targets` of them at random; give each a random item order. Returns the
    targets (by position) and the drop reasons.

    `scores` holds a score for every index `candidate_indices` returns."""
    dropped: Counter = Counter()
    tractable: list[int] = []
    eligible = set(candidate_indices(indices, history, prefix_end))
    for i in indices:
        if history[i].rejected is None:
            dropped[NO_REJECTED] += 1
        elif i not in eligible:
            dropped[REPEATS] += 1
        elif scores[i].p_true is None:
            dropped[SCORE_FAILED] += 1
        elif scores[i].p_true < threshold:
            dropped[BELOW_THRESHOLD] += 1
        else:
            tractable.append(i)
    drawn = sorted(rng.sample(tractable, min(max_targets, len(tractable))))
    if len(tractable) > len(drawn):
        dropped[NOT_DRAWN] += len(tractable) - len(drawn)
    targets = [Target(i, history[i], float(scores[i].p_true), rng.random() < 0.5)  # type: ignore[arg-type]
               for i in drawn]
    return targets, dropped
