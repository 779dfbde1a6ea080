"""Options shared by several commands, and the plumbing every command needs."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, get_args

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..errors import InputError, PrefscribeError
from ..evaluate.writers import DEFAULT_WRITER

console = Console(stderr=True)

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Model spec: embedded, embedded:0.5b, "
                                       "hf:<id-or-path>, openai:<model>@<base_url>.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines instead of text.")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Do not read or write the result cache.")]
CandidatesOpt = Annotated[int, typer.Option(min=1, help="Candidate profiles per user and step; the one the judge "
                                          "finds best at predicting the user's own history pairs is kept.")]
WriterOpt = Annotated[str, typer.Option("--writer", help="Who writes profiles: measured (the model scores each "
                                        "choice on a vocabulary of qualities; the profile states where the user "
                                        "departs from other people), free (the model writes the text) or auto "
                                        "(measured where the model has a calibration table, as the embedded "
                                        "model does; free otherwise).")]
CentredOpt = Annotated[bool, typer.Option("--centred", help="measured writer: score each quality against the "
                                          "comparison's other qualities (a small judge calls the fuller item more of "
                                          "everything); a table of centred scores is versioned apart.")]
TagsOnlyOpt = Annotated[bool, typer.Option("--tags-only", help="measured writer: items whose tags (genres, "
                                         "categories, decade: `meta.tags`) are known are measured by their tags "
                                         "alone, with no model call.")]
PromptsOpt = Annotated[str | None, typer.Option("--prompts", help="Folder of prompt templates overriding "
                                                "the built-in set (same file names).")]


def check_choice(option: str, value: str, choices: Any) -> None:
    """InputError unless `value` is one of the Literal type `choices` (the library's own type)."""
    allowed = get_args(choices)
    if value not in allowed:
        raise InputError(f"--{option.replace('_', '-')} must be {', '.join(allowed[:-1])} or {allowed[-1]}, "
                         f"not {value!r}", field=option)


def emit_json(data) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def print_error(label: str, message: str) -> None:
    """`label: message` in red, on one line at any terminal width (grep-able, one line in logs). The message
    is text, not markup: `pip install 'prefscribe[serve]'` keeps its `[serve]`."""
    console.print(f"[bold red]{escape(label)}:[/] {escape(message)}", highlight=False, soft_wrap=True)


@contextmanager
def errors_exit() -> Iterator[None]:
    """Turn prefscribe errors into a one-line message and exit code 1 (2 for bad input)."""
    try:
        yield
    except PrefscribeError as exc:
        print_error("error", str(exc))
        raise typer.Exit(2 if isinstance(exc, ValueError) else 1) from None


LOG_EVERY_S = 60.0  # where the output is a log, not a terminal: a progress line at least this often


def _advancer(bars: Progress, task: TaskID):
    """`advance(n)` for one bar. A live bar redraws only on a terminal; written to a log (a background run,
    CI) it would show nothing until the end, so there each tenth of the work, and a minute without one,
    prints a line."""
    if console.is_terminal:
        return lambda n=1: bars.advance(task, n)
    last = {"time": time.monotonic(), "tenth": 0}

    def advance(n: int = 1) -> None:
        bars.advance(task, n)
        state = bars.tasks[bars.task_ids.index(task)]
        tenth = int(10 * state.completed / state.total) if state.total else 0
        if tenth > last["tenth"] or time.monotonic() - last["time"] >= LOG_EVERY_S:
            last.update(time=time.monotonic(), tenth=tenth)
            left = f", about {state.time_remaining:.0f} s left" if state.time_remaining is not None else ""
            console.print(f"{state.description}: {state.completed:g}/{state.total:g} after "
                          f"{state.elapsed or 0:.0f} s{left}", markup=False, highlight=False)
    return advance


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False)


@contextmanager
def progress_bar(description: str, total: int) -> Iterator:
    """A rich progress bar with ETA; yields a callback taking the number of items just finished."""
    with _progress() as bar:
        task = bar.add_task(description, total=total)
        yield _advancer(bar, task)


@contextmanager
def progress_bars() -> Iterator:
    """One live display for many bars: yields `new_bar(description, total) -> advance(n)`. A description seen
    before is the same work continuing (a pipeline stage on the next chunk of users): its bar grows."""
    with _progress() as bars:
        tasks: dict[str, TaskID] = {}

        def new_bar(description: str, total: int):
            if description in tasks:
                task = tasks[description]
                bars.update(task, total=(next(t.total for t in bars.tasks if t.id == task) or 0) + total)
            else:
                task = tasks[description] = bars.add_task(description, total=total)
            return _advancer(bars, task)
        yield new_bar
