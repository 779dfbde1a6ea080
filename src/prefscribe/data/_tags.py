"""An item's tags: the words of its metadata a measured profile can count (genres, categories, era).

Loaders put them in each interaction's meta: `tags` describes the chosen item, `rejected_tags` the rejected one.
A history written by hand may carry the same two keys."""

from __future__ import annotations

import re
from collections.abc import Iterable

_YEAR = re.compile(r"\((\d{4})\)\s*$")


def year_of(title: str) -> str | None:
    """The year MovieLens and RecBole titles end with: "Heat (1995)" -> "1995"."""
    match = _YEAR.search(title.strip())
    return match.group(1) if match else None


def era(year: str | int | None) -> str | None:
    """A decade, the grain at which taste in era shows: 1995 -> "1990s"."""
    try:
        value = int(str(year).strip()[:4])
    except (TypeError, ValueError):
        return None
    return f"{value // 10 * 10}s" if 1800 <= value <= 2100 else None


def clean_tags(tags: Iterable[str | None]) -> list[str]:
    """Tags as a profile names them: stripped, no colon (it separates a tag from its kind in the evidence
    keys), each once, in order."""
    out: list[str] = []
    for tag in tags:
        text = " ".join((tag or "").replace(":", " ").split())
        if text and text not in out:
            out.append(text)
    return out
