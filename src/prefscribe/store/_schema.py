"""Schema versions of the store, kept by Alembic (store/migrations).

A new, empty database gets the models' tables and is stamped with the newest revision in one step (tests
check that the migrations build exactly the same schema). An existing database must be at the newest
revision: anything else is refused, naming `prefscribe db upgrade`, which runs the migrations. A database
created before migrations existed (tables, no alembic_version) has the first revision's schema and is
stamped with it before upgrading.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from ..errors import InputError, SchemaOutdatedError
from ._models import Base

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
FIRST = "0001"


def _config(connection: Connection | None = None):
    try:
        from alembic.config import Config
    except ImportError:  # pragma: no cover - depends on the install
        raise InputError("the profile store needs Alembic for its schema: pip install 'prefscribe[serve]'"
                         ) from None

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@cache
def head() -> str:
    """The newest revision this prefscribe knows."""
    config = _config()
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config).get_current_head()


def current(connection: Connection) -> str | None:
    """The database's revision: None before migrations (or when empty)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _has_tables(connection: Connection) -> bool:
    return bool(set(inspect(connection).get_table_names()) & set(Base.metadata.tables))


def prepare(connection: Connection, shown_url: str) -> None:
    """Create the schema in an empty database; refuse one at another revision than head()."""
    config = _config(connection)
    from alembic import command

    if not _has_tables(connection):
        Base.metadata.create_all(connection)
        command.stamp(config, head())
        return
    found = current(connection)
    if found != head():
        what = f"revision {found}" if found else "the schema from before migrations"
        raise SchemaOutdatedError(f"the database {shown_url} has {what}; this prefscribe needs revision "
                                  f"{head()}: run `prefscribe db upgrade --db '{shown_url}'` (back it up first)")


def upgrade(connection: Connection) -> tuple[str | None, str]:
    """Run the migrations up to head(). Returns (revision before, revision after)."""
    config = _config(connection)
    from alembic import command

    before = current(connection)
    if before is None and _has_tables(connection):
        command.stamp(config, FIRST)
        before = FIRST
    command.upgrade(config, "head")
    return before, current(connection)
