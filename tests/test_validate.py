"""Behavioural validation: of k candidate profiles, the one that best predicts the user's own history pairs is
kept; k = 1 is the plain writer; only the interactions being summarized are ever shown to the validator."""

import math

import pytest

from prefscribe import InferConfig, InferJob, Inferrer, Interaction, Judge, Profile
from prefscribe.validate import ValidatedInferrer, validated_inferrer

SIMPLE, COMPLEX = "The user likes simple answers.", "The user likes complex answers."


def _history(chosen_kind: str, n: int = 3) -> list[Interaction]:
    other = "complex" if chosen_kind == "simple" else "simple"
    return [Interaction(context=f"Question {i}?", chosen=f"a {chosen_kind} answer {i}",
                        rejected=f"a {other} answer {i}") for i in range(n)]


def _reader(prompt) -> list[float]:
    """A judge that follows the profile: it favours the item of the kind the profile names."""
    text = " ".join(m["content"] for m in prompt)
    liked = "simple" if SIMPLE in text else "complex" if COMPLEX in text else None
    if liked is None:
        return [math.log(0.5), math.log(0.5)]
    first_is_liked = text.index(f"a {liked} answer") < text.index(
        f"a {'complex' if liked == 'simple' else 'simple'} answer")
    return [math.log(0.9), math.log(0.1)] if first_is_liked else [math.log(0.1), math.log(0.9)]


def test_the_candidate_that_predicts_the_users_own_choices_is_kept(fake_backend):
    # Candidates are written seed by seed: candidate 0 for both users, then candidate 1.
    backend = fake_backend(replies=[COMPLEX, COMPLEX, SIMPLE, SIMPLE], option_fn=_reader)
    writer = ValidatedInferrer(backend, InferConfig(style="direct"), judge=Judge(backend), candidates=2)
    simple_user, complex_user = writer.run([InferJob(_history("simple")), InferJob(_history("complex"))])
    assert simple_user.profile == SIMPLE and complex_user.profile == COMPLEX
    assert simple_user.validation == pytest.approx(0.9) and complex_user.validation == pytest.approx(0.9)
    # The kept profile carries what every candidate cost to write, and the judge's reading of them: the fake
    # backend counts 10 prompt tokens per judge prompt, 2 candidates x 3 pairs x 2 orders of them.
    one = sum(len(m["content"].split()) for m in backend.calls[0][1])
    assert simple_user.usage.prompt_tokens == 2 * one + 2 * 3 * 2 * 10
    assert simple_user.usage.completion_tokens == 2 * len(SIMPLE.split())


def test_one_candidate_is_the_plain_writer_and_asks_no_judge(fake_backend):
    backend = fake_backend(replies=[SIMPLE, SIMPLE], option_fn=_reader)
    plain = Inferrer(backend, InferConfig(style="direct"))
    assert validated_inferrer(plain, Judge(backend), 1) is plain
    validated = ValidatedInferrer(backend, InferConfig(style="direct"), judge=Judge(backend), candidates=1)
    (profile,) = validated.run([InferJob(_history("simple"))])
    assert profile.profile == SIMPLE and profile.validation is None
    assert [c[0] for c in backend.calls] == ["generate"]


def test_candidates_are_sampled_with_consecutive_seeds(fake_backend):
    backend = fake_backend(replies=[SIMPLE, COMPLEX, SIMPLE], option_fn=_reader)
    writer = ValidatedInferrer(backend, InferConfig(style="direct", seed=5), judge=Judge(backend), candidates=3)
    assert [w.sampling.seed for w in writer._seeded] == [5, 6, 7]
    assert writer.writer == "fake:test k=3 by fake:test"


def test_validation_reads_only_the_history_being_summarized_and_ties_keep_the_first(fake_backend):
    seen = []

    def reader(prompt):
        seen.append(" ".join(m["content"] for m in prompt))
        return [math.log(0.5), math.log(0.5)]

    backend = fake_backend(replies=[SIMPLE, COMPLEX], option_fn=reader)
    writer = ValidatedInferrer(backend, InferConfig(style="direct"), judge=Judge(backend), candidates=2)
    (profile,) = writer.run([InferJob(_history("simple", 2))])
    assert profile.profile == SIMPLE  # equal scores: candidate 0, the unvalidated writer's profile
    assert seen and all("Question 0?" in s or "Question 1?" in s for s in seen)


def test_positive_only_histories_keep_the_first_candidate_and_cost_one(fake_backend):
    backend = fake_backend(replies=[SIMPLE, COMPLEX, SIMPLE], option_fn=_reader)
    writer = ValidatedInferrer(backend, InferConfig(style="direct"), judge=Judge(backend), candidates=2)
    clicks, pairs = writer.run([InferJob([Interaction(chosen="a complex answer")]), InferJob(_history("simple"))])
    assert clicks.profile == SIMPLE and clicks.validation is None
    assert clicks.usage.completion_tokens == len(SIMPLE.split())  # no second candidate was written for it
    assert pairs.profile == SIMPLE and pairs.validation == pytest.approx(0.9)
    assert [c[0] for c in backend.calls].count("generate") == 3


def test_every_streaming_step_is_validated(fake_backend):
    backend = fake_backend(replies=[COMPLEX, SIMPLE, COMPLEX, SIMPLE], option_fn=_reader)
    writer = ValidatedInferrer(backend, InferConfig(style="direct"), judge=Judge(backend), candidates=2)
    steps = writer.stream_many([_history("simple", 4)], segments=2)[0]
    assert [s.profile for s in steps] == [SIMPLE, SIMPLE]
    assert isinstance(steps[1], Profile) and steps[1].covers == 4
