"""The data of prefscribe: interactions, histories, targets, profiles; and their validating readers.

Every reader reports the file, the line and the field of bad input and stops: nothing is skipped silently.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import InputError

# The characters Python's str.strip() removes, spelled out: `\s` means a different set in Python, in pydantic's Rust
# regex and in the ECMA regex an OpenAPI client uses (U+001C..U+001F, U+0085, U+FEFF differ), and a schema whose
# pattern admits what the validator then refuses as blank breaks its own contract.
WHITESPACE = r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


class Interaction(BaseModel):
    """One observed choice: in `context` (a query, a post, or none) the user preferred `chosen` over
    `rejected`. `rejected` is None for positive-only signals (a click, a like)."""

    model_config = ConfigDict(extra="forbid")

    context: str | None = None
    chosen: str
    rejected: str | None = None
    id: str | None = None
    timestamp: float | str | None = None
    domain: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("chosen")
    @classmethod
    def _chosen_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must be a non-empty string")
        return value

    @field_validator("context", "rejected")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value if value is None or value.strip() else None


class Target(BaseModel):
    """A held-out pair the downstream model must order: the truth is that `chosen` wins."""

    context: str | None = None
    chosen: str
    rejected: str


class UserRecord(BaseModel):
    """One evaluation user: history (oldest first), held-out target, and the benchmark's own
    preference text where it has one."""

    user_id: str
    history: list[Interaction]
    target: Target | None = None
    gold_preference: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(prompt_tokens=self.prompt_tokens + other.prompt_tokens,
                     completion_tokens=self.completion_tokens + other.completion_tokens)


class QualityEvidence(BaseModel):
    """A measured profile's evidence on one quality: comparisons scored, the sum of their scores, and how
    many fell above the population's mean (the user took the item with more of the quality)."""

    n: int = 0
    total: float = 0.0
    above: int = 0


class Evidence(BaseModel):
    """What a measured profile was computed from, kept with it so an update reads only the new pairs.
    `qualities` is keyed "<comparison kind>:<quality id>"; `preamble` is text the profile carried before it was
    measured (a person's own words), kept at its top."""

    vocabulary: str
    calibration: str
    qualities: dict[str, QualityEvidence] = Field(default_factory=dict)
    preamble: str | None = None


class Profile(BaseModel):
    """A text preference profile. `covers` counts the interactions it summarizes, past ones included."""

    profile: str
    reasoning: str | None = None
    model: str | None = None
    prompt_version: str | None = None
    covers: int = 0
    parent: str | None = None
    author: Literal["model", "person"] = "model"
    usage: Usage = Field(default_factory=Usage)
    # Mean P(chosen) the judge gave the user's own history pairs with this profile, when it was kept
    # among several candidates by behavioural validation (validate.py).
    validation: float | None = None
    # A measured profile's counts (measure/): the text is rendered from them.
    evidence: Evidence | None = None


# ---------------------------------------------------------------------------------------------- readers

def _field_of(error: ValidationError) -> tuple[str, str]:
    first = error.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "(line)"
    return field, first["msg"]


STDIN = "-"  # a path argument that means standard input


def read_text(path: Path) -> str:
    """A UTF-8 file's text (`-`: standard input), or an InputError naming the file and what went wrong."""
    try:
        raw = sys.stdin.buffer.read() if str(path) == STDIN else path.read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", path=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=str(path)) from None
    return decode_utf8(raw, str(path))


def decode_utf8(raw: bytes, source: str) -> str:
    """The text of a file's bytes, or an InputError naming the line of the first bad byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(f"not valid UTF-8 (byte {exc.start}); re-encode the file as UTF-8",
                         path=source, line=line) from None


def jsonl_objects(text: str, source: str, expected: str = "a JSON object") -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of JSONL text; every line must be a JSON object."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"malformed JSON ({exc.msg} at column {exc.colno})", path=source,
                             line=number) from None
        if not isinstance(obj, dict):
            raise InputError(f"expected {expected}, found {type(obj).__name__}", path=source, line=number)
        yield number, obj


def parse_history_lines(text: str, source: str = "<input>") -> list[Interaction]:
    """Parse JSONL interactions; raise InputError naming source, line and field on the first bad line."""
    history: list[Interaction] = []
    for number, obj in jsonl_objects(text, source, "a JSON object with 'chosen'"):
        try:
            history.append(Interaction.model_validate(obj))
        except ValidationError as exc:
            field, msg = _field_of(exc)
            raise InputError(msg, path=source, line=number, field=field) from None
    return history


def read_history(path: str | Path, *, allow_empty: bool = False) -> list[Interaction]:
    """Read a JSONL history file (one interaction per line)."""
    path = Path(path)
    history = parse_history_lines(read_text(path), source=str(path))
    if not history and not allow_empty:
        raise InputError("the history is empty: add at least one interaction line", path=str(path))
    return history


def read_profile(path: str | Path) -> Profile:
    """Read a profile written by `infer --json`, or a plain-text profile (a person may write one);
    `-` reads standard input."""
    path = Path(path)
    return profile_from_text(read_text(path), str(path) if str(path) != STDIN else "<stdin>")


def profile_from_text(text: str, source: str = "<text>") -> Profile:
    """A profile from the JSON of `infer --json` or from plain text; `source` names it in errors."""
    if not text.strip():
        raise InputError("the profile is empty", path=source)
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"looks like JSON but is malformed ({exc.msg})", path=source,
                             line=exc.lineno) from None
        try:
            return Profile.model_validate(obj)
        except ValidationError as exc:
            field, msg = _field_of(exc)
            raise InputError(msg, path=source, field=field) from None
    return Profile(profile=text.strip(), author="person")


def write_jsonl(path: str | Path, rows: list[BaseModel] | list[dict]) -> None:
    with Path(path).open("w", encoding="utf-8") as fh:
        for row in rows:
            data = row.model_dump(exclude_none=True) if isinstance(row, BaseModel) else row
            fh.write(json.dumps(data, ensure_ascii=False) + "\n")


class InferenceFailure(BaseModel):
    """A profile that could not be produced: the model's reply is kept so nothing is lost."""

    error: str
    raw: str = ""
    model: str | None = None
    prompt_version: str | None = None
    usage: Usage = Field(default_factory=Usage)
