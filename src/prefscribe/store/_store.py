"""The repository: every operation the service and its worker need, each one transaction.

Store is a facade over parts that each do one job, on one shared Database (_db): tenants and API keys
(_keys), users and ingest (_users), profile versions (_versions), the update worker's leases (_leases),
and export/import (_transfer). The methods' documentation is the parts'.

Tenancy is enforced here: every user-facing method takes the tenant id and looks users up by
(tenant, external id), so a caller holding one tenant's key cannot name another tenant's rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future

from ..formats import UserDocument
from ..schema import Interaction, Profile
from . import _schema
from ._db import Database, Engines, shown_url
from ._keys import Keys
from ._leases import Leases
from ._records import IngestResult, KeyInfo, Snapshot, StoredInteraction, TenantInfo, UserState, Version
from ._transfer import Transfer
from ._users import Users
from ._versions import Versions


class Store:
    """Profiles, interactions, tenants and keys in one SQL database (SQLite file or PostgreSQL)."""

    def __init__(self, url: str, *, create: bool = True, auth_ttl: float = 0.0) -> None:
        """`auth_ttl`: seconds a found API key is trusted without asking the database again (the service
        sets it; 0: every authenticate() asks)."""
        self.url = url
        self.db = Database(url)
        self.engines: Engines = self.db.engines
        self.dialect = self.db.dialect
        self._keys = Keys(self.db, auth_ttl)
        self._users = Users(self.db)
        self._versions = Versions(self.db)
        self._leases = Leases(self.db)
        self._transfer = Transfer(self.db)
        if create:
            self.create_all()

    @property
    def auth_ttl(self) -> float:
        return self._keys.auth_ttl

    @auth_ttl.setter
    def auth_ttl(self, seconds: float) -> None:
        self._keys.auth_ttl = seconds

    def create_all(self) -> None:
        """Create the tables in an empty database, or check that the schema is the current revision
        (SchemaOutdatedError, naming `prefscribe db upgrade`, when it is not)."""
        with self.db.ddl() as conn:
            _schema.prepare(conn, self.shown_url)

    def upgrade(self) -> tuple[str | None, str]:
        """Migrate the schema to the current revision. Returns (revision before, revision after)."""
        with self.db.ddl() as conn:
            return _schema.upgrade(conn)

    @property
    def shown_url(self) -> str:
        """The URL without its password, for messages."""
        return shown_url(self.url)

    def close(self) -> None:
        self._users.close()
        self.db.dispose()

    # ------------------------------------------------------------------------ tenants and keys: _keys
    def create_key(self, tenant: str, label: str | None = None) -> tuple[str, KeyInfo]:
        return self._keys.create_key(tenant, label)

    def tenant(self, name: str) -> TenantInfo:
        return self._keys.tenant(name)

    def list_keys(self, tenant: str | None = None) -> list[KeyInfo]:
        return self._keys.list_keys(tenant)

    def revoke_key(self, prefix: str) -> int:
        return self._keys.revoke_key(prefix)

    def remembered(self, key: str) -> TenantInfo | None:
        return self._keys.remembered(key)

    def authenticate(self, key: str) -> TenantInfo | None:
        return self._keys.authenticate(key)

    # -------------------------------------------------------------------- users and ingest: _users
    def user(self, tenant_id: int, user_id: str) -> UserState | None:
        return self._users.user(tenant_id, user_id)

    def list_users(self, tenant_id: int, limit: int = 100, offset: int = 0, after: str | None = None,
                   before: str | None = None) -> tuple[int, list[UserState]]:
        return self._users.list_users(tenant_id, limit, offset, after, before)

    def purge(self, tenant_id: int, user_id: str) -> dict[str, int]:
        return self._users.purge(tenant_id, user_id)

    def ingest(self, tenant_id: int, user_id: str, items: Sequence[Interaction],
               idempotency_key: str | None = None) -> IngestResult:
        return self._users.ingest(tenant_id, user_id, items, idempotency_key)

    def submit_ingest(self, tenant_id: int, user_id: str, items: Sequence[Interaction],
                      idempotency_key: str | None = None) -> Future[IngestResult]:
        return self._users.submit_ingest(tenant_id, user_id, items, idempotency_key)

    def interactions(self, tenant_id: int, user_id: str, limit: int = 50,
                     before: int | None = None) -> list[StoredInteraction]:
        return self._users.interactions(tenant_id, user_id, limit, before)

    # ----------------------------------------------------------------------------- versions: _versions
    def head(self, tenant_id: int, user_id: str) -> tuple[UserState, Version | None]:
        return self._versions.head(tenant_id, user_id)

    def version(self, tenant_id: int, user_id: str, number: int) -> Version:
        return self._versions.version(tenant_id, user_id, number)

    def versions(self, tenant_id: int, user_id: str, limit: int = 50, before: int | None = None) -> list[Version]:
        return self._versions.versions(tenant_id, user_id, limit, before)

    def edit(self, tenant_id: int, user_id: str, text: str, editor: str | None = None,
             base_version: int | None = None) -> tuple[Version, bool]:
        return self._versions.edit(tenant_id, user_id, text, editor, base_version)

    def rollback(self, tenant_id: int, user_id: str, number: int, editor: str | None = None) -> Version:
        return self._versions.rollback(tenant_id, user_id, number, editor)

    def request_refresh(self, tenant_id: int, user_id: str) -> int:
        return self._versions.request_refresh(tenant_id, user_id)

    # ---------------------------------------------------------------------- portability: _transfer
    def export_user(self, tenant_id: int, user_id: str) -> UserDocument:
        return self._transfer.export_user(tenant_id, user_id)

    def import_user(self, tenant_id: int, doc: UserDocument, user_id: str | None = None) -> UserState:
        return self._transfer.import_user(tenant_id, doc, user_id)

    # ----------------------------------------------------------------------------- worker: _leases
    def claim_due(self, owner: str, *, threshold: int, lease_seconds: float, limit: int = 1,
                  now: float | None = None) -> list[int]:
        return self._leases.claim_due(owner, threshold=threshold, lease_seconds=lease_seconds, limit=limit, now=now)

    def renew(self, owner: str, user_pks: Sequence[int], lease_seconds: float) -> int:
        return self._leases.renew(owner, user_pks, lease_seconds)

    def snapshot(self, user_pk: int, max_items: int) -> Snapshot | None:
        return self._leases.snapshot(user_pk, max_items)

    def commit_update(self, snap: Snapshot, owner: str, profile: Profile, count: int) -> str:
        return self._leases.commit_update(snap, owner, profile, count)

    def fail_update(self, user_pk: int, owner: str, error: str, retry_base: float, retry_max: float) -> bool:
        return self._leases.fail_update(user_pk, owner, error, retry_base, retry_max)

    def release(self, user_pk: int, owner: str) -> None:
        self._leases.release(user_pk, owner)
