"""What an outside probe of `prefscribe serve` found (issue 20), each reproduced as it was measured and
answered as docs/service.md says, on SQLite and PostgreSQL: strict types in every body, access links bound
to the user row they were made for, user ids that are UTF-8, the failed-auth limiter on every sign-in,
authentication before the body is read, /docs served from the installed packages under a CSP, and
X-Forwarded-For trusted only when `serve --forwarded-allow-ips` says so."""

from __future__ import annotations

import re

import httpx
import pytest

from prefscribe.service.ratelimit import FailureLimiter

from .conftest import items, serve_process
from .test_access_links import link, token_of

pytestmark = pytest.mark.timeout(300)  # a hang guard only


@pytest.fixture
def with_profile(service):
    service.ingest("u1", items(3))
    service.worker.step()
    return service


# ------------------------------------------------------------------------ 1. strict types in every body
LAX_BODIES = [
    ("put", "/v1/users/u1/profile", {"profile": "Likes jazz.", "base_version": False}, "base_version"),
    ("put", "/v1/users/u1/profile", {"profile": "Likes jazz.", "base_version": "1"}, "base_version"),
    ("post", "/v1/users/u1/profile/rollback", {"version": True}, "version"),
    ("post", "/v1/users/u1/profile/rollback", {"version": "1"}, "version"),
    ("post", "/v1/users/u1/respond", {"context": "hello", "max_new_tokens": "7"}, "max_new_tokens"),
    ("post", "/v1/users/u1/respond", {"context": "hello", "max_new_tokens": True}, "max_new_tokens"),
    ("post", "/v1/users/u1/choose", {"a": "x", "b": "y", "context": 5}, "context"),
    ("post", "/v1/users/u1/access-links", {"expires_in": "900"}, "expires_in"),
    ("post", "/v1/users/u1/access-links", {"expires_in": True}, "expires_in"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), LAX_BODIES)
def test_every_body_is_as_strict_as_ingest(with_profile, method, path, body, field):
    service = with_profile
    r = service.client.request(method.upper(), path, json=body, headers=service.auth())
    assert r.status_code == 422 and r.json()["error"] == "invalid_request", r.text
    assert r.json()["message"].startswith(field)
    versions = service.client.get("/v1/users/u1/profile/versions", headers=service.auth()).json()["versions"]
    assert [v["version"] for v in versions] == [1]  # `{"version": true}` rolled back to version 1


# ------------------------------------------------------------ 2. links die with the user row they name
def test_a_link_from_before_a_deletion_does_not_open_the_new_profile(with_profile):
    service = with_profile
    token = token_of(link(service, scope="edit"))
    assert service.client.delete("/v1/users/u1", headers=service.auth()).status_code == 200
    service.ingest("u1", items(3, tag="new"))  # the same id, a new person's data
    service.worker.step()

    page = service.client.get(f"/me?t={token}")
    assert page.status_code == 404 and "There is nothing here" in page.text and "new chosen" not in page.text
    for path, data in (("/me/edit", {"profile": "forged"}), ("/me/rollback", {"version": "1"}),
                       ("/me/delete", {"confirm": "delete"})):
        r = service.client.post(path, data={"t": token, **data}, follow_redirects=False)
        assert r.status_code == 404 and "There is nothing here" in r.text, path
    state = service.client.get("/v1/users/u1", headers=service.auth()).json()
    assert (state["versions"], state["interactions"]) == (1, 3)
    fresh = token_of(link(service, scope="edit"))  # a link made for the new row works
    assert service.client.get(f"/me?t={fresh}").status_code == 200


# ------------------------------------------------------------------------ 3. user ids are UTF-8
NOT_UTF8 = ["alias%FF", "alias%FE", "alias%C0", "a%ED%A0%80", "a%C0%80"]


@pytest.mark.parametrize("raw", NOT_UTF8)
def test_a_user_id_that_is_not_utf8_is_refused(service, raw):
    r = service.client.post(f"/v1/users/{raw}/interactions", json=items(1), headers=service.auth())
    assert r.status_code == 400 and r.json()["error"] == "invalid_encoding", r.text
    assert service.client.get(f"/v1/users/{raw}", headers=service.auth()).status_code == 400
    assert service.client.get("/v1/users", headers=service.auth()).json()["total"] == 0
    # U+FFFD itself, sent as UTF-8, is a character like any other
    assert service.ingest("alias\ufffd", items(1)).status_code == 201


# ------------------------------------------------------------- 4. the sign-in cookie counts as a try
def test_wrong_keys_in_the_sign_in_cookie_are_limited(make_service):
    service = make_service(auth_failures_per_minute=3)
    service.runtime.limiter = FailureLimiter(3, window=60.0)
    codes = []
    for _ in range(6):
        service.client.cookies.set("prefscribe_key", "psk_guess", path="/ui")
        codes.append(service.client.get("/ui/users", follow_redirects=False).status_code)
    assert codes[:3] == [303] * 3 and codes[3:] == [429] * 3
    # blocked means blocked for every way in, the right key too
    service.client.cookies.set("prefscribe_key", service.key_a, path="/ui")
    r = service.client.get("/ui/users", follow_redirects=False)
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert service.client.get("/v1/users", headers=service.auth()).status_code == 429


# ------------------------------------------------------------ 5. authentication before the body
@pytest.mark.parametrize("body", [b"{", b"[" * 40 + b"]" * 40, b"\xff\xfe"])
def test_no_key_is_401_whatever_the_body(make_service, body):
    service = make_service(auth_failures_per_minute=2)
    service.runtime.limiter = FailureLimiter(2, window=60.0)
    c = service.client
    for path in ("/v1/users/u1/profile/rollback", "/v1/users/u1/interactions", "/v1/users/u1/respond"):
        r = c.post(path, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 401 and r.json()["error"] == "unauthorized", (path, r.text)
    # a wrong key with a body that would not parse is a failed authentication, counted as one
    for _ in range(2):
        assert c.post("/v1/users/u1/interactions", content=body, headers=service.auth("psk_guess")).status_code == 401
    assert c.post("/v1/users/u1/interactions", content=body, headers=service.auth()).status_code == 429


# ------------------------------------------------------------------ 6. /docs works offline, framed by nobody
def test_docs_are_served_from_the_installed_packages_under_a_csp(service):
    page = service.client.get("/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower()
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "'unsafe-inline'" not in csp.split(
        "script-src")[1].split(";")[0]
    assert page.headers["x-frame-options"] == "DENY"
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(a.startswith("/docs/") for a in assets), assets  # nothing from another host
    assert "<script>" not in page.text  # no inline script: the CSP would block it
    for asset in assets:
        r = service.client.get(asset)
        assert r.status_code == 200 and len(r.content) > 100, asset
    assert "SwaggerUIBundle" in service.client.get("/docs/swagger-ui-bundle.js").text


# ------------------------------------------------------------------- 7. X-Forwarded-For is not trusted
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("trusted", [False, True])
def test_a_rotating_forwarded_header_does_not_escape_the_limiter(db_url, tmp_path, monkeypatch, trusted):
    from prefscribe.store import Store

    monkeypatch.setenv("PREFSCRIBE_AUTH_FAILURES_PER_MINUTE", "5")
    args = ("--no-worker",) + (("--forwarded-allow-ips", "127.0.0.1") if trusted else ())
    with serve_process(db_url, tmp_path / "serve.log", *args) as base, httpx.Client(base_url=base) as http:
        store = Store(db_url)
        key, _ = store.create_key("acme")
        store.close()
        codes = [http.get("/v1/users", headers={"Authorization": "Bearer psk_guess",
                                                 "X-Forwarded-For": f"203.0.113.{n}"}).status_code
                 for n in range(8)]
        if trusted:  # behind a proxy that sets it, each address is a client of its own
            assert codes == [401] * 8
        else:  # a local client cannot claim to be someone else
            assert codes == [401] * 5 + [429] * 3
            assert http.get("/v1/users", headers={"Authorization": f"Bearer {key}"}).status_code == 429
