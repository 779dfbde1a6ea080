"""`prefscribe demo`: the main job on the shipped example users, start to finish, with the embedded model.

For each example user: a profile from early history, a streaming update, and the judge's probability of the
user's held-out choice without a profile, with their own profile, and with the next example user's profile
(the mismatched control: a profile that carries its user should beat it)."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Annotated

import typer
from rich.table import Table

from ..cache import ResultCache
from ..evaluate.writers import WriterParts, writer_factory
from ..infer import InferConfig, InferJob
from ..judge import ChoiceTask, Judge
from ..llm import DEFAULT_SPEC, load_backend
from ..schema import InferenceFailure, parse_history_lines
from .options import (
    DEFAULT_WRITER,
    CandidatesOpt,
    JsonOpt,
    ModelOpt,
    NoCacheOpt,
    WriterOpt,
    console,
    emit_json,
    errors_exit,
    progress_bar,
)

USERS = ("maya", "sam", "lena")


def demo(model: ModelOpt = DEFAULT_SPEC, no_cache: NoCacheOpt = False, as_json: JsonOpt = False,
         judge: Annotated[str | None, typer.Option(help="Model that chooses (default: --model).")] = None,
         stream_new: Annotated[int, typer.Option(help="Interactions of each user held back and then "
                                                 "streamed into the profile as an update.")] = 2,
         candidates: CandidatesOpt = 1, writer: WriterOpt = DEFAULT_WRITER) -> None:
    """Profiles for three example users, a streaming update, and their choices on held-out pairs: P(true)
    with no profile, with their own profile, and with another example user's profile."""
    with errors_exit():
        examples = files("prefscribe") / "examples"
        histories = {u: parse_history_lines((examples / f"{u}.jsonl").read_text("utf-8"), f"examples/{u}.jsonl")
                     for u in USERS}
        targets = json.loads((examples / "targets.json").read_text("utf-8"))
        make_writer = writer_factory(writer)
        console.print(f"[bold]Loading {model}[/] (the first start converts the weights once)")
        backend = load_backend(model)
        judge_backend = load_backend(judge) if judge else backend
        cache = None if no_cache else ResultCache()
        chooser = Judge(judge_backend, cache=cache)
        inferrer = make_writer(WriterParts(backend, judge_backend, InferConfig(), cache, candidates))

        with progress_bar("profiles from early history", len(USERS)) as advance:
            first = inferrer.run([InferJob(histories[u][:-stream_new]) for u in USERS], advance)
        with progress_bar("streaming updates", len(USERS)) as advance:
            updated = inferrer.run([InferJob(histories[u][-stream_new:], p if not isinstance(p, InferenceFailure)
                                             else None) for u, p in zip(USERS, first)], advance)
        profiles = {u: None if isinstance(p, InferenceFailure) else p.profile for u, p in zip(USERS, updated)}
        # With --candidates k: the kept profile's mean P(chosen) on the user's own history pairs.
        validation = {u: None if isinstance(p, InferenceFailure) else p.validation for u, p in zip(USERS, updated)}
        errors = {u: p.error for u, p in zip(USERS, updated) if isinstance(p, InferenceFailure)}
        # Each user borrows the next one's profile: a fixed derangement of three, the same every run.
        donors = {u: USERS[(i + 1) % len(USERS)] for i, u in enumerate(USERS)}

        settings = {"none": lambda u: None, "own": lambda u: profiles[u], "mismatched": lambda u: profiles[donors[u]]}
        asked = [(u, name) for u in USERS for name, text in settings.items() if name == "none" or text(u)]
        with progress_bar("choices", len(asked)) as advance:
            choices = chooser.choose_many([ChoiceTask(a=targets[u]["chosen"], b=targets[u]["rejected"],
                                                      context=targets[u]["context"], preference=settings[name](u))
                                           for u, name in asked])
            advance(len(asked))
        p_true = {key: c.p_a for key, c in zip(asked, choices)}
        rows = [{"user": u, "p_true_none": p_true.get((u, "none")), "p_true_own": p_true.get((u, "own")),
                 "p_true_mismatched": p_true.get((u, "mismatched")), "profile": profiles[u], "donor": donors[u],
                 "validation": validation[u]}
                for u in USERS]
        if as_json:
            emit_json({"users": rows})
            return

        table = Table(title=f"prefscribe demo on {backend.info.spec}", show_lines=True)
        for column in ("user", "profile (after streaming update)", "held-out pair", "P(true) no profile",
                       "P(true) own profile", "P(true) another user's profile"):
            table.add_column(column, overflow="fold")
        for row in rows:
            u, t = row["user"], targets[row["user"]]
            table.add_row(u, row["profile"] or f"[red]failed: {errors[u]}[/]",
                          f"{t['context'] or '(recommendation)'}\n[green]chosen:[/] {t['chosen']}\n"
                          f"[red]rejected:[/] {t['rejected']}",
                          _p(row["p_true_none"]), _p(row["p_true_own"]),
                          f"{_p(row['p_true_mismatched'])} ({row['donor']}'s)")
        console.print(table)


def _p(value: float | None) -> str:
    return "failed" if value is None else f"{value:.2f}"
