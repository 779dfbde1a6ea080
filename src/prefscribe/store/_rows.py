"""What the store's parts share inside a transaction: finding a tenant's user and a user's version, and
turning ORM rows into the plain records the store hands out (_records)."""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import UserNotFoundError
from ..schema import Interaction
from ._models import InteractionRow, ProfileVersion, User
from ._records import UserState, Version, iso


def user_query(tenant_id: int, user_id: str):
    return select(User).where(User.tenant_id == tenant_id, User.external_id == user_id)


def require_user(s: Session, tenant_id: int, user_id: str) -> User:
    """The tenant's user, or NotFoundError (the same answer for another tenant's user)."""
    user = s.scalar(user_query(tenant_id, user_id))
    if user is None:
        raise UserNotFoundError(user_id)
    return user


def locked_user(s: Session, tenant_id: int, user_id: str) -> User:
    user = s.scalar(user_query(tenant_id, user_id).with_for_update())
    if user is None:
        raise UserNotFoundError(user_id)
    return user


def version_row(s: Session, user_pk: int, number: int) -> ProfileVersion | None:
    return s.scalar(select(ProfileVersion).where(ProfileVersion.user_id == user_pk,
                                                 ProfileVersion.number == number))


def user_state(user: User, now: float | None = None) -> UserState:
    now = time.time() if now is None else now
    return UserState(user_id=user.external_id, interactions=user.interaction_count,
                     covered_through=user.covered_through, head_version=user.head_version or None,
                     versions=user.version_count, refresh_requested=user.refresh_requested,
                     updating=bool(user.lease_owner and user.lease_until and user.lease_until > now),
                     failures=user.failures, last_error=user.last_error, retry_at=user.retry_at,
                     created_at=iso(user.created_at), updated_at=iso(user.updated_at))


def version_of(row: ProfileVersion, user_id: str) -> Version:
    return Version(user_id=user_id, version=row.number, parent=row.parent, author=row.author, kind=row.kind,
                   editor=row.editor, profile=row.text, reasoning=row.reasoning, model=row.model,
                   prompt_version=row.prompt_version, covers=row.covers, first_seq=row.first_seq,
                   last_seq=row.last_seq, covered_through=row.covered_through, rollback_of=row.rollback_of,
                   usage={"prompt_tokens": row.prompt_tokens, "completion_tokens": row.completion_tokens},
                   created_at=iso(row.created_at))


def interaction_of(row: InteractionRow) -> Interaction:
    return Interaction(context=row.context, chosen=row.chosen, rejected=row.rejected, id=row.item_id,
                       timestamp=row.timestamp, domain=row.domain, meta=row.meta or {})
