import pytest

from prefscribe.evaluate import ItemOutcome, auc, summarize, wilson_interval


def test_wilson_interval_known_values():
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-3) and high == pytest.approx(0.5962, abs=1e-3)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 0.0)


@pytest.mark.parametrize("labels, scores, expected", [
    ([1, 1, 0, 0], [0.9, 0.8, 0.3, 0.1], 1.0),
    ([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9], 0.0),
    ([1, 0], [0.5, 0.5], 0.5),
    ([1, 0, 1, 0], [0.9, 0.7, 0.6, 0.2], 0.75),
    ([1, 1], [0.3, 0.4], None),
])
def test_auc(labels, scores, expected):
    assert auc([bool(x) for x in labels], scores) == (pytest.approx(expected) if expected is not None else None)


def test_summary_counts_failures_as_wrong_and_measures_position_bias():
    outcomes = [
        # a judge that always says "A" with 0.8: right when the true item is first, wrong otherwise
        ItemOutcome(correct=True, failed=False, p_true=0.5, orders=[(True, 0.8), (False, 0.8)]),
        ItemOutcome(correct=True, failed=False, p_true=0.9, orders=[(True, 0.9), (False, 0.1)]),
        ItemOutcome(correct=False, failed=True, p_true=None, orders=[]),
        ItemOutcome(correct=False, failed=False, p_true=0.3, orders=[(True, 0.4), (False, 0.8)]),
    ]
    s = summarize(outcomes)
    assert s["n"] == 4 and s["accuracy"] == 0.5 and s["failed"] == 1
    assert s["mean_p_true"] == pytest.approx((0.5 + 0.9 + 0.3) / 3)
    assert s["p_a_when_a_true"] == pytest.approx((0.8 + 0.9 + 0.4) / 3)
    assert s["p_a_when_b_true"] == pytest.approx((0.8 + 0.1 + 0.8) / 3)
    assert s["ci_low"] < 0.5 < s["ci_high"]
    # positives .8 .9 .4 vs negatives .8 .1 .8: wins 2 (two ties) + 3 + 1 = 6 of 9 pairs
    assert s["auc"] == pytest.approx(6 / 9)
