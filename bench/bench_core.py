"""Speed and memory of the core on a local model: one profile, batched throughput, choose, streaming.

    python bench/bench_core.py --model embedded --runs 3
    python bench/bench_core.py --model embedded:0.5b --runs 3

Each part runs in its own subprocess so its peak RSS is its own. Times are medians of --runs runs; ratios
compare against a baseline measured in the same run. Real data: P-Soups and MovieLens from $PREFSCRIBE_DATA.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(os.environ.get("PREFSCRIBE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def _backend(model: str):
    from prefscribe.llm import load_backend

    return load_backend(model)


def _movielens_history(n: int, user_index: int = 0):
    from prefscribe.data import load

    users = [u for u in load("movielens", DATA / "movielens", limit=40, seed=0, max_history=80) if len(u.history) >= n]
    return users[user_index % len(users)].history[-n:]


def _history_of_tokens(backend, tokens: int, user_index: int = 0):
    """The most recent MovieLens interactions of one user whose rendered prompt is ~`tokens` long."""
    from prefscribe.prompts import get_prompts

    prompts = get_prompts()
    history = _movielens_history(50, user_index)
    rendered = prompts.render_history(history, tokens, backend.count_tokens)
    return history[len(history) - rendered.kept:]


def _timed(fn, runs: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(runs):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def part_single(model: str, runs: int) -> dict:
    from prefscribe.infer import InferConfig, InferJob, Inferrer
    from prefscribe.llm.base import Sampling

    backend = _backend(model)
    history = _history_of_tokens(backend, 800)
    inferrer = Inferrer(backend, InferConfig(style="direct", sampling=Sampling(max_new_tokens=150,
                                                                                min_new_tokens=150)))
    inferrer.run([InferJob(history[:2])])  # warm-up: first-call kernel setup
    seconds, results = _timed(lambda: inferrer.run([InferJob(history)]), runs)
    usage = results[0].usage
    return {"seconds": seconds, "prompt_tokens": usage.prompt_tokens, "new_tokens": usage.completion_tokens}


def part_batch(model: str, runs: int, users: int = 16) -> dict:
    from prefscribe.infer import InferConfig, InferJob, Inferrer
    from prefscribe.llm.base import Sampling

    backend = _backend(model)
    jobs = [InferJob(_history_of_tokens(backend, 300, i)) for i in range(users)]
    sampling = Sampling(max_new_tokens=64, min_new_tokens=64)
    inferrer = Inferrer(backend, InferConfig(style="direct", sampling=sampling))
    inferrer.run(jobs[:1])
    one_by_one, _ = _timed(lambda: [inferrer.run([job]) for job in jobs], runs)
    batched, _ = _timed(lambda: inferrer.run(jobs), runs)
    return {"users": users, "sequential_s": one_by_one, "batched_s": batched, "speedup": one_by_one / batched}


def part_choose(model: str, runs: int) -> dict:
    from prefscribe.judge import ChoiceTask, Judge
    from prefscribe.prompts import JUDGE_OPTIONS, JUDGE_PREFILL, get_prompts

    backend = _backend(model)
    judge = Judge(backend)
    profile = ("The user is drawn to slow, cerebral science fiction and character-driven drama: films that "
               "take ideas seriously, such as first-contact stories, artificial intelligence and space "
               "exploration, told with restraint. They avoid broad romantic comedies, slapstick and loud "
               "franchise action, and they rarely pick musicals. Older classics are welcome when they are "
               "thoughtful; recent releases appeal when they are ambitious rather than formulaic.")
    task = ChoiceTask(a="Annihilation (2018) — Adventure|Drama|Horror|Mystery|Sci-Fi",
                      b="Crazy, Stupid, Love. (2011) — Comedy|Drama|Romance", context=None, preference=profile)
    prompts = get_prompts()
    judge.choose(task)
    both, _ = _timed(lambda: judge.choose(task), runs)
    orders = [prompts.judge_messages(None, profile, task.a, task.b), prompts.judge_messages(None, profile, task.b, task.a)]
    independent, _ = _timed(lambda: [backend.option_logprobs([o], JUDGE_PREFILL, JUDGE_OPTIONS) for o in orders], runs)
    shared, _ = _timed(lambda: backend.option_logprobs(orders, JUDGE_PREFILL, JUDGE_OPTIONS), runs)
    return {"choose_both_s": both, "two_independent_s": independent, "shared_prefix_s": shared,
            "reuse_speedup": independent / shared, "prompt_tokens": backend.count_tokens(backend.render(orders[0]))}


def part_stream(model: str, runs: int) -> dict:
    """Prompt tokens to keep a profile current over 60 interactions arriving in 6 chunks of 10."""
    from prefscribe.infer import InferConfig, InferJob, Inferrer
    from prefscribe.llm.base import Sampling

    backend = _backend(model)
    history = _movielens_history(60)
    inferrer = Inferrer(backend, InferConfig(style="direct", sampling=Sampling(max_new_tokens=160)))
    streamed = inferrer.stream_many([history], 6)[0]
    stream_tokens = sum(r.usage.prompt_tokens for r in streamed)
    # Re-running the full history each time: prompts for history[:10], [:20], ... [:60] (no past profile).
    full_tokens = 0
    for end in range(10, 61, 10):
        plan = inferrer.plan(InferJob(history[:end]))
        full_tokens += backend.count_tokens(backend.render(plan.messages))
    return {"streaming_prompt_tokens": stream_tokens, "full_rerun_prompt_tokens": full_tokens,
            "ratio": stream_tokens / full_tokens, "failures": sum(1 for r in streamed if not hasattr(r, "profile"))}


PARTS = {"single": part_single, "batch": part_batch, "choose": part_choose, "stream": part_stream}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--part", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:  # child process: run one part, print JSON with its peak RSS
        result = PARTS[args.part](args.model, args.runs)
        result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print("RESULT " + json.dumps(result))
        return
    rows = {}
    for part in args.parts.split(","):
        out = subprocess.run([sys.executable, __file__, "--model", args.model, "--runs", str(args.runs),
                              "--part", part], capture_output=True, text=True)
        line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
        if not line:
            print(out.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"part {part} failed")
        rows[part] = json.loads(line[0][7:])
        print(part, rows[part], flush=True)
    load = os.getloadavg()
    print(f"\n## bench_core on {args.model}, median of {args.runs} runs, {os.cpu_count()} cores, "
          f"load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min)\n")
    print("| measure | value | target | peak RSS MiB |\n|---|---|---|---|")
    small = "0.5b" in args.model
    if "single" in rows:
        r = rows["single"]
        print(f"| one profile, {r['prompt_tokens']} prompt + {r['new_tokens']} new tokens | {r['seconds']:.1f} s | "
              f"<= {15 if small else 40} s | {r['peak_rss_mib']:.0f} |")
    if "batch" in rows:
        r = rows["batch"]
        print(f"| {r['users']} users one at a time / batched | {r['sequential_s']:.1f} s / {r['batched_s']:.1f} s "
              f"= {r['speedup']:.2f}x | >= 3x | {r['peak_rss_mib']:.0f} |")
    if "choose" in rows:
        r = rows["choose"]
        print(f"| choose, both orders ({r['prompt_tokens']}-token prompt) | {r['choose_both_s']:.2f} s | "
              f"<= {2 if small else 5} s | {r['peak_rss_mib']:.0f} |")
        print(f"| two independent forwards / shared prefix | {r['two_independent_s']:.2f} s / "
              f"{r['shared_prefix_s']:.2f} s = {r['reuse_speedup']:.2f}x | >= 2x | |")
    if "stream" in rows:
        r = rows["stream"]
        print(f"| prompt tokens, 60 interactions in 6 chunks: streaming / full re-run | "
              f"{r['streaming_prompt_tokens']} / {r['full_rerun_prompt_tokens']} = {r['ratio']:.2f} | < 0.5 | "
              f"{r['peak_rss_mib']:.0f} |")


if __name__ == "__main__":
    main()
