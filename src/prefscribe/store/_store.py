"""The repository: every operation the service and its worker need, each one transaction.

Tenancy is enforced here: every user-facing method takes the tenant id and looks users up by
(tenant, external id), so a caller holding one tenant's key cannot name another tenant's rows.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager, nullcontext
from datetime import datetime

from sqlalchemy import and_, delete, func, or_, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import ConflictError, InputError, UserNotFoundError, VersionNotFoundError
from ..formats import InteractionRecord, UserDocument, check_document
from ..schema import Interaction, Profile
from . import _ingest, _schema
from ._db import Engines, make_engines, shown_url
from ._models import ApiKey, Batch, InteractionRow, ProfileVersion, Tenant, User, utcnow
from ._records import (
    IngestResult,
    KeyInfo,
    Snapshot,
    StoredInteraction,
    TenantInfo,
    UserState,
    Version,
    iso,
)
from ._writer import GroupWriter

KEY_PREFIX = "psk_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def batch_hash(items: Sequence[Interaction]) -> str:
    blob = json.dumps([i.model_dump(mode="json") for i in items], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


class Store:
    """Profiles, interactions, tenants and keys in one SQL database (SQLite file or PostgreSQL)."""

    def __init__(self, url: str, *, create: bool = True, auth_ttl: float = 0.0) -> None:
        """`auth_ttl`: seconds a found API key is trusted without asking the database again (the service
        sets it; 0: every authenticate() asks)."""
        self.url, self.auth_ttl = url, auth_ttl
        self.engines: Engines = make_engines(url)
        self.dialect = self.engines.dialect
        # SQLite has one writer at a time. Threads of this process queue here instead of in SQLite's busy
        # handler, which polls with growing sleeps and makes the tail latency long.
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else nullcontext()
        # The service's ingests (submit_ingest) go to one writer thread, several per transaction (_writer).
        self._writer = GroupWriter(self._write_connection)
        self._auth_cache: dict[str, tuple[float, TenantInfo]] = {}  # key hash -> (valid until, tenant)
        if create:
            self.create_all()

    @contextmanager
    def _ddl(self) -> Iterator:
        """A connection for schema changes. On PostgreSQL an advisory lock keeps a server and workers
        starting together from racing on the DDL."""
        with self._write_lock, self.engines.write.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(7317712)"))
            yield conn

    def create_all(self) -> None:
        """Create the tables in an empty database, or check that the schema is the current revision
        (SchemaOutdatedError, naming `prefscribe db upgrade`, when it is not)."""
        with self._ddl() as conn:
            _schema.prepare(conn, self.shown_url)

    def upgrade(self) -> tuple[str | None, str]:
        """Migrate the schema to the current revision. Returns (revision before, revision after)."""
        with self._ddl() as conn:
            return _schema.upgrade(conn)

    @property
    def shown_url(self) -> str:
        """The URL without its password, for messages."""
        return shown_url(self.url)

    def close(self) -> None:
        self._writer.close()
        for engine in {id(self.engines.write): self.engines.write, id(self.engines.read): self.engines.read}.values():
            engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with self._write_lock, Session(self.engines.write, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def _write_connection(self) -> Iterator[Connection]:
        """A write transaction on a bare connection, for the hot path (ingest): Core statements without
        the ORM session's bookkeeping."""
        with self._write_lock, self.engines.write.begin() as connection:
            yield connection

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with Session(self.engines.read, expire_on_commit=False) as session, session.begin():
            yield session

    def _insert(self, table):
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        return dialect_insert(table)

    # ------------------------------------------------------------------------------ tenants and keys
    def create_key(self, tenant: str, label: str | None = None) -> tuple[str, KeyInfo]:
        """A new API key for `tenant` (created if new). The key is returned once; only its hash is kept."""
        tenant = tenant.strip()
        if not tenant:
            raise InputError("the tenant name is empty", field="tenant")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with self._write() as s:
            tenant_id = self._tenant_id(s, tenant)
            row = ApiKey(tenant_id=tenant_id, key_hash=hash_key(key), prefix=key[:12], label=label)
            s.add(row)
            s.flush()
            return key, KeyInfo(row.prefix, tenant, label, iso(row.created_at), None)

    def _tenant_id(self, s: Session, name: str) -> int:
        s.execute(self._insert(Tenant).values(name=name, created_at=utcnow())
                  .on_conflict_do_nothing(index_elements=["name"]))
        return s.scalar(select(Tenant.id).where(Tenant.name == name))

    def tenant(self, name: str) -> TenantInfo:
        """The tenant called `name`, created if new (a batch job ingests for a tenant without an API key)."""
        name = name.strip()
        if not name:
            raise ValueError("the tenant name is empty")
        with self._write() as s:
            return TenantInfo(self._tenant_id(s, name), name)

    def list_keys(self, tenant: str | None = None) -> list[KeyInfo]:
        with self._read() as s:
            query = select(ApiKey, Tenant.name).join(Tenant, Tenant.id == ApiKey.tenant_id).order_by(ApiKey.id)
            if tenant:
                query = query.where(Tenant.name == tenant)
            return [KeyInfo(k.prefix, name, k.label, iso(k.created_at), iso(k.revoked_at))
                    for k, name in s.execute(query)]

    def revoke_key(self, prefix: str) -> int:
        self._auth_cache.clear()
        with self._write() as s:
            result = s.execute(update(ApiKey).where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
                               .values(revoked_at=utcnow()))
            return result.rowcount

    def remembered(self, key: str) -> TenantInfo | None:
        """The tenant of a key authenticate() found within auth_ttl, without asking the database (None: ask
        authenticate())."""
        cached = self._auth_cache.get(hash_key(key)) if self.auth_ttl > 0 and key else None
        return cached[1] if cached is not None and cached[0] > time.monotonic() else None

    def authenticate(self, key: str) -> TenantInfo | None:
        """The tenant of an active key, or None. With auth_ttl, a key found is remembered that long, sparing
        a database round trip per request: a key revoked by another process (`prefscribe keys revoke`)
        stops working within auth_ttl seconds; one revoked through this Store at once."""
        if not key or not key.startswith(KEY_PREFIX):
            return None
        digest = hash_key(key)
        now = time.monotonic()
        cached = self._auth_cache.get(digest)
        if cached is not None and cached[0] > now and self.auth_ttl > 0:
            return cached[1]
        with self._read() as s:
            row = s.execute(select(Tenant.id, Tenant.name).join(ApiKey, ApiKey.tenant_id == Tenant.id)
                            .where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None))).first()
        if row is None or self.auth_ttl <= 0:
            return TenantInfo(row.id, row.name) if row else None
        if len(self._auth_cache) >= 10_000:  # only active keys get here: a cap, not an eviction policy
            self._auth_cache.clear()
        tenant = TenantInfo(row.id, row.name)
        self._auth_cache[digest] = (now + self.auth_ttl, tenant)
        return tenant

    # ------------------------------------------------------------------------------------- users
    @staticmethod
    def _user_query(tenant_id: int, user_id: str):
        return select(User).where(User.tenant_id == tenant_id, User.external_id == user_id)

    def _locked_user(self, s: Session, tenant_id: int, user_id: str) -> User:
        user = s.scalar(self._user_query(tenant_id, user_id).with_for_update())
        if user is None:
            raise UserNotFoundError(user_id)
        return user

    @staticmethod
    def _state(user: User, now: float | None = None) -> UserState:
        now = time.time() if now is None else now
        return UserState(user_id=user.external_id, interactions=user.interaction_count,
                         covered_through=user.covered_through, head_version=user.head_version or None,
                         versions=user.version_count, refresh_requested=user.refresh_requested,
                         updating=bool(user.lease_owner and user.lease_until and user.lease_until > now),
                         failures=user.failures, last_error=user.last_error, retry_at=user.retry_at,
                         created_at=iso(user.created_at), updated_at=iso(user.updated_at))

    def user(self, tenant_id: int, user_id: str) -> UserState | None:
        with self._read() as s:
            user = s.scalar(self._user_query(tenant_id, user_id))
            return self._state(user) if user else None

    def list_users(self, tenant_id: int, limit: int = 100, offset: int = 0) -> tuple[int, list[UserState]]:
        with self._read() as s:
            total = s.scalar(select(func.count()).select_from(User).where(User.tenant_id == tenant_id))
            users = s.scalars(select(User).where(User.tenant_id == tenant_id).order_by(User.external_id)
                              .limit(limit).offset(offset)).all()
            return total or 0, [self._state(u) for u in users]

    def purge(self, tenant_id: int, user_id: str) -> dict[str, int]:
        """Delete the user and every row of theirs. Returns the number of rows deleted per table."""
        with self._write() as s:
            user = self._locked_user(s, tenant_id, user_id)
            counts = {}
            for table in (InteractionRow, ProfileVersion, Batch):
                counts[table.__tablename__] = s.execute(delete(table).where(table.user_id == user.id)).rowcount
            s.execute(delete(User).where(User.id == user.id))
            counts["users"] = 1
            return counts

    # ------------------------------------------------------------------------------- interactions
    def ingest(self, tenant_id: int, user_id: str, items: Sequence[Interaction],
               idempotency_key: str | None = None) -> IngestResult:
        """Append a batch for a user (created on first sight). The same idempotency key again is a no-op
        that returns the batch's seqs with the user's current counts; the same key with a different batch is
        a conflict. On SQLite this waits for the writer thread (one writer at a time anyway); on PostgreSQL
        it runs on the calling thread, beside other callers'."""
        if self.dialect == "sqlite":
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
        with self._write_connection() as s:
            return self._ingest_on(s, tenant_id, user_id, rows, digest, key, now)

    def _ingest_on(self, s: Connection, tenant_id: int, user_id: str, rows: list[dict], digest: str,
                   key: str | None, now) -> IngestResult:
        """One batch in the transaction of `s` (the statements: _ingest). Raises ConflictError only before
        writing anything (see _writer)."""
        run = _ingest.on_postgresql if self.dialect == "postgresql" else _ingest.on_sqlite
        done = run(s, tenant_id, user_id, rows, digest, key, now)
        if done.duplicate:
            return _retried(user_id, key, digest, done.first_seq, done.last_seq, done.body_hash,
                            done.interaction_count, done.covered_through)
        n, last = len(rows), done.interaction_count
        return IngestResult(user_id, n, last - n + 1, last, False, key, last, last - done.covered_through)

    def interactions(self, tenant_id: int, user_id: str, limit: int = 50,
                     before: int | None = None) -> list[StoredInteraction]:
        """The user's interactions, newest first (seq below `before` when given)."""
        with self._read() as s:
            user = self._require_user(s, tenant_id, user_id)
            query = select(InteractionRow).where(InteractionRow.user_id == user.id)
            if before is not None:
                query = query.where(InteractionRow.seq < before)
            rows = s.scalars(query.order_by(InteractionRow.seq.desc()).limit(limit)).all()
            return [StoredInteraction(r.seq, _interaction(r), iso(r.created_at)) for r in rows]

    def _require_user(self, s: Session, tenant_id: int, user_id: str) -> User:
        """The tenant's user, or NotFoundError (the same answer for another tenant's user)."""
        user = s.scalar(self._user_query(tenant_id, user_id))
        if user is None:
            raise UserNotFoundError(user_id)
        return user

    # ----------------------------------------------------------------------------------- versions
    @staticmethod
    def _version(row: ProfileVersion, user_id: str) -> Version:
        return Version(user_id=user_id, version=row.number, parent=row.parent, author=row.author, kind=row.kind,
                       editor=row.editor, profile=row.text, reasoning=row.reasoning, model=row.model,
                       prompt_version=row.prompt_version, covers=row.covers, first_seq=row.first_seq,
                       last_seq=row.last_seq, covered_through=row.covered_through, rollback_of=row.rollback_of,
                       usage={"prompt_tokens": row.prompt_tokens, "completion_tokens": row.completion_tokens},
                       created_at=iso(row.created_at))

    @staticmethod
    def _version_row(s: Session, user_pk: int, number: int) -> ProfileVersion | None:
        return s.scalar(select(ProfileVersion).where(ProfileVersion.user_id == user_pk,
                                                     ProfileVersion.number == number))

    def head(self, tenant_id: int, user_id: str) -> tuple[UserState, Version | None]:
        with self._read() as s:
            user = self._require_user(s, tenant_id, user_id)
            row = self._version_row(s, user.id, user.head_version) if user.head_version else None
            return self._state(user), (self._version(row, user_id) if row else None)

    def version(self, tenant_id: int, user_id: str, number: int) -> Version:
        with self._read() as s:
            user = self._require_user(s, tenant_id, user_id)
            row = self._version_row(s, user.id, number)
            if row is None:
                raise VersionNotFoundError(user_id, number)
            return self._version(row, user_id)

    def versions(self, tenant_id: int, user_id: str, limit: int = 50, before: int | None = None) -> list[Version]:
        """Versions, newest first (numbers below `before` when given)."""
        with self._read() as s:
            user = self._require_user(s, tenant_id, user_id)
            query = select(ProfileVersion).where(ProfileVersion.user_id == user.id)
            if before is not None:
                query = query.where(ProfileVersion.number < before)
            rows = s.scalars(query.order_by(ProfileVersion.number.desc()).limit(limit)).all()
            return [self._version(r, user_id) for r in rows]

    def _append_version(self, s: Session, user: User, **fields) -> ProfileVersion:
        number = user.version_count + 1
        row = ProfileVersion(user_id=user.id, number=number, parent=user.head_version or None, **fields)
        s.add(row)
        s.flush()
        user.version_count = number
        user.head_version = number
        user.updated_at = utcnow()
        return row

    def edit(self, tenant_id: int, user_id: str, text: str, editor: str | None = None,
             base_version: int | None = None) -> tuple[Version, bool]:
        """A person's text becomes the new head; the next update starts from it. Returns (version, created):
        an unchanged text creates nothing. `base_version` guards against overwriting a newer version."""
        with self._write() as s:
            user = self._locked_user(s, tenant_id, user_id)
            if base_version is not None and base_version != user.head_version:
                raise ConflictError(f"the profile changed since version {base_version}: the head is now "
                                    f"version {user.head_version}; reload and edit that")
            head = self._version_row(s, user.id, user.head_version) if user.head_version else None
            if head is not None and head.text == text:
                return self._version(head, user_id), False
            row = self._append_version(s, user, author="person", kind="edit", editor=editor, text=text,
                                       covers=head.covers if head else 0, covered_through=user.covered_through)
            return self._version(row, user_id), True

    def rollback(self, tenant_id: int, user_id: str, number: int, editor: str | None = None) -> Version:
        """A new head with the text of version `number`. Interactions consumed since then stay consumed:
        rolling back drops what they taught, it does not replay them."""
        with self._write() as s:
            user = self._locked_user(s, tenant_id, user_id)
            target = self._version_row(s, user.id, number)
            if target is None:
                raise VersionNotFoundError(user_id, number)
            if number == user.head_version:
                raise ConflictError(f"version {number} is already the current version")
            row = self._append_version(s, user, author="person", kind="rollback", editor=editor, text=target.text,
                                       reasoning=target.reasoning, model=target.model,
                                       prompt_version=target.prompt_version, covers=target.covers,
                                       covered_through=user.covered_through, rollback_of=number)
            return self._version(row, user_id)

    def request_refresh(self, tenant_id: int, user_id: str) -> int:
        """Ask for an update now, whatever the threshold (and past any failure backoff).
        Returns the number of pending interactions; with none there is nothing to do."""
        with self._write() as s:
            user = self._locked_user(s, tenant_id, user_id)
            pending = user.interaction_count - user.covered_through
            if pending > 0:
                user.refresh_requested = True
                user.retry_at = None
            return pending

    # ------------------------------------------------------------------------------- portability
    def export_user(self, tenant_id: int, user_id: str) -> UserDocument:
        """Everything the store holds of a user, as the prefscribe export document (formats.UserDocument)."""
        with self._read() as s:
            user = self._require_user(s, tenant_id, user_id)
            versions = s.scalars(select(ProfileVersion).where(ProfileVersion.user_id == user.id)
                                 .order_by(ProfileVersion.number)).all()
            rows = s.scalars(select(InteractionRow).where(InteractionRow.user_id == user.id)
                             .order_by(InteractionRow.seq)).all()
            return UserDocument(
                user_id=user_id, versions=[self._version(v, user_id).record() for v in versions],
                interactions=[InteractionRecord(seq=r.seq, created_at=iso(r.created_at),
                                                **_interaction(r).model_dump()) for r in rows])

    def import_user(self, tenant_id: int, doc: UserDocument, user_id: str | None = None) -> UserState:
        """Create the user of `doc` (as `user_id` when given) with its versions and interactions, in one
        transaction: all of it is stored, or nothing. A user who exists already is a conflict (purge it first,
        or import under another id)."""
        target = user_id or doc.user_id
        check_document(doc, f"the document of user {doc.user_id!r}")
        head = doc.head
        now = utcnow()
        try:
            with self._write() as s:
                if s.scalar(self._user_query(tenant_id, target)) is not None:
                    raise ConflictError(f"user {target!r} exists already: delete it first, or import under "
                                        "another user id")
                user = User(tenant_id=tenant_id, external_id=target, interaction_count=len(doc.interactions),
                            covered_through=head.covered_through if head else 0, head_version=len(doc.versions),
                            version_count=len(doc.versions), created_at=now, updated_at=now)
                s.add(user)
                s.flush()
                if doc.interactions:
                    items = [Interaction(**r.model_dump(exclude={"seq", "created_at"})) for r in doc.interactions]
                    batch = Batch(user_id=user.id, idempotency_key=None, body_hash=batch_hash(items), first_seq=1,
                                  last_seq=len(items), created_at=now)
                    s.add(batch)
                    s.flush()
                    s.add_all(InteractionRow(user_id=user.id, seq=r.seq, batch_id=batch.id, context=r.context,
                                             chosen=r.chosen, rejected=r.rejected, item_id=r.id,
                                             timestamp=r.timestamp, domain=r.domain, meta=r.meta,
                                             created_at=_when(r.created_at, now)) for r in doc.interactions)
                s.add_all(ProfileVersion(user_id=user.id, number=v.version, parent=v.parent, author=v.author,
                                         kind=v.kind, editor=v.editor, text=v.profile, reasoning=v.reasoning,
                                         model=v.model, prompt_version=v.prompt_version, covers=v.covers,
                                         first_seq=v.first_seq, last_seq=v.last_seq,
                                         covered_through=v.covered_through, rollback_of=v.rollback_of,
                                         prompt_tokens=v.usage.prompt_tokens,
                                         completion_tokens=v.usage.completion_tokens,
                                         created_at=_when(v.created_at, now)) for v in doc.versions)
        except IntegrityError:  # another import of the same user committed first
            raise ConflictError(f"user {target!r} exists already: delete it first, or import under another "
                                "user id") from None
        state = self.user(tenant_id, target)
        assert state is not None
        return state

    # ------------------------------------------------------------------------------------ worker
    @staticmethod
    def _due(threshold: int, now: float):
        pending = User.interaction_count - User.covered_through
        return and_(or_(pending >= max(threshold, 1), and_(User.refresh_requested.is_(True), pending > 0)),
                    or_(User.lease_until.is_(None), User.lease_until < now),
                    or_(User.retry_at.is_(None), User.retry_at <= now))

    def claim_due(self, owner: str, *, threshold: int, lease_seconds: float, limit: int = 1,
                  now: float | None = None) -> list[int]:
        """Lease up to `limit` users due for an update. A user leased by a live worker is never returned:
        at most one update per user runs at a time, in any number of processes."""
        now = time.time() if now is None else now
        with self._read() as s:
            candidates = s.scalars(select(User.id).where(self._due(threshold, now))
                                   .order_by(User.updated_at, User.id).limit(limit)).all()
        claimed = []
        for user_pk in candidates:
            with self._write() as s:
                result = s.execute(update(User).where(User.id == user_pk, self._due(threshold, now))
                                   .values(lease_owner=owner, lease_until=now + lease_seconds)
                                   .execution_options(synchronize_session=False))
                if result.rowcount == 1:
                    claimed.append(user_pk)
        return claimed

    def renew(self, owner: str, user_pks: Sequence[int], lease_seconds: float) -> int:
        if not user_pks:
            return 0
        with self._write() as s:
            return s.execute(update(User).where(User.id.in_(list(user_pks)), User.lease_owner == owner)
                             .values(lease_until=time.time() + lease_seconds)
                             .execution_options(synchronize_session=False)).rowcount

    def snapshot(self, user_pk: int, max_items: int) -> Snapshot | None:
        with self._read() as s:
            user = s.get(User, user_pk)
            if user is None:
                return None
            head = self._version_row(s, user.id, user.head_version) if user.head_version else None
            rows = s.scalars(select(InteractionRow).where(InteractionRow.user_id == user.id,
                                                          InteractionRow.seq > user.covered_through,
                                                          InteractionRow.seq <= user.interaction_count)
                             .order_by(InteractionRow.seq).limit(max_items)).all()
            past = self._version(head, user.external_id).to_profile() if head else None
            return Snapshot(user_pk=user.id, user_id=user.external_id, base_version=user.head_version, past=past,
                            items=[_interaction(r) for r in rows], first_seq=user.covered_through + 1,
                            refresh_requested=user.refresh_requested, interactions=user.interaction_count)

    def commit_update(self, snap: Snapshot, owner: str, profile: Profile, count: int) -> str:
        """Append the model's version covering the first `count` items of `snap`, if this worker still
        holds the lease and nobody changed the head meanwhile. Returns committed | gone | lost | stale."""
        with self._write() as s:
            user = s.scalar(select(User).where(User.id == snap.user_pk).with_for_update())
            if user is None:
                return "gone"  # purged while the model ran
            if user.lease_owner != owner:
                return "lost"
            user.lease_owner, user.lease_until = None, None
            if user.head_version != snap.base_version or user.covered_through != snap.first_seq - 1:
                return "stale"  # a person edited or rolled back: the next update starts from their version
            last = snap.first_seq + count - 1
            self._append_version(s, user, author="model", kind="update", editor=profile.model, text=profile.profile,
                                 reasoning=profile.reasoning, model=profile.model,
                                 prompt_version=profile.prompt_version, covers=profile.covers,
                                 first_seq=snap.first_seq, last_seq=last, covered_through=last,
                                 prompt_tokens=profile.usage.prompt_tokens,
                                 completion_tokens=profile.usage.completion_tokens)
            user.covered_through = last
            user.failures, user.retry_at, user.last_error = 0, None, None
            user.refresh_requested = bool(user.refresh_requested and user.interaction_count > last)
            return "committed"

    def fail_update(self, user_pk: int, owner: str, error: str, retry_base: float, retry_max: float) -> bool:
        """Record a failed update: the head stays, the interactions stay pending, and a retry is scheduled
        after retry_base * 2**(failures so far), at most retry_max seconds."""
        with self._write() as s:
            user = s.scalar(select(User).where(User.id == user_pk).with_for_update())
            if user is None or user.lease_owner != owner:
                return False
            user.lease_owner, user.lease_until = None, None
            user.retry_at = time.time() + min(retry_max, retry_base * 2 ** min(user.failures, 30))
            user.failures += 1
            user.last_error = error[:4000]
            return True

    def release(self, user_pk: int, owner: str) -> None:
        with self._write() as s:
            s.execute(update(User).where(User.id == user_pk, User.lease_owner == owner)
                      .values(lease_owner=None, lease_until=None).execution_options(synchronize_session=False))


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


def _when(stamp: str | None, default: datetime) -> datetime:
    """An exported ISO 8601 time back as a datetime (the document was checked, so it parses)."""
    return datetime.fromisoformat(stamp) if stamp else default


def _interaction(row: InteractionRow) -> Interaction:
    return Interaction(context=row.context, chosen=row.chosen, rejected=row.rejected, id=row.item_id,
                       timestamp=row.timestamp, domain=row.domain, meta=row.meta or {})
