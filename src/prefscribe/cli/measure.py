"""`prefscribe calibrate`: where other people's choices sit on each quality, for measured profiles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..cache import CachedCalls, ResultCache
from ..data import load
from ..errors import InputError
from ..infer import InferConfig, InferJob
from ..llm import DEFAULT_SPEC, load_backend
from ..measure import DEFAULT_THRESHOLD, MeasureConfig, MeasuredWriter, base_model, population, score
from ..prompts import get_prompts
from .options import CentredOpt, ModelOpt, NoCacheOpt, PromptsOpt, console, errors_exit, progress_bar


def calibrate(
    source: Annotated[list[str], typer.Option(help="<benchmark>:<path> of dev users (repeatable), e.g. "
                                              "psoups:../shared/data/psoups/student_phd.json.")],
    out: Annotated[Path, typer.Option(help="Where the table (JSON) goes; the package ships its tables in "
                                      "prefscribe/measure/calibration/.")],
    model: ModelOpt = DEFAULT_SPEC,
    users: Annotated[int, typer.Option(help="Users per source (seeded, stratified), from the dev half.")] = 48,
    seed: Annotated[int, typer.Option(help="Seed of the user sample.")] = 0,
    threshold: Annotated[float, typer.Option(help="|z| on an axis of taste from which a measured profile states "
                                             "it.")] = DEFAULT_THRESHOLD,
    max_comparisons: Annotated[int, typer.Option(help="Most recent comparisons measured per user.")] = 8,
    loader_option: Annotated[list[str] | None, typer.Option(help="<benchmark>:KEY=VALUE for one source's loader "
                                                            "(repeatable).")] = None,
    no_cache: NoCacheOpt = False,
    prompts: PromptsOpt = None,
    centred_scores: CentredOpt = False,
) -> None:
    """Score dev users' choices on every quality and write each quality's population mean and spread.

    Users come from the dev half of each source (`split_of`): evaluations report the test half, so no
    reported user shapes the table."""
    with errors_exit():
        sources = [_source(entry) for entry in source]  # bad input fails before the model loads
        options = _options(loader_option or [])
        backend = load_backend(model)
        cache = None if no_cache else ResultCache()
        writer = MeasuredWriter(backend, InferConfig(prompts=get_prompts(prompts)), cache,
                                measure=MeasureConfig(max_comparisons=max_comparisons, seed=seed,
                                                      centred=centred_scores))
        counts: dict[str, int] = {}
        scored: list[list] = []  # per person
        for name, path in sources:
            records = load(name, path, limit=users, seed=seed, split="dev", **options.get(name, {}))
            people = writer.comparisons([InferJob(r.history) for r in records])
            calls = CachedCalls(backend, cache, writer.vocabulary.version)
            with progress_bar(f"{name}: {len(records)} users, {sum(map(len, people))} comparisons",
                              2 * sum(map(len, people))) as advance:
                scored += [score(calls, writer.vocabulary, person, advance, centred=centred_scores)
                           for person in people]
            counts[name] = len(records)
        failed = [s for person in scored for s in person if s.errors]
        if failed:
            raise InputError(f"{len(failed)} comparisons could not be scored (first: {failed[0].errors[0]})")
        table = population(scored, model=base_model(backend.info.spec), vocabulary=writer.scale,
                           threshold=threshold,
                           source={"sources": source, "users": counts, "split": "dev", "seed": seed,
                                   "max_comparisons": max_comparisons, "engine": backend.info.spec})
        table.write(out)
        _show(table)
        _show_axes(table)
        console.print(f"wrote {out}")


def _source(entry: str) -> tuple[str, str]:
    name, sep, path = entry.partition(":")
    if not sep or not name or not path:
        raise InputError(f"write --source as <benchmark>:<path>, not {entry!r}", field="source")
    return name, path


def _options(pairs: list[str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for pair in pairs:
        name, _, rest = pair.partition(":")
        key, sep, value = rest.partition("=")
        if not sep or not key:
            raise InputError(f"--loader-option takes <benchmark>:KEY=VALUE, got {pair!r}", field="loader-option")
        out.setdefault(name, {})[key] = int(value) if value.lstrip("-").isdigit() else value
    return out


def _show(table) -> None:
    view = Table("comparison:quality", "mean s", "std s", "within-person std", "comparisons", "people")
    for name, stats in table.stats.items():
        view.add_row(name, f"{stats.mean:+.3f}", f"{stats.std:.3f}", f"{stats.within_std:.3f}", str(stats.comparisons),
                     str(stats.people))
    console.print(view)


def _show_axes(table) -> None:
    for key, axes in table.axes.items():
        for number, axis in enumerate(axes, start=1):
            named = sorted(axis.loadings.items(), key=lambda pair: -abs(pair[1]))[:4]
            console.print(f"{key} axis {number}: between/within {axis.ratio:.2f} (shuffled: {axis.null:.2f}); "
                          + ", ".join(f"{q} {v:+.2f}" for q, v in named))
    if not table.axes:
        console.print("no axes: too few people, or they differ only by the judge's noise")
