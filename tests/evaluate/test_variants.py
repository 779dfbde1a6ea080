"""Dataset variants built from Python, as the CLI builds them."""

import numpy as np
import pytest

from prefscribe.errors import InputError
from prefscribe.evaluate import Dataset, cross_domain_variants, noise_variants, positive_only_variant
from prefscribe.schema import Interaction, Target, UserRecord


def users(prefix: str, n: int = 3, length: int = 4) -> list[UserRecord]:
    return [UserRecord(user_id=f"{prefix}{i}", target=Target(chosen=f"{prefix} t{i}", rejected=f"{prefix} r{i}"),
                       history=[Interaction(chosen=f"{prefix} c{i}-{j}", rejected=f"{prefix} x{i}-{j}")
                                for j in range(length)]) for i in range(n)]


def test_positive_only_drops_every_rejected_item_and_says_so():
    variant = positive_only_variant(Dataset("movielens", "", users("m")))
    assert variant.variant == "positive-only" and variant.benchmark == "movielens"
    assert all(h.rejected is None for r in variant.records for h in r.history)
    assert [len(r.history) for r in variant.records] == [4, 4, 4]


def test_noise_variants_mix_in_other_histories_at_each_intensity():
    others = [u.history for u in users("other", n=2, length=8)]
    dataset = positive_only_variant(Dataset("mind", "", users("m")))
    variants = noise_variants(dataset, others, [0, 0.5], seed=1)
    assert [v.variant for v in variants] == ["noise=0,positive-only", "noise=0.5,positive-only"]
    clean, half = variants
    assert all(len(r.history) == 4 for r in clean.records)
    assert all(len(r.history) == 6 and sum(h.meta.get("noise", False) for h in r.history) == 2
               for r in half.records)
    # The user's own interactions keep their order; the inserted ones come from one other history.
    for record in half.records:
        own = [h.chosen for h in record.history if not h.meta.get("noise")]
        assert own == sorted(own)
        assert len({h.chosen.split()[1].split("-")[0] for h in record.history if h.meta.get("noise")}) == 1
    again = noise_variants(dataset, others, [0.5], seed=1)[0]
    assert [r.history for r in again.records] == [r.history for r in half.records]  # seeded
    with pytest.raises(InputError, match=">= 0"):
        noise_variants(dataset, others, [-0.1])
    with pytest.raises(InputError, match="no history"):
        noise_variants(dataset, [[]], [0.5])


def test_cross_domain_variants_swap_targets_between_similar_users():
    def embed(texts):  # a 2-d embedding by position: user i of a is closest to user i of b
        rows = np.array([[1.0, float(i)] for i, _ in enumerate(texts)])
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    a, b = Dataset("mind", "", users("mind")), Dataset("amazon", "", users("amazon"))
    forward, backward = cross_domain_variants(a, b, top_n=2, embedder=embed)
    assert (forward.benchmark, backward.benchmark) == ("mind->amazon", "amazon->mind")
    assert forward.variant == backward.variant == "cross-domain"
    assert len(forward.records) == len(backward.records) == 2
    for record in forward.records:
        assert record.history[0].chosen.startswith("mind") and record.target.chosen.startswith("amazon")
    for record in backward.records:
        assert record.history[0].chosen.startswith("amazon") and record.target.chosen.startswith("mind")
