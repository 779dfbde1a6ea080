"""Regression tests for what fuzzing and a hostile client found (issue 13), through the HTTP API on SQLite and
PostgreSQL: every refusal is a 4xx with the documented {error, message} body, never a 500, and nothing is
stored by a refused request."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from prefscribe.errors import ConflictError, InputError, UserNotFoundError, VersionNotFoundError
from prefscribe.llm.openai import OpenAIBackend

from .conftest import free_port, items, ui_login

pytestmark = pytest.mark.timeout(300)  # a hang guard only

HUGE = [2**31, 2**63, 2**70]


def error_of(r, status: int, code: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert body["error"] == code and isinstance(body["message"], str) and body["message"], body
    return body


def raw_ingest(service, body: str, user: str = "u1", **headers):
    return service.client.post(f"/v1/users/{user}/interactions", content=body.encode("utf-8", "surrogatepass"),
                               headers=service.auth() | {"Content-Type": "application/json"} | headers)


def stored(service, user: str = "u1") -> int:
    r = service.client.get(f"/v1/users/{user}", headers=service.auth())
    return r.json()["interactions"] if r.status_code == 200 else 0


def with_profile(service, user: str = "u1") -> None:
    assert service.ingest(user, items(3)).status_code == 201
    assert service.worker.step() == 1


@pytest.mark.parametrize("number", HUGE)
def test_numbers_beyond_the_columns_are_refused(service, number):
    with_profile(service)
    c, h = service.client, service.auth()
    for url in (f"/v1/users?offset={number}", f"/v1/users/u1/interactions?before={number}",
                f"/v1/users/u1/profile/versions?before={number}", f"/v1/users/u1/profile/versions/{number}"):
        body = error_of(c.get(url, headers=h), 422, "invalid_request")
        assert "less than or equal to 2147483647" in body["message"], body
    error_of(c.post("/v1/users/u1/profile/rollback", json={"version": number}, headers=h), 422, "invalid_request")
    error_of(c.put("/v1/users/u1/profile", json={"profile": "x", "base_version": number}, headers=h),
             422, "invalid_request")
    assert c.get("/v1/users/u1/profile", headers=h).json()["version"] == 1


def test_numbers_beyond_the_columns_in_the_ui(service):
    with_profile(service)
    c = service.client
    ui_login(c, service.key_a)
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', c.get("/ui/users/u1").text).group(1)
    assert c.get(f"/ui/users?offset={2**70}").status_code == 200
    for version in (str(2**70), "²", "-1", "1e3"):
        r = c.post("/ui/users/u1/rollback", data={"version": version, "csrf": csrf}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].endswith("m=malformed"), (version, r.status_code)
        r = c.post("/ui/users/u1/edit", data={"profile": "New text.", "base_version": version, "csrf": csrf},
                   follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].endswith("m=malformed"), (version, r.status_code)
    assert c.get("/v1/users/u1", headers=service.auth()).json()["versions"] == 1


@pytest.mark.parametrize("depth", [40, 260, 5000])
def test_deep_nesting_is_invalid_json_everywhere(service, depth):
    nested = "[" * depth + "]" * depth
    r = raw_ingest(service, '[{"chosen": "x", "meta": {"a": ' + nested + "}}]")
    assert "nested deeper" in error_of(r, 400, "invalid_json")["message"]
    c, h = service.client, service.auth()
    with_profile(service, "u2")
    error_of(c.put("/v1/users/u2/profile", content='{"profile": ' + nested + "}", headers=h), 400, "invalid_json")
    error_of(c.post("/v1/users/u2/choose", content='{"a": "x", "b": ' + nested + "}", headers=h),
             400, "invalid_json")
    assert stored(service) == 0


@pytest.mark.parametrize("body", [
    '[{"chosen": "\\ud800"}]',
    '[{"chosen": "ok", "meta": {"k\\udfff": 1}}]',
    '{"idempotency_key": "\\ud800", "interactions": [{"chosen": "ok"}]}',
    '[{"chosen": "a\\u0000b"}]',
    '[{"chosen": "ok", "context": "\\u0000"}]',
])
def test_text_no_database_can_hold_is_refused(service, body):
    error_of(raw_ingest(service, body), 422, "invalid_request")
    assert stored(service) == 0


@pytest.mark.parametrize("body, refused", [
    ("[" * 32 + "]" * 32, None), ("[" * 33 + "]" * 33, "invalid_json"),
    ('[{"chosen": "x", "meta": {"a": "\\uD83D"}}]', "invalid_request"),   # upper-case escape
    ('[{"chosen": "x", "meta": {"\\udfff": 1}}]', "invalid_request"),     # in a key
    ('[{"chosen": "\\\\ud800"}]', None),                               # an escaped backslash, then text
    ('[{"chosen": "\\ud83d\\ude00"}]', None),                           # a pair: one character
])
def test_strict_json_refuses_exactly_what_it_must(body, refused):
    """loads_all skips the walk over strings when no surrogate escape is in the text and the nesting is
    shallow: the boundaries are the same as the full check's."""
    from prefscribe.service.errors import ApiError
    from prefscribe.service.jsonbody import loads_all

    if refused is None:
        assert loads_all(body) == [json.loads(body)]
        return
    with pytest.raises(ApiError) as caught:
        loads_all(body)
    assert caught.value.code == refused


def test_nul_and_surrogates_in_other_bodies_and_ids(service):
    with_profile(service)
    c, h = service.client, service.auth()
    error_of(c.put("/v1/users/u1/profile", content='{"profile": "a\\u0000b"}', headers=h), 422, "invalid_request")
    error_of(c.put("/v1/users/u1/profile", content='{"profile": "ok", "editor": "\\ud800"}', headers=h),
             422, "invalid_request")
    error_of(c.post("/v1/users/u1/choose", content='{"a": "\\udc00", "b": "y"}', headers=h), 422, "invalid_request")
    for path in ("/v1/users/a%00b", "/v1/users/a%00b/profile", "/v1/users/a%00b/interactions"):
        error_of(c.get(path, headers=h), 422, "invalid_request")
    error_of(service.ingest("a%00b", items(1)), 422, "invalid_request")
    assert c.get("/v1/users", headers=h).json()["total"] == 1


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1" * 5000, "1." + "1" * 400, "1e400"])
def test_numbers_json_cannot_carry_are_refused(service, literal):
    for body in (f'[{{"chosen": "x", "meta": {{"n": {literal}}}}}]', f'[{{"chosen": "x", "timestamp": {literal}}}]'):
        error_of(raw_ingest(service, body), 400, "invalid_json")
    with_profile(service, "u2")
    r = service.client.put("/v1/users/u2/profile", content=f'{{"profile": "x", "base_version": {literal}}}',
                           headers=service.auth())
    error_of(r, 400, "invalid_json")
    assert stored(service) == 0


@pytest.mark.parametrize("field,value,limit", [
    ("id", "i" * 201, 200), ("domain", "d" * 201, 200), ("timestamp", "t" * 201, 200),
    ("meta", {"note": "m" * 2_000}, 2_000), ("chosen", "c" * 2_001, 2_000), ("context", "q" * 2_001, 2_000),
])
def test_every_field_has_a_limit(service, field, value, limit):
    item = {"chosen": "x", field: value}
    body = error_of(service.ingest("u1", [item]), 422, "too_long")
    assert body["field"] == field and str(limit) in body["message"]
    assert stored(service) == 0
    # at the limit it is stored and read back as sent
    at_limit = {"meta": {"n": "m" * (limit - 9)}}.get(field, value[:limit] if isinstance(value, str) else value)
    assert service.ingest("u1", [{"chosen": "x", field: at_limit}]).status_code == 201
    got = service.client.get("/v1/users/u1/interactions", headers=service.auth()).json()["interactions"][0]
    assert got[field] == at_limit


@pytest.mark.parametrize("endpoint", [
    ("post", "/v1/users/u1/interactions"), ("put", "/v1/users/u1/profile"), ("post", "/v1/users/u1/choose"),
    ("post", "/v1/users/u1/respond"), ("post", "/v1/users/u1/profile/rollback"),
    ("post", "/v1/users/u1/profile/refresh"),
])
@pytest.mark.parametrize("body", ['{"profile": ', "not json", '{"a": "x",}', "\ufeff{}"])
def test_malformed_json_is_400_invalid_json_on_every_endpoint(service, endpoint, body):
    with_profile(service)
    method, url = endpoint
    r = getattr(service.client, method)(
        url, content=body.encode(), headers=service.auth() | {"Content-Type": "application/json"})
    error_of(r, 400, "invalid_json")
    assert stored(service) == 3


def test_a_retried_batch_answers_its_seqs_and_the_current_counts(service):
    first = service.ingest("u1", items(2), idem="k1").json()
    service.ingest("u1", items(3, start=2))
    again = service.ingest("u1", items(2), idem="k1")
    assert again.status_code == 200
    body = again.json()
    assert (body["duplicate"], body["accepted"], body["first_seq"], body["last_seq"]) == (True, 2, 1, 2)
    assert (first["interactions"], body["interactions"], body["pending"]) == (2, 5, 5)  # current, as documented


def test_choose_with_an_unreachable_model_is_502_without_its_address(make_service):
    url = f"http://127.0.0.1:{free_port()}/internal-llm/v1"
    service = make_service(backend=OpenAIBackend("judge-model", url, max_retries=0, timeout=10))
    service.ingest("u1", items(2))
    c, h = service.client, service.auth()
    for path, body in (("choose", {"a": "x", "b": "y"}), ("choose", {"a": "x", "b": "y", "method": "generation"}),
                       ("respond", {"context": "hi"})):
        r = c.post(f"/v1/users/u1/{path}", json=body, headers=h)
        error_of(r, 502, "model_error")
        assert "127.0.0.1" not in r.text and "internal-llm" not in r.text, r.text


def test_an_unexpected_failure_is_a_500_with_the_documented_body(service, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("database exploded at 10.0.0.7")

    monkeypatch.setattr(service.store, "user", broken)
    client = TestClient(service.app, raise_server_exceptions=False)
    r = client.get("/v1/users/u1", headers=service.auth())
    body = error_of(r, 500, "internal_error")
    assert "10.0.0.7" not in r.text and set(body) == {"error", "message"}


def test_schema_valid_edges_are_accepted(service):
    # the schema allows these; the service stores them as sent
    assert service.ingest("u1", [{"chosen": "x", "meta": {"deep": [[[[{"n": 1.5e300}]]]], "big": 2**64}}]
                          ).status_code == 201
    got = service.client.get("/v1/users/u1/interactions", headers=service.auth()).json()["interactions"][0]
    assert got["meta"] == {"deep": [[[[{"n": 1.5e300}]]]], "big": 2**64}
    assert json.loads(json.dumps(got))["chosen"] == "x"
    # meta is stored as JSON, which carries NUL characters (text columns cannot: refused above)
    assert raw_ingest(service, '[{"chosen": "y", "meta": {"x\\u0000": ["\\u0000"]}}]').status_code == 201
    got = service.client.get("/v1/users/u1/interactions", headers=service.auth()).json()["interactions"][0]
    assert got["meta"] == {"x\x00": ["\x00"]}
    # blank-looking but schema-valid: a profile with text around a newline, a chosen with one letter
    assert service.ingest("u1", [{"chosen": " a "}]).status_code == 201


def test_the_store_raises_typed_errors(service):
    store, tenant = service.store, service.store.authenticate(service.key_a)
    with pytest.raises(UserNotFoundError) as missing:
        store.head(tenant.id, "nobody")
    assert missing.value.user_id == "nobody"
    with pytest.raises(InputError):
        store.ingest(tenant.id, "u1", [])
    with pytest.raises(InputError):
        store.create_key("  ")
    with_profile(service)
    with pytest.raises(VersionNotFoundError) as version:
        store.version(tenant.id, "u1", 7)
    assert (version.value.user_id, version.value.version) == ("u1", 7)
    with pytest.raises(ConflictError):
        store.rollback(tenant.id, "u1", 1)
    with pytest.raises(ConflictError):
        store.edit(tenant.id, "u1", "text", base_version=5)


def test_the_schema_says_what_is_refused(service):
    """Blank texts are refused, and the OpenAPI document says so (a pattern), as it gives every limit."""
    c, h = service.client, service.auth()
    error_of(service.ingest("u1", [{"chosen": ""}]), 422, "invalid_request")
    with_profile(service)
    error_of(c.put("/v1/users/u1/profile", json={"profile": "\n"}, headers=h), 422, "invalid_request")
    doc = c.get("/v1/openapi.json").json()
    body = doc["paths"]["/v1/users/{user_id}/interactions"]["post"]["requestBody"]["content"]["application/json"]
    item = body["schema"]["oneOf"][0]["items"]
    chosen, edit = item["properties"]["chosen"], doc["components"]["schemas"]["EditIn"]["properties"]["profile"]
    for prop in (chosen, edit):
        assert re.fullmatch(prop["pattern"], "x") and not re.fullmatch(prop["pattern"], "\n ")
    assert chosen["maxLength"] == service.settings.max_field_chars
    assert edit["maxLength"] == service.settings.max_profile_chars
    assert body["schema"]["oneOf"][0]["maxItems"] == service.settings.max_batch_items
    assert item["properties"]["id"]["anyOf"][0]["maxLength"] == 200
    # errors are documented with their real body, not FastAPI's validation model
    put = doc["paths"]["/v1/users/{user_id}/profile"]["put"]["responses"]
    assert {"400", "401", "404", "409", "422", "500"} <= set(put)
    assert put["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")
    assert "HTTPValidationError" not in doc["components"]["schemas"]
