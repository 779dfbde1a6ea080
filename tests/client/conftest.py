"""A live profile service on a loopback port (uvicorn, the scripted model, worker on) for the client tests,
over SQLite, and PostgreSQL when PREFSCRIBE_TEST_POSTGRES_URL is set. `live` is one on a new database;
`elsewhere` a second one on another new database of the same kind (to move users between them)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

pytest.importorskip("fastapi")

from prefscribe.service import Settings, create_app
from prefscribe.store import Store

from ..loopback import Loopback
from ..service.scripted import ScriptedBackend


@dataclass
class LiveService:
    url: str
    key: str
    other_key: str
    store: Store
    backend: ScriptedBackend


@contextmanager
def live_service(db_url: str) -> Iterator[LiveService]:
    store = Store(db_url)
    backend = ScriptedBackend()
    settings = Settings(db=db_url, model="scripted:ok", worker=True, update_every=3, poll_seconds=0.05,
                        retry_base_seconds=0.0, retry_max_seconds=0.0, max_field_chars=2_000, max_profile_chars=2_000,
                        auth_failures_per_minute=10_000)
    try:
        with Loopback(create_app(settings, store=store, backend=backend)) as url:
            key, _ = store.create_key("tenant-a")
            other, _ = store.create_key("tenant-b")
            yield LiveService(url, key, other, store, backend)
    finally:
        store.close()


@pytest.fixture
def live(db_url):  # db_url: tests/conftest.py
    with live_service(db_url) as service:
        yield service


@pytest.fixture
def elsewhere(live, another_db):  # another_db: tests/conftest.py
    with live_service(another_db) as service:
        yield service
