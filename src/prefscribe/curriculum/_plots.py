"""Histograms of S_tract and S_learn with the cuts drawn on them (matplotlib, imported only here)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import PrefscribeError
from ._presets import PruneSettings
from ._select import ScoredPoint


def plot_histograms(points: Sequence[ScoredPoint], settings: PruneSettings, threshold: float,
                    path: str | Path, title: str = "") -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PrefscribeError("the histograms need matplotlib: pip install 'prefscribe[eval]' "
                              "(or pass --no-plot)") from None
    valid = [p for p in points if p.ok]
    tract = [p.s_tract for p in valid]
    learn = [p.s_learn for p in valid]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.hist(tract, bins=20, range=(0.0, 1.0), color="tab:blue")
    for x in (settings.tau_low, settings.tau_high):
        left.axvline(x, color="tab:red", linestyle="--")
    left.set_title(f"S_tract = p_strong\nkept band: {settings.tau_low:g} < S_tract < {settings.tau_high:g}",
                   fontsize=10)
    left.set(xlabel="S_tract", ylabel="points")
    right.hist(learn, bins=20, color="tab:green")
    if learn and threshold != float("inf"):
        right.axvline(threshold, color="tab:red", linestyle="--")
    right.set_title(f"S_learn = log p_strong - log p_weak\nkept: top {settings.alpha:g}, S_learn >= {threshold:.3g}",
                    fontsize=10)
    right.set(xlabel="S_learn", ylabel="points")
    fig.suptitle(title or f"{len(valid)} scored points")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
