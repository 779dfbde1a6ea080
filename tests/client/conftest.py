"""A live profile service on a loopback port (uvicorn, the scripted model, worker on) for the client tests,
over SQLite, and PostgreSQL when PREFSCRIBE_TEST_POSTGRES_URL is set."""

from __future__ import annotations

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


@pytest.fixture
def live(db_url):  # db_url: tests/conftest.py
    store = Store(db_url)
    backend = ScriptedBackend()
    settings = Settings(db=db_url, model="scripted:ok", worker=True, update_every=3, poll_seconds=0.05,
                        retry_base_seconds=0.0, retry_max_seconds=0.0, max_field_chars=2_000, max_profile_chars=2_000,
                        auth_failures_per_minute=10_000)
    with Loopback(create_app(settings, store=store, backend=backend)) as url:
        key, _ = store.create_key("tenant-a")
        other, _ = store.create_key("tenant-b")
        yield LiveService(url, key, other, store, backend)
    store.close()
