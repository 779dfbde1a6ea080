"""`prefscribe export` and `prefscribe import`: move a user between stores, or carry a profile to Letta,
mem0 or a person (docs/export.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..formats import FORMATS, get_format, read_document
from ..schema import read_text
from .options import console, errors_exit
from .service import DbOpt, _store

TenantOpt = Annotated[str, typer.Option(help="The tenant the user belongs to (as in `prefscribe keys create`).")]


def export(
    user: Annotated[str, typer.Argument(help="The user's id.")],
    tenant: TenantOpt,
    db: DbOpt = None,
    format: Annotated[str, typer.Option("--format", "-f", help=f"One of {', '.join(sorted(FORMATS))}.")] = "json",
    out: Annotated[Path | None, typer.Option(help="Write here instead of standard output.")] = None,
) -> None:
    """Export a user: json (every version with provenance, every interaction), markdown, letta (.af) or mem0."""
    with errors_exit():
        fmt = get_format(format)
        store = _store(db)
        try:
            text = fmt.dump(store.export_user(store.tenant(tenant).id, user))
        finally:
            store.close()
        if out is None:
            typer.echo(text, nl=False)
        else:
            out.write_text(text, encoding="utf-8")
            console.print(f"wrote {out} ({fmt.name})")


def import_(
    file: Annotated[Path, typer.Argument(help="A prefscribe, Letta (.af) or mem0 export; - reads stdin.")],
    tenant: TenantOpt,
    db: DbOpt = None,
    user: Annotated[str | None, typer.Option(help="Import as this user id (default: the file's).")] = None,
    format: Annotated[str | None, typer.Option("--format", "-f", help="json, letta or mem0 (default: "
                                               "recognized from the file).")] = None,
) -> None:
    """Import a user from a file, in one transaction: all of it, or nothing."""
    with errors_exit():
        doc = read_document(read_text(file), str(file), format)
        store = _store(db)
        try:
            state = store.import_user(store.tenant(tenant).id, doc, user)
        finally:
            store.close()
        console.print(f"imported user {state.user_id!r}: {state.versions} versions, {state.interactions} "
                      "interactions")
