import math

import pytest

from prefscribe.judge import ChoiceTask, Judge, two_way

TASK = ChoiceTask(a="short answer", b="long answer", context="q", preference="Likes short answers.")


def biased_judge_logprobs(bias_first: float, prefers: str):
    """A judge that says 'A' with extra log-odds `bias_first` and also leans towards item `prefers`."""
    def option_fn(prompt):
        content = prompt[1]["content"]
        first_is_pref = content.index("## Item A\n" + prefers) >= 0 if ("## Item A\n" + prefers) in content else False
        logit_a = bias_first + (1.0 if first_is_pref else -1.0)
        return [math.log(1 / (1 + math.exp(-logit_a))), math.log(1 / (1 + math.exp(logit_a)))]
    return option_fn


def test_two_way_probability():
    assert two_way(math.log(0.3), math.log(0.1)) == pytest.approx(0.75)
    assert two_way(-1000.0, -1001.0) == pytest.approx(1 / (1 + math.exp(-1)))


def test_both_orders_cancel_position_bias(fake_backend):
    backend = fake_backend(option_fn=biased_judge_logprobs(bias_first=2.0, prefers="short answer"))
    both = Judge(backend).choose(TASK)
    # With bias +2 and preference +-1: P(A)=sigmoid(3) when a is first, sigmoid(1) when b is first.
    expected = (1 / (1 + math.exp(-3)) + (1 - 1 / (1 + math.exp(-1)))) / 2
    assert both.choice == "a" and both.p_a == pytest.approx(expected) and both.p_a + both.p_b == pytest.approx(1)
    assert [o.order for o in both.orders] == ["ab", "ba"]
    single = Judge(backend, orders="ba").choose(TASK)
    assert single.p_a == pytest.approx(1 - 1 / (1 + math.exp(-1))) and single.choice == "b"  # fooled by bias
    assert len(backend.calls[0][1]) == 2  # both orders in one backend call: their prefix is shared


def test_random_order_is_seeded(fake_backend):
    backend = fake_backend(option_fn=lambda p: [-0.1, -2.0])
    picks = [o.order for r in Judge(backend, orders="random", seed=3).choose_many([TASK] * 20) for o in r.orders]
    again = [o.order for r in Judge(backend, orders="random", seed=3).choose_many([TASK] * 20) for o in r.orders]
    assert picks == again and {"ab", "ba"} == set(picks)


def test_missing_letters_are_a_failure_not_a_guess(fake_backend):
    backend = fake_backend(option_fn=lambda p: [None, None])
    result = Judge(backend).choose(TASK)
    assert result.choice is None and result.p_a is None and "neither" in result.error


def test_generation_fallback_parses_and_records_failures(fake_backend):
    replies = iter(['{"selection": "Item A"}', '{"selection": "Item B"}', "no idea", "I pick item B"])
    backend = fake_backend(reply_fn=lambda p: next(replies))
    agree = Judge(backend, method="generation").choose(TASK)
    assert agree.choice == "a" and agree.p_a == 1.0  # a first -> "A"; b first -> "B": both say item a
    partial = Judge(backend, method="generation").choose(TASK)
    assert partial.choice == "a" and partial.p_a == 1.0 and "unparseable" in partial.error
