"""`prefscribe eval`, `prefscribe report` and `prefscribe compare`: the paper's benchmarks, settings and transfer
tests, and what a change did to the same users."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..data import load, minilm_embedder
from ..errors import InputError
from ..evaluate import (
    SETTINGS,
    WRITERS,
    EvalSpec,
    assemble,
    comparison_report,
    parse_methods,
    parse_settings,
    write_report,
)
from ..evaluate.variants import Dataset, cross_domain_variants, noise_variants, positive_only_variant
from ..llm import DEFAULT_SPEC
from ..measure import TAG_THRESHOLD, MeasureConfig
from ..measure import read as read_calibration
from .options import (
    DEFAULT_WRITER,
    CandidatesOpt,
    CentredOpt,
    NoCacheOpt,
    PromptsOpt,
    TagsOnlyOpt,
    console,
    errors_exit,
    progress_bars,
)


def _source(text: str, option: str) -> tuple[str, str]:
    name, sep, path = text.partition(":")
    if not sep or not name or not path:
        raise InputError(f"write {option} as <benchmark>:<path>, e.g. movielens:../shared/data/movielens",
                         field=option)
    return name, path


def _parse_floats(text: str, option: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"{option} takes comma-separated numbers, got {text!r}", field=option) from None
    if any(v < 0 for v in values):
        raise InputError(f"{option} values must be >= 0", field=option)
    return values


def eval(
    out: Annotated[Path, typer.Option(help="Run folder: items.jsonl, summary.json, table.md, plots.")],
    benchmark: Annotated[str | None, typer.Option(help="Loader: psoups, dsp, upi, movielens, mind, amazon, "
                                                  "personamem, hicupid.")] = None,
    data: Annotated[str | None, typer.Option(help="File or folder of the benchmark.")] = None,
    settings: Annotated[str, typer.Option(help="Comma list of " + ", ".join(SETTINGS) + ".")] =
        "none,raw,full,streaming",
    model: Annotated[str, typer.Option("--model", "-m", help="Model that writes profiles.")] = DEFAULT_SPEC,
    judge: Annotated[str | None, typer.Option(help="Downstream model that chooses (default: --model).")] = None,
    limit: Annotated[int | None, typer.Option(help="Users to sample (seeded, stratified by persona).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of every sampling step; recorded in the run.")] = 0,
    segments: Annotated[int, typer.Option(help="Streaming segments (recommendation sets use thirds).")] = 2,
    positive_only_: Annotated[bool, typer.Option("--positive-only", help="Drop every rejected item from "
                                                 "histories.")] = False,
    order: Annotated[str, typer.Option(help="both (debiased) or random (the paper's single order).")] = "both",
    method: Annotated[str, typer.Option(help="Judge method(s), a comma list run on the same users: logprobs, "
                                        "generation, likelihood (how much the preference raises log p(item | "
                                        "context); `none` is the plain log p(item | context) ranking), contrast "
                                        "(the same against the generic persona). The summary compares gold - "
                                        "gold_mismatched per method.")] = "logprobs",
    writer: Annotated[str, typer.Option(help="Profile writer: " + ", ".join(WRITERS) + " (measured: the model "
                                        "scores each choice on a vocabulary of qualities; the profile states where "
                                        "the user departs from other people).")] = DEFAULT_WRITER,
    split: Annotated[str | None, typer.Option(help="Users of one half only: test (report on these) or dev "
                                              "(calibration and tuning take these).")] = None,
    calibration: Annotated[str, typer.Option(help="measured writer: shipped (the run's people when there are 16 or "
                                             "more, else the package's table), run (the run's people), or a table "
                                             "file from calibrate.")
                           ] = "shipped",
    threshold: Annotated[float | None, typer.Option(help="measured writer: |z| on an axis of taste from which it is "
                                                    "stated (default: the calibration table's).")] = None,
    tags_only: TagsOnlyOpt = False,
    centred: CentredOpt = False,
    tag_threshold: Annotated[float | None, typer.Option(help="measured writer: |z| of a tag's count from which it "
                                                        "is stated (default: the writer's).")] = None,
    noise_from: Annotated[str | None, typer.Option(help="Multi-interest noise source <benchmark>:<path>.")] = None,
    noise: Annotated[str, typer.Option(help="Noise intensities, e.g. 0,0.25,0.5,0.75.")] = "0,0.25,0.5,0.75",
    cross_domain: Annotated[str | None, typer.Option(help="<a>:<path>,<b>:<path>: pair users across two "
                                                     "datasets by history similarity and swap targets.")] = None,
    top_n: Annotated[int, typer.Option(help="Cross-domain pairs to keep (most similar first).")] = 1000,
    style: Annotated[str | None, typer.Option(help="Profile style: reasoning or direct (default: by model).")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="Token limit of each profile.")] = None,
    chunk: Annotated[int, typer.Option(help="Users per inference batch.")] = 8,
    loader_option: Annotated[list[str] | None, typer.Option(help="KEY=VALUE passed to the loader, e.g. "
                                                            "max_history=30 (repeatable).")] = None,
    candidates: CandidatesOpt = 1,
    validator: Annotated[str | None, typer.Option(help="Model that validates candidates (default: --judge).")
                         ] = None,
    no_cache: NoCacheOpt = False,
    prompts: PromptsOpt = None,
) -> None:
    """Evaluate profiles on a benchmark: accuracy of a judge choosing each user's held-out item."""
    with errors_exit():
        names = parse_settings(settings)
        if order not in ("both", "random"):
            raise InputError("--order must be both or random", field="order")
        methods = parse_methods(method)
        options = _loader_options(loader_option or [])
        variants = _datasets(benchmark, data, limit, seed, positive_only_, noise_from, noise, cross_domain, top_n,
                             options, split)
        plan = assemble(EvalSpec(model=model, judge=judge, writer=writer, methods=methods, order=order, seed=seed,
                                 style=style, max_new_tokens=max_new_tokens, candidates=candidates,
                                 validator=validator, prompts=prompts, cache=not no_cache,
                                 measure=_measure_config(calibration, threshold, seed, tags_only, tag_threshold,
                                                         centred)))
        meta = {"limit": limit, "data": data, "split": split, "loader_options": options, "noise_from": noise_from,
                "cross_domain": cross_domain}
        for dataset in variants:
            gold_only = [n for n in names if SETTINGS[n].needs_gold]
            if gold_only and not any(r.gold_preference for r in dataset.records):
                raise InputError(f"{dataset.benchmark} has no gold preference text: drop {', '.join(gold_only)} "
                                 "from --settings", field="settings")
            loader_meta = dataset.records[0].meta if dataset.records else {}
            with progress_bars() as bars:
                plan.run(dataset, names, out, segments=segments, chunk=chunk,
                         run_meta={**meta, "loader_meta": loader_meta}, progress=bars)
        write_report([out], out)
        typer.echo((out / "table.md").read_text())
        console.print(f"results in {out}/ (items.jsonl, summary.json, table.md, report.md, accuracy.png, bias.png)")


def _measure_config(calibration: str, threshold: float | None, seed: int, tags_only: bool,
                    tag_threshold: float | None, centred: bool) -> MeasureConfig:
    table = calibration if calibration in ("shipped", "run") else read_calibration(calibration)
    return MeasureConfig(calibration=table, threshold=threshold, seed=seed, ask_tagged_items=not tags_only,
                         tag_threshold=TAG_THRESHOLD if tag_threshold is None else tag_threshold, centred=centred)


def _loader_options(pairs: list[str]) -> dict:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--loader-option takes KEY=VALUE, got {pair!r}", field="loader-option")
        options[key] = int(value) if value.lstrip("-").isdigit() else value
    return options


def _datasets(benchmark, data, limit, seed, positive, noise_from, noise, cross_domain, top_n, options, split=None
              ) -> list[Dataset]:
    """Each dataset variant the options ask for (built by prefscribe.evaluate.variants)."""
    if cross_domain:
        parts = [p for p in cross_domain.split(",") if p.strip()]
        if len(parts) != 2:
            raise InputError("--cross-domain takes two sources: <a>:<path>,<b>:<path>", field="cross-domain")
        (name_a, path_a), (name_b, path_b) = (_source(p, "--cross-domain") for p in parts)
        a = Dataset(name_a, "", load(name_a, path_a, limit=limit, seed=seed))
        b = Dataset(name_b, "", load(name_b, path_b, limit=limit, seed=seed))
        return cross_domain_variants(a, b, top_n, minilm_embedder())
    if not benchmark or not data:
        raise InputError("give --benchmark and --data (or --cross-domain)", field="benchmark")
    records = load(benchmark, data, limit=limit, seed=seed, split=split, **options)
    if not records:
        raise InputError("the loader returned no users", path=str(data))
    dataset = Dataset(benchmark, "", records)
    if positive:
        dataset = positive_only_variant(dataset)
    if not noise_from:
        return [dataset]
    other_name, other_path = _source(noise_from, "--noise-from")
    others = [r.history for r in load(other_name, other_path, seed=seed)]
    return noise_variants(dataset, others, _parse_floats(noise, "--noise"), seed)


def report(
    runs: Annotated[list[Path], typer.Argument(help="Run folders written by prefscribe eval.")],
    out: Annotated[Path, typer.Option(help="Where report.md and the plots go.")] = Path("report"),
) -> None:
    """One table in the paper's layout and plots, across evaluation runs."""
    with errors_exit():
        files = write_report(runs, out)
        typer.echo(files["table"].read_text())
        console.print("wrote " + ", ".join(str(p) for p in files.values()))


def compare(
    reference: Annotated[Path, typer.Argument(help="Run folder of the reference (today's writer, prompts, engine).")],
    run: Annotated[Path, typer.Argument(help="Run folder of the change, on the same users (--limit, --seed).")],
    out: Annotated[Path | None, typer.Option(help="Also write the tables to this markdown file.")] = None,
) -> None:
    """What a change did to the same users: accuracy per setting, own - another's and gold - another's gold, each
    run - reference paired by user with a 95% interval, and how often the two runs decide a task alike."""
    with errors_exit():
        text = comparison_report(reference, run)
        typer.echo(text)
        if out:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text)
