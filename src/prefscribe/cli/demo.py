"""`prefscribe demo`: the main job on the shipped example users, start to finish, with the embedded model."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Annotated

import typer
from rich.table import Table

from ..cache import ResultCache
from ..infer import InferConfig, InferJob, Inferrer
from ..judge import ChoiceTask, Judge
from ..llm import DEFAULT_SPEC, load_backend
from ..schema import InferenceFailure, parse_history_lines
from .options import ModelOpt, NoCacheOpt, console, errors_exit, progress_bar

USERS = ("maya", "sam", "lena")


def demo(model: ModelOpt = DEFAULT_SPEC, no_cache: NoCacheOpt = False,
         stream_new: Annotated[int, typer.Option(help="Interactions of each user held back and then "
                                                 "streamed into the profile as an update.")] = 2) -> None:
    """Profiles for three example users, a streaming update, and their choices on held-out pairs."""
    with errors_exit():
        examples = files("prefscribe") / "examples"
        histories = {u: parse_history_lines((examples / f"{u}.jsonl").read_text("utf-8"), f"examples/{u}.jsonl")
                     for u in USERS}
        targets = json.loads((examples / "targets.json").read_text("utf-8"))
        console.print(f"[bold]Loading {model}[/] (the first start converts the weights once)")
        backend = load_backend(model)
        cache = None if no_cache else ResultCache()
        inferrer = Inferrer(backend, InferConfig(), cache)

        with progress_bar("profiles from early history", len(USERS)) as advance:
            first = inferrer.run([InferJob(histories[u][:-stream_new]) for u in USERS], advance)
        with progress_bar("streaming updates", len(USERS)) as advance:
            updated = inferrer.run([InferJob(histories[u][-stream_new:], p if not isinstance(p, InferenceFailure)
                                             else None) for u, p in zip(USERS, first)], advance)

        judge = Judge(backend, cache=cache)
        table = Table(title=f"prefscribe demo on {backend.info.spec}", show_lines=True)
        for column in ("user", "profile (after streaming update)", "held-out pair", "P(true) no profile",
                       "P(true) with profile"):
            table.add_column(column, overflow="fold")
        with progress_bar("choices", len(USERS)) as advance:
            for user, profile in zip(USERS, updated):
                t = targets[user]
                text = profile.profile if not isinstance(profile, InferenceFailure) else None
                task = dict(a=t["chosen"], b=t["rejected"], context=t["context"])
                bare = judge.choose(ChoiceTask(**task))
                personal = judge.choose(ChoiceTask(**task, preference=text)) if text else None
                advance(1)
                table.add_row(user, text or f"[red]failed: {profile.error}[/]",
                              f"{t['context'] or '(recommendation)'}\n[green]chosen:[/] {t['chosen']}\n"
                              f"[red]rejected:[/] {t['rejected']}",
                              _p(bare.p_a), _p(personal.p_a if personal else None))
        console.print(table)


def _p(value: float | None) -> str:
    return "failed" if value is None else f"{value:.2f}"
