"""The update worker's failure paths: a model failure or a crash inside the call keeps the last good
version and re-queues the interactions; a person's edit or a purge during an update wins."""

from __future__ import annotations

import pytest

from .conftest import items

pytestmark = pytest.mark.timeout(300)  # a hang guard only


def _profile(service, user="u1"):
    return service.client.get(f"/v1/users/{user}/profile", headers=service.auth())


@pytest.mark.parametrize("how", ["model_error", "exception"])
def test_a_failed_update_keeps_the_last_good_version_and_retries(service, how):
    service.ingest("u1", items(3))
    service.worker.step()
    good = _profile(service).json()
    assert good["version"] == 1

    if how == "model_error":
        service.backend.fail_next = 1
    else:
        service.backend.raise_next = 1
    service.ingest("u1", items(3, start=3))
    assert service.worker.step() == 1
    after = _profile(service).json()
    assert after["version"] == 1 and after["profile"] == good["profile"]
    update = after["update"]
    assert update["pending"] == 3 and update["failures"] == 1 and update["updating"] is False
    expected = "scripted model failure" if how == "model_error" else "scripted crash inside the model call"
    assert expected in update["last_error"]
    assert service.worker.stats["failed"] == 1

    assert service.worker.step() == 1  # retry_base_seconds=0: due again at once
    fixed = _profile(service).json()
    assert (fixed["version"], fixed["parent"], fixed["first_seq"], fixed["last_seq"]) == (2, 1, 4, 6)
    assert fixed["update"]["last_error"] is None and fixed["update"]["failures"] == 0
    assert fixed["profile"].endswith("Total 6.")


def test_failures_back_off(make_service):
    service = make_service(retry_base_seconds=300.0, retry_max_seconds=600.0)
    service.backend.fail_next = 1
    service.ingest("u1", items(3))
    assert service.worker.step() == 1
    assert service.worker.step() == 0  # waiting out the backoff
    state = service.client.get("/v1/users/u1", headers=service.auth()).json()
    assert state["failures"] == 1 and state["retry_at"] is not None and state["pending"] == 3
    r = service.client.post("/v1/users/u1/profile/refresh", headers=service.auth())  # a person can force it
    assert r.status_code == 202
    assert service.worker.step() == 1
    assert _profile(service).json()["covers"] == 3


def test_an_edit_during_an_update_wins(service):
    service.ingest("u1", items(3))
    service.worker.step()

    def edit_meanwhile(prompts):
        r = service.client.put("/v1/users/u1/profile", json={"profile": "Edited by hand.", "editor": "ann"},
                               headers=service.auth())
        assert r.status_code == 201

    service.backend.on_generate = edit_meanwhile
    service.ingest("u1", items(3, start=3))
    assert service.worker.step() == 1
    service.backend.on_generate = None
    head = _profile(service).json()
    assert (head["version"], head["author"], head["profile"]) == (2, "person", "Edited by hand.")
    assert head["update"]["pending"] == 3 and service.worker.stats["stale"] == 1
    assert service.worker.step() == 1  # the next update starts from the edit
    head = _profile(service).json()
    assert (head["version"], head["parent"], head["first_seq"], head["last_seq"]) == (3, 2, 4, 6)
    assert "Edited by hand." in service.backend.prompts[-1][-1]["content"]


def test_a_purge_during_an_update_leaves_nothing(service):
    service.ingest("u1", items(3))

    def purge_meanwhile(prompts):
        assert service.client.delete("/v1/users/u1", headers=service.auth()).status_code == 200

    service.backend.on_generate = purge_meanwhile
    assert service.worker.step() == 1
    assert service.client.get("/v1/users/u1", headers=service.auth()).status_code == 404
    assert service.worker.stats["committed"] == 0


def test_a_model_that_cannot_load_is_an_error_not_a_loss(make_service, db_url):
    from fastapi.testclient import TestClient

    from prefscribe.service import create_app

    service = make_service()
    service.ingest("u1", items(3))
    settings = service.settings.model_copy(update={"model": "hf:/nonexistent/model-dir"})
    app = create_app(settings, store=service.store)  # no backend given: loaded from the spec
    with TestClient(app) as client:
        assert app.state.runtime.worker.step() == 1
        state = client.get("/v1/users/u1", headers=service.auth()).json()
    assert state["pending"] == 3 and state["head_version"] is None
    assert "unavailable" in state["last_error"] and "hf:/nonexistent/model-dir" in state["last_error"]


def test_the_worker_thread_updates_on_its_own(make_service):
    from .conftest import wait_for

    service = make_service(worker=True)
    assert service.client.get("/v1/health").json()["worker"] is True
    service.ingest("u1", items(3))
    wait_for(lambda: _profile(service).status_code == 200, 60, "the in-process worker never updated u1")
    assert _profile(service).json()["covers"] == 3
