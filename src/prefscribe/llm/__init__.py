"""Model backends behind one small interface (`base.Backend`: generate, option_logprobs,
continuation_logprobs, count_tokens, info; a `Watch` given to `generate_watched` streams a generation's text and
cancels it), the model spec strings users type (`spec`: one parser) and the registry that maps a spec's kind to
a backend (built-ins and `prefscribe.backends` plugins alike). Owns nothing about prompts, caching or roles:
those are above it."""

from .base import (
    GREEDY,
    Backend,
    BackendInfo,
    Completion,
    Conversation,
    Message,
    OptionScores,
    Sampling,
    Watch,
    generate_watched,
)
from .registry import load_backend, register
from .spec import DEFAULT_SPEC, ModelSpec, parse_spec

__all__ = ["DEFAULT_SPEC", "GREEDY", "Backend", "BackendInfo", "Completion", "Conversation", "Message",
           "ModelSpec", "OptionScores", "Sampling", "Watch", "generate_watched", "load_backend", "parse_spec",
           "register"]
