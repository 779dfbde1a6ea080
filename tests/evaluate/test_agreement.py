"""The qualifying rule of an engine and the run-against-reference comparison it reads, as pure functions."""

import pytest

from prefscribe.evaluate import PairedDifference, compare_runs, qualifies, ruled_out


def diff(low: float, high: float) -> PairedDifference:
    return PairedDifference(n=40, diff=(low + high) / 2, ci_low=low, ci_high=high)


@pytest.mark.parametrize("intervals, agreement, expected", [
    ([(-0.05, 0.05), (-0.1, 0.02)], 0.95, True),     # every interval holds 0, agreement above the bar
    ([(-0.05, 0.05), (-0.1, 0.02)], 0.90, True),     # the bar itself is enough
    ([(-0.05, 0.05), (-0.1, 0.02)], 0.89, False),    # decisions agree too rarely
    ([(-0.05, 0.05), (0.01, 0.12)], 0.99, False),    # one control moved up: interval above 0
    ([(-0.15, -0.01), (-0.1, 0.02)], 0.99, False),   # one accuracy moved down: interval below 0
    ([(0.0, 0.0)], 1.0, True),                       # identical runs
    ([], 1.0, False),                                # nothing measured qualifies nothing
])
def test_an_engine_qualifies_when_its_controls_match_and_its_decisions_agree(intervals, agreement, expected):
    assert qualifies([diff(lo, hi) for lo, hi in intervals], agreement) is expected


def rows(setting: str, correct: list[bool], failed: tuple[int, ...] = ()) -> list[dict]:
    return [{"user_id": f"u{i}", "setting": setting, "correct": c and i not in failed, "failed": i in failed}
            for i, c in enumerate(correct)]


SETTINGS = ("none", "gold", "gold_mismatched", "full", "mismatched")


def run_of(**by_setting) -> list[dict]:
    return [row for setting, correct in by_setting.items() for row in rows(setting, correct)]


def test_identical_runs_match_on_every_measure_and_agree_on_every_task():
    reference = run_of(none=[True, False] * 5, gold=[True] * 10, gold_mismatched=[False] * 10,
                       full=[True] * 8 + [False] * 2, mismatched=[False] * 5 + [True] * 5)
    check = compare_runs(reference, reference, SETTINGS)
    names = [m.name for m in check.measures]
    assert names == [f"accuracy {s}" for s in SETTINGS] + ["own - another's", "gold - gold_mismatched"]
    by_name = {m.name: m for m in check.measures}
    assert by_name["own - another's"].value == pytest.approx(0.8 - 0.5)
    assert by_name["gold - gold_mismatched"].value == pytest.approx(1.0)
    assert all(m.diff.diff == 0 and m.diff.ci_low == m.diff.ci_high == 0 for m in check.measures)
    assert (check.agreement, check.tasks, check.qualifies) == (1.0, 50, True)


def test_a_run_that_loses_the_own_profile_gain_does_not_qualify():
    reference = run_of(full=[True] * 20, mismatched=[False] * 20)
    engine = run_of(full=[False] * 20, mismatched=[False] * 20)
    check = compare_runs(engine, reference, ("full", "mismatched"))
    own = next(m for m in check.measures if m.name == "own - another's")
    assert (own.value, own.reference, own.diff.diff) == (0.0, 1.0, -1.0) and own.diff.ci_high < 0
    assert check.agreement == 0.5 and not check.qualifies


def test_only_users_judged_in_both_runs_under_every_setting_count_and_a_failure_is_its_own_decision():
    reference = run_of(none=[True, True, True], full=[True, True, True])
    engine = rows("none", [True, True, True], failed=(1,)) + rows("full", [True, True])  # u2 has no full here
    check = compare_runs(engine, reference, ("none", "full", "mismatched"))
    assert check.tasks == 4  # u0 and u1, none and full
    assert check.agreement == 0.75  # u1's failed judgement is not the reference's "true"
    assert [m.name for m in check.measures] == ["accuracy none", "accuracy full"]


@pytest.mark.parametrize("agreed, tasks, intervals, expected", [
    (9, 10, [(-0.1, 0.1)], False),    # one flipped decision of ten: not evidence against the engine
    (8, 10, [(-0.1, 0.1)], False),    # two of ten: the upper bound still reaches 90%
    (7, 10, [(-0.1, 0.1)], True),     # three of ten: even the upper bound is below the bar
    (52, 60, [(-0.1, 0.1)], False),   # 87% of 60: misses the point rule, not ruled out by the sample
    (48, 60, [(-0.1, 0.1)], True),    # 80% of 60: ruled out
    (10, 10, [(0.05, 0.3)], True),    # a control moved: its interval excludes 0
    (10, 10, [], True),               # nothing measured shows nothing
])
def test_a_small_sample_rules_an_engine_out_only_on_evidence(agreed, tasks, intervals, expected):
    assert ruled_out([diff(lo, hi) for lo, hi in intervals], agreed, tasks) is expected


def test_a_run_that_qualifies_is_never_ruled_out_and_one_that_loses_the_gain_is():
    reference = run_of(none=[True, False] * 5, full=[True] * 8 + [False] * 2, mismatched=[False] * 10)
    same = compare_runs(reference, reference, ("none", "full", "mismatched"))
    assert same.qualifies and not same.ruled_out
    lost = compare_runs(run_of(none=[True, False] * 5, full=[False] * 10, mismatched=[False] * 10), reference,
                        ("none", "full", "mismatched"))
    assert not lost.qualifies and lost.ruled_out
