"""What measured profiles cost: the shared-prefix reuse when scoring one comparison on every quality, and time
and tokens per profile against the free-text writer, in one run on one CPU.

    python bench/bench_measure.py --runs 3 --comparisons 4 --users 4
    CT2_FORCE_CPU_ISA=AVX2 python bench/bench_measure.py --model embedded:1.5b+ct2 --comparisons 2 --scoring-only

Part 1 scores P-Soups comparisons ($PREFSCRIBE_DATA) on every reply quality twice: the project's path (each
comparison and order one backend call: the pair read once, each quality's question against its KV cache), and
one prompt per call (the whole prompt read for every quality). Part 2 writes profiles for the same users with
the measured writer and the free-text writer (no cache). Times are medians of --runs; ratios are within this run.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
from pathlib import Path

from bench_core import _timed  # the same median-of-runs timer (bench/ is on the path when run as a script)

DATA = Path(os.environ.get("PREFSCRIBE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def _cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return platform.processor()
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    flags = fields.get("Flags", "")
    isa = "AMX" if "amx_tile" in flags else "AVX-512 BF16" if "avx512_bf16" in flags else "AVX2" if "avx2" in flags else "?"
    return f"{fields.get('Model name', '?').strip()} ({isa})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--comparisons", type=int, default=4)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--scoring-only", action="store_true", help="part 1 only (the prefix reuse)")
    args = parser.parse_args()

    from prefscribe.cache import CachedCalls
    from prefscribe.data import load
    from prefscribe.infer import InferConfig, InferJob, Inferrer
    from prefscribe.llm import load_backend
    from prefscribe.measure import MIN_PEOPLE, Comparison, MeasureConfig, MeasuredWriter, Vocabulary, score
    from prefscribe.prompts import get_prompts

    backend = load_backend(args.model)
    vocab = Vocabulary(get_prompts())
    users = load("psoups", DATA / "psoups" / "student_phd.json", limit=max(args.users, MIN_PEOPLE), seed=0,
                 split="dev")
    pairs = [i for u in users for i in u.history][:args.comparisons]
    comparisons = [Comparison("replies", i.context, i.chosen, i.rejected) for i in pairs]
    qualities = vocab.qualities["replies"]

    def shared() -> list:
        return score(CachedCalls(backend, None, vocab.version), vocab, comparisons)

    def alone() -> list:
        out = []
        for c in comparisons:
            for first, second in ((c.mine, c.other), (c.other, c.mine)):
                for q in qualities:
                    out += backend.option_logprobs([vocab.messages("replies", c.context, first, second, q)],
                                                   "Answer:", (" A", " B"))
        return out

    t_shared, scored = _timed(shared, args.runs)
    t_alone, _ = _timed(alone, args.runs)
    tokens = sum(s.prompt_tokens for s in scored)
    print(f"CPU: {_cpu()}; model {backend.info.spec}; threads {os.environ.get('PREFSCRIBE_THREADS', 'all')}\n")
    print(f"| scoring {len(comparisons)} comparisons x 2 orders x {len(qualities)} qualities "
          f"({tokens} prompt tokens) | seconds | per comparison | speedup |")
    print("|---|---:|---:|---:|")
    print(f"| one prompt per call (no reuse) | {t_alone:.1f} | {t_alone / len(comparisons):.2f} | 1.00x |")
    print(f"| shared prefix (the project's path) | {t_shared:.1f} | {t_shared / len(comparisons):.2f} | "
          f"{t_alone / t_shared:.2f}x |")
    if args.scoring_only:
        return

    jobs = [InferJob(u.history) for u in users[:args.users]]
    population = [InferJob(u.history) for u in users]  # measured with the run's people as the reference
    free = Inferrer(backend, InferConfig(), None)
    measured = MeasuredWriter(backend, InferConfig(), None, measure=MeasureConfig(calibration="run"))
    t_free, free_out = _timed(lambda: free.run(jobs), args.runs)
    t_measured, measured_out = _timed(lambda: measured.run(population)[:len(jobs)], args.runs)
    t_measured *= len(jobs) / len(population)  # per profile, as the free writer's
    free_tokens = sum(p.usage.prompt_tokens + p.usage.completion_tokens for p in free_out) / len(jobs)
    measured_tokens = sum(p.usage.prompt_tokens for p in measured_out) / len(jobs)
    print(f"\n| per profile ({len(jobs)} P-Soups users, 4 pairs each) | seconds | tokens | time ratio | "
          "token ratio |")
    print("|---|---:|---:|---:|---:|")
    print(f"| free-text writer (v1) | {t_free / len(jobs):.1f} | {free_tokens:.0f} | 1.00x | 1.00x |")
    print(f"| measured writer | {t_measured / len(jobs):.1f} | {measured_tokens:.0f} | "
          f"{t_measured / t_free:.2f}x | {measured_tokens / free_tokens:.2f}x |")


if __name__ == "__main__":
    main()
