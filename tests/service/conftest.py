"""Service fixtures: over each test's database (`db_url` in tests/conftest.py: a SQLite file, and a fresh
schema in a real PostgreSQL when PREFSCRIBE_TEST_POSTGRES_URL is set), the app with a scripted model, keys
of two tenants, and a live uvicorn server for tests that need real concurrency or a browser."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")

from fastapi.testclient import TestClient

from prefscribe.cli.service import proxy_options
from prefscribe.service import Settings, create_app
from prefscribe.store import Store

from ..conftest import wait_for  # the service tests import it from here
from .scripted import ScriptedBackend


REPO = Path(__file__).resolve().parents[2]


@dataclass
class Service:
    client: TestClient
    store: Store
    backend: ScriptedBackend
    settings: Settings
    app: object
    key_a: str
    key_b: str

    @property
    def runtime(self):
        return self.app.state.runtime

    @property
    def worker(self):
        return self.runtime.worker

    def auth(self, key: str | None = None) -> dict:
        return {"Authorization": f"Bearer {key or self.key_a}"}

    def ingest(self, user: str, items: list[dict], key: str | None = None, idem: str | None = None):
        headers = self.auth(key) | ({"Idempotency-Key": idem} if idem else {})
        return self.client.post(f"/v1/users/{user}/interactions", json=items, headers=headers)


def ui_login(client, key: str, next: str = "/ui/users"):
    """Sign in on /ui as a browser does: load the form (its pre-session token) and post it."""
    page = client.get("/ui/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page.text).group(1)
    return client.post("/ui/login", data={"key": key, "next": next, "login_token": token}, follow_redirects=False)


def items(n: int, start: int = 0, tag: str = "item") -> list[dict]:
    return [{"context": f"query {i}", "chosen": f"{tag} chosen {i}", "rejected": f"{tag} rejected {i}"}
            for i in range(start, start + n)]


def make_settings(db: str, **overrides) -> Settings:
    values = dict(db=db, model="scripted:ok", worker=False, update_every=3, lease_seconds=5.0, poll_seconds=0.05,
                  retry_base_seconds=0.0, retry_max_seconds=0.0, max_batch_items=50, max_body_bytes=64_000,
                  max_field_chars=2_000, max_profile_chars=2_000,
                  auth_failures_per_minute=10_000)  # tests send many wrong keys; test_auth_limit sets its own
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def make_service(db_url):
    """Build the app (worker off: tests step it) over the test database; closes everything afterwards."""
    opened: list[tuple[TestClient, Store]] = []

    def build(backend: ScriptedBackend | None = None, **overrides) -> Service:
        settings = make_settings(db_url, **overrides)
        store = Store(settings.db)
        backend = backend or ScriptedBackend()
        app = create_app(settings, store=store, backend=backend)
        client = TestClient(app).__enter__()
        opened.append((client, store))
        key_a, _ = store.create_key("tenant-a")
        key_b, _ = store.create_key("tenant-b")
        return Service(client, store, backend, settings, app, key_a, key_b)

    yield build
    for client, store in opened:
        client.__exit__(None, None, None)
        store.close()


@pytest.fixture
def service(make_service) -> Service:
    return make_service()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def live_server():
    """Serve an app with uvicorn on a loopback port in this process; yields a starter returning the base URL."""
    import uvicorn

    servers = []

    def start(app) -> str:
        port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **proxy_options(None))
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        wait_for(lambda: server.started, 60, "uvicorn did not start")
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


@contextmanager
def serve_process(db_url: str, log: Path, *args: str) -> Iterator[str]:
    """`prefscribe serve` in a subprocess (the scripted model registered), as a user starts it; yields its URL."""
    port = free_port()
    code = "import tests.service.scripted; from prefscribe.cli import main; main()"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-c", code, "serve", "--db", db_url, "--model", "scripted:ok",
                                 "--port", str(port), "--log-level", "warning", *args], cwd=REPO,
                                env=os.environ.copy(), stdout=out, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                return httpx.get(f"{base}/v1/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_for(up, 180, "prefscribe serve did not come up", interval=0.2)  # slow starts on a loaded machine
            yield base
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
