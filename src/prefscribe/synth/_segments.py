"""Which interactions a user contributes, and their early / middle / late segments."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from ..data.transforms import split_segments
from ..schema import Interaction, UserRecord

SEGMENTS = 3  # early, middle, late


def working_history(record: UserRecord, max_history: int, include_target: bool) -> list[Interaction]:
    """The user's history (plus the target pair as its last interaction if asked), most recent
    `max_history` kept. Indices used everywhere downstream (targets, RL k and K) refer to this list."""
    history = list(record.history)
    if include_target and record.target is not None:
        t = record.target
        history.append(Interaction(context=t.context, chosen=t.chosen, rejected=t.rejected,
                                   meta={"held_out_target": True}))
    return history[-max_history:]


@dataclass(frozen=True)
class Segmented:
    history: list[Interaction]
    bounds: list[tuple[int, int]]  # [start, end) of early, middle, late in `history`

    def segment(self, i: int) -> list[Interaction]:
        start, end = self.bounds[i]
        return self.history[start:end]


def segment_user(history: list[Interaction], min_segment: int) -> Segmented | str:
    """Three consecutive segments, sizes as equal as possible; a reason string when the user is too short."""
    if len(history) < SEGMENTS * min_segment:
        return f"segment under {min_segment} interactions"
    sizes = [len(s) for s in split_segments(history, SEGMENTS)]
    bounds, start = [], 0
    for size in sizes:
        bounds.append((start, start + size))
        start += size
    return Segmented(history, bounds)


def seeded_rng(seed: int, *keys: object) -> random.Random:
    """A generator that depends on the seed and the keys only (not on which other users are in the run)."""
    digest = hashlib.sha256(":".join(str(k) for k in (seed, *keys)).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))
