"""prefscribe: readable, editable text profiles of user preferences from interaction histories.

    from prefscribe import ChoiceTask, Judge, infer, load_backend, read_history

    backend = load_backend("embedded")
    profile = infer(backend, read_history("history.jsonl"))

This top level owns the two roles (`infer`: write or update a profile; `Judge`: use one to choose or
respond), the values they exchange (`schema`), the result cache every role goes through (`cache`) and the
exception tree (`errors`). Below it: `llm` (backends), `prompts` (templates and parsing), `data` (loaders
and transforms), `store` (persistence). Above it: `evaluate`, `synth`, `curriculum`, `train` (workflows),
`batch`, and the entry points `cli` and `service`. Nothing imports upward (DESIGN.md).
"""

from .cache import ResultCache
from .errors import (
    BackendError,
    InputError,
    IntegrityError,
    ModelSpecError,
    ModelUnavailableError,
    PrefscribeError,
)
from .infer import InferConfig, InferJob, Inferrer, infer, stream
from .judge import Choice, ChoiceTask, Judge
from .llm import Backend, load_backend
from .schema import InferenceFailure, Interaction, Profile, UserRecord, read_history, read_profile

# `infer` here is the function: the module stays reachable as `from prefscribe.infer import ...`.
__all__ = ["Backend", "BackendError", "Choice", "ChoiceTask", "InferConfig", "InferJob", "InferenceFailure",
           "Inferrer", "InputError", "IntegrityError", "Interaction", "Judge", "ModelSpecError",
           "ModelUnavailableError", "PrefscribeError", "Profile", "ResultCache", "UserRecord", "infer",
           "load_backend", "read_history", "read_profile", "stream"]
