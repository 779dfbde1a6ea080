"""The evaluation settings: what the judge is given about the user.

none       nothing (the judge alone)
gold       the benchmark's own preference text, where it has one
raw        the raw history itself (the direct-sequence baseline)
full       a profile inferred from the whole history at once
streaming  a profile built segment by segment, each step updating the previous profile

Recommendation sets (and any user whose history and target have no context) follow the reference: full = the first two thirds of the history; streaming = the first
third, then the second third. Others: full = the whole history, streaming = k equal segments (default 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..data.transforms import reference_thirds, split_segments
from ..errors import InputError
from ..schema import Interaction, UserRecord

SETTINGS = ("none", "gold", "raw", "full", "streaming")
RECOMMENDATION_SETS = {"movielens", "mind", "amazon"}
NEEDS_INFERENCE = {"full", "streaming"}


@dataclass(frozen=True)
class HistoryPlan:
    full: list[Interaction]
    segments: list[list[Interaction]]


def plan_history(record: UserRecord, benchmark: str, segments: int) -> HistoryPlan:
    feed = record.target is not None and record.target.context is None and all(
        h.context is None for h in record.history)
    if benchmark in RECOMMENDATION_SETS or feed:
        thirds = reference_thirds(record.history)
        if thirds.first and thirds.second:
            return HistoryPlan(full=thirds.full, segments=[thirds.first, thirds.second])
        # Under 3 interactions the thirds are empty: fall back to the whole history.
    k = min(segments, len(record.history))
    return HistoryPlan(full=list(record.history), segments=split_segments(record.history, k))


def parse_settings(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in SETTINGS]
    if unknown or not names:
        raise InputError(f"unknown setting(s) {', '.join(unknown) or '(none given)'}; choose from "
                         f"{', '.join(SETTINGS)}", field="settings")
    return names


def check_no_target_in_history(records: Sequence[UserRecord]) -> None:
    """The target pair must never reach inference: a leak would inflate every profile setting."""
    for record in records:
        if record.target is None:
            raise InputError(f"user {record.user_id} has no target pair to evaluate", field="target")
        target_items = {record.target.chosen.strip(), record.target.rejected.strip()}
        for position, item in enumerate(record.history):
            seen = {item.chosen.strip(), (item.rejected or "").strip()}
            if seen & target_items:
                raise InputError(f"user {record.user_id}: a target item appears in history position {position}",
                                 field="history")
