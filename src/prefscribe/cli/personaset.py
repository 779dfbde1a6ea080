"""`prefscribe persona-set`: build P-Soups-format evaluation sets across many qualities with a model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..cache import ResultCache
from ..errors import InputError
from ..llm import load_backend
from ..personaset import PersonaSetConfig, build_persona_set, load_dimensions, load_questions, select_dimensions
from .options import JsonOpt, ModelOpt, NoCacheOpt, console, emit_json, errors_exit, progress_bars


def persona_set(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder: one P-Soups JSON array per dimension "
                                             "(<dimension>.json) and manifest.json.")] = None,
    model: ModelOpt = "embedded",
    dimensions: Annotated[str | None, typer.Option(help="Comma list of dimensions (default: all; "
                                                   "--list shows them).")] = None,
    questions: Annotated[int | None, typer.Option(help="Questions to use, a seeded sample (default: all).")] = None,
    prompts_from: Annotated[Path | None, typer.Option(help="Questions from a file instead of the shipped ones: "
                                                      "one per line (.txt), a JSON array of strings, or of "
                                                      "objects with `query` (a DSP file or folder) or `prompt`.")
                            ] = None,
    users_per_pole: Annotated[int, typer.Option(min=1, help="Users of each pole per dimension.")] = 60,
    history: Annotated[int, typer.Option(min=1, help="History pairs per user (P-Soups: 4), plus a target.")] = 4,
    seed: Annotated[int, typer.Option(help="Seed of the question sample, the users and the replies.")] = 0,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Token limit of each reply.")] = 300,
    list_: Annotated[bool, typer.Option("--list", help="Print the dimensions and their poles, and stop.")] = False,
    as_json: JsonOpt = False,
    no_cache: NoCacheOpt = False,
) -> None:
    """Write replies to each question under each pole's persona instruction and pair them into users (P-Soups
    layout, read by `prefscribe eval --benchmark psoups`). Replies are cached: a stopped build resumes."""
    with errors_exit():
        version, dims = load_dimensions()
        if list_:
            table = Table("dimension", "pole", "persona (gold)", title=f"persona dimensions ({version})")
            for dim in dims:
                for pole in dim.poles:
                    table.add_row(dim.name, pole.name, pole.persona)
            console.print(table)
            return
        if out is None:
            raise InputError("give --out, the folder the set is written to", field="out")
        names = [d.strip() for d in dimensions.split(",") if d.strip()] if dimensions is not None else None
        select_dimensions(dims, names)  # a misspelt name fails before any model loads
        questions_version, pool = load_questions(prompts_from)
        config = PersonaSetConfig(dimensions=names, questions=questions, users_per_pole=users_per_pole,
                                  history=history, seed=seed, max_new_tokens=max_new_tokens)
        backend = load_backend(model)
        with progress_bars() as bars:
            built = build_persona_set(backend, config, cache=None if no_cache else ResultCache(), questions=pool,
                                      questions_version=questions_version, progress=bars)
        built.manifest["command"] = {"prompts_from": str(prompts_from) if prompts_from else None}
        paths = built.write(out)
        table = Table("dimension", "users", "usable questions", "truncated replies", "file")
        for path, (name, report) in zip(paths, built.manifest["dimensions"].items()):
            table.add_row(name, str(report["users"]), str(report["usable_questions"]),
                          str(report["truncated_replies"]), str(path))
        console.print(table)
        if as_json:
            emit_json(built.manifest)
