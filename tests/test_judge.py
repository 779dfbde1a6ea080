import math

import pytest

from prefscribe.cache import ResultCache, cache_key
from prefscribe.judge import MISSING_LOGPROB, ChoiceTask, Judge, two_way
from prefscribe.llm.base import OptionScores
from prefscribe.prompts import get_prompts

TASK = ChoiceTask(a="short answer", b="long answer", context="q", preference="Likes short answers.")


def biased_judge_logprobs(bias_first: float, prefers: str):
    """A judge that says 'A' with extra log-odds `bias_first` and also leans towards item `prefers`."""
    def option_fn(prompt):
        content = prompt[1]["content"]
        first_is_pref = ("## Item A\n" + prefers) in content
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


def test_choose_many_batches_the_tasks_in_few_backend_calls(fake_backend):
    backend = fake_backend(option_fn=biased_judge_logprobs(bias_first=0.0, prefers="short answer"))
    tasks = [ChoiceTask(a="short answer", b=f"long answer {i}", context=f"q{i}", preference="P") for i in range(5)]
    ticks = []
    choices = Judge(backend, tasks_per_call=3).choose_many(tasks, progress=ticks.append)
    assert [c.choice for c in choices] == ["a"] * 5 and sum(ticks) == 5
    assert [len(prompts) for _, prompts in backend.calls] == [6, 4]  # 3 tasks, then 2, both orders each
    letter = lambda p: "A" if "## Item A\nshort answer" in p[1]["content"] else "B"
    generation = fake_backend(reply_fn=lambda p: f'{{"selection": "Item {letter(p)}"}}')
    sizes, generate = [], generation.generate
    generation.generate = lambda prompts, sampling, progress=None: sizes.append(len(prompts)) or generate(
        prompts, sampling, progress)
    assert [c.choice for c in Judge(generation, method="generation").choose_many(tasks)] == ["a"] * 5
    assert sizes == [10]  # the five tasks' ten prompts in one generate call


def test_a_missing_letter_counts_as_very_unlikely(fake_backend):
    backend = fake_backend(option_fn=lambda p: [-0.5, None])
    result = Judge(backend, orders="ab").choose(TASK)
    assert result.p_a == pytest.approx(two_way(-0.5, MISSING_LOGPROB)) and result.choice == "a"


def test_failed_scores_are_returned_and_never_cached(fake_backend, tmp_path):
    cache = ResultCache(tmp_path / "c.sqlite")
    failing = fake_backend(option_fn=lambda p: [None, None])
    failing.option_logprobs = lambda prompts, prefill, options: [OptionScores([None, None], error="timeout")
                                                                 for _ in prompts]
    assert Judge(failing, cache=cache).choose(TASK).error == "timeout; timeout"
    assert len(cache) == 0
    working = fake_backend(option_fn=lambda p: [-0.1, -3.0])
    assert Judge(working, cache=cache).choose(TASK).choice == "a" and len(cache) == 1


def test_entries_cached_before_the_shared_layer_still_hit(fake_backend, tmp_path):
    """The key of a judgement is what judge.py always wrote: role, model, prompt version, both orders' messages."""
    cache = ResultCache(tmp_path / "c.sqlite")
    prompts = get_prompts()
    messages = [prompts.judge_messages(TASK.context, TASK.preference, first, second)
                for first, second in ((TASK.a, TASK.b), (TASK.b, TASK.a))]
    key = cache_key(role="judge-logprobs", model="fake:test", prompts=prompts.version, messages=messages)
    cache.put(key, [{"logprobs": [-0.1, -3.0], "prompt_tokens": 7, "error": None}] * 2)
    backend = fake_backend(option_fn=lambda p: pytest.fail("the cached entry was not used"))
    result = Judge(backend, cache=cache).choose(TASK)
    assert result.prompt_tokens == 14 and result.orders[0].p_a == pytest.approx(two_way(-0.1, -3.0))
