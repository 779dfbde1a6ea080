"""One writer thread per process for the service's ingests: in arrival order, several to a transaction.

SQLite has one writer at a time. With the server's request threads each taking a write lock in turn, the
waiting threads are woken in no particular order (a newcomer can take the lock ahead of a thread that has
waited long: a long tail of latency), every ingest pays its own BEGIN IMMEDIATE and COMMIT, and the lock
holder, each time a SQLite call gives the GIL back, may wait for it behind the event loop. On PostgreSQL
each ingest held a request thread and a pooled connection through a round trip and a COMMIT (a WAL
flush), and forty such threads competed for the GIL and the cores. Here the ingests go to a queue
instead: one thread takes everything waiting (up to `max_group`), runs it in one transaction and answers
each caller after the COMMIT (group commit). Callers on an event loop await the answer without holding a
thread; callers on a thread block on it.

A job that raises a PrefscribeError (a conflict found by a read, bad input) must have written nothing: the
others in its transaction go on. Any other error in a job rolls the transaction back and each job of the
group is run again alone, so it fails only the job that causes it. An error in the COMMIT fails the whole
group, as it would a single ingest: it may have been applied, so nothing is run again.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy.engine import Connection

from ..errors import PrefscribeError

Job = Callable[[Connection], Any]
Queued = tuple[Job, Future, tuple]


class GroupWriter:
    def __init__(self, begin: Callable[[], AbstractContextManager[Connection]], max_group: int = 32) -> None:
        """`begin()`: a write transaction, committed when its block ends without an exception."""
        self._begin, self._max_group = begin, max_group
        self._queue: queue.SimpleQueue[Queued | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = 0  # the process that started the thread: a forked child has the object, not the thread
        self._guard = threading.Lock()  # starts the thread once; orders submit() against close()
        self._closed = False

    def submit(self, job: Job, order: tuple = ()) -> Future:
        """Queue `job`; its future has the job's return value (or exception) once the transaction committed.
        A group runs its jobs sorted by `order` (stably: jobs of equal order keep their arrival order): rows
        locked in one order by every writer, in every process, cannot deadlock (PostgreSQL)."""
        future: Future = Future()
        with self._guard:
            if self._closed:
                raise RuntimeError("the store is closed")
            if self._thread is None or self._pid != os.getpid():  # started on first use (in this process)
                self._queue, self._pid = queue.SimpleQueue(), os.getpid()
                self._thread = threading.Thread(target=self._loop, args=(self._queue,), name="prefscribe-writer",
                                                daemon=True)
                self._thread.start()
            self._queue.put((job, future, order))
        return future

    def close(self, timeout: float = 30.0) -> None:
        """Finish what is queued, then stop the thread."""
        with self._guard:
            self._closed = True
            thread = self._thread
            self._queue.put(None)
        if thread is not None:
            thread.join(timeout)

    def _loop(self, jobs: queue.SimpleQueue) -> None:
        while True:
            item = jobs.get()
            stop = item is None
            group = [] if stop else [item]
            while len(group) < self._max_group:
                try:
                    more = jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                group.append(more)
            group = sorted((item for item in group if item[1].set_running_or_notify_cancel()), key=lambda i: i[2])
            if group:
                self._run(group)
            if stop:
                return

    def _run(self, group: list[Queued]) -> None:
        outcomes: list[tuple[Future, bool, Any]] = []
        committing = False
        try:
            with self._begin() as conn:
                for job, future, _ in group:
                    try:
                        outcomes.append((future, True, job(conn)))
                    except PrefscribeError as exc:  # found before writing anything: the others go on
                        outcomes.append((future, False, exc))
                committing = True
        except Exception as exc:  # noqa: BLE001 - handed to the callers
            if committing or len(group) == 1:
                # A failed COMMIT may have been applied (a connection lost on the way back): running the
                # group again could store a batch without a key twice, so its callers get the error.
                for _, future, _ in group:
                    future.set_exception(exc)
                return
            for one in group:  # rolled back: run alone, so the error fails only the job that causes it
                self._run([one])
            return
        for future, ok, value in outcomes:  # after COMMIT: what is acknowledged is stored
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
