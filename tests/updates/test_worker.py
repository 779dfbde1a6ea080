"""The update engine on its own, no web stack: a Worker over a Store (SQLite, and PostgreSQL when
configured) with the scripted model of tests/service, as `prefscribe worker` and `prefscribe batch --db`
run it."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("sqlalchemy")

from prefscribe.schema import Interaction
from prefscribe.store import Store
from prefscribe.updates import ModelRuntime, UpdateConfig, Worker
from tests.service.scripted import ScriptedBackend

pytestmark = pytest.mark.timeout(300)  # a hang guard only


def _items(n: int, start: int = 0) -> list[Interaction]:
    return [Interaction(context=f"query {i}", chosen=f"chosen {i}", rejected=f"rejected {i}")
            for i in range(start, start + n)]


@pytest.fixture
def store(db_url):
    store = Store(db_url)
    yield store
    store.close()


def _worker(store: Store, backend: ScriptedBackend, owner: str = "w", **config) -> Worker:
    settings = UpdateConfig(**{"model": "scripted:ok", "update_every": 3, "retry_base_seconds": 0.0,
                               "retry_max_seconds": 0.0} | config)
    return Worker(store, settings, ModelRuntime(settings.model, backend), owner=owner)


def test_a_due_user_gets_one_version_covering_its_interactions(store):
    tenant = store.tenant("t").id
    store.ingest(tenant, "u1", _items(2))
    worker = _worker(store, ScriptedBackend())
    assert worker.step() == 0  # 2 < update_every
    store.ingest(tenant, "u1", _items(2, start=2))
    assert worker.step() == 1
    state, head = store.head(tenant, "u1")
    assert (head.version, head.author, head.first_seq, head.last_seq) == (1, "model", 1, 4)
    assert head.profile.endswith("Total 4.") and state.pending == 0 and worker.stats["committed"] == 1


def test_an_update_takes_at_most_max_interactions_and_the_next_takes_the_rest(store):
    tenant = store.tenant("t").id
    store.ingest(tenant, "u1", _items(7))
    worker = _worker(store, ScriptedBackend(), max_interactions_per_update=4)
    assert worker.step() == 1
    assert store.head(tenant, "u1")[0].pending == 3
    assert worker.step() == 1
    head = store.head(tenant, "u1")[1]
    assert (head.version, head.parent, head.first_seq, head.last_seq) == (2, 1, 5, 7)
    assert head.profile.endswith("Total 7.")  # the second update started from the first


def test_a_failure_keeps_the_interactions_pending_and_is_retried(store):
    tenant = store.tenant("t").id
    store.ingest(tenant, "u1", _items(3))
    worker = _worker(store, ScriptedBackend(fail_next=1))
    assert worker.step() == 1
    state, head = store.head(tenant, "u1")
    assert head is None and state.pending == 3 and "scripted model failure" in state.last_error
    assert worker.step() == 1
    assert store.head(tenant, "u1")[1].version == 1 and worker.stats == {"committed": 1, "failed": 1, "stale": 0}


def test_the_heartbeat_keeps_a_slow_update_leased(store):
    """An update that runs for several lease periods keeps its user: another worker finds nothing to
    claim while it runs, and the slow update commits."""
    tenant = store.tenant("t").id
    store.ingest(tenant, "u1", _items(3))
    started = threading.Event()
    slow = ScriptedBackend(delay=1.5)
    slow.on_generate = lambda prompts: started.set()
    first = _worker(store, slow, owner="slow", lease_seconds=0.3)
    other = _worker(store, ScriptedBackend(), owner="other", lease_seconds=0.3)
    thread = threading.Thread(target=first.step)
    thread.start()
    assert started.wait(60)
    claims = []
    while thread.is_alive():  # the whole time the slow update runs, well past its 0.3 s lease
        claims.append(other.step())
        time.sleep(0.05)
    thread.join()
    assert len(claims) > 5 and set(claims) == {0}
    assert first.stats["committed"] == 1 and store.head(tenant, "u1")[1].author == "model"
