"""The output folder: part files written as users finish (what makes a rerun resume), then one
`profiles.parquet` with exactly one row per user, `rejects.jsonl` and `summary.json`.

A part is written whole or not at all (a temporary name, then a rename; an object store's put is atomic
anyway), and its name is the hash of its rows' users and inputs, so a retried task rewrites the same part
instead of adding a second one."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from ._write import OUTPUT_COLUMNS, STATUSES

PARTS = "parts"
PROFILES = "profiles.parquet"
REJECTS = "rejects.jsonl"
SUMMARY = "summary.json"


def schema():
    import pyarrow as pa

    return pa.schema([("user_id", pa.string()), ("profile", pa.string()), ("reasoning", pa.string()),
                      ("covers", pa.int64()), ("model", pa.string()), ("prompt_version", pa.string()),
                      ("prompt_tokens", pa.int64()), ("completion_tokens", pa.int64()), ("status", pa.string()),
                      ("error", pa.string()), ("covered_through", pa.float64()), ("input_hash", pa.string()),
                      ("run", pa.int64())])


def table(rows: list[dict[str, Any]], run: int):
    import pyarrow as pa

    return pa.Table.from_pylist([{**{k: r.get(k) for k in OUTPUT_COLUMNS}, "run": run} for r in rows],
                                schema=schema())


def _fs(url: str):
    import fsspec

    return fsspec.core.url_to_fs(url)


def write_part(out: str, rows: list[dict[str, Any]], run: int) -> None:
    import pyarrow.parquet as pq

    if not rows:
        return
    fs, root = _fs(out)
    name = hashlib.sha256("".join(f"{r['user_id']}\0{r['input_hash']}\0{r['status']}\n" for r in rows)
                          .encode()).hexdigest()[:24]
    folder = f"{root}/{PARTS}"
    fs.makedirs(folder, exist_ok=True)
    final = f"{folder}/part-{name}.parquet"
    from fsspec.implementations.local import LocalFileSystem

    local = isinstance(fs, LocalFileSystem)
    target = f"{folder}/.tmp-{uuid.uuid4().hex}" if local else final
    with fs.open(target, "wb") as fh:
        pq.write_table(table(rows, run), fh)
    if local:
        fs.mv(target, final)


def exists(url: str) -> bool:
    fs, path = _fs(url)
    return fs.exists(path)


def part_files(out: str) -> list[str]:
    fs, root = _fs(out)
    folder = f"{root}/{PARTS}"
    if not fs.exists(folder):
        return []
    return sorted(fs.unstrip_protocol(p) if "://" in out else p
                  for p in fs.glob(f"{folder}/part-*.parquet"))


def pick(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The one output of a user among the parts of every run for its current input: a profile over a
    failure, then the latest run."""
    return min(rows, key=lambda r: (STATUSES.index(r["status"]), -int(r["run"] or 0)))


def write_rejects(out: str, rejects: Iterable[dict[str, Any]]) -> int:
    fs, root = _fs(out)
    fs.makedirs(root, exist_ok=True)
    count = 0
    with fs.open(f"{root}/{REJECTS}", "w", encoding="utf-8") as fh:
        for reject in rejects:
            fh.write(json.dumps(reject, ensure_ascii=False) + "\n")
            count += 1
    return count


def write_final(out: str, batches: Iterable[Any]) -> int:
    """Stream the final rows (pyarrow tables) into one Parquet file; returns the row count."""
    import pyarrow.parquet as pq

    fs, root = _fs(out)
    columns = list(OUTPUT_COLUMNS)
    target = schema()
    target = target.remove(target.get_field_index("run"))
    count = 0
    with fs.open(f"{root}/{PROFILES}", "wb") as fh, pq.ParquetWriter(fh, target) as writer:
        for batch in batches:
            if batch.num_rows:
                writer.write_table(batch.select(columns).cast(target))
                count += batch.num_rows
    return count


class Summary(BaseModel):
    users: int = 0
    users_done: int = 0
    users_skipped: int = 0        # already done by an earlier run of this job, or no new interactions
    users_resumed: int = 0
    users_unchanged: int = 0
    users_failed: int = 0
    rows_read: int = 0
    rows_rejected: int = 0
    interactions: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    wall_seconds: float = 0.0
    users_per_second: float = 0.0
    tokens_per_second: float = 0.0
    model: str = ""
    prompt_version: str = ""

    def write(self, out: str) -> None:
        fs, root = _fs(out)
        with fs.open(f"{root}/{SUMMARY}", "w", encoding="utf-8") as fh:
            fh.write(self.model_dump_json(indent=2) + "\n")
