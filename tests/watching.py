"""What every local backend does with a Watch (llm.base.Watch), checked the same way for the torch path
(test_llm.py) and each converted engine (test_engines.py): it says each reply's text as it decodes it, the pieces
join to exactly the reply, a cancel stops it within a step or two and raises, and no cache keeps a cut-off reply."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from prefscribe.cache import CachedCalls, ResultCache
from prefscribe.errors import GenerationCancelled
from prefscribe.llm import Sampling, Watch

GREEDY_24 = Sampling(max_new_tokens=24, temperature=0.0)
# Long replies that cannot end early (no end-of-sequence before 200 tokens): a cancel is what stops them.
LONG = Sampling(max_new_tokens=200, min_new_tokens=200, temperature=0.0)


def check_streaming(backend, prompts: list) -> None:
    """The pieces said for each prompt join to exactly its reply (greedy, a batch of prompts of different
    lengths), and they come as it is decoded: more than one per reply, each at a later decode step."""
    whole = backend.generate(prompts, GREEDY_24)
    pieces: dict[int, list[tuple[str, int]]] = {i: [] for i in range(len(prompts))}
    watch = Watch(on_text=lambda i, text: pieces[i].append((text, watch.tokens)))
    watched = backend.generate(prompts, GREEDY_24, watch=watch)
    assert [(c.text, c.completion_tokens, c.finish_reason) for c in watched] == \
        [(c.text, c.completion_tokens, c.finish_reason) for c in whole]
    for i, completion in enumerate(whole):
        said = [text for text, _ in pieces[i]]
        assert "".join(said) == completion.text, i
        assert len(said) > 1 and all(said), i
        marks = [tokens for _, tokens in pieces[i]]  # tokens decoded (all rows) when each piece was said
        assert marks == sorted(set(marks)) and marks[0] < watch.tokens, i
    assert watch.tokens == sum(c.completion_tokens for c in whole)


def check_cancelling(backend, prompts: list, forward_calls: Callable[[], int] | None = None) -> None:
    """A watch cancelled at the first piece of text stops the generation within a step or two of 200 (counted as
    tokens decoded and, where the engine's forward pass is ours, as forward passes), and generate raises; the
    backend then generates as before."""
    before = backend.generate(prompts[:1], GREEDY_24)[0].text
    start = forward_calls() if forward_calls else 0
    watch = Watch(on_text=lambda i, text: watch.cancel.set())
    with pytest.raises(GenerationCancelled):
        backend.generate(prompts[:2], LONG, watch=watch)
    assert 0 < watch.tokens <= 8, watch.tokens  # two rows, 400 tokens if nothing stopped them
    if forward_calls:
        assert forward_calls() - start <= 8, forward_calls() - start
    assert backend.generate(prompts[:1], GREEDY_24)[0].text == before


def check_no_cut_off_reply_is_cached(backend, prompts: list, folder) -> None:
    """Through the cached-call layer: a cancelled call caches nothing; a whole one is cached, and a watched call
    that hits the cache is told the cached reply whole."""
    cache = ResultCache(folder / "results.sqlite")
    calls = CachedCalls(backend, cache, prompt_version="v1")
    watch = Watch(on_text=lambda i, text: watch.cancel.set())
    with pytest.raises(GenerationCancelled):
        calls.generate(prompts[:1], GREEDY_24, role="chat", watch=watch)
    assert len(cache) == 0
    [reply] = calls.generate(prompts[:1], GREEDY_24, role="chat")
    assert len(cache) == 1 and reply.text
    told: list[tuple[int, str]] = []
    hearing = Watch(on_text=lambda i, text: told.append((i, text)))
    [again] = calls.generate(prompts[:1], GREEDY_24, role="chat", watch=hearing)
    assert again.text == reply.text and told == [(0, reply.text)]
    cache.close()
