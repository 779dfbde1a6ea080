"""Many clients ingesting for one user at once, through a real server, while two workers (as if two
processes) update: nothing is lost or duplicated, and updates for the user never overlap."""

from __future__ import annotations

import threading

import httpx
import pytest
from sqlalchemy import create_engine, select

from prefscribe.store import normalize_url
from prefscribe.store._models import InteractionRow, ProfileVersion, User
from prefscribe.updates import ModelRuntime, Worker

from .conftest import items, wait_for
from .scripted import ScriptedBackend

pytestmark = pytest.mark.timeout(480)  # a hang guard only

CLIENTS, BATCHES, PER_BATCH = 8, 12, 3


def test_concurrent_ingestion_loses_nothing_and_updates_one_at_a_time(make_service, live_server):
    backend = ScriptedBackend(delay=0.02)
    service = make_service(backend, update_every=5, max_interactions_per_update=20)
    base = live_server(service.app)
    # two workers with their own model locks: only the lease keeps them off the same user
    workers = [Worker(service.store, service.settings, ModelRuntime("scripted:ok", backend), owner=f"w{i}")
               for i in range(2)]
    for w in workers:
        w.start()
    errors: list[str] = []
    statuses: list[int] = []

    def client(n: int) -> None:
        with httpx.Client(base_url=base, headers=service.auth(), timeout=60) as http:
            for b in range(BATCHES):
                batch = items(PER_BATCH, start=(n * BATCHES + b) * PER_BATCH, tag=f"c{n}")
                for attempt in range(2 if b % 3 == 0 else 1):  # every third batch is retried
                    r = http.post("/v1/users/u1/interactions", json=batch, headers={"Idempotency-Key": f"{n}-{b}"})
                    statuses.append(r.status_code)
                    if r.status_code not in (200, 201):
                        errors.append(r.text)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    total = CLIENTS * BATCHES * PER_BATCH
    assert statuses.count(201) == CLIENTS * BATCHES and statuses.count(200) == CLIENTS * ((BATCHES + 2) // 3)

    httpx.post(f"{base}/v1/users/u1/profile/refresh", headers=service.auth())
    tenant = service.store.authenticate(service.key_a).id

    def caught_up() -> bool:
        state = service.store.user(tenant, "u1")
        return state.pending == 0 and not state.updating

    wait_for(caught_up, 180, "the workers did not catch up")
    for w in workers:
        w.stop()

    engine = create_engine(normalize_url(service.store.url))
    try:
        with engine.connect() as conn:
            user = conn.execute(select(User).where(User.external_id == "u1")).one()
            rows = conn.execute(select(InteractionRow.seq, InteractionRow.chosen)
                                .where(InteractionRow.user_id == user.id)).all()
            versions = conn.execute(select(ProfileVersion).where(ProfileVersion.user_id == user.id)
                                    .order_by(ProfileVersion.number)).all()
    finally:
        engine.dispose()
    # every interaction once, numbered without gaps
    assert user.interaction_count == total == len(rows)
    assert sorted(seq for seq, _ in rows) == list(range(1, total + 1))
    expected = {f"c{n} chosen {i}" for n in range(CLIENTS)
                for i in range(n * BATCHES * PER_BATCH, (n + 1) * BATCHES * PER_BATCH)}
    assert {chosen for _, chosen in rows} == expected
    # one linear chain whose updates cover 1..total exactly once, in order
    assert [v.number for v in versions] == list(range(1, len(versions) + 1))
    assert [v.parent for v in versions] == [None] + list(range(1, len(versions)))
    covered = 0
    for v in versions:
        assert v.kind == "update" and v.first_seq == covered + 1 and v.last_seq >= v.first_seq
        covered = v.last_seq
    assert covered == user.covered_through == total and versions[-1].covers == total
    assert versions[-1].text.endswith(f"Total {total}.")  # each update built on the one before
    assert backend.max_active == 1  # never two updates of the user at once
    assert sum(w.stats["committed"] for w in workers) == len(versions)


def test_the_same_batch_sent_at_once_is_stored_once(service):
    """Retries racing each other (PostgreSQL runs them side by side): one stores, the others answer
    duplicate with the same seqs, for a new user and for an existing one."""
    from prefscribe.schema import Interaction

    tenant = service.store.authenticate(service.key_a).id
    for user, before in (("fresh", 0), ("fresh", 3)):
        batch = [Interaction(**i) for i in items(3, start=before, tag=user)]
        barrier = threading.Barrier(8)
        results, errors = [], []

        def send(batch=batch, user=user, key=f"same-{before}", barrier=barrier, results=results,
                 errors=errors) -> None:
            barrier.wait()
            try:
                results.append(service.store.ingest(tenant, user, batch, idempotency_key=key))
            except Exception as exc:  # noqa: BLE001 - collected and asserted on below
                errors.append(repr(exc))

        threads = [threading.Thread(target=send) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sorted(r.duplicate for r in results) == [False] + [True] * 7
        assert {(r.first_seq, r.last_seq) for r in results} == {(before + 1, before + 3)}
        rows = service.store.interactions(tenant, user, limit=100)
        assert [r.seq for r in rows] == list(range(before + 3, 0, -1))
