"""Strict JSON for request bodies: what every /v1 body must be before any route reads it.

Python's json module accepts more than JSON and more than the databases store: NaN and Infinity (not
JSON; stored, they read back as null), numbers of any length (an int of 5,000 digits raises deep inside,
a float of 400 digits becomes Infinity), nesting until the interpreter's recursion limit, and strings with
lone surrogates (no UTF-8 encoding exists, so no database can store them). Each is refused here with the
same answer on every endpoint and database: 400 invalid_json for what is not JSON, 422 invalid_request,
naming where in the body, for a lone surrogate. (NUL characters are JSON and are refused only where a text
column would hold them: the models say so in the schema.)
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from fastapi import Request

from .errors import ApiError

MAX_DEPTH = 32          # arrays and objects inside one another
MAX_NUMBER_CHARS = 100  # a number's literal, sign and exponent included
_SURROGATE = re.compile("[\ud800-\udfff]")
# The body was decoded as strict UTF-8, so a lone surrogate can only come from a \u escape: a body with no
# escape of D800-DFFF needs no look at its strings (the common case, and the costly part of `check`).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_json", f"the body is not valid JSON: {message}")


def _constant(name: str) -> Any:
    raise _invalid(f"{name} is not a JSON number")


def _number(literal: str) -> None:
    if len(literal) > MAX_NUMBER_CHARS:
        raise _invalid(f"a number of {len(literal)} characters; the limit is {MAX_NUMBER_CHARS}")


def _int(literal: str) -> int:
    _number(literal)
    return int(literal)


def _float(literal: str) -> float:
    _number(literal)
    value = float(literal)
    if not math.isfinite(value):
        raise _invalid(f"{literal} is out of the range of a double")
    return value


_DECODER = json.JSONDecoder(parse_constant=_constant, parse_int=_int, parse_float=_float)


def loads_all(text: str) -> list[Any]:
    """Every JSON value in `text`: one, or several one after another (JSON Lines, or JSON Lines whose
    newlines `curl -d` stripped). Each is checked as `check` does."""
    values, at, end = [], 0, len(text)
    escapes = _SURROGATE_ESCAPE.search(text) is not None
    while True:
        while at < end and text[at] in " \t\r\n":
            at += 1
        if at >= end:
            return values
        try:
            value, at = _DECODER.raw_decode(text, at)
        except json.JSONDecodeError as exc:
            raise _invalid(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
        except RecursionError:
            raise _invalid(f"nested deeper than {MAX_DEPTH} levels") from None
        if escapes or not _shallow(value):  # else nothing `check` refuses can be in it
            check(value, f"$[{len(values)}]" if values or at < end else "$")
        values.append(value)


def _shallow(value: Any) -> bool:
    """No array or object nested MAX_DEPTH deep, checked level by level without the paths `check` builds
    for its messages."""
    level = [value] if isinstance(value, (dict, list)) else []
    for _ in range(MAX_DEPTH):
        if not level:
            return True
        level = [child for node in level for child in (node.values() if isinstance(node, dict) else node)
                 if isinstance(child, (dict, list))]
    return not level


def _where(path: str, key: str | int) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}"


def check(value: Any, root: str = "$") -> None:
    """Refuse nesting deeper than MAX_DEPTH and text with lone surrogates."""
    stack: list[tuple[Any, str, int]] = [(value, root, 0)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, str):
            _text(node, path)
        elif isinstance(node, (dict, list)):
            if depth >= MAX_DEPTH:
                raise _invalid(f"at {path}: nested deeper than {MAX_DEPTH} levels")
            entries = node.items() if isinstance(node, dict) else enumerate(node)
            for key, child in entries:
                if isinstance(key, str):
                    _text(key, f"{path} (a key)")
                stack.append((child, _where(path, key), depth + 1))


def _text(value: str, path: str) -> None:
    found = _SURROGATE.search(value)
    if found is not None:
        raise ApiError(422, "invalid_request", f"at {path}: the text has a lone surrogate "
                       f"(\\u{ord(found.group()):04x}), which is not Unicode text", field=path)


async def strict_json_body(request: Request) -> None:
    """A dependency of every /v1 route: a body, when there is one, is strict JSON (see the module).
    The values are kept on request.state for the route that reads the raw body (ingest)."""
    if request.method in ("GET", "HEAD", "DELETE", "OPTIONS"):
        return
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_encoding", f"the body is not UTF-8 (byte {exc.start})") from None
    request.state.json_values = loads_all(text)
