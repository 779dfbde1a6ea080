"""The funnel: what each stage kept and dropped, and why, for users and for candidates.

Each user's outcome carries its own events; the report sums them, so a resumed run reports the same
numbers as an uninterrupted one.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

PASSES = ("scratch", "update")
# (stage, unit) in pipeline order for each pass; "segment" happens once per user, before the passes.
PASS_STAGES = (("targets", "candidates"), ("targets", "users"), ("generate", "candidates"),
               ("validate", "candidates"), ("validate", "users"), ("merge", "users"), ("user_filter", "users"))
STAGE_HELP = {
    "segment": "early/middle/late segments long enough",
    "targets": "next-segment interactions scored; tractable ones drawn as targets",
    "generate": "teacher summaries with the target pair in view (no label), leak-checked",
    "validate": "the judge, given the summary, picks the true item",
    "merge": "the teacher merges the validated candidates",
    "user_filter": "the merged summary predicts enough of the targets",
}


def event(pass_: str, stage: str, unit: str, kept: int, dropped: Counter | dict | None = None) -> dict:
    return {"pass": pass_, "stage": stage, "unit": unit, "kept": int(kept),
            "dropped": {k: int(v) for k, v in (dropped or {}).items() if v}}


def user_kept(pass_: str, stage: str) -> dict:
    return event(pass_, stage, "users", 1)


def user_dropped(pass_: str, stage: str, reason: str) -> dict:
    return event(pass_, stage, "users", 0, {reason: 1})


def funnel_report(outcomes: list[dict], *, streaming: bool, extra: dict[str, Any] | None = None) -> dict:
    """Sum the per-user events into one row per (pass, stage, unit), in pipeline order."""
    rows: dict[tuple[str, str, str], dict] = {}
    order = [("all", "segment", "users")]
    for pass_ in PASSES[: 2 if streaming else 1]:
        order += [(pass_, stage, unit) for stage, unit in PASS_STAGES]
    for key in order:
        rows[key] = {"pass": key[0], "stage": key[1], "unit": key[2], "in": 0, "kept": 0, "dropped": Counter()}
    for outcome in outcomes:
        for e in outcome["events"]:
            row = rows.get((e["pass"], e["stage"], e["unit"]))
            if row is None:
                continue
            row["kept"] += e["kept"]
            row["dropped"].update(e["dropped"])
    out_rows = []
    for key in order:
        row = rows[key]
        dropped = dict(sorted(row["dropped"].items(), key=lambda kv: (-kv[1], kv[0])))
        out_rows.append({**row, "in": row["kept"] + sum(dropped.values()), "dropped": dropped})
    records = Counter(r["kind"] for o in outcomes for r in o["records"])
    return {"users": len(outcomes),
            "records": {"scratch": records.get("scratch", 0), "update": records.get("update", 0),
                        "total": sum(records.values())},
            "stages": out_rows,
            "tractability": {p: _spread(outcomes, p) for p in PASSES[: 2 if streaming else 1]},
            **(extra or {})}


def _spread(outcomes: list[dict], pass_: str) -> dict:
    """How the scorer's p(true) fell, to tell whether the threshold suits this scorer."""
    values = sorted(v for o in outcomes for v in o.get("passes", {}).get(pass_, {}).get("scores", {}).values()
                    if v is not None)
    if not values:
        return {"scored": 0}
    pick = lambda q: values[min(len(values) - 1, int(q * len(values)))]
    return {"scored": len(values), "min": values[0], "p25": pick(0.25), "median": pick(0.5), "p75": pick(0.75),
            "max": values[-1]}


def funnel_table(report: dict):
    """The report as a rich table for people."""
    from rich.table import Table

    table = Table(title=f"SFT synthesis funnel: {report['users']} users -> {report['records']['total']} records "
                        f"({report['records']['scratch']} from scratch, {report['records']['update']} updates)")
    for name, justify in (("pass", "left"), ("stage", "left"), ("unit", "left"), ("in", "right"),
                          ("kept", "right"), ("dropped: why", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in report["stages"]:
        why = "; ".join(f"{n} {reason}" for reason, n in row["dropped"].items()) or "-"
        table.add_row(row["pass"], row["stage"], row["unit"], str(row["in"]), str(row["kept"]), why)
    return table


def funnel_text(report: dict) -> str:
    """The table as plain text (for logs and notes)."""
    import io

    from rich.console import Console

    console = Console(width=160, record=True, file=io.StringIO())
    console.print(funnel_table(report))
    return console.export_text()
