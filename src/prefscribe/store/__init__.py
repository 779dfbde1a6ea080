"""Persistent tenants, API keys, users, interactions and profile versions (SQLAlchemy 2).

    store = Store("sqlite:///profiles.db")             # or "postgresql://user@host/db"
    key, _ = store.create_key("acme")
    tenant = store.authenticate(key)
    store.ingest(tenant.id, "u1", interactions, idempotency_key="batch-1")

Interactions and profile versions are append-only; edits and rollbacks add versions; `purge` deletes every
row of a user. Needs the `serve` extra: pip install 'prefscribe[serve]'.
"""

from ..errors import ConflictError, NotFoundError
from ._db import DEFAULT_DB, normalize_url
from ._records import (
           IngestResult,
           KeyInfo,
           Snapshot,
           StoredInteraction,
           StoreError,
           TenantInfo,
           UserState,
           Version,
)
from ._store import Store

__all__ = ["DEFAULT_DB", "ConflictError", "IngestResult", "KeyInfo", "NotFoundError", "Snapshot", "Store",
           "StoreError", "StoredInteraction", "TenantInfo", "UserState", "Version", "normalize_url"]
