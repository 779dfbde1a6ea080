"""The batch job on Ray Data: read and validate rows, group them per user with the past profile and the
outputs of earlier runs, run the model stage, and write the output folder.

    read files ─► validate ─┬─► rejects.jsonl
                            └─► union(past profiles, earlier parts) ─► groupby(user) ─► plan per user
    plan ─► run: model stage (actor pool, or ray.data.llm for servers) ─► parts ─► profiles.parquet
        └─► unchanged: past profile carried over ─► parts
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError, PrefscribeError
from ._config import BatchConfig
from ._output import (
    PROFILES,
    Summary,
    exists,
    part_files,
    pick,
    schema,
    write_final,
    write_part,
    write_rejects,
)
from ._rows import expand, source_rows
from ._users import DONE, ITEM, PAST, Stepping, UserJob, plan_user
from ._write import ModelSettings, unchanged_row
from ._write import write_profiles as write_user_profiles

ROWS_PER_PARTITION = 500_000
_CHARS_PER_TOKEN = 3.5  # the plan's estimate: the model (and its tokenizer) is not loaded for a dry run


def ray_module():
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise PrefscribeError(f"prefscribe batch needs Ray Data: pip install 'prefscribe[batch]' ({exc})") from None
    return ray


def col(name: str):
    """A column in a Ray Data filter expression: evaluated on Arrow batches, not row by row in Python (Ray
    warns on every lambda filter)."""
    ray_module()
    from ray.data.expressions import col as column

    return column(name)


def connect(config: BatchConfig) -> None:
    """Join the cluster at `address`, or start a local Ray, unless this process is already connected."""
    ray = ray_module()
    if not ray.is_initialized():
        ray.init(address=config.address, num_cpus=None if config.address else config.num_cpus,
                 include_dashboard=False, log_to_driver=False, logging_level="ERROR")


def model_settings(config: BatchConfig) -> ModelSettings:
    return ModelSettings(model=config.model, style=config.style, max_new_tokens=config.max_new_tokens,
                         seed=config.seed, prompts=config.prompts, cache=config.cache)


# ------------------------------------------------------------------------------------------ row stages
def _past_row(row: dict[str, Any]) -> dict[str, Any]:
    keep = {k: row.get(k) for k in ("profile", "reasoning", "covers", "model", "prompt_version", "status",
                                     "covered_through")}
    return {"user_id": str(row["user_id"]), "kind": PAST, "ts": 0.0, "source": "", "line": 0,
            "payload": json.dumps(keep, ensure_ascii=False, default=str), "reason": ""}


def _done_row(row: dict[str, Any]) -> dict[str, Any]:
    return {"user_id": row["user_id"], "kind": DONE, "ts": 0.0, "source": "", "line": 0,
            "payload": json.dumps({"input_hash": row["input_hash"], "status": row["status"]}), "reason": ""}


def _plan_group(group, run_key: str, stepping: Stepping):
    import pyarrow as pa

    job = plan_user(group.to_pylist(), run_key, stepping)
    return pa.Table.from_pylist([job.to_row()])


# ---------------------------------------------------------------------------------------- model stage
class ProfileStage:
    """One actor of the model stage: loads the model once, then writes profiles for batch after batch of
    users, each batch's rows saved as a part before the batch is reported done."""

    def __init__(self, settings: ModelSettings, out: str, run: int) -> None:
        self.inferrer = settings.inferrer()
        self.out, self.run = out, run

    def __call__(self, batch):
        jobs = [UserJob.from_row(r) for r in batch.to_pylist()]
        rows = write_user_profiles(self.inferrer, jobs)
        write_part(self.out, rows, self.run)
        return _tally(rows, jobs)


def _unchanged_stage(batch, out: str, run: int):
    jobs = [UserJob.from_row(r) for r in batch.to_pylist()]
    rows = [unchanged_row(job) for job in jobs]
    write_part(out, rows, run)
    return _tally(rows, jobs)


def _tally(rows: list[dict[str, Any]], jobs: list[UserJob]):
    import pyarrow as pa

    return pa.Table.from_pylist([{"user_id": r["user_id"], "status": r["status"], "interactions": len(j.history),
                                  "prompt_tokens": r["prompt_tokens"], "completion_tokens": r["completion_tokens"]}
                                 for r, j in zip(rows, jobs)])


# ----------------------------------------------------------------------------------------------- plan
@dataclass
class Plan:
    files: list[str]
    rows_read: int = 0
    rows_rejected: int = 0
    users: int = 0
    actions: dict[str, int] = field(default_factory=dict)
    interactions: int = 0          # interactions the run will send to the model
    model_calls: int = 0           # streaming steps over all users to run
    est_prompt_tokens: int = 0     # estimated from the history sizes (chars / 3.5)

    def to_json(self) -> dict:
        return {"files": len(self.files), "rows_read": self.rows_read, "rows_rejected": self.rows_rejected,
                "users": self.users, **{f"users_{k}": v for k, v in sorted(self.actions.items())},
                "interactions": self.interactions, "model_calls": self.model_calls,
                "est_prompt_tokens": self.est_prompt_tokens}


_PROFILE_CHARS = 600  # a typical profile: what steps after the first carry as their past


def _estimate(batch, prompts: str | None, style: str):
    """Prompt tokens of a user's calls: the real prompt messages (all of the history, before any cut to the
    context window) measured with a characters-per-token estimate."""
    import pyarrow as pa

    from ..data.transforms import split_segments
    from ..prompts import get_prompts

    templates = get_prompts(prompts)

    def count(text: str) -> int:
        return math.ceil(len(text) / _CHARS_PER_TOKEN)

    out = []
    for row in batch.to_pylist():
        job = UserJob.from_row(row)
        past = job.past_profile()
        tokens = 0
        for step, segment in enumerate(split_segments(job.history, job.steps) if job.steps else []):
            text = past.profile if past else ("x" * _PROFILE_CHARS if step else None)
            messages = templates.inference_messages(templates.render_history(segment, None, count), text, style)
            tokens += sum(count(m["content"]) for m in messages)
        out.append({"est_prompt_tokens": tokens})
    return pa.Table.from_pylist(out)


def build_plan(config: BatchConfig, run_key: str, write: bool = True):
    """The planned dataset (one row per user) and the rows dataset, both materialized, and the Plan."""
    ray = ray_module()
    files = expand(config.interactions)
    rows = ray.data.from_items([{"source": f} for f in files], override_num_blocks=len(files))
    rows = rows.flat_map(source_rows).materialize()
    plan = Plan(files)
    plan.rows_read = rows.count()
    if config.out and write:
        plan.rows_rejected = write_rejects(config.out, rejects(rows))
    else:
        plan.rows_rejected = sum(1 for _ in rejects(rows))
    grouped = rows.filter(expr=col("kind") == ITEM)
    if config.past:
        past = _past_path(config.past)
        if not exists(past):
            raise InputError("no profiles.parquet of an earlier run here", path=past)
        grouped = grouped.union(ray.data.read_parquet(past).map(_past_row))
    parts = part_files(config.out) if config.out else []
    if parts:
        done = ray.data.read_parquet(parts).filter(expr=col("status").is_in(["done", "unchanged"]))
        grouped = grouped.union(done.map(_done_row))
    stepping = Stepping(chunk=config.chunk, segments=config.segments)
    planned = (grouped.groupby("user_id", num_partitions=partitions(plan.rows_read))
               .map_groups(_plan_group, batch_format="pyarrow", fn_kwargs={"run_key": run_key, "stepping": stepping})
               .materialize())
    import pyarrow.compute as pc

    plan.users = planned.count()
    for batch in planned.select_columns(["action", "steps", "interactions"]).iter_batches(
            batch_format="pyarrow", batch_size=65536):
        for action, count in zip(*_value_counts(batch["action"])):
            plan.actions[action] = plan.actions.get(action, 0) + count
        run = batch.filter(pc.equal(batch["action"], "run"))
        plan.interactions += pc.sum(run["interactions"]).as_py() or 0
        plan.model_calls += pc.sum(run["steps"]).as_py() or 0
    return rows, planned, plan


def _value_counts(column) -> tuple[list, list]:
    import pyarrow.compute as pc

    counts = pc.value_counts(column)
    return counts.field("values").to_pylist(), counts.field("counts").to_pylist()


def partitions(rows: int) -> int:
    """Shuffle partitions for grouping `rows` rows: Ray's default (200) is for big data; a small job
    would spend its time starting them."""
    return max(1, min(200, math.ceil(rows / ROWS_PER_PARTITION)))


def rejects(rows):
    """The rejected rows of the read, as rejects.jsonl holds them."""
    return ({"source": r["source"], "line": r["line"], "reason": r["reason"], "row": r["payload"]}
            for r in rows.filter(expr=col("kind") == "reject").iter_rows())


def _past_path(past: str) -> str:
    return past if past.endswith(".parquet") else f"{past.rstrip('/')}/{PROFILES}"


def estimate_tokens(planned, config: BatchConfig) -> int:
    style = config.style or ("reasoning" if _thinks(config.model) else "direct")
    est = planned.map_batches(_estimate, batch_format="pyarrow",
                              fn_kwargs={"prompts": config.prompts, "style": style})
    return int(est.sum("est_prompt_tokens") or 0)


def _thinks(spec: str) -> bool:
    from ..llm.base import thinks_by_name

    return thinks_by_name(spec)


# ------------------------------------------------------------------------------------------------ run
def _use_http(config: BatchConfig) -> bool:
    if config.engine is not None:
        return config.engine == "http"
    if not config.model.startswith("openai:"):
        return False
    from ._http import available

    return available()


def run_files(config: BatchConfig) -> Summary:
    assert config.out is not None
    start = time.time()
    run = time.time_ns()
    settings = model_settings(config)
    _, planned, plan = build_plan(config, settings.run_key())
    tallies = []
    todo = planned.filter(expr=col("action") == "run")
    if plan.actions.get("run"):
        if _use_http(config):
            from ._http import run_http

            tallies.append(run_http(todo, settings, config, run))
        else:
            stage = todo.map_batches(ProfileStage, batch_size=config.batch_size, batch_format="pyarrow",
                                     compute=ray_module().data.ActorPoolStrategy(size=config.workers),
                                     fn_constructor_kwargs={"settings": settings, "out": config.out, "run": run})
            tallies.append(stage.materialize())
    if plan.actions.get("unchanged"):
        carried = planned.filter(expr=col("action") == "unchanged")
        tallies.append(carried.map_batches(_unchanged_stage, batch_size=4096, batch_format="pyarrow",
                                           fn_kwargs={"out": config.out, "run": run}).materialize())
    users_written = consolidate(config.out, planned)
    summary = Summary(users=plan.users, rows_read=plan.rows_read, rows_rejected=plan.rows_rejected,
                      users_resumed=plan.actions.get("resumed", 0), model=config.model,
                      prompt_version=_prompt_version(config))
    import pyarrow.compute as pc

    for tally in tallies:
        for batch in tally.iter_batches(batch_format="pyarrow", batch_size=65536):
            counts = dict(zip(*_value_counts(batch["status"])))
            summary.users_done += counts.get("done", 0)
            summary.users_failed += counts.get("failed", 0)
            summary.users_unchanged += counts.get("unchanged", 0)
            summary.interactions += pc.sum(pc.if_else(pc.equal(batch["status"], "unchanged"), 0,
                                                      batch["interactions"])).as_py() or 0
            summary.prompt_tokens += pc.sum(batch["prompt_tokens"]).as_py() or 0
            summary.completion_tokens += pc.sum(batch["completion_tokens"]).as_py() or 0
    summary.users_skipped = summary.users_resumed + summary.users_unchanged
    if users_written != plan.users:
        raise PrefscribeError(f"{plan.users} users planned but {users_written} rows written to {PROFILES}")
    summary.wall_seconds = round(time.time() - start, 3)
    summary.users_per_second = round(summary.users_done / summary.wall_seconds, 4) if summary.wall_seconds else 0.0
    summary.tokens_per_second = round((summary.prompt_tokens + summary.completion_tokens) / summary.wall_seconds,
                                      2) if summary.wall_seconds else 0.0
    summary.write(config.out)
    return summary


def _prompt_version(config: BatchConfig) -> str:
    from ..prompts import get_prompts

    return get_prompts(config.prompts).version


def _final_group(group):
    """The output row of a user: among its parts for the input planned in this run, the best."""
    import pyarrow as pa

    rows = group.to_pylist()
    want = next(json.loads(r["payload"])["input_hash"] for r in rows if r["kind"] == "plan")
    outs = [json.loads(r["payload"]) for r in rows if r["kind"] == "out"]
    outs = [o for o in outs if o["input_hash"] == want]
    return pa.Table.from_pylist([pick(outs)] if outs else [], schema=schema())


def _plan_marker(row: dict[str, Any]) -> dict[str, Any]:
    return {"user_id": row["user_id"], "kind": "plan", "payload": json.dumps({"input_hash": row["input_hash"]})}


def _out_marker(row: dict[str, Any]) -> dict[str, Any]:
    return {"user_id": row["user_id"], "kind": "out", "payload": json.dumps(row, ensure_ascii=False, default=str)}


def consolidate(out: str, planned) -> int:
    """profiles.parquet from the parts: exactly one row per planned user. Returns the row count."""
    ray = ray_module()
    parts = part_files(out)
    if not parts:
        return write_final(out, [])
    markers = planned.map(_plan_marker).union(ray.data.read_parquet(parts).map(_out_marker))
    final = (markers.groupby("user_id", num_partitions=partitions(planned.count()))
             .map_groups(_final_group, batch_format="pyarrow"))
    return write_final(out, final.iter_batches(batch_format="pyarrow", batch_size=4096))


def dry_run(config: BatchConfig) -> Plan:
    """The plan of the job, from the rows and the earlier outputs; nothing is written."""
    config.check()
    if not config.interactions:
        raise InputError("--dry-run plans files: give --interactions")
    expand(config.interactions)  # a missing file is an error before Ray starts
    connect(config)
    settings = model_settings(config)
    _, planned, plan = build_plan(config, settings.run_key(), write=False)
    plan.est_prompt_tokens = estimate_tokens(planned.filter(expr=col("action") == "run"), config)
    return plan


def run_batch(config: BatchConfig) -> Summary:
    """Run the job described by `config` on the connected (or a new local) Ray cluster."""
    config.check()
    if config.interactions:
        expand(config.interactions)  # a missing file is an error before Ray starts
    connect(config)
    if config.db:
        from ._db import run_db

        return run_db(config)
    return run_files(config)
