"""Continuation log-likelihoods: a prompt given with several continuations runs once and shares its KV cache."""

import math

import pytest

from prefscribe.judge import ChoiceTask, Judge


def test_shared_prompt_gives_the_same_likelihoods_as_separate_rows(tiny_backend):
    with_profile = [{"role": "system", "content": "Tailor your answer. The user likes short answers."},
                    {"role": "user", "content": "How do I boil an egg?"}]
    without = [{"role": "system", "content": "Tailor your answer."},
               {"role": "user", "content": "How do I boil an egg?"}]
    items = ["Six minutes, then cold water.", "Eggs are a versatile food enjoyed around the world; first, the science."]
    prompts = [with_profile, with_profile, without, without]
    continuations = [items[0], items[1], items[0], items[1]]
    shared = tiny_backend.continuation_logprobs(prompts, continuations)
    alone = [tiny_backend.continuation_logprobs([p], [c])[0] for p, c in zip(prompts, continuations)]
    assert shared == pytest.approx(alone, abs=1e-3)
    assert all(s < 0 for s in shared) and shared[0] != shared[1]


def test_likelihood_judge_without_a_preference_ranks_by_plain_likelihood(tiny_backend):
    task = ChoiceTask(a="Six minutes.", b="It depends on many things.", context="How do I boil an egg?")
    judge = Judge(tiny_backend, method="likelihood")
    choice = judge.choose(task)
    plain = judge.prompts.respond_messages(None, task.context)
    la, lb = (tiny_backend.continuation_logprobs([plain], [item])[0] for item in (task.a, task.b))
    assert choice.p_a == pytest.approx(1 / (1 + math.exp(lb - la)), abs=1e-3)
    assert choice.choice == ("a" if la >= lb else "b")
