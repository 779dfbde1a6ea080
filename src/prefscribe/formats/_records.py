"""The one JSON shape of a profile, of a profile version with its provenance, and of a user's whole record
(the prefscribe export document). Everything that writes a profile as data writes these."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..schema import Interaction, Profile, Usage

DOCUMENT = "prefscribe.user"
DOCUMENT_VERSION = 1
PROFILE_FIELDS = ("profile", "reasoning", "model", "prompt_version", "covers", "usage", "parent", "author",
                  "validation", "evidence")


def profile_record(profile: Profile) -> dict[str, Any]:
    """A profile as JSON data: what `prefscribe infer --json` prints and `--past` reads back. A measured
    profile carries its evidence (the counts an update adds to); others have none to carry."""
    record = profile.model_dump(mode="json", include=set(PROFILE_FIELDS))
    if profile.evidence is None:
        record.pop("evidence", None)
    return record


class VersionRecord(BaseModel):
    """One profile version: its text and where it came from.
    version / parent: numbers in the user's chain (1, 2, ...; parent None for the first).
    author: model or person; kind: update (the model took in interactions first_seq..last_seq), edit or
      rollback (to version rollback_of); editor: the model spec or the person's name.
    covers: interactions the profile summarizes; covered_through: the watermark (interactions 1..n are in).
    usage: the tokens the update cost; created_at: when it was written (ISO 8601, UTC)."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    parent: int | None = Field(None, ge=1)
    author: Literal["model", "person"]
    kind: Literal["update", "edit", "rollback"]
    editor: str | None = None
    profile: str
    reasoning: str | None = None
    model: str | None = None
    prompt_version: str | None = None
    covers: int = Field(0, ge=0)
    first_seq: int | None = Field(None, ge=1)
    last_seq: int | None = Field(None, ge=1)
    covered_through: int = Field(0, ge=0)
    rollback_of: int | None = Field(None, ge=1)
    usage: Usage = Field(default_factory=Usage)
    created_at: str | None = None

    _iso = field_validator("created_at")(lambda cls, value: _iso_time(value))


def _iso_time(value: str | None) -> str | None:
    if value is not None:
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not an ISO 8601 time: {value!r}") from None
    return value


class InteractionRecord(Interaction):
    """One stored interaction: the client's fields, its number in the user's log and when it arrived."""

    seq: int = Field(ge=1)
    created_at: str | None = None

    _iso = field_validator("created_at")(lambda cls, value: _iso_time(value))


class UserDocument(BaseModel):
    """A user as prefscribe exports it (format "prefscribe.user", format_version 1): every profile version,
    oldest first (the last is the head), and every interaction, by seq. Importing it reproduces the user."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["prefscribe.user"] = DOCUMENT
    format_version: Literal[1] = DOCUMENT_VERSION
    user_id: str = Field(min_length=1, max_length=200)
    versions: list[VersionRecord] = Field(default_factory=list)
    interactions: list[InteractionRecord] = Field(default_factory=list)

    @property
    def head(self) -> VersionRecord | None:
        return self.versions[-1] if self.versions else None
