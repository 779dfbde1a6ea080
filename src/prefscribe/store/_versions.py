"""Profile versions, append-only: the head, one version, the history, a person's edit, a rollback (each a
new version), and asking for a model update now."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import ConflictError, VersionNotFoundError
from ._db import Database
from ._models import ProfileVersion, User, utcnow
from ._records import UserState, Version
from ._rows import locked_user, require_user, user_state, version_of, version_row


def append_version(s: Session, user: User, **fields) -> ProfileVersion:
    """The user's next version, made the head (the worker's updates come here too: _leases)."""
    number = user.version_count + 1
    row = ProfileVersion(user_id=user.id, number=number, parent=user.head_version or None, **fields)
    s.add(row)
    s.flush()
    user.version_count = number
    user.head_version = number
    user.updated_at = utcnow()
    return row


class Versions:
    def __init__(self, db: Database) -> None:
        self.db = db

    def head(self, tenant_id: int, user_id: str) -> tuple[UserState, Version | None]:
        with self.db.read() as s:
            user = require_user(s, tenant_id, user_id)
            row = version_row(s, user.id, user.head_version) if user.head_version else None
            return user_state(user), (version_of(row, user_id) if row else None)

    def version(self, tenant_id: int, user_id: str, number: int) -> Version:
        with self.db.read() as s:
            user = require_user(s, tenant_id, user_id)
            row = version_row(s, user.id, number)
            if row is None:
                raise VersionNotFoundError(user_id, number)
            return version_of(row, user_id)

    def versions(self, tenant_id: int, user_id: str, limit: int = 50, before: int | None = None) -> list[Version]:
        """Versions, newest first (numbers below `before` when given)."""
        with self.db.read() as s:
            user = require_user(s, tenant_id, user_id)
            query = select(ProfileVersion).where(ProfileVersion.user_id == user.id)
            if before is not None:
                query = query.where(ProfileVersion.number < before)
            rows = s.scalars(query.order_by(ProfileVersion.number.desc()).limit(limit)).all()
            return [version_of(r, user_id) for r in rows]

    def edit(self, tenant_id: int, user_id: str, text: str, editor: str | None = None,
             base_version: int | None = None) -> tuple[Version, bool]:
        """A person's text becomes the new head; the next update starts from it. Returns (version, created):
        an unchanged text creates nothing. `base_version` guards against overwriting a newer version."""
        with self.db.write() as s:
            user = locked_user(s, tenant_id, user_id)
            if base_version is not None and base_version != user.head_version:
                raise ConflictError(f"the profile changed since version {base_version}: the head is now "
                                    f"version {user.head_version}; reload and edit that")
            head = version_row(s, user.id, user.head_version) if user.head_version else None
            if head is not None and head.text == text:
                return version_of(head, user_id), False
            row = append_version(s, user, author="person", kind="edit", editor=editor, text=text,
                                 covers=head.covers if head else 0, covered_through=user.covered_through)
            return version_of(row, user_id), True

    def rollback(self, tenant_id: int, user_id: str, number: int, editor: str | None = None) -> Version:
        """A new head with the text of version `number`. Interactions consumed since then stay consumed:
        rolling back drops what they taught, it does not replay them."""
        with self.db.write() as s:
            user = locked_user(s, tenant_id, user_id)
            target = version_row(s, user.id, number)
            if target is None:
                raise VersionNotFoundError(user_id, number)
            if number == user.head_version:
                raise ConflictError(f"version {number} is already the current version")
            row = append_version(s, user, author="person", kind="rollback", editor=editor, text=target.text,
                                 reasoning=target.reasoning, model=target.model,
                                 prompt_version=target.prompt_version, covers=target.covers,
                                 covered_through=user.covered_through, rollback_of=number)
            return version_of(row, user_id)

    def request_refresh(self, tenant_id: int, user_id: str) -> int:
        """Ask for an update now, whatever the threshold (and past any failure backoff).
        Returns the number of pending interactions; with none there is nothing to do."""
        with self.db.write() as s:
            user = locked_user(s, tenant_id, user_id)
            pending = user.interaction_count - user.covered_through
            if pending > 0:
                user.refresh_requested = True
                user.retry_at = None
            return pending
