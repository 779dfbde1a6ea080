"""Curriculum pruning: the formulas on a hand-made example, the presets, the RL record, and a run on real
users with scripted weak and strong models."""

from __future__ import annotations

import json
import math

import pytest

from prefscribe.cache import ResultCache
from prefscribe.curriculum import (
    NO_POINTS,
    PRESETS,
    TOO_FEW_POINTS,
    PruneSettings,
    ScoredPoint,
    alpha_threshold,
    point_indices,
    prune,
    resolve_settings,
    rl_record,
    select,
)
from prefscribe.errors import InputError
from prefscribe.schema import Interaction
from prefscribe.synth import DirectScorer, Point

from ..conftest import FakeBackend

# (user, m, p_weak, p_strong): S_tract = p_strong, S_learn = log p_strong - log p_weak.
HAND = [
    ("u1", 1, 0.50, 0.80),   # A  S_learn 0.470: below the alpha cut
    ("u1", 2, 0.20, 0.60),   # B  1.099: exactly at the cut (kept), in the band
    ("u1", 3, 0.20, 0.60),   # C  same as B
    ("u1", 4, 0.40, 0.95),   # D  0.865: below the cut
    ("u1", 5, 0.10, 0.35),   # N  1.253: kept, the hardest of u1
    ("u2", 1, 0.50, 0.50),   # E  0
    ("u2", 2, 0.05, 0.20),   # F  1.386: in the top share, S_tract == tau_low: out (strict)
    ("u2", 5, 0.05, 0.25),   # H  1.609: kept, u2's only one
    ("u3", 2, 0.60, 0.60),   # I  0
    ("u3", 3, 0.00, 0.40),   # J  log 0.4 - log 1e-12 = 26.7: the top, u3's only one
    ("u3", 4, 0.10, 0.90),   # M  2.197: in the top share, S_tract == tau_high: out (strict)
    ("u4", 1, None, 0.50),   # K  weak model failed: not scored
    ("u5", 1, 0.50, 0.45),   # L  -0.105
    ("u6", 1, 0.10, 0.50),   # O  1.609: kept
    ("u6", 2, 0.10, 0.70),   # P  1.946: kept
]


def _points(rows=HAND):
    return [ScoredPoint(u, m, w, s, None if w is not None else "weak: down") for u, m, w, s in rows]


def test_selection_follows_the_formulas_on_a_hand_made_example():
    points = _points()
    settings = PruneSettings(alpha=0.6, tau_low=0.2, tau_high=0.9)
    result = select(points, settings, users=["u1", "u2", "u3", "u4", "u5", "u6", "u7"])
    # 14 scored points; the top 0.6 share is ceil(8.4) = 9 points: the 9th largest S_learn is B's (= C's).
    assert result.failed == 1
    assert result.threshold == math.log(0.6) - math.log(0.2)
    assert sorted((p.user_id, p.m) for p in result.after_alpha) == sorted(
        [("u3", 3), ("u3", 4), ("u6", 2), ("u2", 5), ("u6", 1), ("u2", 2), ("u1", 5), ("u1", 2), ("u1", 3)])
    assert sorted((p.user_id, p.m) for p in result.after_tau) == sorted(
        [("u3", 3), ("u6", 2), ("u2", 5), ("u6", 1), ("u1", 5), ("u1", 2), ("u1", 3)])
    # u1 keeps its two hardest (S_tract 0.35 at m=5, then 0.60 at m=2 before m=3 on the tie).
    assert result.picks == {"u1": (2, 5), "u6": (1, 2)}
    assert result.users_dropped == {TOO_FEW_POINTS: 4, NO_POINTS: 1}
    j = next(p for p in points if (p.user_id, p.m) == ("u3", 3))
    assert j.s_learn == pytest.approx(math.log(0.4) - math.log(1e-12))


def test_alpha_and_band_move_the_selection():
    points = _points()
    everything = select(points, PruneSettings(alpha=1.0, tau_low=0.0, tau_high=1.0))
    assert len(everything.after_alpha) == 14 and len(everything.after_tau) == 14
    # With the whole open band, u1's hardest are N (0.35) and B (0.60); u3's are J (0.40) and I (0.60).
    assert everything.picks["u1"] == (2, 5) and everything.picks["u3"] == (2, 3)
    top = select(points, PruneSettings(alpha=0.1, tau_low=0.0, tau_high=1.0))
    assert [(p.user_id, p.m) for p in top.after_alpha] == [("u3", 3), ("u3", 4)]  # ceil(1.4) = 2
    assert top.picks == {"u3": (3, 4)}


@pytest.mark.parametrize("alpha, n, expected_rank", [(0.1, 10, 1), (0.7, 10, 7), (0.4, 5, 2), (1.0, 3, 3),
                                                     (0.01, 3, 1)])
def test_alpha_threshold_is_the_ceil_rank(alpha, n, expected_rank):
    values = [float(v) for v in range(n)]
    assert alpha_threshold(values, alpha) == sorted(values, reverse=True)[expected_rank - 1]


def test_paper_presets_and_overrides():
    assert PRESETS["amazon"] == PruneSettings(0.4, 0.50, 0.90)
    assert PRESETS["mind"] == PruneSettings(0.1, 0.99, 1.00)
    assert PRESETS["alignx"] == PruneSettings(0.1, 0.98, 1.00)
    assert resolve_settings("mind", None, None) == PRESETS["mind"]
    assert resolve_settings("amazon", 0.2, None) == PruneSettings(0.2, 0.5, 0.9)
    assert resolve_settings(None, 0.1, (0.5, 0.9)) == PruneSettings(0.1, 0.5, 0.9)
    for bad in (lambda: resolve_settings(None, 0.1, None), lambda: resolve_settings("books", None, None),
                lambda: PruneSettings(0.0, 0.1, 0.2), lambda: PruneSettings(0.5, 0.9, 0.5)):
        with pytest.raises(InputError):
            bad()


def test_rl_record_format(movielens_users):
    user = movielens_users[0]
    record = rl_record(user.user_id, user.history, 2, 5)
    assert set(record) == {"user_id", "history", "k", "K"}
    assert len(record["history"]) == 6
    history = [Interaction.model_validate(h) for h in record["history"]]
    assert history == user.history[:6]
    assert history[record["k"]].rejected and history[record["K"]].rejected
    for bad_k, bad_K in ((0, 3), (3, 3), (2, 99)):
        with pytest.raises(ValueError):
            rl_record(user.user_id, user.history, bad_k, bad_K)
    positive = [h.model_copy(update={"rejected": None}) if i == 2 else h for i, h in enumerate(user.history)]
    with pytest.raises(ValueError, match="rejected"):
        rl_record(user.user_id, positive, 2, 5)
    assert point_indices(positive[:6], min_prefix=1) == [1, 3, 4, 5]
    assert point_indices(positive[:6], min_prefix=4) == [4, 5]


def test_scorer_averages_both_orders_and_caches(movielens_users, tmp_path):
    history = movielens_users[0].history
    chosen = {h.chosen for h in history}

    def biased(prompt):  # says "A" with log-odds +2, plus +-1 towards the true item
        content = prompt[-1]["content"]
        a_is_true = content.rpartition("## Item A\n")[2].split("\n", 1)[0] in chosen
        logit = 2.0 + (1.0 if a_is_true else -1.0)
        return [math.log(1 / (1 + math.exp(-logit))), math.log(1 / (1 + math.exp(logit)))]

    backend = FakeBackend(option_fn=biased)
    cache = ResultCache(tmp_path / "c.sqlite")
    scorer = DirectScorer(backend, cache=cache, prompts_per_call=4)
    points = [Point(history[:m], history[m]) for m in range(1, 6)]
    scores = scorer.score(points)
    sig = lambda x: 1 / (1 + math.exp(-x))
    for s in scores:
        assert s.orders == (pytest.approx(sig(3)), pytest.approx(1 - sig(1)))
        assert s.p_true == pytest.approx((sig(3) + 1 - sig(1)) / 2)
    assert [len(c[1]) for c in backend.calls] == [4, 4, 2]  # two points (four prompts) per call
    again = DirectScorer(FakeBackend(option_fn=lambda p: pytest.fail("cached")), cache=cache).score(points)
    assert [s.p_true for s in again] == [s.p_true for s in scores]


def test_prune_on_real_users(world, movielens_users, psoups_users, tmp_path):
    users = movielens_users[:3] + psoups_users[:3]
    w = world(users)
    # The strong model: p from a per-pair table spread over (0, 1); the weak one always 0.5.
    for n, user in enumerate(users):
        for m, h in enumerate(user.history):
            w.tract[w.key(h)] = 0.05 + 0.9 * ((7 * m + 3 * n) % 11) / 10
    weak = FakeBackend(option_fn=lambda p: [math.log(0.5), math.log(0.5)])
    settings = PruneSettings(alpha=0.5, tau_low=0.3, tau_high=0.9)
    result = prune(users, weak, w.scorer, settings, max_history=12, min_prefix=2)
    n_points = sum(len(point_indices(u.history[-12:], 2)) for u in users)
    assert result.report["points"] == len(result.points) == n_points and result.report["score_failures"] == 0
    for p in result.points:
        user = next(u for u in users if u.user_id == p.user_id)
        assert p.p_weak == pytest.approx(0.5)
        assert p.p_strong == pytest.approx(w.tract[w.key(user.history[-12:][p.m])])
        assert p.m >= 2
    # The records are exactly what the formulas select from these scores.
    expected = select(result.points, settings, users=[u.user_id for u in users])
    assert {r["user_id"]: (r["k"], r["K"]) for r in result.records} == expected.picks
    assert result.records and len(result.records) + sum(result.report["users_dropped"].values()) == len(users)
    for record in result.records:
        user = next(u for u in users if u.user_id == record["user_id"])
        history = user.history[-12:]
        assert record["history"] == [h.model_dump(mode="json", exclude_none=True) for h in history[:record["K"] + 1]]
    paths = result.write(tmp_path / "rl.jsonl")
    assert [json.loads(x) for x in paths["records"].read_text().splitlines()] == result.records
    scores = [json.loads(x) for x in paths["scores"].read_text().splitlines()]
    assert len(scores) == n_points and sum(s["picked"] for s in scores) == 2 * len(result.records)
    assert sum(s["kept_alpha"] for s in scores) == result.report["after_alpha"] >= math.ceil(0.5 * n_points)
    assert all(0.3 < s["s_tract"] < 0.9 for s in scores if s["kept_tau"])
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(paths["report"].read_text())["records"] == len(result.records)


def test_scores_cached_before_the_shared_layer_still_hit(tmp_path):
    """A direct-prediction entry is keyed as it always was: role, model, prompt version, prefill, options and
    both orders' messages; its old value had no prompt_tokens."""
    from prefscribe.cache import cache_key
    from prefscribe.prompts import JUDGE_OPTIONS, JUDGE_PREFILL

    cache = ResultCache(tmp_path / "c.sqlite")
    history = [Interaction(chosen=f"liked {i}", rejected=f"skipped {i}") for i in range(3)]
    scorer = DirectScorer(FakeBackend(option_fn=lambda p: pytest.fail("the cached entry was not used")), cache=cache)
    point = Point(history[:2], history[2])
    key = cache_key(role="direct-score", model="fake:test", prompts=scorer.prompts.version, prefill=JUDGE_PREFILL,
                    options=JUDGE_OPTIONS, messages=scorer.messages(point))
    cache.put(key, [{"logprobs": [-0.1, -3.0], "error": None}, {"logprobs": [-3.0, -0.1], "error": None}])
    [score] = scorer.score([point])
    assert score.orders == (pytest.approx(1 / (1 + math.exp(-2.9))), pytest.approx(1 / (1 + math.exp(-2.9))))
