"""`prefscribe synth` and `prefscribe prune`: the SFT and RL training data of AlignXplore+."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..cache import ResultCache
from ..curriculum import PRESETS, prune_table, resolve_settings
from ..curriculum import prune as run_prune
from ..data import load
from ..errors import InputError
from ..llm import DEFAULT_SPEC, load_backend
from ..prompts import get_prompts
from ..synth import (
    SynthConfig,
    SynthModels,
    default_funnel_path,
    default_journal_path,
    funnel_table,
    synthesize,
)
from .options import JsonOpt, NoCacheOpt, PromptsOpt, console, emit_json, errors_exit, progress_bars

DataOpt = Annotated[Path, typer.Option("--data", help="Benchmark file or folder (relative paths are also "
                                       "looked up under $PREFSCRIBE_DATA).")]
BenchmarkOpt = Annotated[str, typer.Option("--benchmark", "-b", help="Loader: psoups, dsp, movielens, mind, amazon, "
                                           "upi, personamem, hicupid.")]
LimitOpt = Annotated[int | None, typer.Option("--limit", help="Seeded sample of this many users.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of user sampling, target draws and sampling.")]
MaxHistoryOpt = Annotated[int, typer.Option("--max-history", help="Keep each user's most recent interactions.")]
IncludeTargetOpt = Annotated[bool, typer.Option("--include-target", help="Append the benchmark's held-out "
                                                "target pair to each history (off: it is evaluation data).")]
HistoryTokensOpt = Annotated[int, typer.Option("--max-history-tokens", help="Token cap on the interactions "
                                               "rendered in one prompt.")]


def _data_info(benchmark: str, data: Path, limit: int | None, seed: int) -> dict:
    return {"benchmark": benchmark, "path": str(data), "limit": limit, "seed": seed}


def synth(
    data: DataOpt,
    benchmark: BenchmarkOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="SFT records (JSONL); the funnel report and the "
                                      "resume journal are written beside it.")],
    teacher: Annotated[str, typer.Option(help="Model that writes and merges summaries.")] = DEFAULT_SPEC,
    judge: Annotated[str | None, typer.Option(help="Model that validates summaries (default: the teacher).")] = None,
    scorer: Annotated[str | None, typer.Option(help="Direct-prediction model for tractability "
                                               "(default: the judge).")] = None,
    streaming: Annotated[bool, typer.Option("--streaming/--no-streaming", help="Also make update examples "
                                            "(middle segment conditioned on the first summary).")] = False,
    limit: LimitOpt = None,
    seed: SeedOpt = 0,
    max_history: MaxHistoryOpt = 30,
    include_target: IncludeTargetOpt = False,
    min_segment: Annotated[int, typer.Option(help="Drop users with a segment shorter than this (paper: 3; "
                                             "P-Soups users have 4 interactions: use 1).")] = 3,
    tract_threshold: Annotated[float, typer.Option(help="Minimum p(true) of a target (paper: 0.9).")] = 0.9,
    max_targets: Annotated[int, typer.Option(help="Targets per segment (paper: 5).")] = 5,
    min_valid: Annotated[int, typer.Option(help="Drop users with fewer validated candidates (paper: 3).")] = 3,
    lam: Annotated[float, typer.Option("--lambda", help="Share of targets the merged summary must "
                                       "predict (paper: 0.8).")] = 0.8,
    max_new_tokens: Annotated[int, typer.Option(help="Teacher token limit per reply.")] = 1024,
    max_history_tokens: HistoryTokensOpt = 3000,
    chunk_users: Annotated[int, typer.Option(help="Users carried through the stages together.")] = 8,
    workers: Annotated[int, typer.Option(help="Threads for judge calls (useful with openai: servers).")] = 1,
    fresh: Annotated[bool, typer.Option("--fresh", help="Ignore and overwrite the resume journal.")] = False,
    funnel: Annotated[Path | None, typer.Option(help="Funnel report path (default: <out>.funnel.json).")] = None,
    as_json: JsonOpt = False,
    no_cache: NoCacheOpt = False,
    prompts: PromptsOpt = None,
) -> None:
    """Synthesize SFT data: generate - validate - merge (AlignXplore+), with a funnel report."""
    with errors_exit():
        config = SynthConfig(max_history=max_history, include_target=include_target, min_segment=min_segment,
                             tract_threshold=tract_threshold, max_targets=max_targets, min_valid=min_valid,
                             lam=lam, streaming=streaming, max_history_tokens=max_history_tokens,
                             max_new_tokens=max_new_tokens, seed=seed, chunk_users=chunk_users)
        users = load(benchmark, data, limit=limit, seed=seed)
        judge = judge or teacher
        models = SynthModels(teacher=load_backend(teacher), judge=load_backend(judge),
                             scorer=load_backend(scorer or judge))
        with progress_bars() as stage:
            result = synthesize(users, models, config, cache=None if no_cache else ResultCache(),
                                prompts=get_prompts(prompts), workers=workers, progress=stage,
                                journal_path=default_journal_path(out), fresh=fresh,
                                data=_data_info(benchmark, data, limit, seed))
        report_path = result.write(out, funnel or default_funnel_path(out))
        console.print(funnel_table(result.report))
        console.print(f"{result.report['records']['total']} SFT records -> {out}; funnel -> {report_path}")
        if as_json:
            emit_json(result.report)


def _band(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        low, high = (float(x) for x in text.split(","))
    except ValueError:
        raise InputError(f"--tract takes LOW,HIGH, e.g. 0.5,0.9, not {text!r}", field="tract") from None
    return low, high


def prune(
    data: DataOpt,
    benchmark: BenchmarkOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="RL records (JSONL); scores, report and histograms "
                                      "are written beside it.")],
    weak: Annotated[str, typer.Option(help="The general model.")] = DEFAULT_SPEC,
    strong: Annotated[str, typer.Option(help="The model fine-tuned to predict choices from raw history.")] = DEFAULT_SPEC,
    alpha: Annotated[float | None, typer.Option(help="Keep the top alpha share by S_learn.")] = None,
    tract: Annotated[str | None, typer.Option(help="S_tract band LOW,HIGH (strict bounds).")] = None,
    preset: Annotated[str | None, typer.Option(help=f"Paper settings: {', '.join(sorted(PRESETS))}; "
                                               "--alpha / --tract override them.")] = None,
    limit: LimitOpt = None,
    seed: SeedOpt = 0,
    max_history: MaxHistoryOpt = 30,
    include_target: IncludeTargetOpt = False,
    min_prefix: Annotated[int, typer.Option(help="Smallest history before a point (m >= this).")] = 1,
    max_history_tokens: HistoryTokensOpt = 3000,
    plot: Annotated[bool, typer.Option("--plot/--no-plot", help="Write the score histograms (PNG).")] = True,
    as_json: JsonOpt = False,
    no_cache: NoCacheOpt = False,
    prompts: PromptsOpt = None,
) -> None:
    """Curriculum pruning: score every point with a weak and a strong model, write RL records (k < K)."""
    with errors_exit():
        settings = resolve_settings(preset, alpha, _band(tract))
        users = load(benchmark, data, limit=limit, seed=seed)
        with progress_bars() as stage:
            result = run_prune(users, load_backend(weak), load_backend(strong), settings,
                               max_history=max_history, include_target=include_target, min_prefix=min_prefix,
                               max_history_tokens=max_history_tokens,
                               cache=None if no_cache else ResultCache(), prompts=get_prompts(prompts),
                               progress=stage, data={**_data_info(benchmark, data, limit, seed), "preset": preset})
        paths = result.write(out, plot=None if plot else False)
        console.print(prune_table(result.report))
        console.print(f"{len(result.records)} RL records -> {out}; " +
                      ", ".join(f"{k} -> {v}" for k, v in paths.items() if k != "records"))
        if as_json:
            emit_json(result.report)
