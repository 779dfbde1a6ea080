import math

import pytest
import torch

from prefscribe.errors import ModelSpecError, ModelUnavailableError
from prefscribe.infer import InferConfig, InferJob, Inferrer
from prefscribe.judge import ChoiceTask, Judge
from prefscribe.llm import Sampling, parse_spec
from prefscribe.llm.openai import OpenAIBackend
from prefscribe.prompts import JUDGE_OPTIONS, JUDGE_PREFILL, get_prompts
from prefscribe.schema import InferenceFailure, Interaction, Profile

from .openai_server import ServerThread, build_app
from .watching import check_cancelling, check_no_cut_off_reply_is_cached, check_streaming


@pytest.mark.parametrize("text, expected", [
    ("embedded", "embedded:1.5b"), ("embedded:0.5b", "embedded:0.5b"), ("hf:/models/x", "hf:/models/x"),
    ("openai:Qwen/Qwen3-8B@http://gpu-box:8000/v1/", "openai:Qwen/Qwen3-8B@http://gpu-box:8000/v1"),
])
def test_spec_parsing(text, expected):
    assert str(parse_spec(text)) == expected


@pytest.mark.parametrize("text", ["", "embedded:7b", "openai:model", "openai:@http://x", "gpt4"])
def test_bad_specs_say_what_to_write(text):
    with pytest.raises(ModelSpecError, match="embedded|openai"):
        parse_spec(text)


def _judge_prompts(order_swapped=False):
    p = get_prompts()
    a, b = "short answer about cats", "a long rambling essay on dogs"
    return [p.judge_messages("Which pet?", "Likes cats.", a, b), p.judge_messages("Which pet?", "Likes cats.", b, a)]


def test_shared_prefix_pass_equals_independent_passes(tiny_backend):
    prompts = _judge_prompts()
    together = tiny_backend.option_logprobs(prompts, JUDGE_PREFILL, JUDGE_OPTIONS)
    apart = [tiny_backend.option_logprobs([p], JUDGE_PREFILL, JUDGE_OPTIONS)[0] for p in prompts]
    for x, y in zip(together, apart):
        assert x.logprobs == pytest.approx(y.logprobs, abs=1e-4)
        assert all(lp < 0 for lp in x.logprobs)
    # And both equal a plain full forward of the model.
    tok, model = tiny_backend.tokenizer, tiny_backend.model
    ids = tok(tiny_backend.render(prompts[1], JUDGE_PREFILL), add_special_tokens=False, return_tensors="pt")
    with torch.inference_mode():
        full = torch.log_softmax(model(**ids).logits[0, -1].float(), -1)
    option_ids = [tiny_backend._option_token(JUDGE_PREFILL, o) for o in JUDGE_OPTIONS]
    assert together[1].logprobs == pytest.approx([float(full[i]) for i in option_ids], abs=1e-4)


def test_a_batch_of_judgements_shares_each_judgements_prefix(tiny_backend, monkeypatch):
    p = get_prompts()
    pairs = [("Which pet should I get for a small flat?", "cats", "dogs"),
             ("What should I drink with breakfast today?", "tea", "coffee")]
    prompts = [p.judge_messages(context, "Likes quiet things.", x, y)
               for context, a, b in pairs for x, y in ((a, b), (b, a))]
    shared_runs = []
    real = tiny_backend._last_hidden_shared_prefix
    monkeypatch.setattr(tiny_backend, "_last_hidden_shared_prefix",
                        lambda encoded, shared: shared_runs.append(len(encoded)) or real(encoded, shared))
    together = tiny_backend.option_logprobs(prompts, JUDGE_PREFILL, JUDGE_OPTIONS)
    assert shared_runs == [2, 2]  # one prefix pass per judgement, not one for the whole batch
    apart = [s for i in (0, 2) for s in tiny_backend.option_logprobs(prompts[i:i + 2], JUDGE_PREFILL, JUDGE_OPTIONS)]
    for x, y in zip(together, apart):
        assert x.logprobs == pytest.approx(y.logprobs, abs=1e-4)


def test_continuation_logprobs_match_a_manual_sum(tiny_backend):
    conv = [{"role": "user", "content": "Recommend a movie."}]
    score = tiny_backend.continuation_logprobs([conv], ["Moon (2009)"])[0]
    tok, model = tiny_backend.tokenizer, tiny_backend.model
    head = tok(tiny_backend.render(conv), add_special_tokens=False)["input_ids"]
    cont = tok("Moon (2009)", add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([head + cont])).logits[0].float()
    manual = sum(float(torch.log_softmax(logits[len(head) - 1 + i], -1)[t]) for i, t in enumerate(cont))
    assert score == pytest.approx(manual, abs=1e-3)


def test_generate_batches_and_counts_tokens(tiny_backend):
    prompts = [[{"role": "user", "content": "Why is the sky blue?" * n}] for n in (1, 3, 2)]
    greedy = Sampling(max_new_tokens=8, temperature=0.0)
    batched = tiny_backend.generate(prompts, greedy)
    alone = [tiny_backend.generate([p], greedy)[0] for p in prompts]
    assert [c.text for c in batched] == [c.text for c in alone]  # left padding does not change results
    for conv, c in zip(prompts, batched):
        assert c.prompt_tokens == tiny_backend.count_tokens(tiny_backend.render(conv))
        assert 0 <= c.completion_tokens <= 8 and c.finish_reason in ("stop", "length")


def test_the_torch_path_streams_to_a_watch_and_stops_when_it_is_cancelled(tiny_backend, tmp_path):
    prompts = [[{"role": "user", "content": "Which item would this user prefer? Science fiction movies."}],
               [{"role": "system", "content": "Answer only with JSON."},
                {"role": "user", "content": "Explain how vaccines work. Why is the sky blue? Recommend a movie."}],
               [{"role": "user", "content": "The user prefers short, practical answers."}]]
    check_streaming(tiny_backend, prompts)
    forwards = []  # the model's forward passes: one per decode step
    hook = tiny_backend.model.register_forward_hook(lambda *_: forwards.append(1))
    try:
        check_cancelling(tiny_backend, prompts, lambda: len(forwards))
    finally:
        hook.remove()
    check_no_cut_off_reply_is_cached(tiny_backend, prompts, tmp_path)


@pytest.mark.parametrize("token, outcome", [(".", "profile"), ("a", "failure")])
def test_tiny_model_infers_end_to_end(tiny_model_dir, tmp_path, token, outcome):
    """A model that writes only dots ends sentences: a profile. One that writes only 'a' never ends one
    before the token limit: an explicit failure that keeps the raw reply."""
    from prefscribe.llm.hf import HFBackend

    from .tiny_model import rewired_to_write

    folder = rewired_to_write(tiny_model_dir, tmp_path / "model", token)
    backend = HFBackend.from_path(folder, spec=f"hf:{folder}", dtype="float32")
    history = [Interaction(context="Why?", chosen="Because cats.", rejected="Dogs.")] * 3
    inferrer = Inferrer(backend, InferConfig(style="direct", sampling=Sampling(max_new_tokens=24)))
    results = inferrer.run([InferJob(history), InferJob(history[:1])])
    assert [r.usage.completion_tokens for r in results] == [24, 24]
    assert results[0].usage.prompt_tokens > results[1].usage.prompt_tokens > 0  # three interactions, then one
    if outcome == "profile":
        assert [type(r) for r in results] == [Profile, Profile]
        assert [(set(r.profile), r.covers, r.model) for r in results] == [({"."}, 3, f"hf:{folder}"),
                                                                        ({"."}, 1, f"hf:{folder}")]
    else:
        assert [type(r) for r in results] == [InferenceFailure, InferenceFailure]
        for r in results:
            assert set(r.raw) == {"a"} and "token limit" in r.error


def test_tiny_model_judges_end_to_end(tiny_backend):
    choice = Judge(tiny_backend).choose(ChoiceTask(a="cats", b="dogs", context="pet?", preference="Likes cats."))
    assert choice.choice in ("a", "b") and choice.p_a + choice.p_b == pytest.approx(1)
    likelihood = Judge(tiny_backend, method="likelihood").choose(
        ChoiceTask(a="cats", b="dogs", context="pet?", preference="Likes cats."))
    assert 0 < likelihood.p_a < 1


def test_likelihood_choices_in_one_batch_equal_one_by_one(tiny_backend):
    from prefscribe.judge import two_way

    judge = Judge(tiny_backend, method="likelihood")
    tasks = [ChoiceTask(a="cats", b="dogs", context="pet?", preference="Likes cats."),
             ChoiceTask(a="tea", b="coffee", context=None, preference=None),  # no profile: the plain ranking
             ChoiceTask(a="rain", b="sun", context="weather?", preference="Likes sun.")]
    together = judge.choose_many(tasks)
    apart = [judge.choose(t) for t in tasks]
    assert [c.p_a for c in together] == pytest.approx([c.p_a for c in apart], abs=1e-4)
    without = judge.prompts.respond_messages(None, "Recommend an item to me.")
    la, lb = tiny_backend.continuation_logprobs([without, without], ["tea", "coffee"])
    assert together[1].p_a == pytest.approx(two_way(la, lb), abs=1e-4)


def test_openai_backend_against_a_real_http_server(tiny_backend):
    prompts = _judge_prompts()
    local = tiny_backend.option_logprobs(prompts, JUDGE_PREFILL, JUDGE_OPTIONS)
    app = build_app(tiny_backend, fail_first=1)  # the first request gets a 503: the client must retry
    with ServerThread(app) as url:
        remote = OpenAIBackend("tiny", url, max_retries=2, concurrency=4)
        completions = remote.generate([[{"role": "user", "content": "Hello"}]] * 3,
                                      Sampling(max_new_tokens=6, temperature=0.0))
        assert len(completions) == 3 and len({c.text for c in completions}) == 1
        assert all(c.finish_reason in ("stop", "length") and c.prompt_tokens > 0 for c in completions)
        assert app.state.counters["requests"] == 4  # one retried
        scores = remote.option_logprobs(prompts, JUDGE_PREFILL, JUDGE_OPTIONS)
    for r in scores:
        # A random model rarely writes 'Item A' itself; then no letter position is found: an explicit error.
        if r.error is None:
            assert any(lp is not None for lp in r.logprobs)
        else:
            assert "no answer letter" in r.error
    assert len(local) == len(scores)


def test_openai_backend_puts_a_parsed_reasoning_back_in_think_tags(tiny_backend):
    from prefscribe.prompts.parse import ParsedProfile, parse_profile

    with ServerThread(build_app(tiny_backend, reasoning_parser=True)) as url:
        [completion] = OpenAIBackend("tiny", url).generate([[{"role": "user", "content": "Hello"}]],
                                                           Sampling(max_new_tokens=12, temperature=0.0))
    with ServerThread(build_app(tiny_backend)) as url:
        [plain] = OpenAIBackend("tiny", url).generate([[{"role": "user", "content": "Hello"}]],
                                                      Sampling(max_new_tokens=12, temperature=0.0))
    # The same tokens either way; with a parser the thinking half comes back inside <think>...</think>.
    assert completion.text.startswith("<think>") and "</think>" in completion.text
    reasoning, _, summary = completion.text.removeprefix("<think>").partition("</think>")
    assert (reasoning.strip() + summary.strip()).replace(" ", "") == plain.text.replace(" ", "").strip()
    parsed = parse_profile(completion.text, "reasoning", "stop")
    assert isinstance(parsed, ParsedProfile) or "empty summary" in parsed.error


def test_openai_backend_reads_letter_logprobs_at_the_answer_position():
    from types import SimpleNamespace as NS

    from prefscribe.llm.openai import _read_answer

    def pos(token, logprob, top):
        return NS(token=token, logprob=logprob, top_logprobs=[NS(token=t, logprob=l) for t, l in top])

    content = [pos('{"', -0.1, []), pos("selection", -0.1, []), pos('":', -0.1, []), pos(' "', -0.1, []),
               pos("Item", -0.1, []), pos(" B", math.log(0.7), [(" B", math.log(0.7)), (" A", math.log(0.2))])]
    result = _read_answer(content, ["A", "B"], "Item", 50)
    assert result.logprobs == pytest.approx([math.log(0.2), math.log(0.7)]) and result.prompt_tokens == 50


def test_unreachable_server_is_an_explicit_error():
    remote = OpenAIBackend("m", "http://127.0.0.1:9/v1", max_retries=0, timeout=2)
    [completion] = remote.generate([[{"role": "user", "content": "hi"}]], Sampling(max_new_tokens=4))
    assert completion.finish_reason == "error" and "127.0.0.1:9" in completion.error


def test_missing_embedded_model_names_the_install_command(monkeypatch, tmp_path):
    from prefscribe.llm import embedded

    monkeypatch.setenv("PREFSCRIBE_MODEL_CACHE", str(tmp_path))
    monkeypatch.setattr(embedded.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelUnavailableError, match="requirements/embedded-0.5b.txt"):
        embedded.converted_dir("0.5b")


def test_joined_weights_with_the_wrong_hash_are_refused(monkeypatch, tmp_path):
    from prefscribe.errors import IntegrityError
    from prefscribe.llm import embedded

    parts = []
    for i in range(2):
        parts.append(tmp_path / f"part{i}.bin")
        parts[-1].write_bytes(b"not the model" * 100)
    monkeypatch.setenv("PREFSCRIBE_MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(embedded, "_part_files", lambda model: parts)
    with pytest.raises(IntegrityError, match="expected 1d9614638d18"):
        embedded.gguf_path("0.5b")
    assert not list((tmp_path / "cache").rglob("*.gguf"))  # nothing half-verified is left to be used


def test_hf_spec_takes_the_thinking_style_from_the_train_record_or_the_name(tmp_path):
    from prefscribe.llm.registry import _hf_thinks

    assert _hf_thinks("Qwen/Qwen3-8B") and _hf_thinks("someone/AlignXplore-Plus-7B")
    assert not _hf_thinks("Qwen/Qwen2.5-1.5B-Instruct") and not _hf_thinks(str(tmp_path))
    record = tmp_path / "prefscribe_train.json"
    record.write_text('{"style": "reasoning"}')
    assert _hf_thinks(str(tmp_path))
    record.write_text('{"style": "direct"}')
    assert not _hf_thinks(str(tmp_path))
    record.write_text("{not json")
    with pytest.raises(ModelSpecError, match="prefscribe_train.json"):
        _hf_thinks(str(tmp_path))
