"""Reading benchmark files, and saying exactly where they are wrong.

Every function here raises `InputError` naming the file, the line (or row) and the field; none of them
skips a bad row. Loaders build on these so each one only has to describe its own format.
"""

from __future__ import annotations

import ast
import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..schema import decode_utf8, jsonl_objects

# Benchmark CSVs carry whole conversations in one cell (PersonaMem, MIND abstracts): the csv module's
# default 128 KiB cell limit would reject them.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def require_file(path: Path, what: str) -> Path:
    """Return `path` if it is a readable file, else an InputError that says what was expected there."""
    if path.is_dir():
        raise InputError(f"expected {what}, found a directory", path=str(path))
    if not path.is_file():
        raise InputError(f"{what} not found", path=str(path))
    return path


def read_text(path: Path, what: str = "the file") -> str:
    require_file(path, what)
    return decode_utf8(path.read_bytes(), str(path))


def iter_jsonl(path: Path, what: str = "a JSONL file") -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line; every line must be a JSON object."""
    yield from jsonl_objects(read_text(path, what), str(path))


def read_json(path: Path, what: str = "a JSON file") -> Any:
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"malformed JSON ({exc.msg} at column {exc.colno})", path=str(path),
                         line=exc.lineno) from None


def read_csv(path: Path, required: tuple[str, ...], what: str = "a CSV file",
             delimiter: str = ",") -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) with the header checked for `required` columns.

    The line number is the physical line where the row starts, what an editor shows, even when quoted
    cells span several lines (MIND and PersonaMem cells hold newlines).
    """
    text = read_text(path, what)
    reader = csv.DictReader(text.splitlines(keepends=True), delimiter=delimiter)
    header = reader.fieldnames or []
    missing = [name for name in required if name not in header]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}; found {', '.join(header) or 'no header'}",
                         path=str(path), line=1, field=missing[0])
    ended = reader.line_num
    for row in reader:
        start, ended = ended + 1, reader.line_num
        if None in row:  # more cells than header columns: a shifted row, not data to guess about
            raise InputError(f"{len(header) + len(row[None])} cells for {len(header)} columns",
                             path=str(path), line=start)
        if any(value is None for value in row.values()):
            short = next(name for name, value in row.items() if value is None)
            raise InputError("row has fewer cells than the header", path=str(path), line=start, field=short)
        yield start, row


def read_rows(path: Path, what: str) -> list[tuple[int, dict[str, Any]]]:
    """Rows of a record file whatever its container: JSONL, a JSON array, CSV or Parquet.

    The number is the line for JSONL and CSV, the 1-based element for a JSON array or Parquet table.
    """
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return list(iter_jsonl(path, what))
    if suffix == ".json":
        data = read_json(path, what)
        if isinstance(data, dict):  # a JSON-lines file saved as .json holds one object: same rows
            data = [data]
        if not isinstance(data, list):
            raise InputError(f"expected a JSON array of records, found {type(data).__name__}", path=str(path))
        rows = []
        for number, obj in enumerate(data, start=1):
            if not isinstance(obj, dict):
                raise InputError(f"element {number} is {type(obj).__name__}, expected an object",
                                 path=str(path), field=f"[{number - 1}]")
            rows.append((number, obj))
        return rows
    if suffix == ".csv":
        return [(n, dict(row)) for n, row in read_csv(path, (), what)]
    if suffix == ".parquet":
        require_file(path, what)
        try:
            import pandas as pd
            frame = pd.read_parquet(path)
        except ImportError as exc:
            raise InputError(f"reading Parquet needs pyarrow: pip install pyarrow ({exc})",
                             path=str(path)) from None
        return [(i, _plain(row)) for i, row in enumerate(frame.to_dict(orient="records"), start=1)]
    raise InputError(f"unsupported file type '{suffix or '(none)'}' for {what}; use .jsonl, .json, .csv "
                     "or .parquet", path=str(path))


def _plain(value: Any) -> Any:
    """Parquet cells come back as numpy arrays and scalars; turn them into lists, dicts and str."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def field(obj: dict[str, Any], name: str, kind: type | tuple[type, ...], *, path: Path, line: int | None,
          prefix: str = "", optional: bool = False) -> Any:
    """`obj[name]` checked for presence and type; `prefix` places nested fields ('history[2].')."""
    where = f"{prefix}{name}"
    if name not in obj or obj[name] is None:
        if optional:
            return None
        raise InputError("missing" if name not in obj else "is null", path=str(path), line=line, field=where)
    value = obj[name]
    if not isinstance(value, kind) or isinstance(value, bool) and bool not in _as_tuple(kind):
        expected = " or ".join(k.__name__ for k in _as_tuple(kind))
        raise InputError(f"expected {expected}, found {type(value).__name__}", path=str(path), line=line,
                         field=where)
    return value


def text_field(obj: dict[str, Any], name: str, *, path: Path, line: int | None, prefix: str = "",
               optional: bool = False) -> str | None:
    """A string field that must hold text: blank counts as missing (a blank item cannot be preferred)."""
    value = field(obj, name, str, path=path, line=line, prefix=prefix, optional=optional)
    if value is not None and not value.strip():
        if optional:
            return None
        raise InputError("is blank", path=str(path), line=line, field=f"{prefix}{name}")
    return value


def embedded(value: Any, *, path: Path, line: int | None, field_name: str) -> Any:
    """Decode a structured cell a CSV (or a careless JSON export) stored as text: JSON first, then a
    Python literal (lists written with repr() use single quotes). Non-strings pass through."""
    if not isinstance(value, str):
        return value
    stripped = value.strip()
    if not stripped or stripped[0] not in "[{":
        return value
    try:
        return json.loads(stripped)
    except json.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(stripped)
    except (ValueError, SyntaxError):
        raise InputError("looks like a list or object but is neither JSON nor a Python literal",
                         path=str(path), line=line, field=field_name) from None


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)
