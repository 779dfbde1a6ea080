"""Tenants and API keys: create, list and revoke keys, and find the tenant of a key (authenticate), with a
short in-process memory of keys found so that a request need not ask the database each time."""

from __future__ import annotations

import hashlib
import secrets
import time

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..errors import InputError
from ._db import Database
from ._models import ApiKey, Tenant, utcnow
from ._records import KeyInfo, TenantInfo, iso

KEY_PREFIX = "psk_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class Keys:
    def __init__(self, db: Database, auth_ttl: float = 0.0) -> None:
        """`auth_ttl`: seconds a found API key is trusted without asking the database again (0: every
        authenticate() asks)."""
        self.db, self.auth_ttl = db, auth_ttl
        self._auth_cache: dict[str, tuple[float, TenantInfo]] = {}  # key hash -> (valid until, tenant)

    def create_key(self, tenant: str, label: str | None = None) -> tuple[str, KeyInfo]:
        """A new API key for `tenant` (created if new). The key is returned once; only its hash is kept."""
        tenant = tenant.strip()
        if not tenant:
            raise InputError("the tenant name is empty", field="tenant")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with self.db.write() as s:
            tenant_id = self._tenant_id(s, tenant)
            row = ApiKey(tenant_id=tenant_id, key_hash=hash_key(key), prefix=key[:12], label=label)
            s.add(row)
            s.flush()
            return key, KeyInfo(row.prefix, tenant, label, iso(row.created_at), None)

    def _tenant_id(self, s: Session, name: str) -> int:
        s.execute(self.db.insert(Tenant).values(name=name, created_at=utcnow())
                  .on_conflict_do_nothing(index_elements=["name"]))
        return s.scalar(select(Tenant.id).where(Tenant.name == name))

    def tenant(self, name: str) -> TenantInfo:
        """The tenant called `name`, created if new (a batch job ingests for a tenant without an API key)."""
        name = name.strip()
        if not name:
            raise ValueError("the tenant name is empty")
        with self.db.write() as s:
            return TenantInfo(self._tenant_id(s, name), name)

    def list_keys(self, tenant: str | None = None) -> list[KeyInfo]:
        with self.db.read() as s:
            query = select(ApiKey, Tenant.name).join(Tenant, Tenant.id == ApiKey.tenant_id).order_by(ApiKey.id)
            if tenant:
                query = query.where(Tenant.name == tenant)
            return [KeyInfo(k.prefix, name, k.label, iso(k.created_at), iso(k.revoked_at))
                    for k, name in s.execute(query)]

    def revoke_key(self, prefix: str) -> int:
        self._auth_cache.clear()
        with self.db.write() as s:
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
        with self.db.read() as s:
            row = s.execute(select(Tenant.id, Tenant.name).join(ApiKey, ApiKey.tenant_id == Tenant.id)
                            .where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None))).first()
        if row is None or self.auth_ttl <= 0:
            return TenantInfo(row.id, row.name) if row else None
        if len(self._auth_cache) >= 10_000:  # only active keys get here: a cap, not an eviction policy
            self._auth_cache.clear()
        tenant = TenantInfo(row.id, row.name)
        self._auth_cache[digest] = (now + self.auth_ttl, tenant)
        return tenant
