"""`prefscribe batch` on Ray vs the single-process Inferrer: the same users, the same model, one machine.

    python bench/bench_batch.py --model embedded:0.5b --users 64
    python bench/bench_batch.py --model hf:/path/to/tiny --users 8 --max-new-tokens 8     # plumbing only

Both paths write one full-history profile per user with the cache off. The single-process time includes
loading the model, as the batch time includes each actor's load; the batch time also includes reading and
validating the rows, grouping them per user, and writing the output folder (it excludes `ray.init`, paid
once per cluster, which is reported apart). Throughput: users/s and (prompt + completion) tokens/s; the
overhead ratio is batch users/s over single-process users/s (the issue's target: >= 0.8 on one machine).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(os.environ.get("PREFSCRIBE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def movielens_logs(users: int, max_history: int, path: Path) -> dict[str, list]:
    """The first `users` MovieLens users (seed 0) as interaction rows, and their histories."""
    from prefscribe.data import load

    records = load("movielens", DATA / "movielens", limit=users, seed=0, max_history=max_history)
    histories = {}
    with path.open("w", encoding="utf-8") as fh:
        for record in records:
            histories[record.user_id] = record.history
            for n, item in enumerate(record.history):
                row = {"user_id": record.user_id, "timestamp": n, **item.model_dump(exclude={"timestamp", "meta"},
                                                                                     exclude_none=True)}
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return histories


def single_process(model: str, max_new_tokens: int, histories: dict[str, list]) -> dict:
    from prefscribe.batch import ModelSettings
    from prefscribe.infer import InferJob
    from prefscribe.schema import InferenceFailure

    start = time.perf_counter()
    inferrer = ModelSettings(model=model, max_new_tokens=max_new_tokens, cache="").inferrer()
    loaded = time.perf_counter()
    results = inferrer.run([InferJob(h) for h in histories.values()])
    end = time.perf_counter()
    tokens = sum(r.usage.prompt_tokens + r.usage.completion_tokens for r in results)
    wall = end - start
    return {"path": "single-process Inferrer", "users": len(results),
            "failed": sum(1 for r in results if isinstance(r, InferenceFailure)), "load_s": round(loaded - start, 2),
            "wall_s": round(wall, 2), "users_per_s": round(len(results) / wall, 4),
            "tokens_per_s": round(tokens / wall, 1), "tokens": tokens}


def batch(model: str, max_new_tokens: int, logs: Path, out: Path, workers: int, batch_size: int) -> dict:
    from prefscribe.batch import BatchConfig, run_batch

    summary = run_batch(BatchConfig(interactions=[str(logs)], out=str(out), model=model,
                                    max_new_tokens=max_new_tokens, cache="", workers=workers,
                                    batch_size=batch_size))
    tokens = summary.prompt_tokens + summary.completion_tokens
    users = summary.users_done + summary.users_failed  # every user a profile was attempted for, as above
    return {"path": f"prefscribe batch (Ray, {workers} actor(s), {batch_size} users/call)", "users": users,
            "failed": summary.users_failed, "load_s": None, "wall_s": summary.wall_seconds,
            "users_per_s": round(users / summary.wall_seconds, 4), "tokens_per_s": summary.tokens_per_second,
            "tokens": tokens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded:0.5b")
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--max-history", type=int, default=20, help="interactions per user (the most recent)")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    import ray

    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp) / "movielens.jsonl"
        histories = movielens_logs(args.users, args.max_history, logs)
        single = single_process(args.model, args.max_new_tokens, histories)
        start = time.perf_counter()
        ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        ray_start = round(time.perf_counter() - start, 2)
        try:
            on_ray = batch(args.model, args.max_new_tokens, logs, Path(tmp) / "out", args.workers, args.batch_size)
        finally:
            ray.shutdown()
    ratio = on_ray["users_per_s"] / single["users_per_s"] if single["users_per_s"] else float("nan")
    result = {"model": args.model, "users": args.users, "max_history": args.max_history,
              "max_new_tokens": args.max_new_tokens, "ray_init_s": ray_start, "runs": [single, on_ray],
              "ray_over_single_users_per_s": round(ratio, 3)}
    header = "| path | users | failed | wall s | users/s | tokens/s |"
    print(header + "\n|---|---:|---:|---:|---:|---:|")
    for run in (single, on_ray):
        print(f"| {run['path']} | {run['users']} | {run['failed']} | {run['wall_s']} | {run['users_per_s']} | "
              f"{run['tokens_per_s']} |")
    print(f"\nRay / single-process throughput (users/s): {ratio:.3f}  (ray.init {ray_start}s, not in the wall time)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
