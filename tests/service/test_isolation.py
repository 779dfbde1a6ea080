"""Tenant isolation: a key never reaches another tenant's users, on any endpoint (404 or 401, never data),
and purging a user leaves no row of theirs."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, func, select

from prefscribe.store._models import Base, Batch, InteractionRow, ProfileVersion, User

from .conftest import items, ui_login

pytestmark = pytest.mark.timeout(300)  # a hang guard only

SECRET = "tenant-a-secret-preference"

# every endpoint that names a user: (method, path, json body)
USER_ENDPOINTS = [
    ("GET", "/v1/users/u1", None),
    ("GET", "/v1/users/u1/interactions", None),
    ("GET", "/v1/users/u1/profile", None),
    ("GET", "/v1/users/u1/profile/versions", None),
    ("GET", "/v1/users/u1/profile/versions/1", None),
    ("PUT", "/v1/users/u1/profile", {"profile": "hijacked"}),
    ("POST", "/v1/users/u1/profile/rollback", {"version": 1}),
    ("POST", "/v1/users/u1/profile/refresh", None),
    ("POST", "/v1/users/u1/choose", {"a": SECRET, "b": "other"}),
    ("POST", "/v1/users/u1/respond", {"context": "hello"}),
    ("DELETE", "/v1/users/u1", None),
]
ALL_ENDPOINTS = USER_ENDPOINTS + [("GET", "/v1/users", None),
                                  ("POST", "/v1/users/u1/interactions", [{"chosen": "x"}])]


@pytest.fixture
def tenant_a_user(service):
    """Tenant A's user u1 with interactions, a model version and a person's version holding SECRET."""
    service.ingest("u1", items(3, tag=SECRET))
    service.worker.step()
    r = service.client.put("/v1/users/u1/profile", json={"profile": f"Edited: {SECRET}."}, headers=service.auth())
    assert r.status_code == 201
    return service


def _a_state(service):
    return (service.client.get("/v1/users/u1", headers=service.auth()).json(),
            service.client.get("/v1/users/u1/profile/versions", headers=service.auth()).json())


def test_another_tenants_key_gets_404_and_no_data_on_every_endpoint(tenant_a_user):
    service = tenant_a_user
    before = _a_state(service)
    for method, path, body in USER_ENDPOINTS:
        r = service.client.request(method, path, json=body, headers=service.auth(service.key_b))
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"] == "not_found", (method, path)
        assert SECRET not in r.text and "item chosen" not in r.text, (method, path)
    assert _a_state(service) == before  # nothing of A's changed
    assert service.client.get("/v1/users", headers=service.auth(service.key_b)).json() == {"total": 0, "users": [], "next_cursor": None}


def test_no_key_or_a_wrong_key_gets_401_on_every_endpoint(tenant_a_user):
    service = tenant_a_user
    before = _a_state(service)
    wrong = service.key_a[:-1] + ("x" if service.key_a[-1] != "x" else "y")
    for method, path, body in ALL_ENDPOINTS:
        for headers in ({}, {"Authorization": "Bearer psk_wrong"}, {"Authorization": f"Basic {service.key_a}"},
                        {"Authorization": f"Bearer {wrong}"}):
            r = service.client.request(method, path, json=body, headers=headers)
            assert r.status_code == 401, (method, path, headers, r.text)
            assert r.json()["error"] == "unauthorized" and SECRET not in r.text
    assert _a_state(service) == before


def test_a_revoked_key_stops_working(tenant_a_user):
    service = tenant_a_user
    prefix = service.key_a[:12]
    assert service.client.get("/v1/users/u1", headers=service.auth()).status_code == 200
    assert service.store.revoke_key(prefix) == 1
    assert service.client.get("/v1/users/u1", headers=service.auth()).status_code == 401


def test_tenants_have_separate_users_of_the_same_id(tenant_a_user):
    service = tenant_a_user
    b = service.auth(service.key_b)
    r = service.ingest("u1", items(2, tag="tenant-b"), key=service.key_b, idem="k")
    assert r.status_code == 201 and r.json()["first_seq"] == 1 and r.json()["interactions"] == 2
    assert service.client.get("/v1/users", headers=b).json()["total"] == 1
    b_items = service.client.get("/v1/users/u1/interactions", headers=b).json()["interactions"]
    assert {i["chosen"] for i in b_items} == {"tenant-b chosen 0", "tenant-b chosen 1"}
    a = service.client.get("/v1/users/u1", headers=service.auth()).json()
    assert a["interactions"] == 3 and a["versions"] == 2
    listed = service.client.get("/v1/users", headers=b).json()
    assert [u["user_id"] for u in listed["users"]] == ["u1"] and listed["users"][0]["interactions"] == 2


def test_the_inspector_is_isolated_too(tenant_a_user):
    service = tenant_a_user
    c = service.client
    r = c.get("/ui/users/u1", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")
    r = ui_login(c, service.key_b, "/ui/users/u1")
    assert r.status_code == 303
    r = c.get("/ui/users/u1")
    assert r.status_code == 404 and SECRET not in r.text
    r = ui_login(c, "psk_wrong")
    assert r.status_code == 401
    c.cookies.clear()


def _rows_of(url: str, user_pk: int) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            counts = {t.__tablename__: conn.scalar(select(func.count()).select_from(t).where(t.user_id == user_pk))
                      for t in (InteractionRow, Batch, ProfileVersion)}
            counts["users"] = conn.scalar(select(func.count()).select_from(User).where(User.id == user_pk))
            return counts
    finally:
        engine.dispose()


def _user_pk(url: str, external: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.scalar(select(User.id).where(User.external_id == external))
    finally:
        engine.dispose()


def test_purge_leaves_no_row(service):
    from prefscribe.store import normalize_url

    url = normalize_url(service.store.url)
    service.ingest("u1", items(3, tag=SECRET), idem="k1")
    service.ingest("u1", items(3, start=3, tag=SECRET), idem="k2")
    service.worker.step()
    service.client.put("/v1/users/u1/profile", json={"profile": SECRET}, headers=service.auth())
    service.ingest("u2", items(3, tag="keep"), idem="k1")
    service.worker.step()
    pk = _user_pk(url, "u1")
    assert _rows_of(url, pk) == {"interactions": 6, "ingest_batches": 2, "profile_versions": 2, "users": 1}

    r = service.client.delete("/v1/users/u1", headers=service.auth())
    assert r.status_code == 200
    assert r.json()["deleted"] == {"interactions": 6, "ingest_batches": 2, "profile_versions": 2, "users": 1}
    assert _rows_of(url, pk) == {"interactions": 0, "ingest_batches": 0, "profile_versions": 0, "users": 0}
    engine = create_engine(url)
    try:  # no table holds the user's text anywhere
        with engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                for row in conn.execute(select(table)):
                    assert SECRET not in repr(tuple(row)), table.name
    finally:
        engine.dispose()
    assert service.client.delete("/v1/users/u1", headers=service.auth()).status_code == 404
    assert service.client.get("/v1/users/u1/profile", headers=service.auth()).status_code == 404
    u2 = service.client.get("/v1/users/u2", headers=service.auth()).json()
    assert u2["interactions"] == 3 and u2["versions"] == 1  # the other user is untouched
    # the purged user's idempotency keys are gone with them: the same key is new data again
    again = service.ingest("u1", items(1), idem="k1")
    assert again.status_code == 201 and again.json()["duplicate"] is False and again.json()["first_seq"] == 1
