"""Engines for a database URL: a SQLite file (default) or PostgreSQL, and the transactions every part of
the store runs in (Database).

SQLite: WAL, foreign keys on, and two engines on the one file: writes begin with BEGIN IMMEDIATE (the
database's write lock is taken at the start, so read-then-write transactions never deadlock or fail
on upgrade), reads begin with a plain BEGIN and run beside the writer. PostgreSQL: one pooled engine;
writes lock the rows they change (SELECT ... FOR UPDATE).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ..errors import InputError

DEFAULT_DB = "sqlite:///profiles.db"


def normalize_url(url: str) -> str:
    """Accept the URLs people type: postgresql:// and postgres:// mean the psycopg 3 driver."""
    url = (url or "").strip()
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def shown_url(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(normalize_url(url)).render_as_string(hide_password=True)


@dataclass
class Engines:
    write: object
    read: object
    dialect: str


def make_engines(url: str) -> Engines:
    try:
        from sqlalchemy import create_engine, event
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError
    except ImportError:  # pragma: no cover - depends on the install
        raise InputError("the profile store needs SQLAlchemy: pip install 'prefscribe[serve]'") from None

    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InputError(f"bad database URL {url!r}: use sqlite:///path/to/profiles.db or "
                         "postgresql://user@host:5432/dbname") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise InputError("an in-memory SQLite database cannot be shared by the server and its worker: "
                             "give a file, e.g. sqlite:///profiles.db")

        def sqlite_engine(begin: str):
            engine = create_engine(url, pool_size=10, max_overflow=20, pool_timeout=60,
                                   connect_args={"timeout": 60, "check_same_thread": False})

            @event.listens_for(engine, "connect")
            def _connect(dbapi_conn, _record):  # pragma: no cover - trivial
                dbapi_conn.isolation_level = None  # BEGIN is issued below, not by the driver
                cursor = dbapi_conn.cursor()
                for pragma in ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=60000", "synchronous=NORMAL"):
                    cursor.execute(f"PRAGMA {pragma}")
                cursor.close()

            @event.listens_for(engine, "begin")
            def _begin(conn):  # pragma: no cover - trivial
                conn.exec_driver_sql(begin)

            return engine

        return Engines(write=sqlite_engine("BEGIN IMMEDIATE"), read=sqlite_engine("BEGIN"), dialect="sqlite")
    if backend == "postgresql":
        if parsed.get_driver_name() not in ("psycopg", "psycopg2"):
            url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        try:
            # As many pooled connections as the server has request threads (anyio's 40), so none is opened
            # and closed per request; no ping per checkout (a round trip each): after a database restart
            # the first request on a dead connection fails and the pool is refreshed, pool_recycle bounds age.
            engine = create_engine(url, pool_size=40, max_overflow=10, pool_recycle=1800, pool_timeout=60)
        except ImportError:  # pragma: no cover - depends on the install
            raise InputError("PostgreSQL needs psycopg 3: pip install 'psycopg[binary]'") from None
        return Engines(write=engine, read=engine, dialect="postgresql")
    raise InputError(f"unsupported database {backend!r} in {url!r}: use sqlite:///... or postgresql://...")


class Database:
    """One database's engines and its transactions: read and write sessions, a bare write connection for the
    hot path, schema changes. Shared by the store's parts (_keys, _users, _versions, _leases, _transfer)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engines: Engines = make_engines(url)
        self.dialect = self.engines.dialect
        # SQLite has one writer at a time. Threads of this process queue here instead of in SQLite's busy
        # handler, which polls with growing sleeps and makes the tail latency long.
        self._write_lock: AbstractContextManager = threading.Lock() if self.dialect == "sqlite" else nullcontext()

    @contextmanager
    def ddl(self) -> Iterator[Connection]:
        """A connection for schema changes. On PostgreSQL an advisory lock keeps a server and workers
        starting together from racing on the DDL."""
        with self._write_lock, self.engines.write.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(7317712)"))
            yield conn

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self._write_lock, Session(self.engines.write, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """A write transaction on a bare connection, for the hot path (ingest): Core statements without
        the ORM session's bookkeeping."""
        with self._write_lock, self.engines.write.begin() as connection:
            yield connection

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.engines.read, expire_on_commit=False) as session, session.begin():
            yield session

    def insert(self, table):
        """The dialect's INSERT (for ON CONFLICT)."""
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        return dialect_insert(table)

    def dispose(self) -> None:
        for engine in {id(self.engines.write): self.engines.write, id(self.engines.read): self.engines.read}.values():
            engine.dispose()
