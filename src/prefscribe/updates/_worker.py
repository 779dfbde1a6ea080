"""The update worker: finds users with enough new interactions (or a refresh request), leases them, runs
one streaming update per user from the head version and the pending interactions, and appends the
result as a new version.

Why nothing is lost: interactions are never consumed by the worker, only covered by a version's
watermark, and the watermark moves in the same transaction that appends the version. A model failure
records the error and schedules a retry; a crash (even kill -9) leaves a lease that lapses after
`lease_seconds`, when any worker takes the user over. Leases also make at most one update per user run
at a time, across threads and processes. A person's edit during an update wins: the model's result is
dropped and the next update starts from the edit.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import replace

from ..cache import ResultCache
from ..infer import InferConfig, InferJob, Inferrer
from ..llm.base import Sampling
from ..schema import Profile
from ..store import Snapshot, Store
from ._config import UpdateConfig
from ._runtime import ModelRuntime

log = logging.getLogger("prefscribe.updates")


class _Heartbeat:
    """Renews this worker's leases on `user_pks` every lease/3 seconds while an update runs."""

    def __init__(self, store: Store, owner: str, user_pks: list[int], lease_seconds: float) -> None:
        self.store, self.owner, self.user_pks, self.lease = store, owner, user_pks, lease_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prefscribe-lease", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.lease / 3):
            try:
                self.store.renew(self.owner, self.user_pks, self.lease)
            except Exception:  # a database hiccup: the next beat tries again
                log.exception("lease renewal failed")

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


class Worker:
    def __init__(self, store: Store, settings: UpdateConfig, models: ModelRuntime, owner: str | None = None) -> None:
        self.store, self.settings, self.models = store, settings, models
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._inferrer: Inferrer | None = None
        self.stats = {"committed": 0, "failed": 0, "stale": 0}

    # --------------------------------------------------------------------------------------- model
    def inferrer(self) -> Inferrer:
        if self._inferrer is None:
            backend = self.models.backend()
            probe = Inferrer(backend, InferConfig(style=self.settings.style))
            sampling: Sampling = probe.sampling
            if self.settings.max_new_tokens:
                sampling = replace(sampling, max_new_tokens=self.settings.max_new_tokens)
            self._inferrer = Inferrer(backend, InferConfig(style=self.settings.style, sampling=sampling),
                                      ResultCache() if self.settings.cache else None)
        return self._inferrer

    @staticmethod
    def _fit(inferrer: Inferrer, snap: Snapshot) -> int:
        """How many of the pending interactions, oldest first, one update can take in whole: a history
        longer than the context would otherwise be cut silently (the prompt keeps the newest)."""
        n = len(snap.items)
        past = snap.past.covers if snap.past else 0
        while n > 1:
            kept = inferrer.plan(InferJob(snap.items[:n], snap.past)).covers - past
            if kept >= n:
                break
            n = max(1, kept)
        inferrer.plan(InferJob(snap.items[:n], snap.past))  # raises when even one does not fit
        return n

    # ---------------------------------------------------------------------------------------- step
    def step(self) -> int:
        """Claim due users and update them, one batched model call. Returns how many users were claimed."""
        s = self.settings
        claims = self.store.claim_due(self.owner, threshold=s.update_every, lease_seconds=s.lease_seconds,
                                      limit=s.users_per_update)
        if claims:
            with _Heartbeat(self.store, self.owner, claims, s.lease_seconds):
                self._update(claims)
        return len(claims)

    def _fail(self, snap: Snapshot, error: str) -> None:
        log.warning("update of user %r failed: %s", snap.user_id, error)
        self.stats["failed"] += 1
        self.store.fail_update(snap.user_pk, self.owner, error, self.settings.retry_base_seconds,
                               self.settings.retry_max_seconds)

    def _update(self, claims: list[int]) -> None:
        snaps: list[Snapshot] = []
        for user_pk in claims:
            snap = self.store.snapshot(user_pk, self.settings.max_interactions_per_update)
            if snap is None or not snap.items:
                self.store.release(user_pk, self.owner)
            else:
                snaps.append(snap)
        if not snaps:
            return
        try:
            inferrer = self.inferrer()
        except Exception as exc:  # the model cannot load: every claimed user keeps its head and retries
            for snap in snaps:
                self._fail(snap, f"model {self.models.spec!r} unavailable: {exc}")
            return
        ready: list[tuple[Snapshot, InferJob]] = []
        for snap in snaps:
            try:
                ready.append((snap, InferJob(snap.items[:self._fit(inferrer, snap)], snap.past)))
            except Exception as exc:
                self._fail(snap, str(exc))
        if not ready:
            return
        try:
            with self.models.use():
                results = inferrer.run([job for _, job in ready])
        except Exception as exc:
            for snap, _ in ready:
                self._fail(snap, f"{type(exc).__name__}: {exc}")
            return
        for (snap, job), result in zip(ready, results):
            if not isinstance(result, Profile):
                self._fail(snap, result.error)
                continue
            status = self.store.commit_update(snap, self.owner, result, len(job.history))
            self.stats["committed" if status == "committed" else "stale"] += 1
            if status != "committed":
                log.info("update of user %r dropped (%s)", snap.user_id, status)

    # ---------------------------------------------------------------------------------------- loop
    def run(self, stop: threading.Event | None = None) -> None:
        """Work until `stop` (or this worker's own stop) is set. Database errors are logged and retried."""
        stop = stop or self._stop
        while not stop.is_set() and not self._stop.is_set():
            try:
                busy = self.step()
            except Exception:
                log.exception("worker step failed")
                busy = 0
            if not busy:
                self.wake.wait(self.settings.poll_seconds)
                self.wake.clear()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="prefscribe-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
