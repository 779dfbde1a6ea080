"""The one interface every model backend implements, and the values that cross it."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, cast, runtime_checkable

from ..errors import GenerationCancelled

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": str}
Conversation = list[Message]
Progress = Callable[[int], None]  # called with the number of requests just finished
TextListener = Callable[[int, str], None]  # (index of the prompt, its reply's next piece of text)


@dataclass(frozen=True)
class Sampling:
    """Decoding settings. Defaults are the reference's summary sampling (METHOD.md section 3)."""

    max_new_tokens: int = 512
    temperature: float = 0.6
    top_p: float = 0.95
    top_k: int = 20
    seed: int = 0
    min_new_tokens: int = 0  # local backends only: fixed-length generations for benchmarks


GREEDY = Sampling(max_new_tokens=16, temperature=0.0, top_p=1.0, top_k=0)


@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: Literal["stop", "length", "error"] = "stop"
    error: str | None = None


@dataclass
class OptionScores:
    """Log-probabilities of each option as the next token after the prompt and the reply prefill.
    `None` where the backend could not observe an option (e.g. not in a server's top logprobs)."""

    logprobs: list[float | None]
    prompt_tokens: int = 0
    error: str | None = None


TRAIN_RECORD = "prefscribe_train.json"  # written beside a trained checkpoint: its config and profile style
_THINKING_NAMES = re.compile(r"qwen3|alignxplore|deepseek-r1|gpt-oss", re.IGNORECASE)


def thinks_by_name(model: str) -> bool:
    """Whether a model reasons in <think> blocks, judged by its name (families known to)."""
    return bool(_THINKING_NAMES.search(model))


@dataclass
class BackendInfo:
    spec: str                      # canonical spec: part of every cache key
    thinks: bool = False           # the model reasons in <think> blocks before answering
    context_window: int = 8192
    supports_logprobs: bool = True
    supports_likelihood: bool = True
    streams: bool = False          # generate takes a `watch` (StreamingBackend): the local backends
    extra: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    info: BackendInfo

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` under this model's tokenizer (an estimate where the tokenizer is remote)."""

    def generate(self, prompts: Sequence[Conversation], sampling: Sampling,
                 progress: Progress | None = None) -> list[Completion]:
        """One completion per conversation. Local backends batch; servers run requests concurrently."""

    def option_logprobs(self, prompts: Sequence[Conversation], prefill: str,
                        options: Sequence[str]) -> list[OptionScores]:
        """For each conversation whose reply starts with `prefill`, log p(option) for the next token.
        Prompts that share a prefix (the two orders of one judgement) share its computation."""

    def continuation_logprobs(self, prompts: Sequence[Conversation],
                              continuations: Sequence[str]) -> list[float]:
        """log p(reply == continuation | conversation), summed over the continuation's tokens."""


@dataclass
class Watch:
    """A caller's hold on one `generate` call: each reply's text as it is decoded, and a way to stop it.

    `on_text(i, piece)` gets prompt i's reply in pieces (called on the generating thread); the pieces of a reply
    that finishes join to exactly its Completion's text. Setting `cancel` (from any thread) stops a local backend
    within a decode step, and `generate` then raises GenerationCancelled: a cut-off reply is never returned, so
    no cache can keep it. `tokens` counts the tokens decoded so far."""

    on_text: TextListener | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    tokens: int = 0

    def stop_if_cancelled(self) -> None:
        if self.cancel.is_set():
            raise GenerationCancelled(f"the generation was cancelled after {self.tokens} tokens")


class StreamingBackend(Backend, Protocol):
    """A backend whose `info.streams` is set: its generate reports to a Watch as it decodes and stops when asked.
    (A flag, not an isinstance check: a protocol cannot tell a generate that takes `watch` from one that does
    not.)"""

    def generate(self, prompts: Sequence[Conversation], sampling: Sampling, progress: Progress | None = None,
                 watch: Watch | None = None) -> list[Completion]:
        ...


def generate_watched(backend: Backend, prompts: Sequence[Conversation], sampling: Sampling, watch: Watch,
                     progress: Progress | None = None) -> list[Completion]:
    """`backend.generate` told to `watch`: token by token where the backend streams (`info.streams`), else each
    reply whole once all are written. Raises GenerationCancelled once `watch.cancel` is set."""
    if backend.info.streams:
        return cast(StreamingBackend, backend).generate(prompts, sampling, progress, watch=watch)
    watch.stop_if_cancelled()
    completions = backend.generate(prompts, sampling, progress)
    watch.stop_if_cancelled()
    for i, completion in enumerate(completions):
        watch.tokens += completion.completion_tokens
        if watch.on_text and completion.text:
            watch.on_text(i, completion.text)
    return completions
