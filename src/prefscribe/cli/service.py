"""`prefscribe serve`, `prefscribe worker`, `prefscribe keys ...`: run the profile service and manage its keys."""

from __future__ import annotations

import os
import signal
import threading
from typing import Annotated

import typer

from .options import JsonOpt, console, emit_json, errors_exit, print_error

DbOpt = Annotated[str | None, typer.Option("--db", help="Database URL: sqlite:///profiles.db (default) or "
                                           "postgresql://user@host:5432/db. Env: PREFSCRIBE_DB.")]
ServiceModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="Model spec for updates, choose and "
                                                     "respond (default: embedded). Env: PREFSCRIBE_MODEL.")]
UpdateEveryOpt = Annotated[int | None, typer.Option(help="Update a profile once this many new interactions are "
                                                    "pending (default 10). Env: PREFSCRIBE_UPDATE_EVERY.")]
LeaseOpt = Annotated[float | None, typer.Option(help="Seconds before a dead worker's claim on a user lapses "
                                                "(default 60).")]
PollOpt = Annotated[float | None, typer.Option(help="Seconds between an idle worker's looks for work (default 1).")]

keys_app = typer.Typer(no_args_is_help=True, help="API keys of the profile service (one tenant per key set).")
db_app = typer.Typer(no_args_is_help=True, help="The profile store's database schema.")


def _settings(**overrides):
    from ..service.settings import Settings  # the serve extra; missing, `prefscribe` (cli.main) says so

    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _store(db: str | None):
    from ..store import Store

    return Store(_settings(db=db).db)


@db_app.command("upgrade")
def db_upgrade(db: DbOpt = None) -> None:
    """Migrate the database schema to this prefscribe's revision (creates the tables in an empty database).
    Back the database up first; `serve` and `worker` refuse an older schema until this has run."""
    with errors_exit():
        from ..store import Store

        store = Store(_settings(db=db).db, create=False)
        try:
            before, after = store.upgrade()
        finally:
            store.close()
        if before == after:
            console.print(f"{store.shown_url}: already at revision {after}")
        else:
            console.print(f"{store.shown_url}: upgraded from {before or 'an empty database'} to revision {after}")


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="The tenant the key belongs to (created if new).")],
    label: Annotated[str | None, typer.Option(help="A note to recognize the key by.")] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key and print it. Only its hash is stored: keep the key, it cannot be shown again."""
    with errors_exit():
        key, info = _store(db).create_key(tenant, label)
        if as_json:
            emit_json({"key": key, "prefix": info.prefix, "tenant": info.tenant, "label": info.label})
        else:
            typer.echo(key)
            console.print(f"key {info.prefix}… for tenant {info.tenant!r}: send it as 'Authorization: Bearer <key>'")


@keys_app.command("list")
def keys_list(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List keys by prefix (the keys themselves are not stored)."""
    with errors_exit():
        keys = _store(db).list_keys(tenant)
        if as_json:
            emit_json([k.__dict__ for k in keys])
            return
        from rich.table import Table

        table = Table("prefix", "tenant", "label", "created", "revoked")
        for k in keys:
            table.add_row(k.prefix, k.tenant, k.label or "", k.created_at or "", k.revoked_at or "")
        console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    prefix: Annotated[str, typer.Argument(help="The key's prefix, as `keys list` shows it (or the whole key).")],
    db: DbOpt = None,
) -> None:
    """Revoke a key: requests with it get 401 from then on."""
    with errors_exit():
        revoked = _store(db).revoke_key(prefix[:12])
        if not revoked:
            print_error("error", f"no active key with prefix {prefix[:12]!r}")
            raise typer.Exit(1)
        console.print(f"revoked {prefix[:12]}")


def serve(
    db: DbOpt = None,
    model: ServiceModelOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    update_every: UpdateEveryOpt = None,
    worker: Annotated[bool | None, typer.Option("--worker/--no-worker", help="Run the update worker in this "
                                                "process (default) or not (run `prefscribe worker` instead).")] = None,
    lease_seconds: LeaseOpt = None,
    poll_seconds: PollOpt = None,
    chat_model: Annotated[str | None, typer.Option("--chat-model", help="Model spec behind the OpenAI-compatible "
                                                   "/v1/chat/completions (default: --model). Env: "
                                                   "PREFSCRIBE_CHAT_MODEL.")] = None,
    chat_anonymous: Annotated[bool | None, typer.Option("--chat-anonymous/--chat-needs-user", help="A chat "
                                                        "request naming no user passes through without a "
                                                        "profile, or is refused with 400 (default).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    workers: Annotated[int, typer.Option(min=1, max=64, help="Server processes (PostgreSQL: use about one per "
                                         "core; each runs its own update worker unless --no-worker).")] = 1,
    forwarded_allow_ips: Annotated[str | None, typer.Option(
        help="Behind a reverse proxy: the proxy's addresses (comma-separated, or '*'), whose X-Forwarded-For "
             "and X-Forwarded-Proto are trusted for the client's address (the failed-auth limit) and scheme. "
             "Default: trusted from nobody.")] = None,
) -> None:
    """Run the profile service: HTTP API under /v1, docs at /docs, inspector pages at /ui, and an
    OpenAI-compatible personalizing proxy at /v1/chat/completions (docs/use-from-your-app.md)."""
    with errors_exit():
        overrides = {"db": db, "model": model, "update_every": update_every, "worker": worker,
                     "lease_seconds": lease_seconds, "poll_seconds": poll_seconds, "chat_model": chat_model,
                     "chat_anonymous": chat_anonymous}
        settings = _settings(**overrides)
        import uvicorn

        from ..service import create_app

        proxy = proxy_options(forwarded_allow_ips)
        shown = f"db {settings.db}, model {settings.model}, worker {'on' if settings.worker else 'off'}"
        if workers == 1:
            app = create_app(settings)
            console.print(f"prefscribe service on http://{host}:{port}  (API /v1, docs /docs, inspector /ui; "
                          f"{shown})")
            uvicorn.run(app, host=host, port=port, log_level=log_level, **proxy)
            return
        # Each worker process builds the app from the environment: pass the options on through it.
        create_app(settings).state.runtime.store.close()  # fail here, once, on a bad database or schema
        for name, value in overrides.items():
            if value is not None:
                os.environ[f"PREFSCRIBE_{name.upper()}"] = str(value)
        console.print(f"prefscribe service on http://{host}:{port} with {workers} processes ({shown})")
        uvicorn.run("prefscribe.service.main:create_app", factory=True, host=host, port=port,
                    log_level=log_level, workers=workers, **proxy)


def proxy_options(forwarded_allow_ips: str | None) -> dict:
    """uvicorn's proxy options. uvicorn by default believes X-Forwarded-For from 127.0.0.1, so any local
    client could name a new address per request and never meet the failed-auth limit: trust it only from
    the proxies named."""
    if not forwarded_allow_ips:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": forwarded_allow_ips}


def worker(
    db: DbOpt = None,
    model: ServiceModelOpt = None,
    update_every: UpdateEveryOpt = None,
    lease_seconds: LeaseOpt = None,
    poll_seconds: PollOpt = None,
    once: Annotated[bool, typer.Option("--once", help="Update every due user once, then exit.")] = False,
) -> None:
    """Run the update worker alone (beside `prefscribe serve --no-worker`, or several for throughput)."""
    with errors_exit():
        settings = _settings(db=db, model=model, update_every=update_every, lease_seconds=lease_seconds,
                             poll_seconds=poll_seconds)
        from ..store import Store
        from ..updates import ModelRuntime, Worker

        store = Store(settings.db)
        runner = Worker(store, settings, ModelRuntime(settings.model))
        if once:
            total = 0
            while (claimed := runner.step()) > 0:
                total += claimed
            console.print(f"updated {runner.stats['committed']} profiles ({runner.stats['failed']} failed)")
            return
        stop = threading.Event()

        def _stop(signum, frame):
            stop.set()
            runner.wake.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        console.print(f"prefscribe worker {runner.owner} (db {settings.db}, model {settings.model}, "
                      f"update every {settings.update_every})")
        runner.run(stop)
        store.close()
