"""P-Soups-format evaluation sets across many qualities, built by the project's own model.

    version, dims = load_dimensions()          # opposing persona pairs (concise vs detailed, ...), versioned
    built = build_persona_set(backend, PersonaSetConfig(dimensions=["formal_casual"], users_per_pole=48))
    built.write(Path("sets/personas"))         # sets/personas/formal_casual.json: read by `load("psoups", ...)`

The generated files are data, never committed; the command (`prefscribe persona-set`) and its seed are.
"""

from ._build import (
    HISTORY_FIELD,
    Dimension,
    PersonaSet,
    PersonaSetConfig,
    Pole,
    build_persona_set,
    load_dimensions,
    load_questions,
    reply_messages,
    reply_text,
    select_dimensions,
)

__all__ = ["HISTORY_FIELD", "Dimension", "PersonaSet", "PersonaSetConfig", "Pole", "build_persona_set",
           "load_dimensions", "load_questions", "reply_messages", "reply_text", "select_dimensions"]
