"""The HTTP API end to end (SQLite and PostgreSQL): ingestion, updates, versions, edits, rollback, refresh,
choose and respond, and the errors a client sees."""

from __future__ import annotations

import json

import pytest

from .conftest import items

pytestmark = pytest.mark.timeout(300)  # a hang guard only

CLI_FIELDS = {"profile", "reasoning", "model", "prompt_version", "covers", "usage"}


def test_ingest_then_update_gives_a_versioned_profile(service):
    c = service.client
    r = service.ingest("u1", items(3))
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["accepted"], body["first_seq"], body["last_seq"], body["duplicate"]) == (3, 1, 3, False)
    assert body["pending"] == 3 and body["update_due"] is True and body["interactions"] == 3

    r = c.get("/v1/users/u1/profile", headers=service.auth())
    assert r.status_code == 404 and r.json()["error"] == "no_profile" and r.json()["pending"] == 3

    assert service.worker.step() == 1
    r = c.get("/v1/users/u1/profile", headers=service.auth())
    assert r.status_code == 200, r.text
    p = r.json()
    assert CLI_FIELDS <= set(p) and {"version", "parent", "author", "created_at"} <= set(p)
    assert p["profile"] == "Likes item chosen 0, item chosen 1, item chosen 2. Total 3."
    assert (p["version"], p["parent"], p["author"], p["kind"]) == (1, None, "model", "update")
    assert (p["covers"], p["first_seq"], p["last_seq"], p["covered_through"]) == (3, 1, 3, 3)
    assert p["model"] == "scripted:ok" and p["editor"] == "scripted:ok" and p["prompt_version"].startswith("v1+")
    assert p["usage"]["prompt_tokens"] > 0 and p["update"]["pending"] == 0 and p["interactions"] == 3
    assert p["created_at"].endswith("Z")

    # the next update takes only the new interactions, from the head version
    service.ingest("u1", items(3, start=3))
    assert service.worker.step() == 1
    p = c.get("/v1/users/u1/profile", headers=service.auth()).json()
    assert (p["version"], p["parent"], p["first_seq"], p["last_seq"], p["covers"]) == (2, 1, 4, 6, 6)
    assert p["profile"].endswith("Total 6.")
    prompt = service.backend.prompts[-1][-1]["content"]
    assert "Total 3." in prompt and "USER: item chosen 5" in prompt and "USER: item chosen 0" not in prompt

    listed = c.get("/v1/users/u1/interactions?limit=4", headers=service.auth()).json()["interactions"]
    assert [i["seq"] for i in listed] == [6, 5, 4, 3] and listed[0]["chosen"] == "item chosen 5"
    user = c.get("/v1/users/u1", headers=service.auth()).json()
    assert (user["interactions"], user["pending"], user["versions"], user["head_version"]) == (6, 0, 2, 2)


def test_a_retried_batch_is_a_no_op(service):
    c = service.client
    first = service.ingest("u1", items(2), idem="batch-1")
    again = service.ingest("u1", items(2), idem="batch-1")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["duplicate"] is True
    assert (again.json()["first_seq"], again.json()["last_seq"]) == (first.json()["first_seq"], first.json()["last_seq"])
    # the key in the body works the same
    body = {"idempotency_key": "batch-2", "interactions": items(2, start=2)}
    h = service.auth()
    assert c.post("/v1/users/u1/interactions", json=body, headers=h).status_code == 201
    r = c.post("/v1/users/u1/interactions", json=body, headers=h)
    assert r.status_code == 200 and r.json()["duplicate"] is True and r.json()["interactions"] == 4
    # one key, different data: refused, nothing added
    r = service.ingest("u1", items(2, start=9), idem="batch-1")
    assert r.status_code == 409 and r.json()["error"] == "conflict" and "batch-1" in r.json()["message"]
    r = c.post("/v1/users/u1/interactions", json={"idempotency_key": "x", "interactions": items(1)},
               headers=h | {"Idempotency-Key": "y"})
    assert r.status_code == 409 and "differ" in r.json()["message"]
    rows = c.get("/v1/users/u1/interactions", headers=h).json()["interactions"]
    assert [i["seq"] for i in rows] == [4, 3, 2, 1]
    assert [i["chosen"] for i in rows] == [f"item chosen {i}" for i in (3, 2, 1, 0)]
    # the same key for another user is that user's own key
    assert service.ingest("u2", items(2), idem="batch-1").status_code == 201


def test_bodies_as_curl_sends_them(service):
    """curl -d sends form-urlencoded and strips newlines from a file; JSON Lines are accepted too."""
    h = service.auth()
    array = json.dumps(items(2))
    r = service.client.post("/v1/users/u1/interactions", content=array,
                            headers=h | {"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 201 and r.json()["accepted"] == 2, r.text
    lines = "\n".join(json.dumps(i) for i in items(3, start=2)) + "\n"
    r = service.client.post("/v1/users/u1/interactions", content=lines, headers=h)
    assert r.status_code == 201 and r.json()["accepted"] == 3 and r.json()["last_seq"] == 5
    stripped = lines.replace("\n", "")
    r = service.client.post("/v1/users/u1/interactions", content=stripped,
                            headers=h | {"Content-Type": "application/x-ndjson"})
    assert r.status_code == 201 and r.json()["accepted"] == 3 and r.json()["last_seq"] == 8
    positive = [{"chosen": "a news story", "id": "n1", "timestamp": 1700000000.5, "domain": "news",
                 "meta": {"source": "feed"}}]
    assert service.ingest("u1", positive).status_code == 201
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = service.client.put("/v1/users/u1/profile", content=json.dumps({"profile": "Set with curl -d."}),
                           headers=h | form)
    assert r.status_code == 201 and r.json()["profile"] == "Set with curl -d."
    latest = service.client.get("/v1/users/u1/interactions?limit=1", headers=h).json()["interactions"][0]
    assert latest | {"created_at": None} == {"seq": 9, "context": None, "chosen": "a news story", "rejected": None,
                                             "id": "n1", "timestamp": 1700000000.5, "domain": "news",
                                             "meta": {"source": "feed"}, "created_at": None}


def test_edit_rollback_and_the_next_update_starts_from_the_edit(service):
    c, h = service.client, service.auth()
    service.ingest("u1", items(3))
    service.worker.step()
    v1 = c.get("/v1/users/u1/profile", headers=h).json()

    r = c.put("/v1/users/u1/profile", json={"profile": "Loves jazz and short answers.", "editor": "ann"}, headers=h)
    assert r.status_code == 201, r.text
    v2 = r.json()
    assert (v2["version"], v2["parent"], v2["author"], v2["kind"], v2["editor"]) == (2, 1, "person", "edit", "ann")
    assert v2["covers"] == 3 and v2["covered_through"] == 3 and v2["model"] is None
    same = c.put("/v1/users/u1/profile", json={"profile": "Loves jazz and short answers."}, headers=h)
    assert same.status_code == 200 and same.json()["version"] == 2
    stale = c.put("/v1/users/u1/profile", json={"profile": "Other.", "base_version": 1}, headers=h)
    assert stale.status_code == 409 and stale.json()["error"] == "conflict"

    service.ingest("u1", items(3, start=3))
    assert service.worker.step() == 1
    v3 = c.get("/v1/users/u1/profile", headers=h).json()
    assert (v3["version"], v3["parent"], v3["author"], v3["first_seq"], v3["covers"]) == (3, 2, "model", 4, 6)
    assert "Loves jazz and short answers." in service.backend.prompts[-1][-1]["content"]

    r = c.post("/v1/users/u1/profile/rollback", json={"version": 1, "editor": "bob"}, headers=h)
    assert r.status_code == 201, r.text
    v4 = r.json()
    assert (v4["version"], v4["parent"], v4["kind"], v4["rollback_of"], v4["author"]) == (4, 3, "rollback", 1, "person")
    assert v4["profile"] == v1["profile"] and v4["covers"] == 3 and v4["covered_through"] == 6
    assert c.post("/v1/users/u1/profile/rollback", json={"version": 4}, headers=h).status_code == 409
    missing = c.post("/v1/users/u1/profile/rollback", json={"version": 99}, headers=h)
    assert missing.status_code == 404 and "no version 99" in missing.json()["message"]

    listed = c.get("/v1/users/u1/profile/versions", headers=h).json()
    assert listed["head"] == 4 and [v["version"] for v in listed["versions"]] == [4, 3, 2, 1]
    assert [v["author"] for v in listed["versions"]] == ["person", "model", "person", "model"]
    page = c.get("/v1/users/u1/profile/versions?limit=2&before=4", headers=h).json()
    assert [v["version"] for v in page["versions"]] == [3, 2]
    one = c.get("/v1/users/u1/profile/versions/2", headers=h)
    assert one.status_code == 200 and one.json()["profile"] == "Loves jazz and short answers."
    assert c.get("/v1/users/u1/profile/versions/9", headers=h).status_code == 404


def test_refresh_updates_below_the_threshold(service):
    c, h = service.client, service.auth()
    service.ingest("u1", items(1))
    assert service.worker.step() == 0  # 1 < update_every
    r = c.post("/v1/users/u1/profile/refresh", headers=h)
    assert r.status_code == 202 and r.json() == {"user_id": "u1", "queued": True, "pending": 1}
    assert service.worker.step() == 1
    p = c.get("/v1/users/u1/profile", headers=h).json()
    assert p["covers"] == 1 and p["update"]["refresh_requested"] is False
    r = c.post("/v1/users/u1/profile/refresh", headers=h)
    assert r.status_code == 200 and r.json()["queued"] is False and r.json()["pending"] == 0


def test_long_backlogs_are_taken_in_chunks(make_service):
    service = make_service(max_interactions_per_update=4)
    service.ingest("u1", items(10))
    steps = 0
    while service.worker.step():
        steps += 1
    versions = service.client.get("/v1/users/u1/profile/versions", headers=service.auth()).json()["versions"]
    assert steps == 2  # 4 + 4; the last 2 wait for more (below update_every=3)
    assert [(v["first_seq"], v["last_seq"]) for v in reversed(versions)] == [(1, 4), (5, 8)]
    service.client.post("/v1/users/u1/profile/refresh", headers=service.auth())
    service.worker.step()
    head = service.client.get("/v1/users/u1/profile", headers=service.auth()).json()
    assert (head["first_seq"], head["last_seq"], head["covers"]) == (9, 10, 10) and head["profile"].endswith("Total 10.")


def test_errors_are_clear_json(make_service):
    service = make_service()
    c, h = service.client, service.auth()
    r = c.get("/v1/users/u1/profile")
    assert r.status_code == 401 and r.json()["error"] == "unauthorized" and r.headers["www-authenticate"] == "Bearer"
    assert "keys create" in r.json()["message"]
    r = c.get("/v1/users/u1/profile", headers={"Authorization": "Bearer psk_not-a-real-key"})
    assert r.status_code == 401 and r.json()["message"] == "unknown or revoked API key"
    r = c.post("/v1/users/u1/interactions", content=b"[{\"chosen\": ", headers=h)
    assert r.status_code == 400 and r.json()["error"] == "invalid_json" and "line 1" in r.json()["message"]
    r = c.post("/v1/users/u1/interactions", json=[{"chosen": "ok"}, {"context": "no chosen"}], headers=h)
    assert r.status_code == 422 and r.json()["index"] == 1 and r.json()["field"] == "chosen"
    r = c.post("/v1/users/u1/interactions", json=[{"chosen": "x", "colour": "red"}], headers=h)
    assert r.status_code == 422 and r.json()["field"] == "colour"
    r = c.post("/v1/users/u1/interactions", json=[], headers=h)
    assert r.status_code == 422 and "no interactions" in r.json()["message"]
    r = c.post("/v1/users/u1/interactions", json=items(51), headers=h)
    assert r.status_code == 413 and r.json()["error"] == "too_many_items" and r.json()["limit"] == 50
    r = c.post("/v1/users/u1/interactions", json=[{"chosen": "x" * 2001}], headers=h)
    assert r.status_code == 422 and r.json()["error"] == "too_long" and r.json()["field"] == "chosen"
    big = json.dumps([{"chosen": "y" * 1500}] * 45).encode()
    assert len(big) > service.settings.max_body_bytes
    r = c.post("/v1/users/u1/interactions", content=big, headers=h)
    assert r.status_code == 413 and r.json()["error"] == "too_large"

    def chunks():  # no Content-Length: the limit applies as the body streams in
        for _ in range(45):
            yield json.dumps({"chosen": "z" * 1500}).encode()

    r = c.post("/v1/users/u1/interactions", content=chunks(), headers=h)
    assert r.status_code == 413 and r.json()["error"] == "too_large"
    assert c.get("/v1/users/u1", headers=h).status_code == 404  # none of the above added anything

    service.ingest("u1", items(1))
    r = c.put("/v1/users/u1/profile", json={"profile": "   "}, headers=h)
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"
    r = c.put("/v1/users/u1/profile", json={"text": "wrong field"}, headers=h)
    assert r.status_code == 422 and r.json()["details"][0]["loc"][-1] == "profile"
    r = c.put("/v1/users/u1/profile", json={"profile": "p" * 2001}, headers=h)
    assert r.status_code == 422 and r.json()["error"] == "too_long"
    r = c.get("/v1/nowhere", headers=h)
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = c.get("/v1/users/" + "u" * 201, headers=h)
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"


def test_choose_and_respond_use_the_current_profile(service):
    c, h = service.client, service.auth()
    service.ingest("u1", items(1))
    r = c.post("/v1/users/u1/choose", json={"a": "a jazz record", "b": "a metal record"}, headers=h)
    assert r.status_code == 200 and r.json()["version"] is None and r.json()["p_a"] == pytest.approx(0.5)
    c.put("/v1/users/u1/profile", json={"profile": "Loves jazz and quiet evenings."}, headers=h)
    r = c.post("/v1/users/u1/choose", json={"a": "a jazz record", "b": "a metal record", "context": "Music?"},
               headers=h)
    body = r.json()
    assert r.status_code == 200 and body["choice"] == "a" and body["p_a"] > 0.5 and body["version"] == 1
    assert body["p_a"] + body["p_b"] == pytest.approx(1.0) and [o["order"] for o in body["orders"]] == ["ab", "ba"]
    r = c.post("/v1/users/u1/choose", json={"a": "a metal record", "b": "a jazz record"}, headers=h)
    assert r.json()["choice"] == "b"
    r = c.post("/v1/users/u1/respond", json={"context": "Plan my weekend", "max_new_tokens": 64}, headers=h)
    assert r.status_code == 200 and r.json()["response"] == "A reply for: Plan my weekend"
    assert r.json()["version"] == 1 and r.json()["usage"]["completion_tokens"] == 6
    assert any("Loves jazz" in m["content"] for m in service.backend.prompts[-1])
    r = c.post("/v1/users/u1/choose", json={"a": "x", "b": "y", "method": "likelihood"}, headers=h)
    assert r.status_code == 422
    service.backend.fail_next = 1
    r = c.post("/v1/users/u1/respond", json={"context": "Hello"}, headers=h)
    assert r.status_code == 502 and r.json()["error"] == "model_error"


def test_openapi_and_docs(service):
    spec = service.client.get("/v1/openapi.json").json()
    paths = set(spec["paths"])
    assert {"/v1/users/{user_id}/interactions", "/v1/users/{user_id}/profile", "/v1/users/{user_id}/profile/versions",
            "/v1/users/{user_id}/profile/rollback", "/v1/users/{user_id}/profile/refresh", "/v1/users/{user_id}",
            "/v1/users/{user_id}/choose", "/v1/users/{user_id}/respond"} <= paths
    assert "requestBody" in spec["paths"]["/v1/users/{user_id}/interactions"]["post"]
    # The OpenAI-compatible proxy too, with OpenAI's bodies and error shape, and the stream's events.
    chat = spec["paths"]["/v1/chat/completions"]["post"]
    assert {"/v1/models", "/v1/feedback"} <= paths
    assert set(chat["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    assert chat["responses"]["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/OpenAIErrorOut")
    assert spec["components"]["schemas"]["ChatIn"]["properties"]["model"]["enum"] == ["scripted:ok"]
    assert not any(p.startswith("/ui") for p in paths)
    docs = service.client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    health = service.client.get("/v1/health").json()
    assert health["status"] == "ok" and health["model"] == "scripted:ok"
