"""Store.ingest on its own, on SQLite and PostgreSQL: many threads at once (the server's request threads),
retries of one key racing each other, and what a stored row holds, field by field; and SQLite's writer
thread (group commit) on its own."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import defaultdict
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from prefscribe.schema import Interaction
from prefscribe.store import ConflictError, Store, normalize_url
from prefscribe.store._models import Batch, InteractionRow, User
from prefscribe.store._writer import GroupWriter

pytestmark = pytest.mark.timeout(300)  # a hang guard only


@pytest.fixture
def store(db_url):
    store = Store(db_url)
    yield store
    store.close()


def _items(tag: str, n: int) -> list[Interaction]:
    return [Interaction(context=f"q {tag} {i}", chosen=f"{tag} chosen {i}", rejected=f"{tag} rejected {i}")
            for i in range(n)]


def _run_threads(count: int, target) -> list[BaseException]:
    """Run target(i) in `count` threads released together; the exceptions they raised."""
    start, failures = threading.Barrier(count), []

    def run(i: int) -> None:
        start.wait()
        try:
            target(i)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    return failures


def _stored(url: str) -> dict[str, list[tuple[int, str]]]:
    """Per user: (seq, chosen) of every stored interaction, in seq order."""
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(User.external_id, InteractionRow.seq, InteractionRow.chosen)
                                .join(User, User.id == InteractionRow.user_id).order_by(InteractionRow.seq)).all()
    finally:
        engine.dispose()
    out = defaultdict(list)
    for user, seq, chosen in rows:
        out[user].append((seq, chosen))
    return out


def test_concurrent_ingests_are_all_stored_with_contiguous_seqs(store, db_url):
    tenant = store.tenant("t").id
    threads, batches, size = 16, 8, 3
    results = []

    def client(i: int) -> None:
        for b in range(batches):
            user = "shared" if b % 2 else f"own{i}"  # half the batches contend for one user row
            results.append(store.ingest(tenant, user, _items(f"c{i}b{b}", size), idempotency_key=f"c{i}-b{b}"))

    assert _run_threads(threads, client) == []
    assert len(results) == threads * batches and not any(r.duplicate for r in results)
    stored = _stored(db_url)
    for user, rows in stored.items():
        assert [seq for seq, _ in rows] == list(range(1, len(rows) + 1)), user  # no gap, no repeat
        assert store.user(tenant, user).interactions == len(rows)
    assert len(stored["shared"]) == threads * batches // 2 * size
    # each batch got the seqs it was told, in its own order
    for r in results:
        chosen = dict(stored[r.user_id])
        tag = r.idempotency_key.replace("-", "")
        assert [chosen[seq] for seq in range(r.first_seq, r.last_seq + 1)] == [f"{tag} chosen {i}" for i in range(size)]


def test_one_key_sent_by_many_threads_at_once_is_stored_once(store, db_url):
    tenant = store.tenant("t").id
    batch = _items("same", 4)
    results = []
    assert _run_threads(12, lambda i: results.append(store.ingest(tenant, "u", batch, idempotency_key="k"))) == []
    assert sum(not r.duplicate for r in results) == 1
    assert {(r.first_seq, r.last_seq) for r in results} == {(1, 4)}
    assert [seq for seq, _ in _stored(db_url)["u"]] == [1, 2, 3, 4]
    with pytest.raises(ConflictError):
        store.ingest(tenant, "u", _items("other", 4), idempotency_key="k")


def test_a_stored_interaction_reads_back_as_sent(store, db_url):
    tenant = store.tenant("t").id
    sent = [Interaction(chosen="only chosen"),
            Interaction(context="c", chosen="b", rejected="r", id="item-1", timestamp="2026-01-02T03:04:05Z",
                        domain="books", meta={"rating": 4.5, "tags": ["a", "é"], "nested": {"x": None}}),
            Interaction(chosen="x", timestamp=1_700_000_000.25),
            Interaction(chosen="y", meta={"nul\x00": ["\x00"], "esc": "\\u0000 as text"})]  # meta is JSON: NUL is fine
    first = store.ingest(tenant, "u", sent, idempotency_key="k1")
    assert (first.first_seq, first.last_seq, first.interactions, first.pending) == (1, 4, 4, 4)
    assert [s.interaction for s in reversed(store.interactions(tenant, "u"))] == sent
    again = store.ingest(tenant, "u", sent, idempotency_key="k1")
    assert again.duplicate and (again.first_seq, again.last_seq, again.interactions) == (1, 4, 4)
    # a user created by ingest has the model's defaults (the PostgreSQL statement states them itself)
    state = store.user(tenant, "u")
    assert (state.covered_through, state.head_version, state.versions, state.refresh_requested, state.failures,
            state.last_error, state.retry_at, state.updating) == (0, None, 0, False, 0, None, None, False)
    engine = create_engine(normalize_url(db_url))
    try:
        with engine.connect() as conn:
            batches = conn.execute(select(Batch.idempotency_key, Batch.first_seq, Batch.last_seq)).all()
    finally:
        engine.dispose()
    assert batches == [("k1", 1, 4)]


def _writer_on(tmp_path):
    """A GroupWriter over a SQLite table with a unique column, counting the transactions it opens."""
    engine = create_engine(f"sqlite:///{tmp_path / 'writer.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER UNIQUE)"))
    transactions = []

    def begin():
        transactions.append(1)
        return engine.begin()

    return GroupWriter(begin), engine, transactions


def _insert(value: int):
    return lambda conn: conn.execute(text("INSERT INTO t VALUES (:v)"), {"v": value}).rowcount


def _held(writer: GroupWriter) -> threading.Event:
    """Keep the writer thread busy until the returned event is set, so what is submitted meanwhile queues."""
    gate, busy = threading.Event(), threading.Event()
    writer.submit(lambda conn: busy.set() or gate.wait(30))
    assert busy.wait(30)
    return gate


def test_the_writer_runs_what_waits_in_one_transaction(tmp_path):
    writer, engine, transactions = _writer_on(tmp_path)
    gate = _held(writer)
    futures = [writer.submit(_insert(v)) for v in range(5)]
    gate.set()
    assert [f.result(30) for f in futures] == [1] * 5
    assert len(transactions) == 2  # the held job's, then one for the five that queued behind it
    writer.close()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT v FROM t ORDER BY v")).scalars().all() == [0, 1, 2, 3, 4]
    with pytest.raises(RuntimeError):
        writer.submit(_insert(9))
    engine.dispose()


def test_a_failing_job_fails_alone(tmp_path):
    writer, engine, transactions = _writer_on(tmp_path)

    def conflict(conn):
        raise ConflictError("found by a read, nothing written")

    gate = _held(writer)
    futures = [writer.submit(job) for job in (_insert(1), conflict, _insert(1), _insert(2))]
    gate.set()
    assert futures[0].result(30) == 1 and futures[3].result(30) == 1
    with pytest.raises(ConflictError):
        futures[1].result(30)
    with pytest.raises(SAIntegrityError):  # the duplicate broke the group's transaction: each ran again alone
        futures[2].result(30)
    assert len(transactions) == 1 + 1 + 4
    writer.close()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT v FROM t ORDER BY v")).scalars().all() == [1, 2]
    engine.dispose()


def test_submitted_ingests_share_transactions_and_keep_every_answer(store, db_url):
    """The service's path: batches handed to the writer thread all at once, retries among them."""
    tenant = store.tenant("t").id
    futures = []
    for b in range(60):
        user = f"u{b % 7}"
        batch = _items(f"b{b}", 2)
        futures.append((user, store.submit_ingest(tenant, user, batch, idempotency_key=f"k{b}")))
        if b % 5 == 0:  # the same batch again at once: likely in the same transaction as the first
            futures.append((user, store.submit_ingest(tenant, user, batch, idempotency_key=f"k{b}")))
    results = [(user, f.result(60)) for user, f in futures]
    assert sum(r.duplicate for _, r in results) == 12
    stored = _stored(db_url)
    for user, rows in stored.items():
        assert [seq for seq, _ in rows] == list(range(1, len(rows) + 1)), user
    assert sum(len(rows) for rows in stored.values()) == 60 * 2
    firsts = {}
    for user, r in results:  # a retry answers with its original's seqs
        assert firsts.setdefault((user, r.idempotency_key), (r.first_seq, r.last_seq)) == (r.first_seq, r.last_seq)
    with pytest.raises(ConflictError):
        store.submit_ingest(tenant, "u0", _items("different", 2), idempotency_key="k0").result(60)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_forked_process_gets_a_writer_of_its_own(store):
    tenant = store.tenant("t").id
    store.ingest(tenant, "u", _items("parent", 1))  # the parent's writer thread is running
    child = os.fork()
    if child == 0:  # the child has the Store object but not the thread: it must start its own, not hang
        code = 1
        try:
            for engine in (store.engines.write, store.engines.read):  # the parent's connections stay its own
                engine.dispose(close=False)
            code = 0 if store.ingest(tenant, "u", _items("child", 1)).last_seq == 2 else 3
        finally:
            os._exit(code)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid:
            assert os.waitstatus_to_exitcode(status) == 0
            break
        time.sleep(0.05)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the forked process's ingest hung")
    assert store.ingest(tenant, "u", _items("parent again", 1)).last_seq == 3


def test_a_failed_commit_fails_the_group_and_runs_nothing_again(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'writer.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER)"))  # no unique key: a second run would store twice
    transactions = []

    @contextmanager
    def begin():
        transactions.append(1)
        with engine.begin() as conn:
            yield conn
        if len(transactions) == 2:  # committed, but the answer is lost, as with a connection lost in COMMIT
            raise OSError("connection lost during COMMIT")

    writer = GroupWriter(begin)
    gate = _held(writer)
    futures = [writer.submit(_insert(v)) for v in range(3)]
    gate.set()
    for future in futures:
        with pytest.raises(OSError):
            future.result(30)
    writer.close()
    assert len(transactions) == 2
    with engine.connect() as conn:
        assert conn.execute(text("SELECT v FROM t ORDER BY v")).scalars().all() == [0, 1, 2]
    engine.dispose()
