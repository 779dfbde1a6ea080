"""Every converted CPU engine against the transformers path on the tiny random model, one suite: float32
conversions give the same numbers through the Backend protocol (differences are rounding), quantized ones stay
within the tolerance of a two-way probability (bench/bench_engines.py checks the real models). A new engine adds
a row to ENGINES."""

import importlib
import json
import math
from dataclasses import dataclass

import pytest

from prefscribe.judge import ChoiceTask, Judge
from prefscribe.llm import Sampling
from prefscribe.llm.hf import HFBackend

from .watching import check_cancelling, check_no_cut_off_reply_is_cached, check_streaming


@dataclass(frozen=True)
class Engine:
    name: str        # the module in prefscribe.llm, and the engine's name in specs
    runtimes: tuple  # the imports that must work for the engine to be tested
    float32: str     # the conversion that matches torch to rounding
    quantized: str   # the conversion the embedded models use
    seeded: bool     # whether sampling repeats for a seed
    forward: str | None = None  # the backend's one model call (first argument: token ids [rows, n]), if ours


ENGINES = [
    Engine("ct2", ("ctranslate2",), float32="float32", quantized="int8",
           seeded=False),  # CTranslate2 samples on a worker thread that Python cannot seed
    Engine("ort", ("onnxruntime_genai",), float32="fp32", quantized="int4", seeded=True, forward="_run"),
    Engine("ov", ("openvino", "nncf"), float32="float32", quantized="int8", seeded=True, forward="_forward"),
]

CONVERSATIONS = [
    [{"role": "user", "content": "Which item would this user prefer? Science fiction movies."}],
    [{"role": "system", "content": "Answer only with JSON."},
     {"role": "user", "content": "Explain how vaccines work. Why is the sky blue? Recommend a movie."}],
    [{"role": "user", "content": "The user prefers short, practical answers."}],
]


def two_way(logprobs):
    return 1 / (1 + math.exp(logprobs[1] - logprobs[0]))


@pytest.fixture(scope="module", params=ENGINES, ids=lambda e: e.name)
def engine(request):
    for module in request.param.runtimes:
        pytest.importorskip(module)
    return request.param, importlib.import_module(f"prefscribe.llm.{request.param.name}")


@pytest.fixture(scope="module")
def engines(engine, tiny_model_dir, tmp_path_factory):
    """(torch float32, the engine on float32 weights, the engine on quantized weights)."""
    case, module = engine
    out = tmp_path_factory.mktemp(case.name)
    convert_and_load = {}
    for kind, quantization in (("f32", case.float32), ("quantized", case.quantized)):
        module.convert(tiny_model_dir, out / kind, quantization=quantization)
        convert_and_load[kind] = module.load(out / kind, spec=f"{case.name}:tiny-{quantization}", context_window=8192)
    torch_backend = HFBackend.from_path(tiny_model_dir, spec="hf:tiny", dtype="float32")
    return torch_backend, convert_and_load["f32"], convert_and_load["quantized"]


def test_a_converted_folder_carries_the_source_tokenizer_and_chat_template(engines):
    torch_backend, f32, _ = engines
    assert f32.render(CONVERSATIONS[1], "Item") == torch_backend.render(CONVERSATIONS[1], "Item")
    assert f32.count_tokens("Science fiction movies") == torch_backend.count_tokens("Science fiction movies")
    assert f32.eos_ids == [torch_backend.tokenizer.eos_token_id]


def test_answer_letter_logprobs_match_the_torch_path(engines):
    torch_backend, f32, quantized = engines
    options = [" A", " B", " C"]
    # The last prompt shares the first one's prefix: engines that reuse a prefix's cache must still agree.
    prompts = CONVERSATIONS + [CONVERSATIONS[0] + [{"role": "user", "content": "Recommend a movie."}]]
    expected = torch_backend.option_logprobs(prompts, '{"selection": "Item', options)
    got = f32.option_logprobs(prompts, '{"selection": "Item', options)
    low = quantized.option_logprobs(prompts, '{"selection": "Item', options)
    for e, g, q in zip(expected, got, low, strict=True):
        assert g.prompt_tokens == e.prompt_tokens
        assert g.logprobs == pytest.approx(e.logprobs, abs=1e-3)
        # A two-way probability moves by less than 0.03 with quantized weights.
        assert abs(two_way(q.logprobs) - two_way(e.logprobs)) < 0.03


def test_questions_on_one_long_shared_prompt_match_the_torch_path(engines):
    """The measured writer's workload: one long pair read once, then many questions of different lengths on it
    (engines reuse the shared part; CTranslate2 feeds a batch's longer suffixes step by step)."""
    torch_backend, f32, quantized = engines
    pair = "Science fiction movies, thoughtful drama, news about technology, science and health. " * 6
    questions = ["Which item?", "Explain how vaccines work. Why is the sky blue? Recommend a movie.",
                 "Not Provided.", "The user prefers short, practical answers and avoids long introductions. Which item?"]
    prompts = [[{"role": "user", "content": pair + q}] for q in questions]
    options = [" A", " B"]
    expected = torch_backend.option_logprobs(prompts, '{"selection": "Item', options)
    got = f32.option_logprobs(prompts, '{"selection": "Item', options)
    low = quantized.option_logprobs(prompts, '{"selection": "Item', options)
    assert [g.prompt_tokens for g in got] == [e.prompt_tokens for e in expected]
    assert len({round(e.logprobs[0], 4) for e in expected}) > 1  # the questions do change the answer
    for e, g, q in zip(expected, got, low, strict=True):
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


def test_batches_keep_their_order(engines):
    _, f32, _ = engines
    # Different lengths: a backend that sorts or groups by length to batch must put answers back in order.
    greedy = Sampling(max_new_tokens=10, temperature=0.0)
    together = f32.generate(CONVERSATIONS, greedy)
    alone = [f32.generate([c], greedy)[0] for c in CONVERSATIONS]
    assert [(c.text, c.prompt_tokens) for c in together] == [(c.text, c.prompt_tokens) for c in alone]


def test_prompts_of_different_lengths_decode_together(engine, engines, monkeypatch):
    """The decode steps of a batch run its rows in one call (the memory-bound step reads the weights once for
    all of them), and every row gets what it gets alone."""
    import numpy as np

    case, _ = engine
    if case.forward is None:
        pytest.skip(f"{case.name} batches inside its runtime")
    _, f32, _ = engines
    rows_per_call = []
    call = getattr(f32, case.forward)

    def spy(ids, *args):
        rows_per_call.append(np.asarray(ids).shape[0])
        return call(ids, *args)

    monkeypatch.setattr(f32, case.forward, spy)
    greedy = Sampling(max_new_tokens=6, min_new_tokens=6, temperature=0.0)
    together = f32.generate(CONVERSATIONS, greedy)
    assert len({len(f32._encode(f32.render(c))) for c in CONVERSATIONS}) == 3 and max(rows_per_call) == 3
    alone = [f32.generate([c], greedy)[0] for c in CONVERSATIONS]
    assert [c.text for c in together] == [c.text for c in alone]


def test_sampling_samples_honours_min_new_tokens_and_repeats_where_seeded(engine, engines):
    case, _ = engine
    _, f32, _ = engines
    hot = Sampling(max_new_tokens=10, min_new_tokens=10, temperature=5.0, top_k=0, top_p=1.0, seed=3)
    greedy = [c.text for c in f32.generate(CONVERSATIONS, Sampling(max_new_tokens=10, temperature=0.0))]
    first = f32.generate(CONVERSATIONS, hot)
    assert [c.text for c in first] != greedy and all(c.completion_tokens == 10 for c in first)
    again = [f32.generate(CONVERSATIONS[:1], hot)[0].text for _ in range(4)]
    if case.seeded:
        assert set(again) == {first[0].text}
    else:  # samples differ run to run (the reply cache is what makes reruns repeat), but they are samples
        assert len(set(again)) > 1


def test_a_watch_hears_each_reply_as_it_is_decoded(engines):
    _, f32, _ = engines
    check_streaming(f32, CONVERSATIONS)


def test_a_cancelled_watch_stops_the_decode_loop_and_caches_nothing(engine, engines, monkeypatch, tmp_path):
    case, _ = engine
    _, f32, _ = engines
    calls = []
    if case.forward is not None:  # the forward passes counted where they are ours; CTranslate2 by its tokens
        forward = getattr(f32, case.forward)
        monkeypatch.setattr(f32, case.forward, lambda *args: calls.append(1) or forward(*args))
    check_cancelling(f32, CONVERSATIONS, (lambda: len(calls)) if case.forward else None)
    check_no_cut_off_reply_is_cached(f32, CONVERSATIONS, tmp_path)


def test_the_judge_reads_the_same_choice_through_either_engine(engines):
    torch_backend, f32, _ = engines
    tasks = [ChoiceTask(a="Science fiction movies", b="news about technology", context="Recommend a movie.",
                        preference="The user prefers short, practical answers."),
             ChoiceTask(a="0123", b="abcdef", context=None, preference=None)]
    expected = Judge(torch_backend).choose_many(tasks)
    got = Judge(f32).choose_many(tasks)
    assert [c.choice for c in got] == [c.choice for c in expected]
    assert [c.p_a for c in got] == pytest.approx([c.p_a for c in expected], abs=1e-3)


def test_a_failed_conversion_names_the_source_and_says_why(engine, tmp_path):
    from prefscribe.errors import ModelUnavailableError

    _, module = engine
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelUnavailableError, match="empty"):
        module.convert(tmp_path / "empty", tmp_path / "out")


def test_a_missing_runtime_says_how_to_install_it(engine):
    from prefscribe.errors import ModelUnavailableError
    from prefscribe.llm._engine import runtime

    _, module = engine
    absent = module.ENGINE.__class__(**{**module.ENGINE.__dict__, "module": "prefscribe_no_such_runtime"})
    with pytest.raises(ModelUnavailableError, match=f"{module.ENGINE.name} engine needs .*pip install"):
        runtime(absent)


# ------------------------------------------------------------------------ engine names, cache, choice
def test_the_embedded_engine_is_named_in_the_spec(monkeypatch):
    from prefscribe.errors import ModelSpecError
    from prefscribe.llm import parse_spec
    from prefscribe.llm.embedded import engine_from_env

    assert parse_spec("embedded:0.5b+torch").engine == "torch"
    assert parse_spec("embedded").engine is None and str(parse_spec("embedded:1.5b+ct2")) == "embedded:1.5b"
    monkeypatch.setenv("PREFSCRIBE_ENGINE", "torch")
    assert engine_from_env() == "torch"
    monkeypatch.setenv("PREFSCRIBE_ENGINE", "ORT ")
    assert engine_from_env() == "ort" and parse_spec("embedded:1.5b+torch-fp32").engine == "torch-fp32"
    monkeypatch.setenv("PREFSCRIBE_ENGINE", "gguf")
    with pytest.raises(ModelSpecError, match="PREFSCRIBE_ENGINE"):
        engine_from_env()
    with pytest.raises(ModelSpecError, match="engine"):
        parse_spec("embedded:1.5b+onnx")


def test_an_hf_spec_names_its_dtype_and_a_cache_never_mixes_a_bf16_and_a_float32_load(tiny_model_dir, tmp_path):
    from prefscribe.cache import CachedCalls, ResultCache
    from prefscribe.llm import load_backend, parse_spec
    from prefscribe.llm.hf import torch_engine

    assert parse_spec("hf:/models/x+torch-fp32") == parse_spec("hf:/models/x").__class__("hf", "/models/x",
                                                                                             engine="torch-fp32")
    assert parse_spec("hf:/models/a+b").name == "/models/a+b"  # a "+" in a path is not an engine
    bf16 = load_backend(f"hf:{tiny_model_dir}+torch")
    f32 = load_backend(f"hf:{tiny_model_dir}+torch-fp32")
    assert (bf16.info.spec, str(bf16.model.dtype)) == (f"hf:{tiny_model_dir}+torch", "torch.bfloat16")
    assert (f32.info.spec, str(f32.model.dtype)) == (f"hf:{tiny_model_dir}+torch-fp32", "torch.float32")
    assert load_backend(f"hf:{tiny_model_dir}").info.spec == f"hf:{tiny_model_dir}+{torch_engine()}"
    assert HFBackend.from_path(tiny_model_dir, dtype="float32").info.spec == f32.info.spec

    cache = ResultCache(tmp_path / "results.sqlite")
    greedy = Sampling(max_new_tokens=4, temperature=0.0)
    calls = [CachedCalls(backend, cache, prompt_version="v1") for backend in (bf16, f32)]
    assert calls[0].generation_key("infer", CONVERSATIONS[0], greedy) != \
        calls[1].generation_key("infer", CONVERSATIONS[0], greedy)
    for n, call in enumerate(calls, start=1):  # the second load finds nothing of the first's
        call.generate([CONVERSATIONS[0]], greedy, role="infer")
        assert len(cache) == n


def test_every_converted_engine_is_one_module_the_embedded_models_find_by_name():
    from prefscribe.llm.embedded import CONVERTED, ENGINES, converted_engine

    assert set(CONVERTED) <= set(ENGINES)
    for name in CONVERTED:
        module = converted_engine(name)
        assert module.ENGINE.name == name and callable(module.convert) and callable(module.load)


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
    """bf16 where the CPU multiplies it natively; elsewhere the class's engine (torch emulates bf16 several times
    slower than float32)."""
    import torch

    from prefscribe.llm import hf
    from prefscribe.llm._cpu import OVERRIDES
    from prefscribe.llm.embedded import DEFAULT_ENGINES, default_engine, engine_from_env

    monkeypatch.delenv("PREFSCRIBE_ENGINE", raising=False)
    for variable in OVERRIDES:
        monkeypatch.delenv(variable, raising=False)
    for bf16, avx512, engine, dtype in ((True, True, "torch", "bfloat16"),
                                        (False, True, DEFAULT_ENGINES["avx512"], "float32"),
                                        (False, False, DEFAULT_ENGINES["avx2"], "float32")):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda n=bf16: n, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_avx512_supported", lambda n=avx512: n, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_avx2_supported", lambda: True, raising=False)
        assert hf.native_bf16() is bf16 and hf.cpu_dtype() == dtype
        assert default_engine() == engine == engine_from_env()


@pytest.mark.parametrize("hardware, env, expected", [
    ("bf16", {}, "bf16"),
    ("bf16", {"ATEN_CPU_CAPABILITY": "avx2"}, "avx2"),
    ("bf16", {"ATEN_CPU_CAPABILITY": "default"}, "baseline"),
    ("bf16", {"ATEN_CPU_CAPABILITY": "avx512"}, "bf16"),       # AVX-512 ATen kernels still do bf16
    ("bf16", {"CT2_FORCE_CPU_ISA": "AVX2"}, "avx2"),
    ("bf16", {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}, "avx512"),  # oneDNN below its bf16 kernels
    ("bf16", {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}, "bf16"),
    ("avx2", {"ATEN_CPU_CAPABILITY": "avx512"}, "avx2"),       # an override never adds what the CPU lacks
    ("bf16", {"ATEN_CPU_CAPABILITY": "avx512", "CT2_FORCE_CPU_ISA": "AVX2"}, "avx2"),  # the lowest wins
])
def test_the_cpu_class_honours_every_runtimes_isa_override(monkeypatch, hardware, env, expected):
    from prefscribe.llm import _cpu
    from prefscribe.llm.embedded import DEFAULT_ENGINES, default_engine

    monkeypatch.setattr(_cpu, "hardware_class", lambda: hardware)
    for variable in _cpu.OVERRIDES:
        monkeypatch.delenv(variable, raising=False)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.delenv("PREFSCRIBE_ENGINE", raising=False)
    assert _cpu.cpu_class() == expected and default_engine() == DEFAULT_ENGINES[expected]


_AVX2_CHILD = """
import json, sys, tempfile, torch
from pathlib import Path
from prefscribe.llm import GREEDY, load_backend
from prefscribe.llm._cpu import cpu_class
from prefscribe.llm.embedded import default_engine
from prefscribe.llm import ct2

tiny = sys.argv[1]
backend = load_backend(f"hf:{tiny}")
reply = backend.generate([[{"role": "user", "content": "hello"}]], GREEDY)[0]
out = Path(tempfile.mkdtemp()) / "ct2"
ct2.convert(Path(tiny), out)
ct2.load(out, spec="ct2:tiny", context_window=8192).generate([[{"role": "user", "content": "hello"}]], GREEDY)
print("RESULT " + json.dumps({"torch": torch.backends.cpu.get_cpu_capability(), "class": cpu_class(),
                              "engine": default_engine(), "spec": backend.info.spec,
                              "dtype": str(backend.model.dtype), "tokens": reply.completion_tokens}))
"""


def test_the_avx2_overrides_reach_the_runtimes_and_the_engine_choice(tiny_model_dir):
    """A child process with the overrides set (they are read when a runtime starts) chooses the AVX2 machine's
    engine, loads hf: models in float32, and torch and CTranslate2 dispatch to their AVX2 kernels."""
    import os
    import subprocess
    import sys

    pytest.importorskip("ctranslate2")
    from prefscribe.llm._cpu import isa_env
    from prefscribe.llm.embedded import DEFAULT_ENGINES

    env = {**os.environ, **isa_env("avx2"), "CT2_VERBOSE": "1", "PREFSCRIBE_ENGINE": ""}
    done = subprocess.run([sys.executable, "-c", _AVX2_CHILD, str(tiny_model_dir)], capture_output=True, text=True,
                          env=env, timeout=600, check=False)
    result = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert result, done.stderr[-3000:]
    got = json.loads(result[0][7:])
    assert got["torch"] == "AVX2" and got["class"] == "avx2" and got["engine"] == DEFAULT_ENGINES["avx2"]
    assert got["spec"] == f"hf:{tiny_model_dir}+torch-fp32" and got["dtype"] == "torch.float32"
    assert got["tokens"] > 0
    assert "Selected ISA: AVX2" in done.stderr
