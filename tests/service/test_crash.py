"""A worker process killed (kill -9) in the middle of an update, then restarted: the last good version
stands meanwhile, and in the end every interaction is covered by one consistent version chain."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, select

from prefscribe.store import normalize_url
from prefscribe.store._models import ProfileVersion, User

from .conftest import REPO, items, wait_for

pytestmark = pytest.mark.timeout(480)  # a hang guard only


def _worker(db: str, model: str, mark, log) -> subprocess.Popen:
    code = "import tests.service.scripted; from prefscribe.cli import main; main()"
    args = [sys.executable, "-c", code, "worker", "--db", db, "--model", model, "--update-every", "3",
            "--lease-seconds", "1.5", "--poll-seconds", "0.1"]
    env = os.environ | {"PREFSCRIBE_SCRIPTED_MARK": str(mark), "PREFSCRIBE_RETRY_BASE_SECONDS": "0"}
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def _chain(url: str):
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            user = conn.execute(select(User).where(User.external_id == "u1")).one()
            versions = conn.execute(select(ProfileVersion).where(ProfileVersion.user_id == user.id)
                                    .order_by(ProfileVersion.number)).all()
            return user, versions
    finally:
        engine.dispose()


def test_kill_9_mid_update_then_restart_covers_everything(make_service, tmp_path):
    service = make_service()
    url = service.store.url
    service.ingest("u1", items(3), idem="b1")
    service.worker.step()  # version 1, the last good one
    service.ingest("u1", items(4, start=3), idem="b2")
    mark, log_path = tmp_path / "model-calls", tmp_path / "worker.log"

    with open(log_path, "w") as log:
        doomed = _worker(url, "scripted:sleep-60", mark, log)
        try:
            wait_for(lambda: mark.exists() and mark.read_text().strip() != "" or doomed.poll() is not None, 180,
                     "the first worker never reached the model")
            assert doomed.poll() is None, log_path.read_text()
            user, _ = _chain(url)
            assert user.lease_owner is not None and user.head_version == 1  # mid-update
            os.kill(doomed.pid, signal.SIGKILL)
            assert doomed.wait(10) == -signal.SIGKILL
        finally:
            if doomed.poll() is None:
                doomed.kill()

        # after the crash: the last good version stands, nothing is lost, more keeps arriving
        head = service.client.get("/v1/users/u1/profile", headers=service.auth()).json()
        assert head["version"] == 1 and head["update"]["pending"] == 4
        assert service.ingest("u1", items(4, start=3), idem="b2").json()["duplicate"] is True  # a client retry
        service.ingest("u1", items(5, start=7), idem="b3")

        restarted = _worker(url, "scripted:ok", mark, log)
        try:
            def done() -> bool:
                user, _ = _chain(url)
                return user.covered_through == user.interaction_count and user.lease_owner is None
            wait_for(done, 180, "the restarted worker did not cover every interaction")
        finally:
            restarted.send_signal(signal.SIGTERM)
            assert restarted.wait(20) == 0, log_path.read_text()

    user, versions = _chain(url)
    assert user.interaction_count == 12 and user.covered_through == 12
    assert [v.number for v in versions] == list(range(1, len(versions) + 1))
    assert [v.parent for v in versions] == [None] + list(range(1, len(versions)))
    covered = 0
    for v in versions:
        assert v.first_seq == covered + 1
        covered = v.last_seq
    assert covered == 12 and versions[-1].covers == 12 and versions[-1].text.endswith("Total 12.")
    assert all(v.model == "scripted:ok" for v in versions)  # the killed worker committed nothing
    assert len(mark.read_text().splitlines()) >= 2  # the killed call and the restarted one(s)
