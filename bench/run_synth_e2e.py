"""End-to-end SFT synthesis and curriculum pruning on the embedded model, over a few real users.

    python bench/run_synth_e2e.py                                    # 2 MovieLens + 2 P-Soups users
    python bench/run_synth_e2e.py --teacher embedded --judge embedded --scorer embedded --max-new-tokens 384

Runs, for each benchmark: `synth` with the paper's thresholds (tractability 0.9, min_valid 3, lambda 0.8),
then with thresholds relaxed for a small CPU model (so that the later stages see candidates at all), both
streaming; then `prune` with a weak and a strong model. Prints every funnel and pruning table and writes the
outputs under --out. Model calls are cached (the relaxed run reuses the strict run's scores).

Settings forced by the data, not by taste:
- MovieLens histories are long: each user is cut to the most recent --movielens-history interactions.
- P-Soups users have 4 history pairs: with the paper's minimum segment of 3 nobody survives segmentation,
  so P-Soups runs with --include-target (5 interactions: segments 2, 2, 1) and min_segment 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

DATA = Path(os.environ.get("PREFSCRIBE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def _pin_threads(n: int) -> None:
    """The HF backend sets torch to every core before each call. On a machine shared with other jobs that
    oversubscribes it (measured here under load: 0.6 s/token with 1 thread vs 2.8 s/token with 2 for the
    0.5B). Until the backend takes a thread setting, this bench replaces its private torch accessor."""
    import torch

    from prefscribe.llm import hf

    def pinned():
        torch.set_num_threads(n)
        return torch

    hf._torch = pinned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", default="embedded")
    parser.add_argument("--judge", default="embedded")
    parser.add_argument("--scorer", default="embedded")
    parser.add_argument("--weak", default="embedded:0.5b")
    parser.add_argument("--strong", default="embedded")
    parser.add_argument("--movielens-users", type=int, default=2)
    parser.add_argument("--psoups-users", type=int, default=2)
    parser.add_argument("--movielens-history", type=int, default=9)
    parser.add_argument("--max-new-tokens", type=int, default=448)
    parser.add_argument("--relaxed-threshold", type=float, default=0.5)
    parser.add_argument("--relaxed-max-targets", type=int, default=2)
    parser.add_argument("--relaxed-lambda", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/prefscribe-synth-e2e"))
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads for local models (0: the backend's choice, every core)")
    args = parser.parse_args()
    if args.threads:
        _pin_threads(args.threads)

    from rich.console import Console

    from prefscribe.cache import ResultCache
    from prefscribe.curriculum import PruneSettings, prune, prune_table
    from prefscribe.data import load
    from prefscribe.llm import load_backend
    from prefscribe.synth import SynthConfig, SynthModels, funnel_text, synthesize

    console = Console(width=150)
    cache = ResultCache()  # the user cache dir (PREFSCRIBE_CACHE_DIR): reruns of this script are free
    args.out.mkdir(parents=True, exist_ok=True)
    benches = {
        "movielens": (load("movielens", DATA / "movielens", limit=args.movielens_users, seed=args.seed,
                           max_history=args.movielens_history),
                      SynthConfig(max_history=args.movielens_history, streaming=True, min_segment=3,
                                  max_new_tokens=args.max_new_tokens, seed=args.seed)),
        "psoups": (load("psoups", DATA / "psoups" / "student_phd.json", limit=args.psoups_users, seed=args.seed),
                   SynthConfig(include_target=True, min_segment=1, streaming=True,
                               max_new_tokens=args.max_new_tokens, seed=args.seed)),
    }
    started = time.perf_counter()
    models = SynthModels(teacher=load_backend(args.teacher), judge=load_backend(args.judge),
                         scorer=load_backend(args.scorer))
    summary = {}
    for name, (users, paper) in benches.items():
        relaxed = replace(paper, tract_threshold=args.relaxed_threshold, min_valid=1, lam=args.relaxed_lambda,
                          max_targets=args.relaxed_max_targets)
        for label, config in (("paper thresholds", paper), ("relaxed thresholds", relaxed)):
            t0 = time.perf_counter()
            result = synthesize(users, models, config, cache=cache,
                                data={"benchmark": name, "users": [u.user_id for u in users]})
            tag = f"{name}-{'paper' if config is paper else 'relaxed'}"
            result.write(args.out / f"sft-{tag}.jsonl")
            (args.out / f"sft-{tag}.outcomes.json").write_text(json.dumps(result.outcomes, indent=1,
                                                                             ensure_ascii=False))
            print(f"\n### {name}, {label}: users {[u.user_id for u in users]}, "
                  f"history lengths {[len(u.history) for u in users]}; {time.perf_counter() - t0:.0f} s")
            print(f"config: tract_threshold={config.tract_threshold} max_targets={config.max_targets} "
                  f"min_valid={config.min_valid} lambda={config.lam} min_segment={config.min_segment} "
                  f"include_target={config.include_target} max_new_tokens={config.max_new_tokens}; "
                  f"models {models.specs()}")
            print(funnel_text(result.report))
            summary[tag] = result.report["records"]
        t0 = time.perf_counter()
        pruned = prune(users, load_backend(args.weak), load_backend(args.strong),
                       PruneSettings(alpha=0.5, tau_low=0.5, tau_high=0.9),
                       max_history=args.movielens_history, include_target=(name == "psoups"), cache=cache)
        paths = pruned.write(args.out / f"rl-{name}.jsonl")
        print(f"\n### prune {name} (alpha 0.5, 0.5 < S_tract < 0.9; weak {args.weak}, strong {args.strong}); "
              f"{time.perf_counter() - t0:.0f} s")
        console.print(prune_table(pruned.report))
        print(f"histograms: {paths['plot']}")
        summary[f"rl-{name}"] = pruned.report["records"]
    print(f"\nrecords: {json.dumps(summary)}; total {time.perf_counter() - started:.0f} s; outputs in {args.out}")


if __name__ == "__main__":
    sys.exit(main())
