"""Formats by name: what `prefscribe export --format`, `import` and the service's export route look up.
A format turns a UserDocument into text and, when it can, text back into one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import InputError
from ._records import UserDocument

Dump = Callable[[UserDocument], str]
Load = Callable[[str, str], UserDocument]  # (text, source name for errors) -> document


@dataclass(frozen=True)
class Format:
    """name: as typed after --format; media_type / suffix: for HTTP responses and file names; load: None
    for formats made for reading only (Markdown)."""

    name: str
    media_type: str
    suffix: str
    dump: Dump
    load: Load | None = None
    sniff: Callable[[object], bool] | None = None  # does this parsed JSON look like the format?


FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    FORMATS[fmt.name] = fmt
    return fmt


def get_format(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise InputError(f"unknown format {name!r}: use one of {', '.join(sorted(FORMATS))}",
                         field="format") from None


def loader(fmt: Format) -> Load:
    if fmt.load is None:
        readable = ", ".join(sorted(n for n, f in FORMATS.items() if f.load))
        raise InputError(f"{fmt.name} is written for reading only: import one of {readable}", field="format")
    return fmt.load
