"""The qualities a measured profile can name, and the prompts that measure them: one prompt set's
`qualities.yaml`, `measure_system.txt`, `measure_user.j2` and `measured_profile.j2`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import jinja2
import yaml

from ..errors import InputError
from ..llm.base import Conversation
from ..prompts import PromptSet, clip_item

Kind = Literal["replies", "items"]
KINDS: tuple[Kind, ...] = ("replies", "items")
FILES = ("qualities.yaml", "measure_system.txt", "measure_user.j2", "measured_profile.j2")
TEXT = "measured_profile.j2"  # how a profile is worded: not part of what is measured
PREFILL = "Answer:"  # the reply starts here; the next token is the letter
OPTIONS = (" A", " B")
NOUNS = {"replies": ("Reply", "replies"), "items": ("Item", "items")}


@dataclass(frozen=True)
class Quality:
    id: str
    more: str        # the preference asked about: "This user prefers the reply that is <more>."
    less: str        # the other pole, for the profile text
    more_short: str  # the evidence's phrase: "chose the <more_short> one"
    less_short: str


@dataclass(frozen=True)
class Kept:
    """A quality on which a user's choices depart from other people's, as the profile states it."""

    nouns: str
    pole: str
    short: str
    agree: int   # comparisons where the user took the item on that pole
    n: int
    z: float


@dataclass(frozen=True)
class KeptTag:
    """A tag (genre, category, era) the user's choices take or pass over more often than other people's."""

    tag: str
    likes: bool
    took: int           # comparisons where the user took the item with the tag (positive-only: picks with it)
    n: int              # comparisons where one item had it and the other did not (positive-only: all picks)
    others: int | None  # percent of such comparisons where other people took it (positive-only: of their
                        # picks that have it); None: no population
    z: float
    strength: float = 0.0  # what orders the stated tags: |z| of a pair's count; of a share, its distance from
                           # other people's (a rare tag picked twice has a large z, and rarely decides anything)


class Vocabulary:
    """The measuring prompts and qualities of a prompt set. `version` names what is measured (the qualities and
    the scoring prompt): caches and calibration tables are keyed by it. `text_version` adds the wording of the
    profile: profiles name it."""

    def __init__(self, prompts: PromptSet) -> None:
        folder = prompts.folder
        missing = [name for name in FILES if not (folder / name).is_file()]
        if missing:
            raise InputError(f"the prompt set has no measured-profile templates ({', '.join(missing)}): "
                             f"copy them from the built-in set, or use the free-text writer (--writer free)",
                             path=str(folder))
        sources = {name: (folder / name).read_text(encoding="utf-8") for name in FILES}
        # Independent of the other templates' version: editing the judge prompt must not void calibrations, nor
        # editing how a profile is worded the measurements (`text_version` names the wording too).
        measuring = [sources[name] for name in FILES if name != TEXT]
        self.version = "measure+" + _digest(measuring)
        self.text_version = f"{self.version}+text+{_digest([sources[TEXT]])}"
        table = yaml.safe_load(sources["qualities.yaml"])
        self.qualities: dict[Kind, list[Quality]] = {kind: _qualities(table, kind) for kind in KINDS}
        env = jinja2.Environment(keep_trailing_newline=True, undefined=jinja2.StrictUndefined, autoescape=False)
        self._system = sources["measure_system.txt"].strip()
        self._user = env.from_string(sources["measure_user.j2"])
        self._profile = env.from_string(sources["measured_profile.j2"])

    @cached_property
    def ids(self) -> dict[Kind, list[str]]:
        return {kind: [q.id for q in self.qualities[kind]] for kind in KINDS}

    def quality(self, kind: Kind, quality_id: str) -> Quality:
        for q in self.qualities[kind]:
            if q.id == quality_id:
                return q
        raise KeyError(f"{kind}:{quality_id}")

    def messages(self, kind: Kind, context: str | None, first: str, second: str, quality: Quality) -> Conversation:
        """The prompt asking which of two texts a user who prefers `quality` would take. The quality comes after
        both texts, so every quality's prompt for one pair shares the pair's tokens (its KV cache is computed
        once)."""
        user = self._user.render(context=clip_item(context), noun=NOUNS[kind][0], first=clip_item(first),
                                 second=clip_item(second),
                                 quality=quality.more)
        return [{"role": "system", "content": self._system}, {"role": "user", "content": user.strip()}]

    def render(self, kept: list[Kept], tags: list[KeptTag], measured: int) -> str:
        return self._profile.render(kept=kept, tags=tags, measured=measured).strip()


def _digest(texts: list[str]) -> str:
    return hashlib.sha256("\0".join(texts).encode()).hexdigest()[:8]


def _qualities(table: object, kind: Kind) -> list[Quality]:
    rows = table.get(kind) if isinstance(table, dict) else None
    if not isinstance(rows, list) or not rows:
        raise InputError(f"qualities.yaml needs a non-empty list under {kind!r}", field=kind)
    out = []
    for number, row in enumerate(rows, start=1):
        try:
            out.append(Quality(**row))
        except TypeError as exc:
            raise InputError(f"quality {number} of {kind!r}: {exc}", field=f"{kind}.{number}") from None
    if len({q.id for q in out}) != len(out):
        raise InputError(f"quality ids under {kind!r} repeat", field=kind)
    return out
