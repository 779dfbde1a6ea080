"""The update worker's side: lease the users due for an update (at most one update per user at a time, in
any number of processes), read what the update needs, and commit, fail or release it."""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import and_, or_, select, update

from ..schema import Profile
from ._db import Database
from ._models import InteractionRow, User
from ._records import Snapshot
from ._rows import interaction_of, version_of, version_row
from ._versions import append_version


def _due(threshold: int, now: float):
    pending = User.interaction_count - User.covered_through
    return and_(or_(pending >= max(threshold, 1), and_(User.refresh_requested.is_(True), pending > 0)),
                or_(User.lease_until.is_(None), User.lease_until < now),
                or_(User.retry_at.is_(None), User.retry_at <= now))


class Leases:
    def __init__(self, db: Database) -> None:
        self.db = db

    def claim_due(self, owner: str, *, threshold: int, lease_seconds: float, limit: int = 1,
                  now: float | None = None) -> list[int]:
        """Lease up to `limit` users due for an update. A user leased by a live worker is never returned:
        at most one update per user runs at a time, in any number of processes."""
        now = time.time() if now is None else now
        with self.db.read() as s:
            candidates = s.scalars(select(User.id).where(_due(threshold, now))
                                   .order_by(User.updated_at, User.id).limit(limit)).all()
        claimed = []
        for user_pk in candidates:
            with self.db.write() as s:
                result = s.execute(update(User).where(User.id == user_pk, _due(threshold, now))
                                   .values(lease_owner=owner, lease_until=now + lease_seconds)
                                   .execution_options(synchronize_session=False))
                if result.rowcount == 1:
                    claimed.append(user_pk)
        return claimed

    def renew(self, owner: str, user_pks: Sequence[int], lease_seconds: float) -> int:
        if not user_pks:
            return 0
        with self.db.write() as s:
            return s.execute(update(User).where(User.id.in_(list(user_pks)), User.lease_owner == owner)
                             .values(lease_until=time.time() + lease_seconds)
                             .execution_options(synchronize_session=False)).rowcount

    def snapshot(self, user_pk: int, max_items: int) -> Snapshot | None:
        with self.db.read() as s:
            user = s.get(User, user_pk)
            if user is None:
                return None
            head = version_row(s, user.id, user.head_version) if user.head_version else None
            rows = s.scalars(select(InteractionRow).where(InteractionRow.user_id == user.id,
                                                          InteractionRow.seq > user.covered_through,
                                                          InteractionRow.seq <= user.interaction_count)
                             .order_by(InteractionRow.seq).limit(max_items)).all()
            past = version_of(head, user.external_id).to_profile() if head else None
            return Snapshot(user_pk=user.id, user_id=user.external_id, base_version=user.head_version, past=past,
                            items=[interaction_of(r) for r in rows], first_seq=user.covered_through + 1,
                            refresh_requested=user.refresh_requested, interactions=user.interaction_count)

    def commit_update(self, snap: Snapshot, owner: str, profile: Profile, count: int) -> str:
        """Append the model's version covering the first `count` items of `snap`, if this worker still
        holds the lease and nobody changed the head meanwhile. Returns committed | gone | lost | stale."""
        with self.db.write() as s:
            user = s.scalar(select(User).where(User.id == snap.user_pk).with_for_update())
            if user is None:
                return "gone"  # purged while the model ran
            if user.lease_owner != owner:
                return "lost"
            user.lease_owner, user.lease_until = None, None
            if user.head_version != snap.base_version or user.covered_through != snap.first_seq - 1:
                return "stale"  # a person edited or rolled back: the next update starts from their version
            last = snap.first_seq + count - 1
            append_version(s, user, author="model", kind="update", editor=profile.model, text=profile.profile,
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
        with self.db.write() as s:
            user = s.scalar(select(User).where(User.id == user_pk).with_for_update())
            if user is None or user.lease_owner != owner:
                return False
            user.lease_owner, user.lease_until = None, None
            user.retry_at = time.time() + min(retry_max, retry_base * 2 ** min(user.failures, 30))
            user.failures += 1
            user.last_error = error[:4000]
            return True

    def release(self, user_pk: int, owner: str) -> None:
        with self.db.write() as s:
            s.execute(update(User).where(User.id == user_pk, User.lease_owner == owner)
                      .values(lease_owner=None, lease_until=None).execution_options(synchronize_session=False))
