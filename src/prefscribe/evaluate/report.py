"""Reports across runs: one table in the paper's layout (settings as rows, benchmarks as columns, an
average), and plots: accuracy by setting per benchmark, the judge's position bias, and accuracy against noise
intensity."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError
from .agreement import Agreement, agreement_table, compare_runs
from .runner import comparisons_table, gain_recovered, judge_methods, judge_methods_table
from .settings import setting_order

PAPER_ORDER = ["mind", "amazon", "alignx", "movielens", "personamem", "psoups", "hicupid"]


def _summaries(run_dirs: Sequence[Path]) -> list[dict]:
    out = []
    for folder in run_dirs:
        path = Path(folder) / "summary.json"
        if not path.exists():
            raise InputError("no summary.json: is this an evaluation run folder?", path=str(folder))
        out.append(json.loads(path.read_text()))
    return out


def load_results(run_dirs: Sequence[Path]) -> list[dict]:
    return [r for summary in _summaries(run_dirs) for r in summary["results"]]


def load_comparisons(run_dirs: Sequence[Path]) -> list[dict]:
    """The paired comparisons of each run (runs written before they existed have none)."""
    return [c for summary in _summaries(run_dirs) for c in summary.get("comparisons", [])]


def paper_table(results: Sequence[dict]) -> str:
    """Accuracy % per (model, judge, setting, variant) row and benchmark column, plus the row average."""
    benchmarks = sorted({r["benchmark"] for r in results},
                        key=lambda b: (PAPER_ORDER.index(b) if b in PAPER_ORDER else 99, b))
    rows: dict[tuple, dict[str, dict]] = {}
    for r in results:
        rows.setdefault((r["model"], r["judge"], r["setting"], r.get("variant", "")), {})[r["benchmark"]] = r
    head = "| model | judge | setting | variant | " + " | ".join(benchmarks) + " | avg |"
    lines = [head, "|" + "---|" * (5 + len(benchmarks))]
    for (model, judge, setting, variant), cells in sorted(rows.items(),
                                                          key=lambda kv: (kv[0][0], kv[0][1], kv[0][3],
                                                                          *setting_order(kv[0][2]))):
        values = [cells[b]["accuracy"] * 100 if b in cells else None for b in benchmarks]
        present = [v for v in values if v is not None]
        shown = [f"{v:.1f} (n={cells[b]['n']})" if v is not None else "-" for v, b in zip(values, benchmarks)]
        avg = f"{sum(present) / len(present):.1f}" if present else "-"
        lines.append(f"| {model} | {judge} | {setting} | {variant or '-'} | " + " | ".join(shown) + f" | {avg} |")
    return "\n".join(lines) + "\n"


_NOISE = re.compile(r"noise=[0-9.]+")


def cost_table(results: Sequence[dict]) -> str:
    """Tokens spent writing profiles, per user, per benchmark, model and variant. `full` reads the whole history
    once; `streaming` reads segment by segment with the past profile. Its last step is what one more update
    costs, against re-running `full` over everything (the paper's efficiency claim)."""
    runs: dict[tuple, dict[str, dict]] = {}
    for r in results:
        if r["setting"] in ("full", "streaming") and r["n"]:
            runs.setdefault((r["benchmark"], r["model"], r.get("variant", "")), {})[r["setting"]] = r
    lines = [("| benchmark | model | variant | full prompt tok / user | streaming prompt tok / user, all steps | "
              "last update / user | last update / full re-run | completion tok / user, full / streaming |"),
             "|---|---|---|---|---|---|---|---|"]
    for (benchmark, model, variant), cells in runs.items():
        full, stream = cells.get("full"), cells.get("streaming")
        full_tok, stream_tok = _per_user(full, "prompt_tokens"), _per_user(stream, "prompt_tokens")
        update = _per_user(stream, "last_step_prompt_tokens")  # None for runs made before it was recorded
        ratio = f"{update / full_tok:.2f}" if update and full_tok else "-"
        completion = " / ".join(_number(_per_user(r, "completion_tokens")) for r in (full, stream))
        lines.append(f"| {benchmark} | {model} | {variant or '-'} | {_number(full_tok)} | {_number(stream_tok)} | "
                     f"{_number(update)} | {ratio} | {completion} |")
    return "\n".join(lines) + "\n" if runs else ""


def _per_user(result: dict | None, key: str) -> float | None:
    return result[key] / result["n"] if result and result.get(key) else None


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def plot_accuracy(results: Sequence[dict], path: Path) -> Path | None:
    """Bars of accuracy per benchmark, one series per setting (and variant, e.g. `gold (order=random)`);
    noise variants have their own curve. None when there is nothing to plot."""
    shown = [r for r in results if not _NOISE.fullmatch(r.get("variant", ""))]
    series = sorted({(r["setting"], r.get("variant", "")) for r in shown},
                    key=lambda s: (s[1], *setting_order(s[0])))
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    benchmarks = sorted({r["benchmark"] for r in shown})
    fig, ax = plt.subplots(figsize=(max(6, 1.8 * len(benchmarks) * len(series) / 3), 4))
    width = 0.8 / len(series)
    for j, (setting, variant) in enumerate(series):
        xs, ys, lo, hi = [], [], [], []
        for i, b in enumerate(benchmarks):
            match = [r for r in shown if (r["benchmark"], r["setting"], r.get("variant", "")) == (b, setting, variant)]
            if match:
                r = match[0]
                xs.append(i + j * width)
                ys.append(100 * r["accuracy"])
                lo.append(100 * (r["accuracy"] - r["ci_low"]))
                hi.append(100 * (r["ci_high"] - r["accuracy"]))
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=f"{setting} ({variant})" if variant else setting)
    ax.axhline(50, color="grey", linestyle=":", linewidth=1)
    ax.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(benchmarks))], benchmarks)
    ax.set_ylabel("accuracy % (95% CI)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, ncol=min(len(series), 5))
    ax.set_title("Accuracy by setting")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_bias(results: Sequence[dict], path: Path) -> Path | None:
    """Position bias: mean P("Item A") when the true item was shown as A and when it was shown as B, per result.
    An unbiased judge that knows the answer is high then low; a judge that always says A is high twice."""
    rows = [r for r in results if r.get("p_a_when_a_true") is not None and r.get("p_a_when_b_true") is not None]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [" ".join(filter(None, [r["benchmark"], r["setting"], r.get("variant", "")])) for r in rows]
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(rows) + 2), 4))
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [r["p_a_when_a_true"] for r in rows], 0.4, label="true item shown as A")
    ax.bar([x + 0.2 for x in xs], [r["p_a_when_b_true"] for r in rows], 0.4, label="true item shown as B")
    ax.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    ax.set_xticks(list(xs), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel('mean P("Item A")')
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title("Position bias of the judge")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_noise(results: Sequence[dict], path: Path) -> Path | None:
    """Accuracy against multi-interest noise intensity, one line per benchmark x setting (paper Fig. 3)."""
    noisy = [r for r in results if _NOISE.fullmatch(r.get("variant", ""))]
    if not noisy:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for key in sorted({(r["benchmark"], r["setting"]) for r in noisy}):
        points = sorted((float(r["variant"].split("=")[1]), 100 * r["accuracy"]) for r in noisy
                        if (r["benchmark"], r["setting"]) == key)
        ax.plot([100 * x for x, _ in points], [y for _, y in points], marker="o", label=f"{key[0]} {key[1]}")
    ax.set_xlabel("noise intensity (% of history inserted from another domain)")
    ax.set_ylabel("accuracy %")
    ax.set_title("Multi-interest robustness")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(run_dirs: Sequence[Path], out: Path) -> dict[str, Path]:
    results = load_results(run_dirs)
    comparisons = load_comparisons(run_dirs)
    out.mkdir(parents=True, exist_ok=True)
    files = {"table": out / "report.md"}
    cost = cost_table(results)
    paired = comparisons_table(comparisons, gain_recovered(comparisons))
    methods = judge_methods_table(judge_methods(comparisons))
    files["table"].write_text(paper_table(results) + (f"\nPaired comparisons\n\n{paired}" if paired else "")
                              + (f"\nJudge methods: does the judge read a profile?\n\n{methods}" if methods else "")
                              + (f"\nProfile cost\n\n{cost}" if cost else ""))
    for name, plot in (("accuracy", plot_accuracy), ("bias", plot_bias), ("noise", plot_noise)):
        written = plot(results, out / f"{name}.png")
        if written:
            files[name] = written
    return files


def _groups(run_dir: Path) -> dict[tuple[str, str], list[dict]]:
    """A run's items by (benchmark, variant); one writer and judge each, or which one is meant is unclear."""
    path = Path(run_dir) / "items.jsonl"
    if not path.exists():
        raise InputError("no items.jsonl: is this an evaluation run folder?", path=str(run_dir))
    groups: dict[tuple[str, str], list[dict]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"not JSON ({exc.msg}): a run stopped mid-write? remove the line and rerun the eval",
                             path=str(path), line=number) from None
        groups.setdefault((row["benchmark"], row.get("variant", "")), []).append(row)
    for (benchmark, variant), rows in groups.items():
        pairs = sorted({(r["model"], r["judge"]) for r in rows})
        if len(pairs) > 1:
            raise InputError(f"{benchmark}{' ' + variant if variant else ''} was judged with several writers or "
                             f"judges ({'; '.join(f'{m} / {j}' for m, j in pairs)}): compare runs of one each",
                             path=str(path))
    return groups


def compare_folders(reference: Path, run: Path, seed: int = 0) -> list[tuple[str, str, Agreement]]:
    """`run` against `reference` user by user, per benchmark and variant both hold, on the settings both ran:
    what a change of writer, prompt or engine did to the same users."""
    theirs, mine = _groups(reference), _groups(run)
    out = []
    for key in sorted(set(theirs) & set(mine)):
        shared = {r["setting"] for r in theirs[key]} & {r["setting"] for r in mine[key]}
        settings = sorted(shared, key=setting_order)
        agreement = compare_runs(mine[key], theirs[key], settings, seed=seed)
        if agreement.tasks:
            out.append((*key, agreement))
    if not out:
        raise InputError(f"{reference} and {run} share no benchmark, variant, setting and user to compare",
                         field="runs")
    return out


def comparison_report(reference: Path, run: Path, seed: int = 0) -> str:
    """compare_folders as markdown: one table per benchmark and variant."""
    parts = []
    for benchmark, variant, agreement in compare_folders(reference, run, seed):
        title = f"{benchmark}{' (' + variant + ')' if variant else ''}: {agreement.users} users both judged"
        parts.append(f"## {title}\n\n" + agreement_table(agreement, "reference", "run"))
    return (f"reference: {reference}\nrun: {run}\n\n" + "\n".join(parts)
            + "\nAccuracy and controls in points; run - reference is paired by user, with its paired-bootstrap 95%"
            " interval.\n")
