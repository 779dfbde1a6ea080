"""Metrics of a benchmark x setting, as pure functions over per-item results."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class ItemOutcome:
    """One judged target. `p_true` is the judge's probability of the true item (orders averaged);
    None when the item failed (no profile, or no judgement). `orders` holds (true_item_shown_first,
    P("Item A")) for each order judged."""

    correct: bool
    failed: bool
    p_true: float | None
    orders: list[tuple[bool, float]]


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a proportion: sensible at small n and near 0 or 1."""
    if n == 0:
        return (0.0, 0.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def auc(labels: Sequence[bool], scores: Sequence[float]) -> float | None:
    """Area under the ROC curve (Mann-Whitney U, ties counted half); None with one class only."""
    pos = [s for y, s in zip(labels, scores) if y]
    neg = [s for y, s in zip(labels, scores) if not y]
    if not pos or not neg:
        return None
    ranked = sorted([(s, 1) for s in pos] + [(s, 0) for s in neg])
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        mean_rank = (i + 1 + j) / 2  # 1-based average rank of the tie group
        rank_sum += mean_rank * sum(1 for k in range(i, j) if ranked[k][1] == 1)
        i = j
    return (rank_sum - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def summarize(outcomes: Sequence[ItemOutcome]) -> dict:
    """accuracy (failures count as wrong) with its 95% CI, mean P(true), AUC of P("A") against "the true
    item is A", failure count, and position bias: mean P("A") when A is the true item vs when B is."""
    n = len(outcomes)
    correct = sum(o.correct for o in outcomes)
    low, high = wilson_interval(correct, n)
    probs = [o.p_true for o in outcomes if o.p_true is not None]
    order_rows = [row for o in outcomes for row in o.orders]
    when_a = [p for first, p in order_rows if first]
    when_b = [p for first, p in order_rows if not first]
    return {
        "n": n,
        "accuracy": correct / n if n else 0.0,
        "ci_low": low,
        "ci_high": high,
        "mean_p_true": sum(probs) / len(probs) if probs else None,
        "auc": auc([first for first, _ in order_rows], [p for _, p in order_rows]),
        "failed": sum(o.failed for o in outcomes),
        "p_a_when_a_true": sum(when_a) / len(when_a) if when_a else None,
        "p_a_when_b_true": sum(when_b) / len(when_b) if when_b else None,
    }


@dataclass
class PairedDifference:
    """mean(a) - mean(b) over the same n users (accuracies, or per-user differences such as a control's), with a
    paired-bootstrap 95% interval."""

    n: int
    diff: float
    ci_low: float
    ci_high: float


def paired_difference(a: Sequence[float], b: Sequence[float], seed: int = 0,
                      resamples: int = 2000) -> PairedDifference:
    """Resample users (not items of one setting): each draw keeps a user's two outcomes together, so what the
    users share (an easy or hard target) cancels and the interval is the one of the difference itself. The
    interval is the percentile one; the same seed and outcomes give the same interval."""
    if len(a) != len(b):
        raise ValueError(f"paired outcomes differ in length: {len(a)} and {len(b)}")
    n = len(a)
    if n == 0:
        return PairedDifference(0, 0.0, 0.0, 0.0)
    import numpy as np

    per_user = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    draws = per_user[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    low, high = np.percentile(draws, [2.5, 97.5])
    return PairedDifference(n, float(per_user.mean()), float(low), float(high))
