"""`prefscribe keys create|list|revoke` against a real database."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from prefscribe.cli import app
from prefscribe.store import Store

pytestmark = pytest.mark.timeout(300)  # a hang guard only
runner = CliRunner()


def test_keys_create_list_revoke(db_url):
    created = runner.invoke(app, ["keys", "create", "--tenant", "acme", "--db", db_url])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[0]
    assert key.startswith("psk_") and len(key) > 40
    as_json = runner.invoke(app, ["keys", "create", "--tenant", "acme", "--label", "ci", "--db", db_url, "--json"])
    second = json.loads(as_json.stdout)
    assert second["tenant"] == "acme" and second["label"] == "ci" and second["key"] != key

    store = Store(db_url)
    try:
        tenant = store.authenticate(key)
        assert tenant is not None and tenant.name == "acme"
        assert store.authenticate(second["key"]).id == tenant.id  # one tenant, two keys
        listed = json.loads(runner.invoke(app, ["keys", "list", "--db", db_url, "--json"]).stdout)
        assert [k["prefix"] for k in listed] == [key[:12], second["prefix"]]
        assert all(k["revoked_at"] is None for k in listed)
        assert not any(key in json.dumps(k) for k in listed)  # only prefixes, never keys

        revoked = runner.invoke(app, ["keys", "revoke", key[:12], "--db", db_url])
        assert revoked.exit_code == 0, revoked.output
        assert store.authenticate(key) is None and store.authenticate(second["key"]) is not None
        again = runner.invoke(app, ["keys", "revoke", key[:12], "--db", db_url])
        assert again.exit_code == 1 and "no active key" in again.output
    finally:
        store.close()


def test_a_bad_database_url_is_a_clear_error(tmp_path):
    r = runner.invoke(app, ["keys", "create", "--tenant", "acme", "--db", "mysql://nowhere/db"])
    assert r.exit_code == 2 and "unsupported database" in r.output
    r = runner.invoke(app, ["keys", "create", "--tenant", "acme", "--db", "sqlite://"])
    assert r.exit_code == 2 and "in-memory" in r.output


def test_a_server_store_remembers_found_keys_for_auth_ttl_only(db_url):
    server = Store(db_url, auth_ttl=3600)
    other = Store(db_url)
    try:
        key, _ = other.create_key("acme")
        assert server.remembered(key) is None and server.authenticate(key).name == "acme"
        assert server.remembered(key).name == "acme" and other.remembered(key) is None  # other: auth_ttl 0
        other.revoke_key(key[:12])  # another process revokes: this one trusts its memory until auth_ttl
        assert server.authenticate(key) is not None and other.authenticate(key) is None
        server.revoke_key("psk_nothing")  # a revoke through this store forgets every remembered key
        assert server.authenticate(key) is None
        assert server.authenticate("psk_unknown") is None and server.authenticate("") is None
    finally:
        server.close()
        other.close()
