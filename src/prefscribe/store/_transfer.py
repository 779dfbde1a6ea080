"""A whole user in and out: export everything the store holds of a user as the prefscribe export document
(formats.UserDocument), and import one as a new user in one transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..errors import ConflictError
from ..formats import InteractionRecord, UserDocument, check_document
from ..schema import Interaction
from ._db import Database
from ._models import Batch, InteractionRow, ProfileVersion, User, utcnow
from ._records import UserState, iso
from ._rows import interaction_of, require_user, user_query, user_state, version_of
from ._users import batch_hash


class Transfer:
    def __init__(self, db: Database) -> None:
        self.db = db

    def export_user(self, tenant_id: int, user_id: str) -> UserDocument:
        """Everything the store holds of a user, as the prefscribe export document (formats.UserDocument)."""
        with self.db.read() as s:
            user = require_user(s, tenant_id, user_id)
            versions = s.scalars(select(ProfileVersion).where(ProfileVersion.user_id == user.id)
                                 .order_by(ProfileVersion.number)).all()
            rows = s.scalars(select(InteractionRow).where(InteractionRow.user_id == user.id)
                             .order_by(InteractionRow.seq)).all()
            return UserDocument(
                user_id=user_id, versions=[version_of(v, user_id).record() for v in versions],
                interactions=[InteractionRecord(seq=r.seq, created_at=iso(r.created_at),
                                                **interaction_of(r).model_dump()) for r in rows])

    def import_user(self, tenant_id: int, doc: UserDocument, user_id: str | None = None) -> UserState:
        """Create the user of `doc` (as `user_id` when given) with its versions and interactions, in one
        transaction: all of it is stored, or nothing. A user who exists already is a conflict (purge it first,
        or import under another id)."""
        target = user_id or doc.user_id
        check_document(doc, f"the document of user {doc.user_id!r}")
        head = doc.head
        now = utcnow()
        try:
            with self.db.write() as s:
                if s.scalar(user_query(tenant_id, target)) is not None:
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
        with self.db.read() as s:  # the state as committed, read back like Store.user()
            return user_state(require_user(s, tenant_id, target))


def _when(stamp: str | None, default: datetime) -> datetime:
    """An exported ISO 8601 time back as a datetime (the document was checked, so it parses)."""
    return datetime.fromisoformat(stamp) if stamp else default
