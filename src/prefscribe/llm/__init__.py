"""Model backends behind one small interface (see base.Backend)."""

from .base import GREEDY, Backend, BackendInfo, Completion, Conversation, Message, OptionScores, Sampling
from .registry import load_backend, register
from .spec import DEFAULT_SPEC, ModelSpec, parse_spec

__all__ = ["DEFAULT_SPEC", "GREEDY", "Backend", "BackendInfo", "Completion", "Conversation", "Message",
           "ModelSpec", "OptionScores", "Sampling", "load_backend", "parse_spec", "register"]
