"""The people a writer has measured, in the order it measured them: what "run" calibration compares with.

Each call of the writer compares with everyone measured up to and including its own people: a prefix of this
order. Kept in a file (an evaluation keeps it in its run folder), the order outlives the process: a resumed run
reads it back, a call made again compares with exactly the people it compared with the first time, and a new
call with everyone measured before it, so a run stopped and resumed writes the texts an uninterrupted run
writes. The file is JSON Lines, appended to, one writer's lines among others' told apart by `writer`:

    {"writer": ..., "person": digest, "scores": [[key, {quality: s, ...}], ...]}   one per person, in order
    {"writer": ..., "call": digest, "people": n}          one per call: it compared with the first n people
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import astuple, dataclass
from pathlib import Path

from ..errors import InputError
from ._scoring import Comparison, Scored


@dataclass(frozen=True)
class Measured:
    """One comparison of a person as a population needs it: its kind (Comparison.key) and its scores."""

    key: str
    scores: dict[str, float]


Person = list[Measured]


def person_digest(comparisons: Sequence[Comparison]) -> str:
    """Who a person is: the comparisons they were measured on (the same comparisons give the same scores)."""
    blob = json.dumps([astuple(c) for c in comparisons], ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def person_of(scored: Sequence[Scored]) -> Person:
    """Each comparison's model scores, and its tag counts where its items have tags."""
    person = []
    for s in scored:
        if s.scores or s.errors:  # a comparison measured by its tags alone has no model scores
            person.append(Measured(s.comparison.key, dict(s.scores)))
        if tags := s.comparison.tag_scores:
            person.append(Measured(s.comparison.tag_key, tags))
    return person


class Population:
    def __init__(self) -> None:
        self.people: dict[str, Person] = {}     # by digest, in the order measured
        self._calls: list[tuple[str, int]] = []  # the kept file's calls, in order: (digest, people)
        self._next = 0                           # the file's calls before this one were made again or passed
        self._path: Path | None = None
        self._writer = ""

    def keep(self, path: Path, writer: str) -> None:
        """Keep the population in `path` from now on: read back the people and calls of `writer` it holds, and
        write in it those measured before that it lacks. The file's people come first (they were measured
        first): the order is then the file's, which the calls it records count in."""
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        people, calls = _read(text, path, writer)
        _mend(path, text)
        lacking = {d: p for d, p in self.people.items() if d not in people}
        self.people = people | lacking
        self._calls, self._next, self._path, self._writer = calls, 0, path, writer
        self._append([self._person_line(d, p) for d, p in lacking.items()])

    def add(self, call: Sequence[tuple[str, Person]]) -> list[Person]:
        """Add the people of one call (digest, person) and return the people it compares with: as recorded
        when the kept file holds this call, else everyone measured so far, this call's people included."""
        digest = hashlib.sha256(json.dumps([d for d, _ in call]).encode()).hexdigest()[:24]
        new = {d: p for d, p in call if d not in self.people}
        self.people.update(new)
        lines = [self._person_line(d, p) for d, p in new.items()]
        n = self._recorded(digest)
        if n is None:
            n = len(self.people)
            lines.append({"writer": self._writer, "call": digest, "people": n})
        self._append(lines)
        return list(self.people.values())[:n]

    def _recorded(self, digest: str) -> int | None:
        """The people a call made before compared with: the file's next call of that digest, so that calls made
        again in the order of the first run each find their own (calls not made again are passed over)."""
        for i in range(self._next, len(self._calls)):
            if self._calls[i][0] == digest:
                self._next = i + 1
                return self._calls[i][1]
        return None

    def _person_line(self, digest: str, person: Person) -> dict:
        return {"writer": self._writer, "person": digest, "scores": [[m.key, m.scores] for m in person]}

    def _append(self, lines: list[dict]) -> None:
        if self._path is not None and lines:
            with self._path.open("a", encoding="utf-8") as fh:
                fh.write("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))


def _mend(path: Path, text: str) -> None:
    """End the file on a whole line: a last line a stop cut short (_read passed over it) is cut off, so that
    what is appended next starts a line of its own; a whole last line without its newline gets it."""
    if not text or text.endswith("\n"):
        return
    start = text.rfind("\n") + 1
    try:
        json.loads(text[start:])
    except ValueError:
        os.truncate(path, len(text[:start].encode("utf-8")))
    else:
        with path.open("a", encoding="utf-8") as fh:
            fh.write("\n")


def _read(text: str, path: Path, writer: str) -> tuple[dict[str, Person], list[tuple[str, int]]]:
    """`writer`'s people and calls in the file's text (another writer's lines are passed over)."""
    people: dict[str, Person] = {}
    calls: list[tuple[str, int]] = []
    lines = text.split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if row["writer"] != writer:
                continue
            if "person" in row:
                people.setdefault(row["person"], [Measured(k, {q: float(s) for q, s in scores.items()})
                                                  for k, scores in row["scores"]])
            else:
                calls.append((row["call"], int(row["people"])))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            if number == len(lines):  # the last line, cut short by a stop while it was written
                break
            raise InputError(f"line {number} is not a measured person or call ({exc}): delete the file to "
                             "measure everyone again", path=str(path)) from None
    return people, calls
