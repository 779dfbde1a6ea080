"""End-user access links through the app (SQLite and PostgreSQL); test_browser.py drives the same pages in
chromium. A link shows one user's profile, allows what its scope says, and nothing once expired, altered,
or for a deleted user."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from prefscribe.service.access import AccessLinks

from .conftest import items

pytestmark = pytest.mark.timeout(300)  # a hang guard only


def link(service, user: str = "u1", key: str | None = None, **body) -> str:
    r = service.client.post(f"/v1/users/{user}/access-links", json=body, headers=service.auth(key))
    assert r.status_code == 201, r.text
    return r.json()["url"]


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["t"][0]


def open_page(service, url: str):
    parts = urlsplit(url)
    return service.client.get(f"{parts.path}?{parts.query}")


@pytest.fixture
def two_tenants(service):
    """u1 in tenant A (with a profile) and another u1 in tenant B with a different one."""
    service.ingest("u1", items(3, tag="alpha"))
    service.ingest("u1", items(3, tag="beta"), key=service.key_b)
    service.worker.step()
    service.worker.step()
    return service


def test_a_read_link_shows_that_user_only_and_changes_nothing(two_tenants):
    service = two_tenants
    r = service.client.post("/v1/users/u1/access-links", json={}, headers=service.auth())
    body = r.json()
    assert (body["scope"], body["user_id"]) == ("read", "u1") and body["url"].startswith("http://testserver/me?t=")
    page = open_page(service, body["url"])
    assert page.status_code == 200 and "Likes alpha chosen 0" in page.text and "beta" not in page.text
    assert "/me/edit" not in page.text and "/me/delete" not in page.text and "allows reading only" in page.text
    assert page.headers["cache-control"] == "no-store" and "frame-ancestors 'none'" in page.headers[
        "content-security-policy"]
    t = token_of(body["url"])
    for path, data in (("/me/edit", {"profile": "forged"}), ("/me/rollback", {"version": "1"}),
                       ("/me/delete", {"confirm": "delete"})):
        r = service.client.post(path, data={"t": t, **data})
        assert r.status_code == 403 and "reading only" in r.text
    state = service.client.get("/v1/users/u1", headers=service.auth()).json()
    assert (state["versions"], state["interactions"]) == (1, 3)
    # tenant B's link for its own u1 shows B's profile
    page = open_page(service, link(service, key=service.key_b))
    assert "Likes beta chosen 0" in page.text and "alpha" not in page.text


def test_an_edit_link_edits_rolls_back_and_deletes(two_tenants):
    service = two_tenants
    t = token_of(link(service, scope="edit"))
    c, h = service.client, service.auth()
    r = c.post("/me/edit", data={"t": t, "profile": "I like <i>quiet</i> jazz.", "base_version": "1"})
    assert r.status_code == 200 and "Saved as version 2." in r.text
    assert "I like &lt;i&gt;quiet&lt;/i&gt; jazz." in r.text and "<i>quiet</i>" not in r.text
    head = c.get("/v1/users/u1/profile", headers=h).json()
    assert (head["version"], head["author"], head["editor"], head["profile"]) == (2, "person", "the user",
                                                                                  "I like <i>quiet</i> jazz.")
    stale = c.post("/me/edit", data={"t": t, "profile": "late", "base_version": "1"})
    assert "Not saved" in stale.text
    r = c.post("/me/rollback", data={"t": t, "version": "1"})
    assert "Rolled back to version 1: now version 3." in r.text
    assert c.get("/v1/users/u1/profile", headers=h).json()["rollback_of"] == 1
    r = c.post("/me/delete", data={"t": t, "confirm": "yes"})
    assert "type delete" in r.text and c.get("/v1/users/u1", headers=h).status_code == 200
    r = c.post("/me/delete", data={"t": t, "confirm": "delete"})
    assert r.status_code == 200 and "Your data was deleted" in r.text
    assert c.get("/v1/users/u1", headers=h).status_code == 404
    assert c.get("/v1/users/u1", headers=service.auth(service.key_b)).status_code == 200  # B's u1 stays
    page = c.get(f"/me?t={t}")
    assert page.status_code == 404 and "deleted" in page.text and "alpha" not in page.text


def test_expired_altered_and_foreign_links_get_a_clear_page(two_tenants):
    service = two_tenants
    url = link(service, expires_in=60)
    t = token_of(url)
    payload, _, signature = t.rpartition(".")
    # the first character: all six of its bits are signature (the last one's low bits are padding, and a
    # flip there can decode to the same bytes)
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    others = AccessLinks("another service's secret").mint(1, "u1", "2020-01-01T00:00:00Z", "edit", 900)[0]
    for bad in (payload + "." + flipped, payload, "", "x" * 50, others):
        page = service.client.get("/me", params={"t": bad})
        assert page.status_code == 403 and "This link is not valid" in page.text and "alpha" not in page.text
    r = service.client.post("/me/edit", data={"t": others, "profile": "forged"})
    assert r.status_code == 403
    links = service.runtime.links
    real = links.clock
    links.clock = lambda: real() + 61
    try:
        page = open_page(service, url)
        assert page.status_code == 403 and "This link has expired" in page.text and "alpha" not in page.text
    finally:
        links.clock = real
    assert open_page(service, url).status_code == 200


def test_links_are_only_for_this_tenants_existing_users(two_tenants):
    service = two_tenants
    c = service.client
    for user, key in (("nobody", None), ("u1", "psk_wrong")):
        r = c.post(f"/v1/users/{user}/access-links", json={}, headers=service.auth(key))
        assert r.status_code in (401, 404) and r.json()["error"] in ("unauthorized", "not_found")
    service.ingest("only-b", items(1), key=service.key_b)
    r = c.post("/v1/users/only-b/access-links", json={}, headers=service.auth())
    assert r.status_code == 404
    for body in ({"scope": "admin"}, {"expires_in": 10}, {"expires_in": 10**9}):
        assert c.post("/v1/users/u1/access-links", json=body, headers=service.auth()).status_code == 422
    assert re.search(r"expires_at", c.get("/v1/openapi.json").text)
