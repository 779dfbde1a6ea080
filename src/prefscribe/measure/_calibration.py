"""Where other people's choices sit on each quality: the reference a user's choices are compared with.

The judge's scores carry its own leanings (it may call the longer reply "more rigorous" whoever chose it), so
a user's mean score means nothing against 0; against the distribution of scores over many people's
comparisons it does. A table holds, per comparison kind and quality, the mean and standard deviation of the
per-comparison score s over a population, and per comparison kind the population's axes of taste (_axes.py);
`prefscribe calibrate` builds one from dev users and the package ships small tables per model and vocabulary
version (measure/calibration/*.json)."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path

from pydantic import BaseModel, Field

from ..errors import InputError
from ._axes import Axis, fit_axes
from ._population import Measured
from ._scoring import ALL, SHARES, Scored, is_tags

SHIPPED = files("prefscribe") / "measure" / "calibration"
MIN_COMPARISONS = 16  # fewer than this and a population's spread is a guess
DEFAULT_THRESHOLD = 1.0  # |z| on an axis, in units of the noise of the user's mean; chosen on dev users
QUALITY_THRESHOLD = 2.5  # |z| of one quality, where a population is too small for axes: 22 tests at once


class QualityStats(BaseModel):
    """One quality's scores over a population. `within_std`: the spread of one person's scores around their own
    mean, pooled over people (the judge's noise); `std`: the spread of all scores (noise and taste together).
    A user's mean is compared with `mean` in units of `within_std`: a quality on which people differ only by
    noise then states nothing, and one on which they really differ states what sets the user apart."""

    mean: float
    std: float
    within_std: float
    comparisons: int
    people: int


class Calibration(BaseModel):
    """Per `<kind>:<quality>` (kind: replies, items, replies+positive, items+positive), the population's
    score distribution; per kind, its axes of taste (none where the population is too small or people differ
    only by noise). `threshold`: |z| on an axis from which it is stated (chosen on dev data)."""

    model: str
    vocabulary: str
    threshold: float = DEFAULT_THRESHOLD
    stats: dict[str, QualityStats]
    axes: dict[str, list[Axis]] = Field(default_factory=dict)
    source: dict[str, object] = Field(default_factory=dict)  # how it was built: data sets, users, seed

    def get(self, key: str, quality: str) -> QualityStats | None:
        return self.stats.get(f"{key}:{quality}")

    def covers(self, key: str) -> bool:
        return any(name.startswith(key + ":") for name in self.stats)

    def centre(self, key: str) -> dict[str, float]:
        return {name.split(":", 1)[1]: s.mean for name, s in self.stats.items() if name.split(":", 1)[0] == key}

    def write(self, path: str | Path) -> None:
        Path(path).write_text(self.model_dump_json(indent=1) + "\n", encoding="utf-8")


def population(people: Iterable[Iterable[Measured | Scored]], *, model: str, vocabulary: str, threshold: float = DEFAULT_THRESHOLD,
               source: dict[str, object] | None = None) -> Calibration:
    """A table from the scored comparisons of many people (one iterable of comparisons per person)."""
    values: dict[str, list[list[float]]] = {}
    vectors: dict[str, list[list[dict[str, float]]]] = {}  # per kind, per person, each comparison's scores
    counts: dict[str, list[Counter[str]]] = {}  # per shares kind, per person: picks with each tag (and ALL)
    for person in people:
        mine: dict[str, list[float]] = {}
        theirs: dict[str, list[dict[str, float]]] = {}
        picks: dict[str, Counter[str]] = {}
        for item in person:
            if item.key.endswith(SHARES):
                picks.setdefault(item.key, Counter()).update(item.scores.keys())
                continue
            theirs.setdefault(item.key, []).append(dict(item.scores))
            for quality, s in item.scores.items():
                mine.setdefault(f"{item.key}:{quality}", []).append(s)
        for name, scores in mine.items():
            values.setdefault(name, []).append(scores)
        for key, rows in theirs.items():
            vectors.setdefault(key, []).append(rows)
        for key, counter in picks.items():
            counts.setdefault(key, []).append(counter)
    stats = {name: _stats(groups) for name, groups in sorted(values.items())
             if sum(map(len, groups)) >= MIN_COMPARISONS and any(len(g) > 1 for g in groups)}
    for key, per_person in sorted(counts.items()):
        stats |= _shares(key, per_person)
    # Tag counts are sparse (each comparison has a few of the data set's tags): stated one by one, no axes.
    axes = {key: found for key, rows in sorted(vectors.items()) if not is_tags(key) and (found := fit_axes(rows))}
    return Calibration(model=model, vocabulary=vocabulary, threshold=threshold, stats=stats, axes=axes,
                       source=source or {})


def _stats(groups: list[list[float]]) -> QualityStats:
    flat = [v for g in groups for v in g]
    mean = sum(flat) / len(flat)
    var = sum((v - mean) ** 2 for v in flat) / max(1, len(flat) - 1)
    # Pooled within-person variance: each person's scores around their own mean.
    squares = sum((v - sum(g) / len(g)) ** 2 for g in groups for v in g)
    freedom = sum(len(g) - 1 for g in groups)
    within = math.sqrt(squares / freedom) if freedom else math.sqrt(var)
    return QualityStats(mean=mean, std=math.sqrt(var) or 1e-6, within_std=within or 1e-6, comparisons=len(flat),
                        people=len(groups))


def _shares(key: str, people: list[Counter[str]]) -> dict[str, QualityStats]:
    """Each tag's share of people's picks: `mean` the average person's share (each person counts once, however
    many picks they have), `within_std` a pick's binomial spread at that share, `std` the spread of people's
    shares. A person's share is compared with `mean` in units of `within_std / sqrt(their picks)`."""
    people = [c for c in people if c[ALL]]
    if sum(c[ALL] for c in people) < MIN_COMPARISONS:
        return {}
    stats = {}
    for tag in sorted({t for c in people for t in c} - {ALL}):
        shares = [c[tag] / c[ALL] for c in people]
        mean = sum(shares) / len(shares)
        spread = math.sqrt(sum((s - mean) ** 2 for s in shares) / max(1, len(shares) - 1))
        stats[f"{key}:{tag}"] = QualityStats(mean=mean, std=spread or 1e-6,
                                             within_std=math.sqrt(mean * (1 - mean)) or 1e-6,
                                             comparisons=sum(c[ALL] for c in people), people=len(people))
    return stats


def base_model(spec: str) -> str:
    """The model a table applies to: the spec without its engine (`embedded:1.5b+ort` -> `embedded:1.5b`).
    Engines of one model agree closely on these scores; a table per engine would be noise."""
    return spec.split("+", 1)[0]


def read(path: str | Path) -> Calibration:
    try:
        return Calibration.model_validate_json(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("calibration table not found", path=str(path)) from None
    except ValueError as exc:
        raise InputError(f"not a calibration table: {exc}".splitlines()[0], path=str(path)) from None


def shipped(model: str, vocabulary: str) -> Calibration | None:
    """The package's table for this model and vocabulary version, if it ships one."""
    if not SHIPPED.is_dir():  # an install without any shipped table
        return None
    for entry in SHIPPED.iterdir():
        if entry.name.endswith(".json"):
            table = Calibration.model_validate(json.loads(entry.read_text(encoding="utf-8")))
            if table.model == base_model(model) and table.vocabulary == vocabulary:
                return table
    return None
