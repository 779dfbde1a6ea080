"""The inspector's forms through the app (the browser test drives the same pages in chromium)."""

from __future__ import annotations

import re

import pytest

from prefscribe.service.routers.ui import word_diff

from .conftest import items, ui_login

pytestmark = pytest.mark.timeout(300)  # a hang guard only


@pytest.mark.parametrize("old,new,expected", [
    ("", "New text.", [("insert", "New text.")]),
    ("Same.", "Same.", [("equal", "Same.")]),
    ("Likes Arrival (2016) and jazz.", "Likes thoughtful science fiction and jazz.",
     [("equal", "Likes "), ("delete", "Arrival (2016)"), ("insert", "thoughtful science fiction"),
      ("equal", " and jazz.")]),
    ("Total 3.", "Total 4.", [("equal", "Total "), ("delete", "3."), ("insert", "4.")]),
    ("a b c", "a c", [("equal", "a "), ("delete", "b "), ("equal", "c")]),
])
def test_word_diff(old, new, expected):
    assert word_diff(old, new) == expected


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_forms_sign_in_edit_refuse_forgeries_and_confirm_deletes(service):
    c = service.client
    service.ingest("u1", items(3))
    service.worker.step()
    r = ui_login(c, service.key_a, "//evil.example/")
    assert r.status_code == 303 and r.headers["location"] == "/ui/users"  # no open redirect
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/ui" in cookie

    page = c.get("/ui/users/u1")
    assert page.status_code == 200 and "Likes item chosen 0" in page.text
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)

    forged = c.post("/ui/users/u1/edit", data={"profile": "forged", "csrf": "0" * 32}, follow_redirects=False)
    assert forged.status_code == 403
    r = c.post("/ui/users/u1/edit", data={"profile": "By hand <b>bold</b>.", "editor": "ann", "csrf": csrf,
                                          "base_version": "1"})
    assert r.status_code == 200 and "Saved as version 2." in r.text
    assert "By hand &lt;b&gt;bold&lt;/b&gt;." in r.text and "<b>bold</b>" not in r.text  # escaped
    head = c.get("/v1/users/u1/profile", headers=service.auth()).json()
    assert (head["version"], head["author"], head["editor"], head["profile"]) == (2, "person", "ann",
                                                                                  "By hand <b>bold</b>.")
    stale = c.post("/ui/users/u1/edit", data={"profile": "late", "csrf": csrf, "base_version": "1"})
    assert "Not saved: the profile changed since this page was loaded" in stale.text

    refused = c.post("/ui/users/u1/delete", data={"csrf": csrf, "confirm": "u2"})
    assert "Not deleted" in refused.text and c.get("/v1/users/u1", headers=service.auth()).status_code == 200
    r = c.post("/ui/users/u1/delete", data={"csrf": csrf, "confirm": "u1"})
    assert r.status_code == 200 and "Deleted the user and all their data." in r.text
    assert c.get("/v1/users/u1", headers=service.auth()).status_code == 404
    # a user that is not there (any more, or of another tenant) is not "deleted"
    r = c.post("/ui/users/u1/delete", data={"csrf": csrf, "confirm": "u1"})
    assert "No such user: nothing changed." in r.text and "Deleted" not in r.text
    service.ingest("b1", items(1), key=service.key_b)
    r = c.post("/ui/users/b1/delete", data={"csrf": csrf, "confirm": "b1"})
    assert "No such user" in r.text and c.get("/v1/users/b1", headers=service.auth(service.key_b)).status_code == 200

    assert c.post("/ui/logout", data={"csrf": "0" * 32}, follow_redirects=False).status_code == 403
    c.post("/ui/logout", data={"csrf": csrf})
    assert c.get("/ui/users", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sign_in_from_another_site_is_refused(service):
    c = service.client
    forged = c.post("/ui/login", data={"key": service.key_a}, follow_redirects=False)
    assert forged.status_code == 403 and "prefscribe_key" not in forged.headers.get("set-cookie", "")
    token = re.search(r'name="login_token" value="([^"]+)"', c.get("/ui/login").text).group(1)
    r = c.post("/ui/login", data={"key": service.key_a, "login_token": token},
               headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert r.status_code == 403 and "prefscribe_key" not in r.headers.get("set-cookie", "")
    c.cookies.clear()
    r = c.post("/ui/login", data={"key": service.key_a, "login_token": token}, follow_redirects=False)
    assert r.status_code == 403  # the token alone, without its cookie, is not enough
    assert ui_login(c, service.key_a).status_code == 303


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_flash_messages_are_codes_not_text(service):
    c = service.client
    service.ingest("u1", items(3))
    service.worker.step()
    ui_login(c, service.key_a)
    page = c.get("/ui/users/u1?m=saved&v=7")
    assert "Saved as version 7." in page.text
    for query in ("msg=Your+account+is+locked", "m=Your+account+is+locked", "m=saved&v=call+us",
                  "m=saved", "m=rolled_back&v=1&n=<b>2</b>"):
        page = c.get(f"/ui/users/u1?{query}")
        assert page.status_code == 200 and 'class="flash' not in page.text, query
        assert "locked" not in page.text and "call us" not in page.text and "<b>2</b>" not in page.text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_pages_send_security_headers(service):
    c = service.client
    service.ingest("u1", items(3))
    ui_login(c, service.key_a)
    for url in ("/ui/login", "/ui/users", "/ui/users/u1"):
        h = c.get(url).headers
        assert "frame-ancestors 'none'" in h["content-security-policy"] and h["x-frame-options"] == "DENY"
        assert h["x-content-type-options"] == "nosniff" and h["cache-control"] == "no-store"
    assert c.get("/v1/health").headers["x-content-type-options"] == "nosniff"


def _listed(page: str) -> list[str]:
    return re.findall(r'<td><a href="/ui/users/[^"]+">([^<]+)</a></td>', page)


def _link(page: str, label: str) -> str | None:
    found = re.search(r'<a href="([^"]+)">' + label, page)
    return found.group(1).replace("&amp;", "&") if found else None


def test_the_users_pages_list_each_user_once_while_users_come_and_go(service, monkeypatch):
    """Next and previous start after (before) the page's last (first) user: a person who deletes a user of the
    page, or sees one created, and turns the page misses none and sees none twice."""
    monkeypatch.setattr("prefscribe.service.routers.ui.USERS_PAGE", 3)
    names = [f"u{i}" for i in range(8)]
    for name in names:
        assert service.ingest(name, items(1)).status_code == 201
    c = service.client
    ui_login(c, service.key_a)
    first = c.get("/ui/users").text
    assert _listed(first) == ["u0", "u1", "u2"] and _link(first, "← previous") is None
    assert service.client.delete("/v1/users/u1", headers=service.auth()).status_code == 200
    second = c.get(_link(first, "next →")).text
    assert _listed(second) == ["u3", "u4", "u5"]  # by offset: u4, u5, u6 (u3 never listed)
    assert service.ingest("u35", items(1)).status_code == 201
    third = c.get(_link(second, "next →")).text
    assert _listed(third) == ["u6", "u7"] and _link(third, "next →") is None  # by offset: u5 again
    back = c.get(_link(third, "← previous")).text
    assert _listed(back) == ["u35", "u4", "u5"]
    assert _listed(c.get(_link(back, "← previous")).text) == ["u0", "u2", "u3"]
    assert _listed(c.get("/ui/users?offset=3").text) == ["u35", "u4", "u5"]  # an old link still answers
    assert _listed(c.get("/ui/users?after=u9").text) == ["u0", "u2", "u3"]  # past the end: the first page
