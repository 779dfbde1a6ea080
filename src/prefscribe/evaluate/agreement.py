"""Does one model give users what another gives? Two evaluation runs over the same users and settings (e.g. an
engine and the torch path it replaces), compared on what the harness measures: accuracy per setting and the
controls (own - another's profile, gold - another's gold), each as a paired difference with a paired-bootstrap
95% interval, and how often the two decide a task alike. Pure functions over items.jsonl rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .metrics import PairedDifference, paired_difference, wilson_interval

# The controls as (name, a, b): per user, correct(a) - correct(b).
CONTROLS = (("own - another's", "full", "mismatched"), ("gold - gold_mismatched", "gold", "gold_mismatched"))
MIN_AGREEMENT = 0.9  # share of tasks an engine must decide as the reference does


@dataclass(frozen=True)
class Measure:
    """One measure of both runs over the same users, and their paired difference (run - reference)."""

    name: str
    value: float         # the run's: an accuracy, or a control's difference in accuracy
    reference: float     # the reference run's
    diff: PairedDifference


@dataclass(frozen=True)
class Agreement:
    measures: list[Measure]
    agreement: float     # share of (user, setting) tasks decided alike (a failed judgement is its own decision)
    tasks: int
    qualifies: bool      # the rule for a default engine, on point estimates (qualifies())
    # What a small sample can show: an interval excludes 0, or even the agreement's one-sided 95% upper bound is
    # below the bar (ruled_out()). A CI check on a few users fails on this, not on a disagreement or two.
    ruled_out: bool
    users: int = 0       # users both runs judged under every setting compared


def qualifies(diffs: Sequence[PairedDifference], agreement: float, min_agreement: float = MIN_AGREEMENT) -> bool:
    """An engine qualifies when every measure matches the reference within its interval (the paired-bootstrap
    95% interval of run - reference holds 0) and it decides at least `min_agreement` of the tasks alike."""
    return bool(diffs) and agreement >= min_agreement and all(d.ci_low <= 0 <= d.ci_high for d in diffs)


def ruled_out(diffs: Sequence[PairedDifference], agreed: int, tasks: int,
              min_agreement: float = MIN_AGREEMENT) -> bool:
    """The sample shows the engine misses the rule: some interval excludes 0, or the agreement's upper bound is
    below the bar. Unlike qualifies(), one or two flipped near-even decisions out of a few do not rule it out."""
    upper = wilson_interval(agreed, tasks, z=1.645)[1] if tasks else 0.0  # z 1.645: one-sided 95%
    return (not diffs or upper < min_agreement
            or any(d.ci_low > 0 or d.ci_high < 0 for d in diffs))


def _by_setting(rows: Sequence[dict]) -> dict[str, dict[str, dict]]:
    table: dict[str, dict[str, dict]] = {}
    for row in rows:
        table.setdefault(row["setting"], {})[row["user_id"]] = row
    return table


def _decision(row: dict) -> str:
    return "failed" if row["failed"] else "true" if row["correct"] else "false"


def compare_runs(run: Sequence[dict], reference: Sequence[dict], settings: Sequence[str], seed: int = 0,
                 min_agreement: float = MIN_AGREEMENT) -> Agreement:
    """`run` against `reference` (items of one benchmark each) on the users both judged under every setting."""
    mine, theirs = _by_setting(run), _by_setting(reference)
    shared = [s for s in settings if s in mine and s in theirs]
    users = sorted(set.intersection(*(set(mine[s]) & set(theirs[s]) for s in shared))) if shared else []

    def correct(table: Mapping[str, Mapping[str, dict]], setting: str) -> list[float]:
        return [float(bool(table[setting][u]["correct"])) for u in users]

    measures = []
    for setting in shared:
        a, b = correct(mine, setting), correct(theirs, setting)
        measures.append(Measure(f"accuracy {setting}", _mean(a), _mean(b), paired_difference(a, b, seed=seed)))
    for name, high, low in CONTROLS:
        if high in shared and low in shared:
            a = [x - y for x, y in zip(correct(mine, high), correct(mine, low))]
            b = [x - y for x, y in zip(correct(theirs, high), correct(theirs, low))]
            measures.append(Measure(name, _mean(a), _mean(b), paired_difference(a, b, seed=seed)))
    same = [_decision(mine[s][u]) == _decision(theirs[s][u]) for s in shared for u in users]
    agreement = sum(same) / len(same) if same else 0.0
    diffs = [m.diff for m in measures]
    return Agreement(measures, agreement, len(same),
                     qualifies(diffs, agreement, min_agreement) if users else False,
                     ruled_out(diffs, sum(same), len(same), min_agreement) if users else True, len(users))


def agreement_table(agreement: Agreement, reference_name: str, run_name: str) -> str:
    """Two runs side by side: each measure in points for the reference and the run, and run - reference user by
    user with its paired-bootstrap 95% interval; then how often the two decide a task alike."""
    lines = [f"| measure | {reference_name} | {run_name} | {run_name} - {reference_name} (95% CI) |",
             "|---|---|---|---|"]
    for m in agreement.measures:
        lines.append(f"| {m.name} | {100 * m.reference:.1f} | {100 * m.value:.1f} | {100 * m.diff.diff:+.1f} "
                     f"({100 * m.diff.ci_low:+.1f} to {100 * m.diff.ci_high:+.1f}) |")
    lines.append(f"| decisions alike | - | - | {100 * agreement.agreement:.0f}% of {agreement.tasks} |")
    return "\n".join(lines) + "\n"


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
