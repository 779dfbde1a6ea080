"""Do profiles carry their user? The issue-10 acceptance: every benchmark under the placebo controls.

    python bench/bench_quality.py                                   # 1.5B writes and judges (hours on a CPU)
    python bench/bench_quality.py --model embedded:0.5b --judge embedded
    python bench/bench_quality.py --psoups-users 8 --rec-users 4   # a quick look

P-Soups and DSP (users stratified by persona), MovieLens, MIND and Amazon Games; settings none, gold, gold_mismatched,
generic, full, mismatched, streaming, streaming_mismatched (the gold ones where a benchmark has gold). Every
setting judges the same users, so each comparison is paired. One run folder per benchmark under --out: a rerun
skips the items already judged, and model replies are cached, so a stopped run resumes. It goes in phases that
each cover every benchmark (the settings without profiles, then full and its control, then streaming and its
control), so a stop leaves every benchmark with the same settings done.

Prints the paired comparisons (a - b in points, 95% paired-bootstrap interval) per benchmark, the user-specific
gain recovered, (full - mismatched) / (gold - gold_mismatched), the issue's acceptance checks, and the wall time;
writes the same to <out>/quality.md beside the run folders.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

DATA = Path(os.environ.get("PREFSCRIBE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")

# name -> (loader, path under the data folder, loader options, users option)
BENCHMARKS = {
    "psoups": ("psoups", "psoups/student_phd.json", {}, "psoups_users"),
    "dsp": ("dsp", "dsp", {}, "dsp_users"),
    "movielens": ("movielens", "movielens", {"max_history": 30}, "rec_users"),
    "mind": ("mind", "mind/sample400by_ratio.csv", {}, "rec_users"),
    "amazon": ("amazon", "amazon_games", {"max_history": 30}, "rec_users"),
}
PHASES = (("none", "gold", "gold_mismatched", "generic"), ("full", "mismatched"),
          ("streaming", "streaming_mismatched"))
SHOWN = (("full", "none"), ("full", "mismatched"), ("streaming", "streaming_mismatched"), ("gold", "none"),
         ("gold", "gold_mismatched"), ("generic", "none"))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded", help="writer of the profiles")
    parser.add_argument("--judge", default="embedded", help="downstream model that chooses")
    parser.add_argument("--out", type=Path, default=Path("runs/quality"))
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--benchmarks", default=",".join(BENCHMARKS))
    parser.add_argument("--settings", default=",".join(s for phase in PHASES for s in phase))
    parser.add_argument("--psoups-users", type=int, default=200)
    parser.add_argument("--dsp-users", type=int, default=200, help="DSP users (stratified by the four personas)")
    parser.add_argument("--rec-users", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--method", default="logprobs",
                        help="judge method(s), comma list: logprobs, generation, likelihood, contrast")
    parser.add_argument("--writer", help="profile writer (a name in prefscribe.evaluate.WRITERS; default: "
                        "the library's, DEFAULT_WRITER)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="token limit of each profile")
    parser.add_argument("--prompts", default=None, help="prompt template folder (default: the built-in set)")
    parser.add_argument("--chunk", type=int, default=8)
    parser.add_argument("--candidates", type=int, default=1,
                        help="candidate profiles per user and step, kept by validation on own history pairs")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Path]:
    """Evaluate every benchmark phase by phase; returns the run folder of each benchmark."""
    from prefscribe.data import load
    from prefscribe.evaluate import (DEFAULT_WRITER, SETTINGS, Dataset, EvalSpec, assemble, parse_methods,
                                     parse_settings)

    wanted = parse_settings(args.settings)
    names = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
    unknown = [b for b in names if b not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    # Candidates are validated by the downstream judge on the user's own history pairs (never the target).
    plan = assemble(EvalSpec(model=args.model, judge=args.judge, writer=args.writer or DEFAULT_WRITER,
                             methods=parse_methods(args.method), seed=args.seed, max_new_tokens=args.max_new_tokens,
                             candidates=args.candidates, prompts=args.prompts))

    users = {}
    for name in names:
        loader, path, options, size = BENCHMARKS[name]
        users[name] = load(loader, args.data / path, limit=getattr(args, size), seed=args.seed, **options)
    folders = {name: args.out / name for name in names}
    for phase in PHASES:
        for name in names:
            has_gold = any(r.gold_preference for r in users[name])
            settings = [s for s in phase if s in wanted and (has_gold or not SETTINGS[s].needs_gold)]
            if not settings:
                continue
            print(f"== {time.strftime('%H:%M:%S')} {name}: {', '.join(settings)} ({len(users[name])} users)",
                  file=sys.stderr, flush=True)
            plan.run(Dataset(name, "", users[name]), settings, folders[name], chunk=args.chunk,
                     run_meta={"bench": "bench_quality", "limit": len(users[name]),
                               "loader_options": BENCHMARKS[name][2]})
    return folders


def quality_table(folders: dict[str, Path]) -> str:
    """The comparisons of every run folder, the gain recovered, and the issue's acceptance checks."""
    from prefscribe.evaluate import judge_methods_table

    comparisons, gains, methods, seconds = [], [], [], {}
    for name, folder in folders.items():
        summary = json.loads((folder / "summary.json").read_text())
        comparisons += summary["comparisons"]
        gains += summary["gain_recovered"]
        methods += summary["judge_methods"]
        seconds[name] = sum(r["wall_seconds"] for r in summary["results"])
    lines = ["| benchmark | writer / judge | a - b | n | diff (points) | 95% CI |", "|---|---|---|---|---|---|"]
    for c in sorted(comparisons, key=lambda c: (list(folders).index(c["benchmark"]) if c["benchmark"] in folders
                                                 else 99, c["model"], c["judge"], c["variant"],
                                                 SHOWN.index((c["a"], c["b"])) if (c["a"], c["b"]) in SHOWN else 99)):
        if (c["a"], c["b"]) not in SHOWN:
            continue
        label = f"{c['benchmark']}{' ' + c['variant'] if c['variant'] else ''}"
        lines.append(f"| {label} | {c['model']} / {c['judge']} | {c['a']} - {c['b']} | {c['n']} | "
                     f"{100 * c['diff']:+.1f} | {100 * c['ci_low']:+.1f} to {100 * c['ci_high']:+.1f} |")
    lines.append("")
    for g in gains:
        value = "- (gold adds nothing over gold_mismatched)" if g["value"] is None else f"{100 * g['value']:.0f}%"
        lines.append(f"User-specific gain recovered on {g['benchmark']} ({g['model']} / {g['judge']}): {value}")
    if methods:
        lines += ["", "Judge methods: does the judge read a profile? (a - b in points, 95% CI, n)", "",
                  judge_methods_table(methods).rstrip()]
    lines += ["", *acceptance(comparisons, gains), "",
              "Model time recorded in the items (all runs, resumed ones included): "
              + ", ".join(f"{name} {value / 3600:.2f} h" for name, value in seconds.items())]
    return "\n".join(lines) + "\n"


def acceptance(comparisons: list[dict], gains: list[dict]) -> list[str]:
    """Issue 10's thresholds, checked on what ran (a check whose settings did not run says so)."""
    def find(benchmark: str, a: str, b: str) -> list[dict]:
        return [c for c in comparisons if (c["benchmark"], c["a"], c["b"], c["variant"]) == (benchmark, a, b, "")]

    def check(label: str, rows: list[dict], points: float) -> str:
        if not rows:
            return f"- {label}: not run"
        verdicts = [f"{100 * c['diff']:+.1f} [{100 * c['ci_low']:+.1f}, {100 * c['ci_high']:+.1f}] "
                    f"{'PASS' if c['diff'] * 100 >= points and c['ci_low'] > 0 else 'FAIL'} ({c['model']})"
                    for c in rows]
        return f"- {label} >= {points:g} points, interval above 0: " + "; ".join(verdicts)

    out = ["Acceptance (issue 10)",
           check("P-Soups full - mismatched", find("psoups", "full", "mismatched"), 15),
           check("P-Soups full - none", find("psoups", "full", "none"), 15),
           check("P-Soups streaming - streaming_mismatched", find("psoups", "streaming", "streaming_mismatched"), 10)]
    verdicts = []
    for g in gains:
        if g["benchmark"] == "psoups" and not g["variant"]:
            value = g["value"]
            shown = "-" if value is None else f"{100 * value:.0f}%"
            verdicts.append(f"{shown} {'PASS' if value is not None and value >= 0.5 else 'FAIL'} ({g['model']})")
    out.append("- P-Soups gain recovered >= 50%: " + ("; ".join(verdicts) or "not run"))
    rec = [c for name in ("movielens", "mind", "amazon") for c in find(name, "full", "mismatched")]
    if rec:
        above = sorted({c["benchmark"] for c in rec if c["ci_low"] > 0})
        out.append(f"- recommendation sets with full - mismatched above 0: {len(above)} of "
                   f"{len({c['benchmark'] for c in rec})} ({', '.join(above) or 'none'}); need 2 of 3: "
                   f"{'PASS' if len(above) >= 2 else 'FAIL'}")
    else:
        out.append("- recommendation sets full - mismatched: not run")
    return out


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    start = time.perf_counter()
    folders = run(args)
    wall = time.perf_counter() - start
    text = quality_table(folders) + f"\nWall time of this run: {wall:.0f} s ({wall / 3600:.2f} h)\n"
    (args.out / "quality.md").write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
