"""A live profile service on a loopback port (uvicorn, the scripted model, worker on) for the client tests,
over SQLite, and PostgreSQL when PREFSCRIBE_TEST_POSTGRES_URL is set."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

pytest.importorskip("fastapi")

from prefscribe.service import create_app
from prefscribe.store import Store

from ..service.conftest import live_server, make_settings  # noqa: F401 (a fixture)
from ..service.scripted import ScriptedBackend


@dataclass
class LiveService:
    url: str
    key: str
    other_key: str
    store: Store
    backend: ScriptedBackend


@pytest.fixture
def live(db_url, live_server):  # noqa: F811 (db_url: tests/conftest.py)
    store = Store(db_url)
    backend = ScriptedBackend()
    settings = make_settings(db_url, worker=True, update_every=3)
    url = live_server(create_app(settings, store=store, backend=backend))
    key, _ = store.create_key("tenant-a")
    other, _ = store.create_key("tenant-b")
    yield LiveService(url, key, other, store, backend)
    store.close()
