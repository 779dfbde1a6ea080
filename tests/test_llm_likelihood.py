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


def _gains(backend, prompts, task, baseline):
    """The judge's scores recomputed by hand: log p(item | P) - log p(item | baseline), or plain log p."""
    items = [prompts.item_text(task.a), prompts.item_text(task.b)]
    def logp(preference):
        conv = prompts.respond_messages(preference, task.context)
        return backend.continuation_logprobs([conv, conv], items)
    if not task.preference:
        return logp(None)
    with_p, base = logp(task.preference), logp(baseline)
    return [w - b for w, b in zip(with_p, base)]


EGG = dict(a="Six minutes, then cold water.", b="Eggs are versatile; first, some food science.",
           context="How do I boil an egg?")


@pytest.mark.parametrize("method,preference,baseline", [
    ("contrast", "The user wants short, practical answers.", "generic"),
    ("contrast", "The user loves background and science.", "generic"),
    ("contrast", None, None),                         # no profile: the plain log p(y | x) ranking
    ("likelihood", "The user wants short, practical answers.", None),
    ("likelihood", None, None),
])
def test_likelihood_methods_follow_their_scores(tiny_backend, method, preference, baseline):
    judge = Judge(tiny_backend, method=method)
    task = ChoiceTask(**EGG, preference=preference)
    choice = judge.choose(task)
    generic = judge.prompts.generic_preference() if baseline == "generic" else None
    score_a, score_b = _gains(tiny_backend, judge.prompts, task, generic)
    assert choice.method == method and choice.error is None
    assert choice.p_a + choice.p_b == pytest.approx(1.0)
    assert choice.p_a == pytest.approx(1 / (1 + math.exp(score_b - score_a)), abs=1e-3)
    assert choice.choice == ("a" if score_a > score_b else "b")


def test_contrast_without_a_profile_is_the_likelihood_none_ranking(tiny_backend):
    task = ChoiceTask(**EGG)
    contrast, likelihood = (Judge(tiny_backend, method=m).choose(task) for m in ("contrast", "likelihood"))
    assert contrast.p_a == pytest.approx(likelihood.p_a, abs=1e-6) and contrast.choice == likelihood.choice


def test_contrast_gives_the_generic_profile_a_tie_and_decides_nothing(tiny_backend):
    judge = Judge(tiny_backend, method="contrast")
    choice = judge.choose(ChoiceTask(**EGG, preference=judge.prompts.generic_preference()))
    assert choice.p_a == pytest.approx(0.5) and choice.p_b == pytest.approx(0.5)
    assert choice.choice is None and "tie" in choice.error


def test_likelihood_methods_score_long_items_as_the_prompts_show_them(tiny_backend):
    judge = Judge(tiny_backend, method="contrast")
    long_item = "Boil the water. " * 200  # 3,200 characters: the prompts cut it at 2,000
    task = ChoiceTask(a=long_item, b=EGG["b"], context=EGG["context"], preference="The user likes detail.")
    shown = judge.prompts.item_text(long_item)
    assert len(shown) < len(long_item) and shown.endswith("[...]")
    score_a, score_b = _gains(tiny_backend, judge.prompts, task, judge.prompts.generic_preference())
    assert judge.choose(task).p_a == pytest.approx(1 / (1 + math.exp(score_b - score_a)), abs=1e-3)
