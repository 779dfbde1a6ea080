"""The training log (`<output_dir>/train_log.jsonl`, one record per logging step) and its plot, in the
manner of the paper's Figure 4: rewards per stage and the cumulative reward, response length per stage,
format failures and the clip fraction against the training step. SFT and direct logs plot their losses."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError

PANELS: list[tuple[str, list[tuple[str, str]]]] = [
    ("Reward", [("stage1/reward", "stage 1 r(P1)"), ("stage2/reward", "stage 2 r(P2)"),
                ("stage1/cumulative_reward", "stage 1 cumulative R(P1)")]),
    ("Response length (tokens)", [("stage1/length", "stage 1"), ("stage2/length", "stage 2")]),
    ("Format failures (share)", [("stage1/format_failures", "stage 1"), ("stage2/format_failures", "stage 2")]),
    ("Clip fraction", [("clip_ratio/region_mean", "clipped tokens")]),
    ("Loss", [("loss", "train"), ("eval_loss", "eval")]),
]


def read_log(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise InputError("no training log here (it is written to <output_dir>/train_log.jsonl)", path=str(path))
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InputError(f"malformed JSON ({exc.msg})", path=str(path), line=number) from None
    return rows


def series(rows: list[dict], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of one logged quantity, in log order."""
    points = [(row["step"], float(row[key])) for row in rows if key in row and row[key] is not None]
    return [p[0] for p in points], [p[1] for p in points]


def plot_training(log_path: str | Path, out_path: str | Path | None = None) -> Path:
    """A PNG of every panel the log has data for; default next to the log as training.png."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("plotting needs matplotlib: pip install 'prefscribe[train]'") from None
    rows = read_log(log_path)
    out = Path(out_path) if out_path else Path(log_path).with_name("training.png")
    panels = [(title, [(k, label) for k, label in keys if series(rows, k)[0]]) for title, keys in PANELS]
    panels = [(title, keys) for title, keys in panels if keys]
    if not panels:
        raise InputError("the log has no quantity to plot yet", path=str(log_path))
    cols = min(2, len(panels))
    nrows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(6 * cols, 3.6 * nrows), squeeze=False)
    for ax, (title, keys) in zip(axes.flat, panels):
        for key, label in keys:
            steps, values = series(rows, key)
            ax.plot(steps, values, marker="o" if len(steps) < 30 else None, markersize=3, label=label)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
