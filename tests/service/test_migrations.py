"""Schema migrations (Alembic), on SQLite and PostgreSQL: they build exactly the models' schema; a database
at the first revision with rows in every table is upgraded to head with every row intact; a database from
before migrations, or at a revision this prefscribe does not know, is refused by `serve` and `worker` with
the command that fixes it, which then works."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from sqlalchemy import MetaData, create_engine, select, text
from typer.testing import CliRunner

alembic = pytest.importorskip("alembic")

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from prefscribe.cli import app as cli
from prefscribe.errors import SchemaOutdatedError
from prefscribe.store import Store, normalize_url
from prefscribe.store._db import shown_url
from prefscribe.store._models import Base
from prefscribe.store._schema import FIRST, _config, head

pytestmark = pytest.mark.timeout(300)  # a hang guard only

KEY = "psk_" + "k" * 43
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ROWS = {  # one or more rows in every table, written as the first revision's columns
    "tenants": [{"id": 1, "name": "acme", "created_at": WHEN}],
    "api_keys": [{"id": 1, "tenant_id": 1, "key_hash": hashlib.sha256(KEY.encode()).hexdigest(),
                  "prefix": KEY[:12], "label": "ci", "created_at": WHEN, "revoked_at": None}],
    "users": [{"id": 1, "tenant_id": 1, "external_id": "u1", "created_at": WHEN, "interaction_count": 3,
               "covered_through": 2, "head_version": 2, "version_count": 2, "refresh_requested": False,
               "lease_owner": None, "lease_until": None, "failures": 1, "retry_at": 1.5e9,
               "last_error": "timeout", "updated_at": WHEN}],
    "ingest_batches": [{"id": 1, "user_id": 1, "idempotency_key": "k1", "body_hash": "0" * 64, "first_seq": 1,
                        "last_seq": 2, "created_at": WHEN},
                       {"id": 2, "user_id": 1, "idempotency_key": None, "body_hash": "1" * 64, "first_seq": 3,
                        "last_seq": 3, "created_at": WHEN}],
    "interactions": [
        {"id": n, "user_id": 1, "seq": n, "batch_id": 1 if n < 3 else 2, "context": f"q{n}", "chosen": f"c{n} é",
         "rejected": None if n == 3 else f"r{n}", "item_id": f"i{n}", "timestamp": [1718000000.5, "2024-06-01",
                                                                                     None][n - 1],
         "domain": "movies", "meta": {"n": n, "tags": ["a", {"b": None}]}, "created_at": WHEN}
        for n in (1, 2, 3)],
    "profile_versions": [
        {"id": 1, "user_id": 1, "number": 1, "parent": None, "author": "model", "kind": "update", "editor": "m",
         "text": "Likes c1.", "reasoning": "because", "model": "m", "prompt_version": "v1", "covers": 2,
         "first_seq": 1, "last_seq": 2, "covered_through": 2, "rollback_of": None, "prompt_tokens": 10,
         "completion_tokens": 5, "created_at": WHEN},
        {"id": 2, "user_id": 1, "number": 2, "parent": 1, "author": "person", "kind": "edit", "editor": "ann",
         "text": "Likes c1 and c2.", "reasoning": None, "model": None, "prompt_version": None, "covers": 2,
         "first_seq": None, "last_seq": None, "covered_through": 2, "rollback_of": None, "prompt_tokens": 0,
         "completion_tokens": 0, "created_at": WHEN}],
}


def _engine(url: str):
    return create_engine(normalize_url(url))


def _dump(url: str) -> dict[str, list[tuple]]:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            meta = MetaData()
            meta.reflect(conn, only=list(ROWS))
            return {name: [tuple(r) for r in conn.execute(select(meta.tables[name]).order_by(text("id")))]
                    for name in ROWS}
    finally:
        engine.dispose()


def _at_revision(url: str, revision: str | None) -> None:
    """Make the schema of `revision` (None: the models' tables without any revision, as before
    migrations) and write ROWS into it."""
    engine = _engine(url)
    try:
        with engine.begin() as conn:
            if revision is None:
                Base.metadata.create_all(conn)
            else:
                command.upgrade(_config(conn), revision)
            meta = MetaData()
            meta.reflect(conn, only=list(ROWS))
            for name, rows in ROWS.items():
                conn.execute(meta.tables[name].insert(), rows)
            if conn.dialect.name == "postgresql":  # the rows came with ids: move the sequences past them
                for name in ROWS:
                    conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                      f"(SELECT max(id) FROM {name}))"))
    finally:
        engine.dispose()


def _check_through_the_store(url: str) -> None:
    store = Store(url)
    try:
        tenant = store.authenticate(KEY)
        assert tenant is not None and tenant.name == "acme"
        state, version = store.head(tenant.id, "u1")
        assert (state.interactions, state.pending, state.failures, state.last_error) == (3, 1, 1, "timeout")
        assert (version.version, version.parent, version.profile, version.editor) == (2, 1, "Likes c1 and c2.", "ann")
        rows = store.interactions(tenant.id, "u1")
        assert [r.seq for r in rows] == [3, 2, 1]
        assert rows[2].interaction.meta == {"n": 1, "tags": ["a", {"b": None}]}
        assert [r.interaction.timestamp for r in rows] == [None, "2024-06-01", 1718000000.5]
        # and the upgraded database takes new data
        result = store.ingest(tenant.id, "u1", [rows[0].interaction], idempotency_key="after")
        assert (result.first_seq, result.interactions) == (4, 4)
    finally:
        store.close()


def test_the_migrations_build_exactly_the_models_schema(db_url):
    engine = _engine(db_url)
    try:
        with engine.begin() as conn:
            command.upgrade(_config(conn), "head")
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diffs == []


def test_upgrade_from_the_first_revision_keeps_every_row(db_url):
    _at_revision(db_url, FIRST)
    before = _dump(db_url)
    assert all(before[name] for name in ROWS)
    result = CliRunner().invoke(cli, ["db", "upgrade", "--db", db_url])
    assert result.exit_code == 0, result.output
    assert f"revision {head()}" in result.output
    assert _dump(db_url) == before
    _check_through_the_store(db_url)


def test_a_database_from_before_migrations_is_refused_until_upgraded(db_url):
    _at_revision(db_url, None)
    before = _dump(db_url)
    with pytest.raises(SchemaOutdatedError, match="prefscribe db upgrade"):
        Store(db_url)
    runner = CliRunner()
    for command_line in (["serve", "--model", "scripted:ok"], ["worker", "--once", "--model", "scripted:ok"]):
        result = runner.invoke(cli, [*command_line, "--db", db_url])
        assert result.exit_code == 1 and "prefscribe db upgrade --db" in result.output, result.output
        assert "from before migrations" in result.output
    result = runner.invoke(cli, ["db", "upgrade", "--db", db_url])
    assert result.exit_code == 0 and f"revision {head()}" in result.output, result.output
    assert _dump(db_url) == before
    _check_through_the_store(db_url)


def test_an_unknown_revision_is_refused(db_url):
    Store(db_url).close()
    engine = _engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    engine.dispose()
    with pytest.raises(SchemaOutdatedError, match="has revision ffff"):
        Store(db_url)


def test_messages_do_not_show_a_password():
    assert shown_url("postgresql://ann:s3cret@db.internal/profiles") == \
        "postgresql+psycopg://ann:***@db.internal/profiles"
