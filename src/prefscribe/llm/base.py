"""The one interface every model backend implements, and the values that cross it."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": str}
Conversation = list[Message]
Progress = Callable[[int], None]  # called with the number of requests just finished


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
