"""`prefscribe batch`: profiles for many users at once on Ray Data."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError

from ..errors import InputError
from ..llm import DEFAULT_SPEC
from .options import JsonOpt, ModelOpt, PromptsOpt, console, emit_json, errors_exit


def batch(
    interactions: Annotated[list[str] | None, typer.Option(
        "--interactions", "-i", help="Parquet or JSONL files or globs (local or s3://...): user_id, timestamp, "
        "context, chosen, rejected, optional id and domain. Repeat for several.")] = None,
    out: Annotated[str | None, typer.Option(help="Output folder: profiles.parquet, rejects.jsonl, summary.json "
                                            "(shared storage on a cluster).")] = None,
    past: Annotated[str | None, typer.Option(help="An earlier run's output folder: update each profile from the "
                                             "interactions newer than its coverage only.")] = None,
    chunk: Annotated[int, typer.Option(help="With --past: at most this many new interactions per streaming "
                                       "step.")] = 64,
    segments: Annotated[int, typer.Option(help="Without --past: stream each full history over this many "
                                          "segments.")] = 1,
    model: ModelOpt = DEFAULT_SPEC,
    style: Annotated[str | None, typer.Option(help="reasoning or direct; default: by model.")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="Token limit of each reply.")] = None,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    prompts: PromptsOpt = None,
    cache: Annotated[str | None, typer.Option(help="Result cache file (default: each machine's own; '' for "
                                              "none).")] = None,
    workers: Annotated[int, typer.Option(help="Model actors; each loads the model once.")] = 1,
    batch_size: Annotated[int, typer.Option(help="Users per model call of an actor.")] = 16,
    engine: Annotated[str | None, typer.Option(help="actors, or http (servers through ray.data.llm); default: "
                                               "http for openai: models when ray.data.llm imports.")] = None,
    qps: Annotated[int | None, typer.Option(help="HTTP engine: request-rate cap per actor.")] = None,
    max_retries: Annotated[int, typer.Option(help="HTTP engine: retries of a failed request.")] = 3,
    db: Annotated[str | None, typer.Option(help="Update the service's store (SQLAlchemy URL) instead of "
                                           "writing profiles.parquet.")] = None,
    tenant: Annotated[str | None, typer.Option(help="With --db and --interactions: the tenant the users "
                                               "belong to.")] = None,
    address: Annotated[str | None, typer.Option(help="Ray cluster address (ray://head:10001); default: a "
                                                "local Ray.")] = None,
    num_cpus: Annotated[int | None, typer.Option(help="CPUs of the local Ray.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan (users, interactions, estimated "
                                          "prompt tokens) and exit.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write or update the profiles of many users in one job on Ray Data."""
    with errors_exit():
        from ..batch import BatchConfig, run_batch
        from ..batch import dry_run as plan_job

        try:
            config = BatchConfig(
                interactions=interactions or [], out=out, past=past, chunk=chunk, segments=segments, model=model,
                style=style, max_new_tokens=max_new_tokens, seed=seed, prompts=prompts, cache=cache,
                workers=workers, batch_size=batch_size, engine=engine, qps=qps, max_retries=max_retries, db=db,
                tenant=tenant, address=address, num_cpus=num_cpus)
        except ValidationError as exc:  # an option out of range: the option's name and the rule
            first = exc.errors()[0]
            option = "--" + "-".join(str(p) for p in first["loc"]).replace("_", "-")
            raise InputError(first["msg"], field=option) from None
        if dry_run:
            plan = plan_job(config).to_json()
            if as_json:
                emit_json(plan)
            else:
                for key, value in plan.items():
                    typer.echo(f"{key:>20}  {value}")
            return
        summary = run_batch(config)
        if as_json:
            emit_json(summary.model_dump())
        else:
            console.print(f"{summary.users_done} profiles written, {summary.users_skipped} skipped, "
                          f"{summary.users_failed} failed, {summary.rows_rejected} rows rejected "
                          f"in {summary.wall_seconds:.1f}s ({summary.users_per_second:.2f} users/s)"
                          + (f"; see {out}" if out else ""))
        if summary.users_failed:
            raise typer.Exit(1)
