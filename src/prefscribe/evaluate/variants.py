"""Dataset variants: the same users under a transfer test, each kept apart by its label in items and summaries.

    positive_only_variant(Dataset("movielens", "", users))         # every rejected item dropped
    noise_variants(dataset, other_histories, [0, 0.25], seed=0)   # multi-interest noise at each intensity
    cross_domain_variants(mind, amazon, top_n=100, embedder=...)  # history of one set, target of the other
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..data import cross_domain_pairs, interleave_noise, positive_only
from ..errors import InputError
from ..schema import Interaction, UserRecord


@dataclass
class Dataset:
    """Users of one benchmark under one variant label ("" for the data as loaded)."""

    benchmark: str
    variant: str
    records: list[UserRecord]


def _label(*parts: str) -> str:
    return ",".join(p for p in parts if p)


def positive_only_variant(dataset: Dataset) -> Dataset:
    return Dataset(dataset.benchmark, _label(dataset.variant, "positive-only"), positive_only(dataset.records))


def noise_variants(dataset: Dataset, other_histories: Sequence[Sequence[Interaction]], ratios: Sequence[float],
                   seed: int = 0) -> list[Dataset]:
    """One variant per intensity: each user's history mixed with a history drawn from another benchmark
    (`ratio` x its length inserted). Each intensity has its own seeded generator, so adding one leaves the
    others as they were."""
    others = [list(h) for h in other_histories if h]
    if not others:
        raise InputError("the noise source has no history to draw from", field="noise-from")
    if any(r < 0 for r in ratios):
        raise InputError("noise intensities must be >= 0", field="noise")
    out = []
    for ratio in ratios:
        rng = random.Random(f"{seed}-{ratio}")
        noisy = [interleave_noise(r, others[rng.randrange(len(others))], ratio, rng) for r in dataset.records]
        out.append(Dataset(dataset.benchmark, _label(f"noise={ratio:g}", dataset.variant), noisy))
    return out


def cross_domain_variants(a: Dataset, b: Dataset, top_n: int,
                          embedder: Callable[[list[str]], object]) -> list[Dataset]:
    """Users of `a` and `b` paired by history similarity; each pair swaps targets: `a->b` judges a's history
    on b's target, `b->a` the other way (the most similar `top_n` pairs)."""
    pairs = cross_domain_pairs(a.records, b.records, top_n, embedder)
    return [Dataset(f"{a.benchmark}->{b.benchmark}", "cross-domain", [p.a_history_b_target for p in pairs]),
            Dataset(f"{b.benchmark}->{a.benchmark}", "cross-domain", [p.b_history_a_target for p in pairs])]
