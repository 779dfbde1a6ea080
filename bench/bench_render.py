"""Speed of cutting a very long history to a token budget (the prompt renderer alone, no model).

    python bench/bench_render.py --interactions 20000 --runs 5

Prints a table of median seconds per render_history call. Was an assertion in tests/test_prompts.py; a
wall-clock bound does not belong in a test (the machine is shared), the call count there guards the one pass.
"""

from __future__ import annotations

import argparse
import statistics
import time

from prefscribe.prompts import get_prompts
from prefscribe.schema import Interaction


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interactions", type=int, default=20000)
    parser.add_argument("--budget", type=int, default=2000, help="Token budget (tokens: whitespace words).")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    prompts = get_prompts()
    history = [Interaction(chosen="word " * 50, rejected="other " * 50) for _ in range(args.interactions)]
    times, rendered = [], None
    for _ in range(args.runs):
        start = time.perf_counter()
        rendered = prompts.render_history(history, args.budget, lambda text: len(text.split()))
        times.append(time.perf_counter() - start)
    print("| interactions | budget | kept | median s | min s |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| {args.interactions} | {args.budget} | {rendered.kept} | {statistics.median(times):.4f} | {min(times):.4f} |")


if __name__ == "__main__":
    main()
