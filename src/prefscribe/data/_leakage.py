"""The last guard of every loader: no target item may appear anywhere in the user's history.

A history that already contains the held-out pair lets a profile "predict" the target by quoting it.
Benchmarks do contain such rows (P-Soups repeats three users' target pair inside their own history;
Amazon's `.random` candidates and MIND titles can repeat a target under another id), so each loader
drops those interactions and records how many in the record's meta. Items are compared as text,
whitespace-normalised and case-folded, because the same title under two ids is the same item to a reader.
"""

from __future__ import annotations

from ..schema import Interaction, Target


def item_key(text: str) -> str:
    return " ".join(text.split()).casefold()


def target_keys(target: Target | None) -> set[str]:
    if target is None:
        return set()
    return {item_key(target.chosen), item_key(target.rejected)}


def drop_target_items(history: list[Interaction], target: Target | None) -> tuple[list[Interaction], int]:
    """History without the interactions whose chosen or rejected item is a target item; and their count."""
    keys = target_keys(target)
    if not keys:
        return history, 0
    kept = [h for h in history
            if item_key(h.chosen) not in keys and (h.rejected is None or item_key(h.rejected) not in keys)]
    return kept, len(history) - len(kept)
