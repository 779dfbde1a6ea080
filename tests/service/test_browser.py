"""The inspector in a real browser (Playwright driving Debian's chromium) against `prefscribe serve`:
sign in, see the profile, edit it, see the new version in the API, roll back, delete."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from prefscribe.store import Store

from .conftest import items, serve_process, wait_for

pytestmark = pytest.mark.timeout(480)  # a hang guard only
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser test skipped: pip install playwright")
    if not CHROMIUM.exists():
        pytest.skip("browser test skipped: no /usr/bin/chromium (apt-get install chromium; .ci/run does)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def server(db_url, tmp_path):
    """`prefscribe serve` in a subprocess, with the scripted model and its in-process worker."""
    with serve_process(db_url, tmp_path / "serve.log", "--update-every", "3", "--poll-seconds", "0.1") as base:
        yield base


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_edit_on_the_page_is_a_new_version_in_the_api(db_url, server, browser):
    store = Store(db_url)
    key, _ = store.create_key("acme")
    store.close()
    api = httpx.Client(base_url=server, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert api.post("/v1/users/u1/interactions", json=items(3)).status_code == 201
    wait_for(lambda: api.get("/v1/users/u1/profile").status_code == 200, 120, "the worker never wrote a profile")
    v1 = api.get("/v1/users/u1/profile").json()

    page = browser.new_page()
    page.goto(f"{server}/ui/users/u1")
    assert "/ui/login" in page.url  # signed out: the key is asked for first
    page.fill("#key", key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/ui/users/u1")
    assert page.inner_text("#current-text") == v1["profile"]
    assert page.inner_text("#current-version") == "1"

    new_text = "Prefers jazz records and short, direct answers."
    page.fill("#profile", new_text)
    page.fill("#editor", "ann")
    page.click("#save")
    page.wait_for_selector("text=Saved as version 2.")
    assert page.inner_text("#current-text") == new_text

    head = api.get("/v1/users/u1/profile").json()
    assert (head["version"], head["parent"], head["author"], head["kind"], head["editor"]) == (2, 1, "person", "edit", "ann")
    assert head["profile"] == new_text and head["covers"] == 3
    # the history shows who changed what, as a word diff against the parent
    row = page.locator("#history tr[data-version='2']")
    assert "person" in row.inner_text() and "ann" in row.inner_text()
    assert "jazz" in " ".join(row.locator("ins").all_inner_texts()) and row.locator("del").count() >= 1

    page.locator("#history tr[data-version='1'] button").click()
    page.wait_for_selector("text=Rolled back to version 1: now version 3.")
    head = api.get("/v1/users/u1/profile").json()
    assert (head["version"], head["kind"], head["rollback_of"], head["profile"]) == (3, "rollback", 1, v1["profile"])

    page.fill("#confirm", "u1")
    page.click("#delete")
    page.wait_for_selector("text=Deleted the user and all their data.")
    assert page.url.startswith(f"{server}/ui/users")
    assert api.get("/v1/users/u1").status_code == 404
    api.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_end_user_opens_their_link_and_changes_their_profile(db_url, server, browser):
    store = Store(db_url)
    key, _ = store.create_key("acme")
    store.close()
    api = httpx.Client(base_url=server, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    for user in ("u1", "u2"):
        assert api.post(f"/v1/users/{user}/interactions", json=items(3, tag=user)).status_code == 201
    wait_for(lambda: all(api.get(f"/v1/users/{u}/profile").status_code == 200 for u in ("u1", "u2")), 120,
             "the worker never wrote the profiles")
    v1 = api.get("/v1/users/u1/profile").json()
    read_url = api.post("/v1/users/u1/access-links", json={"scope": "read"}).json()["url"]
    edit_url = api.post("/v1/users/u1/access-links", json={"scope": "edit"}).json()["url"]
    assert read_url.startswith(f"{server}/me?t=")

    page = browser.new_page()
    page.goto(read_url)  # no sign-in: the link is the access
    assert page.inner_text("#current-text") == v1["profile"] and "u2" not in page.content()
    assert page.locator("#edit-form").count() == 0 and page.locator("#delete").count() == 0

    page.goto(edit_url)
    new_text = "I prefer slow jazz and short answers."
    page.fill("#profile", new_text)
    page.click("#save")
    page.wait_for_selector("text=Saved as version 2.")
    assert page.inner_text("#current-text") == new_text
    head = api.get("/v1/users/u1/profile").json()
    assert (head["version"], head["author"], head["editor"], head["profile"]) == (2, "person", "the user", new_text)
    row = page.locator("#history tr[data-version='2']")
    assert "jazz" in " ".join(row.locator("ins").all_inner_texts())

    page.locator("#history tr[data-version='1'] button").click()
    page.wait_for_selector("text=Rolled back to version 1: now version 3.")
    assert api.get("/v1/users/u1/profile").json()["profile"] == v1["profile"]

    page.goto(edit_url[:-3] + ("abc" if not edit_url.endswith("abc") else "xyz"))  # an altered token
    assert page.inner_text("#refused-title") == "This link is not valid" and v1["profile"] not in page.content()

    page.goto(edit_url)
    page.fill("#confirm", "delete")
    page.click("#delete")
    page.wait_for_selector("text=Your data was deleted")
    assert api.get("/v1/users/u1").status_code == 404 and api.get("/v1/users/u2").status_code == 200
    page.goto(read_url)
    assert page.inner_text("#refused-title") == "There is nothing here"
    api.close()
