"""prefscribe's own format: the UserDocument as JSON (docs/export.md documents every field). Reading it
checks the whole document before anything is stored, and names the record and field of the first fault."""

from __future__ import annotations

import json

from pydantic import ValidationError

from ..errors import InputError
from ._records import DOCUMENT, UserDocument
from ._registry import Format, register


def dump(doc: UserDocument) -> str:
    return json.dumps(doc.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"


def parse_json(text: str, source: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"malformed JSON ({exc.msg} at column {exc.colno})", path=source, line=exc.lineno) from None


def where(loc: tuple) -> str:
    """A pydantic error location as a path a person can find: versions[2].covers."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def validated(data: object, source: str) -> UserDocument:
    try:
        doc = UserDocument.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InputError(first["msg"], path=source, field=where(first["loc"])) from None
    check_document(doc, source)
    return doc


def check_document(doc: UserDocument, source: str) -> None:
    """What a store needs of a chain: versions numbered 1..n, each parent before it, interactions numbered
    1..n, and no version claiming interactions the document does not hold."""
    count = len(doc.interactions)
    for i, item in enumerate(doc.interactions):
        if item.seq != i + 1:
            raise InputError(f"interactions must be numbered 1, 2, ... in order: expected {i + 1}, found {item.seq}",
                             path=source, field=f"interactions[{i}].seq")
    for i, v in enumerate(doc.versions):
        at = f"versions[{i}]"
        if v.version != i + 1:
            raise InputError(f"versions must be numbered 1, 2, ... oldest first: expected {i + 1}, found {v.version}",
                             path=source, field=f"{at}.version")
        if v.parent is not None and v.parent >= v.version:
            raise InputError(f"the parent of version {v.version} must come before it", path=source,
                             field=f"{at}.parent")
        if v.rollback_of is not None and v.rollback_of >= v.version:
            raise InputError(f"version {v.version} cannot roll back to a later version", path=source,
                             field=f"{at}.rollback_of")
        for name in ("covered_through", "last_seq"):
            value = getattr(v, name)
            if value is not None and value > count:
                raise InputError(f"version {v.version} covers interaction {value}, but the document holds {count}",
                                 path=source, field=f"{at}.{name}")


def load(text: str, source: str) -> UserDocument:
    return validated(parse_json(text, source), source)


def sniff(data: object) -> bool:
    return isinstance(data, dict) and data.get("format") == DOCUMENT


register(Format("json", "application/json", ".json", dump, load, sniff))
