"""The ONNX Runtime GenAI engine against the transformers path on the tiny random model: float32 conversions give
the same numbers through the Backend protocol (differences are rounding), int4 ones stay within the tolerance
of a two-way probability (bench/bench_engines.py checks the real models)."""

import math

import pytest

from prefscribe.judge import ChoiceTask, Judge
from prefscribe.llm import Sampling
from prefscribe.llm.hf import HFBackend

pytest.importorskip("onnxruntime_genai")

from prefscribe.llm.ort import ORTBackend, convert  # after the skip: the engine is optional

CONVERSATIONS = [
    [{"role": "user", "content": "Which item would this user prefer? Science fiction movies."}],
    [{"role": "system", "content": "Answer only with JSON."},
     {"role": "user", "content": "Explain how vaccines work. Why is the sky blue? Recommend a movie."}],
    [{"role": "user", "content": "The user prefers short, practical answers."}],
]


@pytest.fixture(scope="module")
def engines(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ort")
    convert(tiny_model_dir, out / "f32", precision="fp32")
    convert(tiny_model_dir, out / "int4", precision="int4")
    torch_backend = HFBackend.from_path(tiny_model_dir, spec="hf:tiny", dtype="float32")
    return torch_backend, ORTBackend.from_path(out / "f32", spec="ort:tiny"), \
        ORTBackend.from_path(out / "int4", spec="ort:tiny-int4")


def test_a_converted_folder_carries_the_source_tokenizer_and_chat_template(engines):
    torch_backend, f32, _ = engines
    assert f32.render(CONVERSATIONS[1], "Item") == torch_backend.render(CONVERSATIONS[1], "Item")
    assert f32.count_tokens("Science fiction movies") == torch_backend.count_tokens("Science fiction movies")
    assert f32.eos_ids == [torch_backend.tokenizer.eos_token_id]


def test_answer_letter_logprobs_match_the_torch_path(engines):
    torch_backend, f32, int4 = engines
    options = [" A", " B", " C"]
    prompts = CONVERSATIONS + [CONVERSATIONS[0] + [{"role": "user", "content": "Recommend a movie."}]]
    expected = torch_backend.option_logprobs(prompts, '{"selection": "Item', options)
    got = f32.option_logprobs(prompts, '{"selection": "Item', options)
    quantized = int4.option_logprobs(prompts, '{"selection": "Item', options)
    two_way = lambda lp: 1 / (1 + math.exp(lp[1] - lp[0]))
    for e, g, q in zip(expected, got, quantized, strict=True):
        assert g.prompt_tokens == e.prompt_tokens
        assert g.logprobs == pytest.approx(e.logprobs, abs=1e-3)
        assert abs(two_way(q.logprobs) - two_way(e.logprobs)) < 0.03


def test_continuation_likelihoods_match_the_torch_path_shared_prompt_or_not(engines):
    torch_backend, f32, _ = engines
    continuations = ["Science fiction movies.", "news about technology", "0123"]
    for prompts in (CONVERSATIONS, [CONVERSATIONS[0]] * 3):  # three prompts; one prompt, three items
        expected = torch_backend.continuation_logprobs(prompts, continuations)
        assert f32.continuation_logprobs(prompts, continuations) == pytest.approx(expected, abs=1e-3)


def test_greedy_generation_matches_the_torch_path_token_for_token(engines):
    torch_backend, f32, _ = engines
    sampling = Sampling(max_new_tokens=12, temperature=0.0)
    # Different lengths, and two of one length (a real batch): answers come back in the order asked.
    prompts = CONVERSATIONS + [CONVERSATIONS[2]]
    expected = torch_backend.generate(prompts, sampling)
    got = f32.generate(prompts, sampling)
    assert [c.text for c in got] == [c.text for c in expected]
    assert [(c.prompt_tokens, c.completion_tokens, c.finish_reason) for c in got] == \
        [(c.prompt_tokens, c.completion_tokens, c.finish_reason) for c in expected]


def test_sampling_is_seeded_and_honours_min_new_tokens(engines):
    _, f32, _ = engines
    hot = Sampling(max_new_tokens=10, min_new_tokens=10, temperature=5.0, top_k=0, top_p=1.0, seed=3)
    first = [c.text for c in f32.generate(CONVERSATIONS, hot)]
    assert first == [c.text for c in f32.generate(CONVERSATIONS, hot)]
    greedy = [c.text for c in f32.generate(CONVERSATIONS, Sampling(max_new_tokens=10, temperature=0.0))]
    assert first != greedy and all(c.completion_tokens == 10 for c in f32.generate(CONVERSATIONS, hot))


def test_the_judge_reads_the_same_choice_through_either_engine(engines):
    torch_backend, f32, _ = engines
    tasks = [ChoiceTask(a="Science fiction movies", b="news about technology", context="Recommend a movie.",
                        preference="The user prefers short, practical answers."),
             ChoiceTask(a="0123", b="abcdef", context=None, preference=None)]
    expected = Judge(torch_backend).choose_many(tasks)
    got = Judge(f32).choose_many(tasks)
    assert [c.choice for c in got] == [c.choice for c in expected]
    assert [c.p_a for c in got] == pytest.approx([c.p_a for c in expected], abs=1e-3)


def test_a_failed_conversion_names_the_source_and_says_why(tmp_path):
    from prefscribe.errors import ModelUnavailableError

    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelUnavailableError, match="empty"):
        convert(tmp_path / "empty", tmp_path / "out")
