"""`prefscribe mcp`: the profile store as an MCP server for agents (stdio, or streamable HTTP with an API key)."""

from __future__ import annotations

from typing import Annotated

import typer

from .options import console, errors_exit
from .service import DbOpt, ServiceModelOpt, UpdateEveryOpt


def mcp(
    tenant: Annotated[str, typer.Option(help="The tenant whose users the tools see (created if new).")],
    db: DbOpt = None,
    model: ServiceModelOpt = None,
    http: Annotated[bool, typer.Option("--http", help="Serve streamable HTTP at /mcp (API keys of --tenant) "
                                       "instead of stdio.")] = False,
    host: Annotated[str, typer.Option(help="Address to listen on (--http).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (--http).")] = 8765,
    update_every: UpdateEveryOpt = None,
    worker: Annotated[bool, typer.Option("--worker/--no-worker", help="Update profiles in this process (default), "
                                         "or leave it to `prefscribe serve`/`worker` on the same database.")] = True,
) -> None:
    """Run an MCP server: tools get_profile, record_interaction, choose, respond, edit_profile and the resource
    profile://{user_id}. Stdio by default (what a desktop agent spawns); --http for a network service."""
    with errors_exit():
        # A missing extra is named by cli.main, in one line (the [mcp] extra includes the store's [serve]).
        from ..mcp import build_server, http_app
        from ..store import Store
        from ..updates import ModelRuntime, Worker
        from .service import _settings

        settings = _settings(db=db, model=model, update_every=update_every)
        store = Store(settings.db)
        models = ModelRuntime(settings.model)
        runner = Worker(store, settings, models) if worker else None  # Settings is an UpdateConfig
        server = build_server(store, store.tenant(tenant), models, runner, max_field_chars=settings.max_field_chars)
        if runner is not None:
            runner.start()
        try:
            if http:
                import uvicorn

                console.print(f"prefscribe MCP server on http://{host}:{port}/mcp (tenant {tenant!r})")
                uvicorn.run(http_app(server, store, store.tenant(tenant), host), host=host, port=port,
                            log_level="warning")
            else:
                server.run("stdio")
        finally:
            if runner is not None:
                runner.stop(timeout=30)
            store.close()
