"""Pruning end to end: histories, scores, selection, RL records, report and histograms."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cache import ResultCache
from ..errors import InputError
from ..llm.base import Backend
from ..prompts import PromptSet, get_prompts
from ..schema import Interaction, UserRecord
from ..synth import DirectScorer, working_history
from ._plots import plot_histograms
from ._points import StageProgress, score_points
from ._presets import PruneSettings
from ._select import ScoredPoint, Selection, rl_record, select


@dataclass
class PruneResult:
    records: list[dict]
    points: list[ScoredPoint]
    selection: Selection
    settings: PruneSettings
    report: dict

    def write(self, out: str | Path, *, scores: str | Path | None = None, report: str | Path | None = None,
              plot: str | Path | None | bool = None) -> dict[str, Path]:
        """RL records at `out`; beside it by default: `.scores.jsonl` (every point), `.report.json`,
        `.hist.png` (plot=False skips it)."""
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        paths = {"records": out,
                 "scores": Path(scores) if scores else out.with_name(out.stem + ".scores.jsonl"),
                 "report": Path(report) if report else out.with_name(out.stem + ".report.json")}
        _write_jsonl(out, self.records)
        kept_alpha = {(p.user_id, p.m) for p in self.selection.after_alpha}
        kept_tau = {(p.user_id, p.m) for p in self.selection.after_tau}
        picked = {(u, m) for u, km in self.selection.picks.items() for m in km}
        _write_jsonl(paths["scores"], [
            {"user_id": p.user_id, "m": p.m, "p_weak": p.p_weak, "p_strong": p.p_strong,
             "s_tract": p.s_tract if p.ok else None, "s_learn": p.s_learn if p.ok else None,
             "kept_alpha": (p.user_id, p.m) in kept_alpha, "kept_tau": (p.user_id, p.m) in kept_tau,
             "picked": (p.user_id, p.m) in picked, **({"error": p.error} if p.error else {})}
            for p in self.points])
        if plot is not False:
            paths["plot"] = plot_histograms(self.points, self.settings, self.selection.threshold,
                                            Path(plot) if plot else out.with_name(out.stem + ".hist.png"),
                                            title=f"{len(self.points)} points, {len(self.records)} RL records")
            self.report["plot"] = str(paths["plot"])
        paths["report"].write_text(json.dumps(self.report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return paths


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def prune(users: Sequence[UserRecord], weak: Backend, strong: Backend, settings: PruneSettings, *,
          max_history: int = 30, include_target: bool = False, min_prefix: int = 1,
          max_history_tokens: int = 3000, cache: ResultCache | None = None, prompts: PromptSet | None = None,
          progress: StageProgress | None = None, data: dict[str, Any] | None = None) -> PruneResult:
    """Score every point of every user with both models, select, and build one RL record per kept user.
    Scores are cached per point, so a rerun (or another alpha / band) costs no model call."""
    prompts = prompts or get_prompts()
    histories: dict[str, list[Interaction]] = {}
    for user in users:
        if user.user_id in histories:
            raise InputError(f"user id {user.user_id!r} appears twice", field="user_id")
        histories[user.user_id] = working_history(user, max_history, include_target)
    scorers = [DirectScorer(b, prompts, cache, max_history_tokens) for b in (weak, strong)]
    points = score_points(histories, *scorers, min_prefix=min_prefix, progress=progress)
    selection = select(points, settings, users=list(histories))
    records = [rl_record(u, histories[u], k, K) for u, (k, K) in selection.picks.items()]
    report = {
        "users": len(histories), "points": len(points), "scored": len(points) - selection.failed,
        "score_failures": selection.failed,
        "alpha": settings.alpha, "s_learn_threshold": selection.threshold, "after_alpha": len(selection.after_alpha),
        "tract_band": [settings.tau_low, settings.tau_high], "after_tract": len(selection.after_tau),
        "records": len(records), "users_dropped": dict(selection.users_dropped),
        "models": {"weak": weak.info.spec, "strong": strong.info.spec}, "prompts": prompts.version,
        "options": {"max_history": max_history, "include_target": include_target, "min_prefix": min_prefix,
                    "max_history_tokens": max_history_tokens},
        "data": data or {},
    }
    return PruneResult(records, points, selection, settings, report)


def prune_table(report: dict):
    """The report as a rich table for people."""
    from rich.table import Table

    table = Table(title=f"Curriculum pruning: {report['users']} users -> {report['records']} RL records")
    table.add_column("step")
    table.add_column("kept", justify="right")
    table.add_column("note")
    threshold = report["s_learn_threshold"]
    table.add_row("points (H[0:m], h_m)", str(report["points"]), f"{report['score_failures']} failed to score")
    table.add_row(f"top alpha={report['alpha']:g} by S_learn", str(report["after_alpha"]),
                  f"S_learn >= {threshold:.4g}" if threshold != float("inf") else "no scored point")
    low, high = report["tract_band"]
    table.add_row(f"{low:g} < S_tract < {high:g}", str(report["after_tract"]), "")
    dropped = "; ".join(f"{n} {why}" for why, n in report["users_dropped"].items()) or "-"
    table.add_row("users with k < K", str(report["records"]), f"dropped: {dropped}")
    return table
