"""Segmentation and target selection: every threshold applied as configured, with cases on both sides."""

from __future__ import annotations

import random

import pytest

from prefscribe.errors import InputError
from prefscribe.schema import Interaction
from prefscribe.synth import (
    BELOW_THRESHOLD,
    NO_REJECTED,
    NOT_DRAWN,
    SCORE_FAILED,
    Score,
    SynthConfig,
    segment_user,
    select_targets,
    working_history,
)


def test_min_segment_on_real_users(psoups_users, movielens_users):
    four = next(u for u in psoups_users if len(u.history) == 4)
    assert segment_user(four.history, 2) == "segment under 2 interactions"  # sizes 2, 1, 1
    split = segment_user(four.history, 1)
    assert split.bounds == [(0, 2), (2, 3), (3, 4)]
    assert [len(split.segment(i)) for i in range(3)] == [2, 1, 1]

    long_user = next(u for u in movielens_users if len(u.history) >= 9)
    eight = working_history(long_user, max_history=8, include_target=False)
    nine = working_history(long_user, max_history=9, include_target=False)
    assert eight == long_user.history[-8:] and nine == long_user.history[-9:]  # the most recent are kept
    assert segment_user(eight, 3) == "segment under 3 interactions"            # 3, 3, 2
    assert segment_user(nine, 3).bounds == [(0, 3), (3, 6), (6, 9)]


def test_include_target_appends_the_held_out_pair(psoups_users):
    user = psoups_users[0]
    plain = working_history(user, max_history=30, include_target=False)
    with_target = working_history(user, max_history=30, include_target=True)
    assert plain == user.history and len(with_target) == len(plain) + 1
    last = with_target[-1]
    assert (last.context, last.chosen, last.rejected) == (user.target.context, user.target.chosen,
                                                          user.target.rejected)
    assert segment_user(with_target, 1).bounds == [(0, 2), (2, 4), (4, 5)]


def _history(n: int, missing_rejected=()) -> list[Interaction]:
    return [Interaction(chosen=f"c{i}", rejected=None if i in missing_rejected else f"r{i}") for i in range(n)]


def test_tractability_threshold_is_inclusive_and_every_drop_has_a_reason():
    history = _history(6, missing_rejected={5})
    scores = {0: Score(0.9, (0.9, 0.9)), 1: Score(0.8999, (0.9, 0.8998)), 2: Score(1.0, (1.0, 1.0)),
              3: Score(None, (None, None), "server down"), 4: Score(0.2, (0.3, 0.1))}
    targets, dropped = select_targets(list(range(6)), history, scores, threshold=0.9, max_targets=5,
                                      rng=random.Random(0))
    assert [t.index for t in targets] == [0, 2]          # 0.9 is kept (>=), 0.8999 is not
    assert dropped == {BELOW_THRESHOLD: 2, SCORE_FAILED: 1, NO_REJECTED: 1}
    assert [t.score for t in targets] == [0.9, 1.0]


def test_at_most_max_targets_are_drawn_at_random():
    history = _history(12)
    scores = {i: Score(0.95, (0.95, 0.95)) for i in range(12)}
    draws = set()
    for seed in range(20):
        targets, dropped = select_targets(list(range(12)), history, scores, 0.9, 5, random.Random(seed))
        assert len(targets) == 5 and dropped == {NOT_DRAWN: 7}
        assert [t.index for t in targets] == sorted(t.index for t in targets)
        draws.add(tuple(t.index for t in targets))
    assert len(draws) > 10  # a random draw, not the first five
    few, dropped = select_targets([0, 1, 2], history, scores, 0.9, 5, random.Random(0))
    assert len(few) == 3 and not dropped


def test_target_shows_its_items_in_its_order():
    h = Interaction(chosen="yes", rejected="no")
    targets, _ = select_targets([0], [h], {0: Score(1.0, (1.0, 1.0))}, 0.9, 5, random.Random(1))
    t = targets[0]
    assert t.shown == (("yes", "no") if t.chosen_first else ("no", "yes"))


@pytest.mark.parametrize("field, value", [("min_valid", 6), ("min_valid", 0), ("lam", 1.5),
                                          ("tract_threshold", -0.1), ("max_history", 2)])
def test_bad_settings_are_refused(field, value):
    with pytest.raises(InputError):
        SynthConfig(**{field: value})
