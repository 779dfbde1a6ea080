"""The inspector's forms through the app (the browser test drives the same pages in chromium)."""

from __future__ import annotations

import re

import pytest

from prefscribe.service.routers.ui import word_diff

from .conftest import items

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
    r = c.post("/ui/login", data={"key": service.key_a, "next": "//evil.example/"}, follow_redirects=False)
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
    assert "Not saved" in stale.text and "head is now version 2" in stale.text

    refused = c.post("/ui/users/u1/delete", data={"csrf": csrf, "confirm": "u2"})
    assert "Not deleted" in refused.text and c.get("/v1/users/u1", headers=service.auth()).status_code == 200
    r = c.post("/ui/users/u1/delete", data={"csrf": csrf, "confirm": "u1"})
    assert r.status_code == 200 and "Deleted user u1" in r.text
    assert c.get("/v1/users/u1", headers=service.auth()).status_code == 404

    c.post("/ui/logout")
    assert c.get("/ui/users", follow_redirects=False).status_code == 303
