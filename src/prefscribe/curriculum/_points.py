"""Every point (H[0:m], h_m) of every user, scored by the weak and the strong model."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..llm.base import Progress
from ..schema import Interaction
from ..synth import DirectScorer, Point
from ._select import ScoredPoint

StageProgress = Callable[[str, int], Progress]


def point_indices(history: Sequence[Interaction], min_prefix: int) -> list[int]:
    """Positions m that can be a target: at least `min_prefix` interactions before, a rejected item."""
    return [m for m in range(max(1, min_prefix), len(history)) if history[m].rejected is not None]


def score_points(histories: dict[str, list[Interaction]], weak: DirectScorer, strong: DirectScorer, *,
                 min_prefix: int = 1, progress: StageProgress | None = None) -> list[ScoredPoint]:
    """Both models' p(true choice) for every point, users in the given order, m ascending (consecutive
    prompts have similar lengths, which wastes little padding in a local batch)."""
    keys = [(user, m) for user, history in histories.items() for m in point_indices(history, min_prefix)]
    points = [Point(histories[user][:m], histories[user][m]) for user, m in keys]
    results = {}
    for name, scorer in (("weak", weak), ("strong", strong)):
        advance = progress(f"score ({name}: {scorer.backend.info.spec})", len(points)) if progress else None
        results[name] = scorer.score(points, advance)
    out = []
    for (user, m), w, s in zip(keys, results["weak"], results["strong"]):
        errors = [f"{n}: {r.error}" for n, r in (("weak", w), ("strong", s)) if r.p_true is None]
        out.append(ScoredPoint(user, m, w.p_true, s.p_true, "; ".join(errors) or None))
    return out
