"""End-user access links: a signed token that lets one person see (and, by scope, change) their own profile
at /me, without the tenant's API key.

The token carries the tenant, the user id, when that user's row was created, the scope (read, or edit: read,
edit, roll back, delete) and an expiry, signed with the service's secret (itsdangerous, HMAC-SHA256). Changing any of it breaks the
signature; nothing in it names or reaches another user. Links are not stored: they cannot be revoked one
by one, which is why they are short-lived (and end with the user: a user deleted and created again under the
same id is another row, which an older link does not open) (15 minutes by default); changing the secret revokes them all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from itsdangerous import BadSignature, URLSafeSerializer

Scope = Literal["read", "edit"]


@dataclass(frozen=True)
class Grant:
    tenant_id: int
    user_id: str
    user_created: str  # the user row's created_at: the link names this row, not whoever has the id later
    scope: Scope
    expires_at: float

    @property
    def can_edit(self) -> bool:
        return self.scope == "edit"


class LinkRefused(Exception):
    """A token that is not ours (or was altered), or has expired. `reason`: invalid | expired."""

    def __init__(self, reason: Literal["invalid", "expired"]) -> None:
        super().__init__(reason)
        self.reason = reason


class AccessLinks:
    def __init__(self, secret: str, clock: Callable[[], float] = time.time) -> None:
        self._signer = URLSafeSerializer(secret, salt="prefscribe-access-link")
        self.clock = clock

    def mint(self, tenant_id: int, user_id: str, user_created: str, scope: Scope, seconds: int
             ) -> tuple[str, float]:
        """A token for this user row and scope, valid for `seconds`. Returns (token, expiry in epoch seconds)."""
        expires_at = float(int(self.clock()) + seconds)
        token = self._signer.dumps({"t": tenant_id, "u": user_id, "c": user_created, "s": scope, "e": expires_at})
        return token, expires_at

    def read(self, token: str) -> Grant:
        try:
            data = self._signer.loads(token)
            grant = Grant(tenant_id=int(data["t"]), user_id=str(data["u"]), user_created=str(data["c"]),
                          scope=data["s"], expires_at=float(data["e"]))
        except (BadSignature, KeyError, TypeError, ValueError):
            raise LinkRefused("invalid") from None
        if grant.scope not in ("read", "edit"):
            raise LinkRefused("invalid")
        if self.clock() >= grant.expires_at:
            raise LinkRefused("expired")
        return grant
