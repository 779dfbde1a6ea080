"""The CTranslate2 engine against the transformers path on the tiny random model: the same numbers through the
Backend protocol (float32 weights, so differences are rounding), and int8 within the tolerance the embedded
default is held to (bench/bench_engines.py checks the real models)."""

import json
import math

import pytest

from prefscribe.judge import ChoiceTask, Judge
from prefscribe.llm import Sampling
from prefscribe.llm.ct2 import CT2Backend, convert
from prefscribe.llm.hf import HFBackend

pytest.importorskip("ctranslate2")

CONVERSATIONS = [
    [{"role": "user", "content": "Which item would this user prefer? Science fiction movies."}],
    [{"role": "system", "content": "Answer only with JSON."},
     {"role": "user", "content": "Explain how vaccines work. Why is the sky blue? Recommend a movie."}],
    [{"role": "user", "content": "The user prefers short, practical answers."}],
]


@pytest.fixture(scope="module")
def engines(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ct2")
    convert(tiny_model_dir, out / "f32", quantization="float32")
    convert(tiny_model_dir, out / "int8", quantization="int8")
    torch_backend = HFBackend.from_path(tiny_model_dir, spec="hf:tiny", dtype="float32")
    f32 = CT2Backend.from_path(out / "f32", spec="ct2:tiny", compute_type="float32")
    int8 = CT2Backend.from_path(out / "int8", spec="ct2:tiny-int8", compute_type="int8")
    return torch_backend, f32, int8


def test_a_converted_folder_carries_the_source_tokenizer_and_chat_template(engines, tiny_model_dir):
    torch_backend, f32, _ = engines
    assert f32.render(CONVERSATIONS[1], "Item") == torch_backend.render(CONVERSATIONS[1], "Item")
    assert f32.count_tokens("Science fiction movies") == torch_backend.count_tokens("Science fiction movies")
    assert f32.eos_ids == [torch_backend.tokenizer.eos_token_id]


def test_answer_letter_logprobs_match_the_torch_path(engines):
    torch_backend, f32, int8 = engines
    options = [" A", " B", " C"]
    expected = torch_backend.option_logprobs(CONVERSATIONS, '{"selection": "Item', options)
    got = f32.option_logprobs(CONVERSATIONS, '{"selection": "Item', options)
    quantized = int8.option_logprobs(CONVERSATIONS, '{"selection": "Item', options)
    for e, g, q in zip(expected, got, quantized):
        assert g.prompt_tokens == e.prompt_tokens
        assert g.logprobs == pytest.approx(e.logprobs, abs=1e-3)
        # A two-way probability moves by less than 0.03 with int8 weights.
        two_way = lambda lp: 1 / (1 + math.exp(lp[1] - lp[0]))
        assert abs(two_way(q.logprobs) - two_way(e.logprobs)) < 0.03


def test_continuation_likelihoods_match_the_torch_path(engines):
    torch_backend, f32, _ = engines
    continuations = ["Science fiction movies.", "news about technology", "0123"]
    expected = torch_backend.continuation_logprobs(CONVERSATIONS, continuations)
    assert f32.continuation_logprobs(CONVERSATIONS, continuations) == pytest.approx(expected, abs=1e-3)


def test_greedy_generation_matches_the_torch_path_token_for_token(engines):
    torch_backend, f32, _ = engines
    sampling = Sampling(max_new_tokens=12, temperature=0.0)
    expected = torch_backend.generate(CONVERSATIONS, sampling)
    got = f32.generate(CONVERSATIONS, sampling)
    assert [c.text for c in got] == [c.text for c in expected]
    assert [(c.prompt_tokens, c.completion_tokens, c.finish_reason) for c in got] == \
        [(c.prompt_tokens, c.completion_tokens, c.finish_reason) for c in expected]


def test_batches_keep_their_order_and_sampling_samples(engines):
    _, f32, _ = engines
    # Different lengths: the backend sorts by length to batch, and must put answers back in order.
    greedy = Sampling(max_new_tokens=10, temperature=0.0)
    together = f32.generate(CONVERSATIONS, greedy)
    alone = [f32.generate([c], greedy)[0] for c in CONVERSATIONS]
    assert [(c.text, c.prompt_tokens) for c in together] == [(c.text, c.prompt_tokens) for c in alone]
    # CTranslate2 samples on its own worker thread, whose generator Python cannot seed: samples differ run
    # to run (the reply cache is what makes reruns repeat), but they are samples, not the greedy reply.
    hot = Sampling(max_new_tokens=10, min_new_tokens=10, temperature=5.0, top_k=0, top_p=1.0)
    samples = {f32.generate(CONVERSATIONS[:1], hot)[0].text for _ in range(4)}
    assert len(samples) > 1 and all(c.completion_tokens == 10 for c in f32.generate(CONVERSATIONS, hot))


def test_the_judge_reads_the_same_choice_through_either_engine(engines):
    torch_backend, f32, _ = engines
    tasks = [ChoiceTask(a="Science fiction movies", b="news about technology", context="Recommend a movie.",
                        preference="The user prefers short, practical answers."),
             ChoiceTask(a="0123", b="abcdef", context=None, preference=None)]
    expected = Judge(torch_backend).choose_many(tasks)
    got = Judge(f32).choose_many(tasks)
    assert [c.choice for c in got] == [c.choice for c in expected]
    assert [c.p_a for c in got] == pytest.approx([c.p_a for c in expected], abs=1e-3)


def test_the_embedded_engine_is_named_in_the_spec(monkeypatch):
    from prefscribe.errors import ModelSpecError
    from prefscribe.llm import parse_spec
    from prefscribe.llm.embedded import engine_from_env

    assert parse_spec("embedded:0.5b+torch").engine == "torch"
    assert parse_spec("embedded").engine is None and str(parse_spec("embedded+ct2".replace("+", ":1.5b+"))) \
        == "embedded:1.5b"
    monkeypatch.setenv("PREFSCRIBE_ENGINE", "torch")
    assert engine_from_env() == "torch"
    monkeypatch.setenv("PREFSCRIBE_ENGINE", "ORT ")
    assert engine_from_env() == "ort" and parse_spec("embedded:1.5b+torch-fp32").engine == "torch-fp32"
    monkeypatch.setenv("PREFSCRIBE_ENGINE", "gguf")
    with pytest.raises(ModelSpecError, match="PREFSCRIBE_ENGINE"):
        engine_from_env()
    with pytest.raises(ModelSpecError, match="engine"):
        parse_spec("embedded:1.5b+onnx")


def test_a_damaged_conversion_is_detected_by_its_manifest(tmp_path):
    from prefscribe.llm.embedded import MANIFEST, _verify, _write_manifest

    folder = tmp_path / "m"
    (folder / "tokenizer").mkdir(parents=True)
    (folder / "model.bin").write_bytes(b"weights")
    (folder / "tokenizer" / "tokenizer.json").write_text("{}")
    _write_manifest(folder, {"engine": "ctranslate2"})
    assert json.loads((folder / MANIFEST).read_text())["files"].keys() == {"model.bin", "tokenizer/tokenizer.json"}
    assert _verify(folder)
    (folder / "model.bin").write_bytes(b"weightz")
    assert not _verify(folder)


def test_without_an_engine_named_the_cpu_picks_one(monkeypatch):
    """bf16 where the CPU multiplies it natively; elsewhere float32 (torch emulates bf16 several times slower)."""
    import torch

    from prefscribe.llm import hf
    from prefscribe.llm.embedded import default_engine, engine_from_env

    monkeypatch.delenv("PREFSCRIBE_ENGINE", raising=False)
    for native, engine, dtype in ((True, "torch", "bfloat16"), (False, "torch-fp32", "float32")):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda n=native: n, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
        assert hf.native_bf16() is native and hf.cpu_dtype() == dtype
        assert default_engine() == engine == engine_from_env()
