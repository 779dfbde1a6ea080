"""Interaction rows from Parquet or JSONL files (local paths or any fsspec URL such as s3://), each one
validated: a good row becomes an `ItemRow`, a bad one a `Reject` naming its source, line (JSONL) or row
(Parquet, 1-based) and the reason. Nothing is skipped silently."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any

from pydantic import ValidationError

from ..errors import InputError
from ..schema import Interaction

REQUIRED = ("user_id", "timestamp", "chosen")
INTERACTION_FIELDS = ("context", "chosen", "rejected", "id", "domain")


@dataclass
class ItemRow:
    """One valid interaction of one user; `ts` (epoch seconds) orders the user's history."""

    user_id: str
    ts: float
    source: str
    line: int
    item: str  # the Interaction as JSON


@dataclass
class Reject:
    source: str
    line: int
    reason: str
    row: str  # the bad row as read, so nothing is lost

    def to_json(self) -> dict:
        return asdict(self)


def expand(patterns: list[str]) -> list[str]:
    """Every file the patterns (globs allowed, local or fsspec URLs) name, in sorted order."""
    import fsspec

    files: list[str] = []
    for pattern in patterns:
        fs, _, paths = fsspec.core.get_fs_token_paths(pattern)
        paths = [p for p in paths if not fs.isdir(p)]
        if not paths:
            raise InputError("no file matches", path=pattern)
        for path in sorted(paths):
            name = fs.unstrip_protocol(path) if "://" in pattern else path
            if not name.endswith((".jsonl", ".parquet")):
                raise InputError("unsupported file type: interactions are .jsonl or .parquet", path=name)
            files.append(name)
    return files


def read_source(source: str) -> Iterator[ItemRow | Reject]:
    """The rows of one file, validated one by one."""
    import fsspec

    with fsspec.open(source, "rb") as fh:
        if source.endswith(".parquet"):
            import pyarrow.parquet as pq

            number = 0
            for batch in pq.ParquetFile(fh).iter_batches(batch_size=4096):
                for obj in batch.to_pylist():
                    number += 1
                    yield validate(obj, source, number)
        else:
            for number, raw in enumerate(fh, start=1):
                line = raw.decode("utf-8", errors="replace")
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield Reject(source, number, f"malformed JSON ({exc.msg} at column {exc.colno})",
                                 line.rstrip("\n"))
                    continue
                yield validate(obj, source, number)


def source_rows(task: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of the file `task["source"]` in the one schema the job groups (a Ray flat_map stage)."""
    out = []
    for row in read_source(task["source"]):
        if isinstance(row, ItemRow):
            out.append({"user_id": row.user_id, "kind": "item", "ts": row.ts, "source": row.source,
                        "line": row.line, "payload": row.item, "reason": ""})
        else:
            out.append({"user_id": "", "kind": "reject", "ts": 0.0, "source": row.source, "line": row.line,
                        "payload": row.row, "reason": row.reason})
    return out


def validate(obj: Any, source: str, number: int) -> ItemRow | Reject:
    if not isinstance(obj, dict):
        return Reject(source, number, f"expected an object, found {type(obj).__name__}", _dump(obj))
    try:
        return _item(obj, source, number)
    except InputError as exc:
        return Reject(source, number, str(exc), _dump(obj))


def _item(obj: dict[str, Any], source: str, number: int) -> ItemRow:
    for name in REQUIRED:
        if obj.get(name) is None:
            raise InputError("missing" if name not in obj else "is null", field=name)
    user = obj["user_id"]
    if isinstance(user, bool) or not isinstance(user, (str, int)) or not str(user).strip():
        raise InputError("expected a non-empty string or integer", field="user_id")
    ts = epoch(obj["timestamp"])
    fields = {k: obj.get(k) for k in INTERACTION_FIELDS if obj.get(k) is not None}
    if isinstance(fields.get("id"), int) and not isinstance(fields["id"], bool):
        fields["id"] = str(fields["id"])
    meta = {k: v for k, v in obj.items() if k not in (*INTERACTION_FIELDS, "user_id", "timestamp")
            and v is not None}
    stamp = obj["timestamp"]
    if isinstance(stamp, (datetime, date)):
        stamp = datetime.fromtimestamp(ts, UTC).isoformat()
    try:
        item = Interaction(**fields, timestamp=stamp, meta=_plain(meta))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InputError(first["msg"], field=".".join(str(p) for p in first["loc"])) from None
    return ItemRow(str(user), ts, source, number, item.model_dump_json(exclude_defaults=True))


def epoch(value: Any) -> float:
    """Seconds since 1970 from a number, an ISO 8601 string or a datetime (naive means UTC)."""
    if isinstance(value, bool):
        raise InputError("expected a number, an ISO 8601 string or a timestamp", field="timestamp")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise InputError("is not a finite number", field="timestamp")
        return float(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InputError(f"{value!r} is not an ISO 8601 date-time or a number", field="timestamp") from None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()
    raise InputError(f"expected a number, an ISO 8601 string or a timestamp, found {type(value).__name__}",
                     field="timestamp")


def _plain(value: Any) -> Any:
    """Parquet cells (datetimes, decimals, bytes) made JSON-safe for `meta`."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def _dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)
