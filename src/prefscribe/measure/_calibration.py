"""Where other people's choices sit on each quality: the reference a user's choices are compared with.

The judge's scores carry its own leanings (it may call the longer reply "more rigorous" whoever chose it), so
a user's mean score means nothing against 0; against the distribution of scores over many people's
comparisons it does. A table holds, per comparison kind and quality, the mean and standard deviation of the
per-comparison score s over a population; `prefscribe calibrate` builds one from dev users and the package
ships small tables per model and vocabulary version (measure/calibration/*.json)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path

from pydantic import BaseModel, Field

from ..errors import InputError
from ._scoring import Scored

SHIPPED = files("prefscribe") / "measure" / "calibration"
MIN_COMPARISONS = 16  # fewer than this and a population's spread is a guess


class QualityStats(BaseModel):
    mean: float
    std: float
    comparisons: int


class Calibration(BaseModel):
    """Per `<kind>:<quality>` (kind: replies, items, replies+positive, items+positive), the population's
    score distribution. `threshold`: |z| from which a quality is stated (chosen on dev data)."""

    model: str
    vocabulary: str
    threshold: float = 1.5
    stats: dict[str, QualityStats]
    source: dict[str, object] = Field(default_factory=dict)  # how it was built: data sets, users, seed

    def get(self, key: str, quality: str) -> QualityStats | None:
        return self.stats.get(f"{key}:{quality}")

    def covers(self, key: str) -> bool:
        return any(name.startswith(key + ":") for name in self.stats)

    def write(self, path: str | Path) -> None:
        Path(path).write_text(self.model_dump_json(indent=1) + "\n", encoding="utf-8")


def population(scored: Iterable[Scored], *, model: str, vocabulary: str, threshold: float = 1.5,
               source: dict[str, object] | None = None) -> Calibration:
    """A table from scored comparisons of many people (each comparison once)."""
    values: dict[str, list[float]] = {}
    for item in scored:
        for quality, s in item.scores.items():
            values.setdefault(f"{item.comparison.key}:{quality}", []).append(s)
    stats = {name: _stats(v) for name, v in sorted(values.items()) if len(v) >= MIN_COMPARISONS}
    return Calibration(model=model, vocabulary=vocabulary, threshold=threshold, stats=stats, source=source or {})


def _stats(values: list[float]) -> QualityStats:
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1)
    return QualityStats(mean=mean, std=math.sqrt(var) or 1e-6, comparisons=len(values))


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
    for entry in SHIPPED.iterdir():
        if entry.name.endswith(".json"):
            table = Calibration.model_validate(json.loads(entry.read_text(encoding="utf-8")))
            if table.model == base_model(model) and table.vocabulary == vocabulary:
                return table
    return None
