"""What the store hands out: plain values, never live ORM rows."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from ..errors import PrefscribeError
from ..formats import VersionRecord
from ..schema import Interaction, Profile, Usage

# The store's errors live in the package's one exception tree (prefscribe.errors); StoreError is the
# name this module has always exported for "anything the store refuses".
StoreError = PrefscribeError


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite gives back naive datetimes; they were written in UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class TenantInfo:
    id: int
    name: str


@dataclass
class KeyInfo:
    prefix: str
    tenant: str
    label: str | None
    created_at: str | None
    revoked_at: str | None


@dataclass
class UserState:
    user_id: str
    interactions: int          # how many were ever ingested (the last seq)
    covered_through: int       # interactions 1..covered_through are in the version chain
    head_version: int | None
    versions: int
    refresh_requested: bool
    updating: bool             # a worker holds the update lease right now
    failures: int
    last_error: str | None
    retry_at: float | None
    created_at: str | None
    updated_at: str | None

    @property
    def pending(self) -> int:
        return self.interactions - self.covered_through

    def to_json(self) -> dict:
        out = asdict(self)
        out["pending"] = self.pending
        return out


@dataclass
class Version:
    user_id: str
    version: int
    parent: int | None
    author: str                # model | person
    kind: str                  # update | edit | rollback
    editor: str | None         # the model spec, or the person's name
    profile: str
    reasoning: str | None
    model: str | None
    prompt_version: str | None
    covers: int
    first_seq: int | None      # the interactions this version newly took in (None for edits, rollbacks)
    last_seq: int | None
    covered_through: int
    rollback_of: int | None
    usage: dict = field(default_factory=dict)
    created_at: str | None = None

    def record(self) -> VersionRecord:
        """The version as prefscribe writes it everywhere (formats.VersionRecord)."""
        fields = asdict(self)
        fields.pop("user_id")
        return VersionRecord.model_validate(fields)

    def to_json(self) -> dict:
        return {"user_id": self.user_id, **self.record().model_dump(mode="json")}

    def to_profile(self) -> Profile:
        return Profile(profile=self.profile, reasoning=self.reasoning, model=self.model,
                       prompt_version=self.prompt_version, covers=self.covers,
                       parent=str(self.parent) if self.parent else None,
                       author="person" if self.author == "person" else "model",
                       usage=Usage(**self.usage) if self.usage else Usage())


@dataclass
class StoredInteraction:
    seq: int
    interaction: Interaction
    created_at: str | None

    def to_json(self) -> dict:
        return {"seq": self.seq, **self.interaction.model_dump(mode="json"), "created_at": self.created_at}


@dataclass
class IngestResult:
    user_id: str
    accepted: int
    first_seq: int
    last_seq: int
    duplicate: bool
    idempotency_key: str | None
    interactions: int          # the user's total after this batch
    pending: int


@dataclass
class Snapshot:
    """What one update works from: the head version and the pending interactions after it."""

    user_pk: int
    user_id: str
    base_version: int          # 0: no profile yet
    past: Profile | None
    items: list[Interaction]
    first_seq: int
    refresh_requested: bool
    interactions: int

    @property
    def last_seq(self) -> int:
        return self.first_seq + len(self.items) - 1
