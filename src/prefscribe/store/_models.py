"""The tables. Interactions and profile versions are append-only; only the `users` row changes, and it
carries the per-user bookkeeping that makes ingestion and updates safe under concurrency:

- `interaction_count` is the sequence number of the user's last interaction. It is raised in the same
  transaction that inserts the interactions, under a lock on the user row, so a reader that sees
  `interaction_count = n` sees every interaction 1..n committed (no gaps from racing inserts).
- `covered_through` is the watermark of the head version: interactions with seq <= it have been
  consumed by the version chain; the ones above it are pending.
- `lease_owner` / `lease_until` make at most one update per user run at a time, across processes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# BIGINT keys on PostgreSQL; SQLite only auto-increments a column declared exactly INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKey(Base):
    """Only the sha256 of a key is stored; `prefix` (the first characters) names it in listings."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(32))
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("tenant_id", "external_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    interaction_count: Mapped[int] = mapped_column(Integer, default=0)   # seq of the last interaction
    covered_through: Mapped[int] = mapped_column(Integer, default=0)     # watermark of the head version
    head_version: Mapped[int] = mapped_column(Integer, default=0)        # number of the head (0: none)
    version_count: Mapped[int] = mapped_column(Integer, default=0)       # versions are numbered 1..n
    refresh_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[float | None] = mapped_column(Float)             # epoch seconds
    failures: Mapped[int] = mapped_column(Integer, default=0)            # consecutive failed updates
    retry_at: Mapped[float | None] = mapped_column(Float)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Batch(Base):
    """One accepted ingestion request. A retry with the same idempotency key finds this row and is a no-op."""

    __tablename__ = "ingest_batches"
    __table_args__ = (UniqueConstraint("user_id", "idempotency_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    body_hash: Mapped[str] = mapped_column(String(64))
    first_seq: Mapped[int] = mapped_column(Integer)
    last_seq: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class InteractionRow(Base):
    __tablename__ = "interactions"
    __table_args__ = (UniqueConstraint("user_id", "seq"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)                           # 1, 2, ... per user, in arrival order
    batch_id: Mapped[int] = mapped_column(ForeignKey("ingest_batches.id", ondelete="CASCADE"), index=True)
    context: Mapped[str | None] = mapped_column(Text)
    chosen: Mapped[str] = mapped_column(Text)
    rejected: Mapped[str | None] = mapped_column(Text)
    item_id: Mapped[str | None] = mapped_column(String(200))            # the client's `id`
    timestamp: Mapped[Any] = mapped_column(JSON, nullable=True)
    domain: Mapped[str | None] = mapped_column(String(200))
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ProfileVersion(Base):
    """One version of a user's profile. `kind`: update (the model), edit or rollback (a person).
    `first_seq..last_seq` are the interactions this version newly consumed (none for edits and rollbacks);
    `covered_through` is the chain's watermark after it; `covers` counts the interactions its text
    summarizes (as in `prefscribe infer --json`)."""

    __tablename__ = "profile_versions"
    __table_args__ = (UniqueConstraint("user_id", "number"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    parent: Mapped[int | None] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(16))                     # model | person
    kind: Mapped[str] = mapped_column(String(16))                       # update | edit | rollback
    editor: Mapped[str | None] = mapped_column(String(200))             # model spec or the person's name
    text: Mapped[str] = mapped_column(Text)
    reasoning: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(500))
    prompt_version: Mapped[str | None] = mapped_column(String(100))
    covers: Mapped[int] = mapped_column(Integer, default=0)
    first_seq: Mapped[int | None] = mapped_column(Integer)
    last_seq: Mapped[int | None] = mapped_column(Integer)
    covered_through: Mapped[int] = mapped_column(Integer, default=0)
    rollback_of: Mapped[int | None] = mapped_column(Integer)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


TABLES_BY_USER = (InteractionRow, Batch, ProfileVersion)  # every table holding a user's rows, besides users
