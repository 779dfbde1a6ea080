import pytest

from prefscribe.cache import ResultCache, cache_key, default_path
from prefscribe.errors import InputError
from prefscribe.infer import InferConfig, InferJob, Inferrer, infer, stream
from prefscribe.schema import InferenceFailure, Interaction, Profile

HISTORY = [Interaction(context=f"q{i}", chosen=f"short answer {i}", rejected=f"long rambling answer {i}")
           for i in range(6)]


def test_full_history_profile_records_model_version_covers_and_usage(fake_backend):
    backend = fake_backend(replies=["Prefers short answers."])
    result = infer(backend, HISTORY)
    assert isinstance(result, Profile)
    assert result.profile == "Prefers short answers." and result.covers == 6 and result.model == "fake:test"
    assert result.prompt_version.startswith("v1+") and result.usage.completion_tokens == 3
    prompt = backend.calls[0][1]
    assert "Not Provided." in prompt[1]["content"] and "short answer 5" in prompt[1]["content"]


def test_streaming_update_sends_only_new_interactions_and_the_past_summary(fake_backend):
    backend = fake_backend(replies=["Likes short answers. Likes cats."])
    past = Profile(profile="Likes short answers.", covers=6)
    new = [Interaction(chosen="a cat video", rejected="a dog video")]
    result = infer(backend, new, past=past)
    text = backend.calls[0][1][1]["content"]
    assert "Likes short answers." in text and "a cat video" in text and "short answer 0" not in text
    assert result.covers == 7 and result.parent is not None


def test_stream_over_segments_chains_profiles(fake_backend):
    seen = []

    def reply(prompt):
        seen.append(prompt[1]["content"])
        return f"Profile {len(seen)}."

    results = stream(fake_backend(reply_fn=reply), HISTORY, segments=3)
    assert [r.profile for r in results] == ["Profile 1.", "Profile 2.", "Profile 3."]
    assert [r.covers for r in results] == [2, 4, 6]
    assert "Not Provided." in seen[0] and "Profile 1." in seen[1] and "Profile 2." in seen[2]
    assert "short answer 2" in seen[1] and "short answer 0" not in seen[1]


def test_reasoning_reply_without_think_close_is_a_failure_and_stops_the_stream(fake_backend):
    backend = fake_backend(replies=["<think>The user seems to like"], thinks=True, finish_reason="length")
    results = stream(backend, HISTORY, segments=3)
    assert len(results) == 1 and isinstance(results[0], InferenceFailure)
    assert "no </think>" in results[0].error and results[0].raw.startswith("<think>")
    assert len(backend.calls) == 1


def test_reasoning_reply_keeps_reasoning_apart(fake_backend):
    result = infer(fake_backend(replies=["<think>All chosen are short.</think>\nPrefers brevity."], thinks=True),
                   HISTORY)
    assert result.profile == "Prefers brevity." and result.reasoning == "All chosen are short."


def test_cache_makes_a_rerun_free_and_keys_on_the_input(fake_backend, tmp_path):
    cache = ResultCache(tmp_path / "c.sqlite")
    backend = fake_backend(replies=["One.", "Two."])
    first = infer(backend, HISTORY, cache=cache)
    again = infer(backend, HISTORY, cache=cache)
    assert again.profile == first.profile == "One." and len(backend.calls) == 1
    other = infer(backend, HISTORY[:3], cache=cache)
    assert other.profile == "Two." and len(backend.calls) == 2 and len(cache) == 2


def test_batch_of_users_is_one_generate_call(fake_backend):
    backend = fake_backend(reply_fn=lambda p: "A profile.")
    calls = []
    backend_generate = backend.generate
    backend.generate = lambda prompts, sampling, progress=None: calls.append(len(prompts)) or backend_generate(
        prompts, sampling, progress)
    results = Inferrer(backend).run([InferJob(HISTORY[:i + 1]) for i in range(5)])
    assert calls == [5] and [r.covers for r in results] == [1, 2, 3, 4, 5]


def test_long_history_is_cut_to_the_context(fake_backend):
    backend = fake_backend(replies=["Fine."], context_window=600)
    long = [Interaction(chosen=f"item {i} " + "word " * 20) for i in range(1000)]
    result = infer(backend, long, config=InferConfig(style="direct"))
    prompt = backend.calls[0][1][1]["content"]
    assert "item 999" in prompt and "item 0 " not in prompt
    assert 0 < result.covers < 1000 and "earlier interactions omitted" in prompt


def test_empty_history_without_past_is_an_error_and_with_past_a_no_op(fake_backend):
    backend = fake_backend()
    with pytest.raises(InputError, match="empty history"):
        infer(backend, [])
    past = Profile(profile="Unchanged.", covers=3)
    assert infer(backend, [], past=past) == past and backend.calls == []


def test_more_segments_than_interactions_is_an_input_error(fake_backend):
    with pytest.raises(InputError, match="non-empty segments"):
        stream(fake_backend(), HISTORY[:2], segments=3)


def test_infer_caches_in_the_user_cache_by_default_and_none_disables_it(fake_backend):
    backend = fake_backend(replies=["One.", "Two."])
    assert infer(backend, HISTORY).profile == "One."
    assert infer(backend, HISTORY).profile == "One." and len(backend.calls) == 1  # the default cache
    assert default_path().is_file() and len(ResultCache(default_path())) == 1
    assert infer(backend, HISTORY, cache=None).profile == "Two." and len(backend.calls) == 2


def test_entries_cached_before_the_shared_layer_still_hit(fake_backend, tmp_path):
    cache = ResultCache(tmp_path / "c.sqlite")
    inferrer = Inferrer(fake_backend(replies=["Fresh."]), InferConfig(), cache)
    messages = inferrer.plan(InferJob(HISTORY)).messages
    key = cache_key(role="infer", model="fake:test", prompts=inferrer.prompts.version, style="direct",
                    sampling=inferrer.sampling.__dict__, messages=messages)
    assert inferrer.plan(InferJob(HISTORY)).key == key  # the key a plan names is where run() looks
    cache.put(key, {"text": "Cached.", "prompt_tokens": 1, "completion_tokens": 1, "finish_reason": "stop",
                    "error": None})
    assert inferrer.run([InferJob(HISTORY)])[0].profile == "Cached."


def test_a_failure_is_not_a_past_profile(fake_backend):
    failure = infer(fake_backend(replies=["<think>cut off"], thinks=True), HISTORY)
    assert isinstance(failure, InferenceFailure)
    with pytest.raises(InputError, match="past is a failed inference"):
        infer(fake_backend(replies=["x"]), HISTORY, past=failure)


def test_max_new_tokens_and_seed_override_the_styles_sampling(fake_backend):
    inferrer = Inferrer(fake_backend(), InferConfig(style="reasoning", max_new_tokens=99, seed=5))
    assert inferrer.sampling.max_new_tokens == 99 and inferrer.sampling.seed == 5
    assert inferrer.sampling.temperature == 0.6  # the rest is the style's default
