"""Transforms of loaded users for the evaluation settings of METHOD.md section 3.

All are pure: they return new records and leave their inputs untouched; what they did is written
into the new record's meta so a result file says which setting produced it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np

from ..errors import InputError
from ..schema import Interaction, UserRecord
from .embedding import minilm_embedder

__all__ = ["CrossDomainPair", "Thirds", "cross_domain_pairs", "history_text", "interleave_noise",
           "minilm_embedder", "positive_only", "reference_thirds", "split_segments"]

T = TypeVar("T")


def positive_only(records: Iterable[UserRecord]) -> list[UserRecord]:
    """The positive-only transfer setting: every history interaction loses its rejected item.

    The target keeps both items: the judge still has to choose between two.
    """
    out = []
    for record in records:
        history = [h.model_copy(update={"rejected": None}) for h in record.history]
        meta = {**record.meta, "positive_only": True}
        out.append(record.model_copy(update={"history": history, "meta": meta}))
    return out


def split_segments(history: Sequence[T], k: int) -> list[list[T]]:
    """`k` consecutive segments in order, sizes as equal as possible (the first ones one longer).

    The streaming setting's generalisation: k=2 is the paper's halves. Every segment must be non-empty,
    since an update with no new interactions is not a streaming step.
    """
    if k < 1:
        raise InputError(f"the number of segments must be >= 1, got {k}")
    if k > len(history):
        raise InputError(f"cannot split {len(history)} interactions into {k} non-empty segments")
    size, extra = divmod(len(history), k)
    segments, start = [], 0
    for i in range(k):
        end = start + size + (1 if i < extra else 0)
        segments.append(list(history[start:end]))
        start = end
    return segments


@dataclass(frozen=True)
class Thirds:
    """The reference's cut of recommendation histories (third = len // 3).

    full: history[:2*third]; streaming: history[:third], then history[third:2*third]. The rest (the last
    third and the len % 3 remainder) is not used, as in the reference; histories under 3 give empty lists.
    """

    full: list[Interaction]
    first: list[Interaction]
    second: list[Interaction]

    @property
    def streaming(self) -> tuple[list[Interaction], list[Interaction]]:
        return self.first, self.second


def reference_thirds(history: Sequence[Interaction]) -> Thirds:
    third = len(history) // 3
    return Thirds(full=list(history[: 2 * third]), first=list(history[:third]),
                  second=list(history[third: 2 * third]))


def interleave_noise(record: UserRecord, other_history: Sequence[Interaction], ratio: float,
                     rng: random.Random, *,
                     placement: Literal["random", "after", "before"] = "random") -> UserRecord:
    """The multi-interest setting: mix another domain's interactions into the user's history.

    Reference semantics: inserted count = min(int(len(history) * ratio), len(other_history)), drawn
    without replacement. The drawn interactions keep their original relative order (the reference's
    `random.sample` returns them shuffled, contradicting its own "order kept"), and are placed at
    random positions with the user's own order kept; `placement` "after"/"before" are the reference's
    two other variants. Inserted interactions carry `meta["noise"] = True`.
    """
    if ratio < 0:
        raise InputError(f"must be >= 0, got {ratio}", field="ratio")
    if placement not in ("random", "after", "before"):
        raise InputError(f"must be 'random', 'after' or 'before', got {placement!r}", field="placement")
    own = list(record.history)
    count = min(int(len(own) * ratio), len(other_history))
    picked = sorted(rng.sample(range(len(other_history)), count))
    noise = [other_history[i].model_copy(update={"meta": {**other_history[i].meta, "noise": True}})
             for i in picked]
    if placement == "after":
        merged, slots = own + noise, list(range(len(own), len(own) + count))
    elif placement == "before":
        merged, slots = noise + own, list(range(count))
    else:
        slots = sorted(rng.sample(range(len(own) + count), count))
        taken = set(slots)
        mine, theirs = iter(own), iter(noise)
        merged = [next(theirs) if pos in taken else next(mine) for pos in range(len(own) + count)]
    info = {"ratio": ratio, "inserted": count, "placement": placement, "positions": slots,
            "original_length": len(own)}
    return record.model_copy(update={"history": merged, "meta": {**record.meta, "noise": info}})


def history_text(history: Sequence[Interaction]) -> str:
    """A plain rendering of a history for embedding: one line per interaction, what was chosen over what.

    Not the inference prompt (that one belongs to the prompt templates): only the content matters here.
    """
    lines = []
    for h in history:
        parts = [f"context: {h.context}"] if h.context else []
        parts.append(f"chosen: {h.chosen}")
        if h.rejected:
            parts.append(f"rejected: {h.rejected}")
        lines.append(" | ".join(parts))
    return "\n".join(lines)


@dataclass(frozen=True)
class CrossDomainPair:
    """Two users of different domains judged alike, and the two records made by swapping targets."""

    a: UserRecord
    b: UserRecord
    similarity: float
    a_history_b_target: UserRecord
    b_history_a_target: UserRecord


def cross_domain_pairs(records_a: Sequence[UserRecord], records_b: Sequence[UserRecord], top_n: int,
                       embed: Callable[[list[str]], np.ndarray], *,
                       format_history: Callable[[Sequence[Interaction]], str] = history_text,
                       ) -> list[CrossDomainPair]:
    """The cross-domain transfer setting: pair users by cosine similarity of their embedded histories
    (the paper: top 1,000 pairs) and swap their targets.

    Pairing is greedy one-to-one: the most similar (a, b) pair first, then the most similar pair among
    users not yet paired, and so on, so no user is reused. Ties go to the earlier users in input order.
    """
    if top_n < 1:
        raise InputError(f"must be >= 1, got {top_n}", field="top_n")
    for record in (*records_a, *records_b):
        if record.target is None:
            raise InputError(f"user {record.user_id} has no target to swap", field="target")
    if not records_a or not records_b:
        return []
    vectors_a = _unit_rows(embed([format_history(r.history) for r in records_a]), len(records_a))
    vectors_b = _unit_rows(embed([format_history(r.history) for r in records_b]), len(records_b))
    similarity = vectors_a @ vectors_b.T  # (len_a, len_b)
    order = np.argsort(-similarity, axis=None, kind="stable")  # flat indices, most similar first
    used_a, used_b, pairs = set(), set(), []
    for flat in order:
        i, j = divmod(int(flat), similarity.shape[1])
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        pairs.append(_pair(records_a[i], records_b[j], float(similarity[i, j])))
        if len(pairs) == top_n or len(used_a) == len(records_a) or len(used_b) == len(records_b):
            break
    return pairs


def _unit_rows(vectors: np.ndarray, expected: int) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] != expected:
        raise InputError(f"embed returned shape {vectors.shape}, expected ({expected}, dim)")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise InputError("embed returned a zero vector: cosine similarity is undefined for it")
    return vectors / norms


def _pair(a: UserRecord, b: UserRecord, similarity: float) -> CrossDomainPair:
    def swapped(history_of: UserRecord, target_of: UserRecord) -> UserRecord:
        # The gold belongs to one user and the target to the other: neither is this record's gold.
        return UserRecord(
            user_id=f"{history_of.user_id}|{target_of.user_id}", history=list(history_of.history),
            target=target_of.target, gold_preference=None,
            meta={"cross_domain": {"history_from": history_of.user_id, "target_from": target_of.user_id,
                                   "history_benchmark": history_of.meta.get("benchmark"),
                                   "target_benchmark": target_of.meta.get("benchmark"),
                                   "similarity": similarity}})
    return CrossDomainPair(a=a, b=b, similarity=similarity, a_history_b_target=swapped(a, b),
                           b_history_a_target=swapped(b, a))
