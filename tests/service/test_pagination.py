"""GET /v1/users page by page: `next_cursor` walks every user once whatever is created or deleted between pages;
`offset` still answers as before (older clients); a cursor is refused only outside its documented form."""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest

from .conftest import items


def _users(service, names) -> None:
    for name in names:
        assert service.ingest(name, items(1)).status_code == 201


def _walk(service, limit: int, between=None) -> list[str]:
    seen, params = [], {"limit": limit}
    while True:
        page = service.client.get("/v1/users", params=params, headers=service.auth())
        assert page.status_code == 200, page.text
        body = page.json()
        seen += [u["user_id"] for u in body["users"]]
        assert len(body["users"]) <= limit
        if body["next_cursor"] is None:
            return seen
        if between:
            between(len(seen))
        params = {"limit": limit, "cursor": body["next_cursor"]}


def test_the_cursor_walks_every_user_once_while_users_come_and_go(service):
    names = [f"u{i:02d}" for i in range(11)]
    _users(service, names)
    assert _walk(service, 4) == names
    assert _walk(service, 11) == names  # exactly one page: no empty page after it

    def churn(seen: int) -> None:
        if seen == 4:  # after the first page: one listed user goes, one sorting before everyone comes
            assert service.client.delete("/v1/users/u00", headers=service.auth()).status_code == 200
            _users(service, ["a-first"])

    assert _walk(service, 4, churn) == names


def test_offset_pages_answer_as_before_and_carry_a_cursor(service):
    names = [f"u{i}" for i in range(5)]
    _users(service, names)
    h = service.auth()
    page = service.client.get("/v1/users?limit=2&offset=2", headers=h).json()
    assert page["total"] == 5 and [u["user_id"] for u in page["users"]] == ["u2", "u3"]
    rest = service.client.get("/v1/users", params={"limit": 10, "cursor": page["next_cursor"]}, headers=h).json()
    assert [u["user_id"] for u in rest["users"]] == ["u4"] and rest["next_cursor"] is None and rest["total"] == 5
    assert service.client.get("/v1/users?offset=5", headers=h).json() == {"total": 5, "users": [], "next_cursor": None}


def test_a_cursor_holds_any_user_id_and_follows_the_databases_order(service):
    # PostgreSQL sorts by its collation (punctuation and case may weigh little): the cursor compares the same way.
    names = ["plain", "ünïcode ✓", "x" * 200, "quote\"and'", "tab\tin", "Plain", "p-lain", "p_lain"]
    for name in names:
        assert service.client.post(f"/v1/users/{quote(name, safe='')}/interactions", json=items(1),
                                   headers=service.auth()).status_code == 201
    whole = [u["user_id"] for u in service.client.get("/v1/users", headers=service.auth()).json()["users"]]
    assert sorted(whole) == sorted(names)
    assert _walk(service, 1) == _walk(service, 2) == whole


@pytest.mark.parametrize("cursor", ["", "u1.", "u1.!!!!", "v9.dTE", "dTE", "u1.dTE=", "u1." + "A" * 1198])
def test_a_cursor_outside_the_documented_form_is_refused(service, cursor):
    _users(service, ["u1"])
    r = service.client.get("/v1/users", params={"cursor": cursor}, headers=service.auth())
    assert r.status_code == 422 and r.json()["error"] == "invalid_request", (cursor, r.text)


def _cursor(raw: bytes) -> str:
    return "u1." + base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(("cursor", "after"), [
    (_cursor(b"u1"), ["u2", "u3"]), (_cursor(b"u"), ["u1", "u2", "u3"]), (_cursor(b"u2\xff"), ["u3"]),
    (_cursor(b"u2\x00"), ["u3"]), (_cursor(b"x" * 500), []), (_cursor(b"u1") + "A", ["u2", "u3"])])
def test_any_cursor_of_the_documented_form_is_a_place_among_the_users(service, cursor, after):
    # The schema lets through every token of this alphabet (the fuzzer holds the service to accepting them):
    # one the service did not give starts the page at a place in the order of ids, within the tenant's users.
    _users(service, ["u1", "u2", "u3"])
    r = service.client.get("/v1/users", params={"cursor": cursor}, headers=service.auth())
    assert r.status_code == 200, r.text
    assert [u["user_id"] for u in r.json()["users"]] == after


def test_an_offset_with_a_cursor_skips_after_it(service):
    _users(service, ["u1", "u2", "u3", "u4"])
    cursor = service.client.get("/v1/users?limit=1", headers=service.auth()).json()["next_cursor"]
    r = service.client.get("/v1/users", params={"cursor": cursor, "offset": 1}, headers=service.auth())
    assert [u["user_id"] for u in r.json()["users"]] == ["u3", "u4"]
