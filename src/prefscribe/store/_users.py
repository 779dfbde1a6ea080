"""Users and their interactions: a user's state, the tenant's users, ingest (append a batch, once per
idempotency key) and reading the interactions back, and purge (every row of a user)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from concurrent.futures import Future
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ..errors import ConflictError, InputError
from ..schema import Interaction
from . import _ingest
from ._db import Database
from ._models import Batch, InteractionRow, ProfileVersion, User, utcnow
from ._records import IngestResult, StoredInteraction, UserState, iso
from ._rows import interaction_of, locked_user, require_user, user_query, user_state
from ._writer import GroupWriter


def batch_hash(items: Sequence[Interaction]) -> str:
    blob = json.dumps([i.model_dump(mode="json") for i in items], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


class Users:
    def __init__(self, db: Database) -> None:
        self.db = db
        # The service's ingests (submit_ingest) go to one writer thread, several per transaction (_writer).
        self._writer = GroupWriter(db.write_connection)

    def close(self) -> None:
        self._writer.close()

    def user(self, tenant_id: int, user_id: str) -> UserState | None:
        with self.db.read() as s:
            user = s.scalar(user_query(tenant_id, user_id))
            return user_state(user) if user else None

    def list_users(self, tenant_id: int, limit: int = 100, offset: int = 0, after: str | None = None,
                   before: str | None = None) -> tuple[int, list[UserState]]:
        """The tenant's number of users, and `limit` of them by id: those after the id `after`, or the last
        `limit` before the id `before` (a keyset: users created or deleted meanwhile shift nothing), each
        skipping `offset` first (from the start alone, a user created or deleted before that position moves
        the page: one is listed twice or never)."""
        with self.db.read() as s:
            total = s.scalar(select(func.count()).select_from(User).where(User.tenant_id == tenant_id))
            # (tenant_id, external_id) is unique: the order is total, and the database's collation compares
            # as it sorts, so a page starts right after (ends right before) the id given.
            query = select(User).where(User.tenant_id == tenant_id)
            if after is not None:
                query = query.where(User.external_id > after)
            if before is not None:
                query = query.where(User.external_id < before)
            order = User.external_id.desc() if before is not None else User.external_id
            users = list(s.scalars(query.order_by(order).limit(limit).offset(offset)).all())
            return total or 0, [user_state(u) for u in (users[::-1] if before is not None else users)]

    def purge(self, tenant_id: int, user_id: str) -> dict[str, int]:
        """Delete the user and every row of theirs. Returns the number of rows deleted per table."""
        with self.db.write() as s:
            user = locked_user(s, tenant_id, user_id)
            counts = {}
            for table in (InteractionRow, ProfileVersion, Batch):
                counts[table.__tablename__] = s.execute(delete(table).where(table.user_id == user.id)).rowcount
            s.execute(delete(User).where(User.id == user.id))
            counts["users"] = 1
            return counts

    def ingest(self, tenant_id: int, user_id: str, items: Sequence[Interaction],
               idempotency_key: str | None = None) -> IngestResult:
        """Append a batch for a user (created on first sight). The same idempotency key again is a no-op
        that returns the batch's seqs with the user's current counts; the same key with a different batch is
        a conflict. On SQLite this waits for the writer thread (one writer at a time anyway); on PostgreSQL
        it runs on the calling thread, beside other callers'."""
        if self.db.dialect == "sqlite":
            return self.submit_ingest(tenant_id, user_id, items, idempotency_key).result()
        rows, digest, now = _ingest_rows(items)
        try:
            return self._ingest(tenant_id, user_id, rows, digest, idempotency_key, now)
        except IntegrityError:
            # Another request with this key committed between our check and our insert (PostgreSQL runs
            # them side by side): everything of ours was rolled back; now the check finds theirs.
            if idempotency_key is None:
                raise
            return self._ingest(tenant_id, user_id, rows, digest, idempotency_key, now)

    def submit_ingest(self, tenant_id: int, user_id: str, items: Sequence[Interaction],
                      idempotency_key: str | None = None) -> Future[IngestResult]:
        """ingest() handed to the writer thread: the future is done once the batch is committed, so an
        event loop can await it without holding a thread. The writer runs what waits in one transaction
        (one COMMIT for many batches), its batches in the order of their users, so that writers of several
        processes lock PostgreSQL's user rows in one order. A retry racing its original in another process
        fails the group (the batch's unique key); each batch is then run again alone, and the retry finds
        the original."""
        rows, digest, now = _ingest_rows(items)
        return self._writer.submit(lambda conn: self._ingest_on(conn, tenant_id, user_id, rows, digest,
                                                                idempotency_key, now), order=(tenant_id, user_id))

    def _ingest(self, tenant_id: int, user_id: str, rows: list[dict], digest: str, key: str | None,
                now) -> IngestResult:
        with self.db.write_connection() as s:
            return self._ingest_on(s, tenant_id, user_id, rows, digest, key, now)

    def _ingest_on(self, s: Connection, tenant_id: int, user_id: str, rows: list[dict], digest: str,
                   key: str | None, now) -> IngestResult:
        """One batch in the transaction of `s` (the statements: _ingest). Raises ConflictError only before
        writing anything (see _writer)."""
        run = _ingest.on_postgresql if self.db.dialect == "postgresql" else _ingest.on_sqlite
        done = run(s, tenant_id, user_id, rows, digest, key, now)
        if done.duplicate:
            return _retried(user_id, key, digest, done.first_seq, done.last_seq, done.body_hash,
                            done.interaction_count, done.covered_through)
        n, last = len(rows), done.interaction_count
        return IngestResult(user_id, n, last - n + 1, last, False, key, last, last - done.covered_through)

    def interactions(self, tenant_id: int, user_id: str, limit: int = 50,
                     before: int | None = None) -> list[StoredInteraction]:
        """The user's interactions, newest first (seq below `before` when given)."""
        with self.db.read() as s:
            user = require_user(s, tenant_id, user_id)
            query = select(InteractionRow).where(InteractionRow.user_id == user.id)
            if before is not None:
                query = query.where(InteractionRow.seq < before)
            rows = s.scalars(query.order_by(InteractionRow.seq.desc()).limit(limit)).all()
            return [StoredInteraction(r.seq, interaction_of(r), iso(r.created_at)) for r in rows]


def _ingest_rows(items: Sequence[Interaction]) -> tuple[list[dict], str, datetime]:
    """The interactions table's values for a batch, its body hash (what a retry must match) and the time."""
    if not items:
        raise InputError("an empty batch: send at least one interaction")
    now = utcnow()
    rows = [{"context": item.context, "chosen": item.chosen, "rejected": item.rejected, "item_id": item.id,
             "timestamp": item.timestamp, "domain": item.domain, "meta": item.meta, "created_at": now}
            for item in items]
    return rows, batch_hash(items), now


def _retried(user_id: str, key: str, digest: str, first_seq: int, last_seq: int, body_hash: str,
             interactions: int, covered_through: int) -> IngestResult:
    """The answer to a batch whose idempotency key was seen: its own seqs and the user's counts now, or a
    conflict when the key came with a different batch."""
    if body_hash != digest:
        raise ConflictError(f"idempotency key {key!r} was already used for a different batch of this user: use a "
                            "new key for new data")
    return IngestResult(user_id, last_seq - first_seq + 1, first_seq, last_seq, True, key, interactions,
                        interactions - covered_through)
