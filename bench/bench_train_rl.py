"""A short streaming-GRPO run on CPU: the embedded 0.5B policy with LoRA, the embedded 0.5B as judge, a few
real P-Soups users. It shows the whole RL path on a real model (two-stage rollouts, judge rewards, the
cumulative reward, clipped updates, the log and its plot), not a quality result: a few steps of a 0.5B
model are far from the paper's 109 steps of an 8B on 64 GPUs.

    python bench/bench_train_rl.py                       # 4 users, G=4, 4 optimizer steps, 96-token replies

The embedded models do not think, so the policy writes direct summaries (`--style direct`, the style
`prefscribe infer` picks for them); the paper's reasoning format needs an SFT-ed thinking model.
    python bench/bench_train_rl.py --steps 2 --max-new-tokens 64 --out /tmp/rl-bench

Records: each P-Soups user has 4 comparison pairs and a target; history = the 4 pairs + the target, with
k = 2 (stage 1 summarizes pairs 0-1, judged on pair 2) and K = 4 (stage 2 adds pairs 2-3, judged on the
target). Data from $PREFSCRIBE_DATA (default ../shared/data); nothing is copied into the repo.
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
COLUMNS = [("step", "step"), ("stage1/reward", "r1"), ("stage2/reward", "r2"), ("stage1/cumulative_reward", "R1"),
           ("stage1/length", "len1"), ("stage2/length", "len2"), ("stage1/format_failures", "fail1"),
           ("stage2/format_failures", "fail2"), ("clip_ratio/region_mean", "clip"), ("loss", "loss"),
           ("grad_norm", "gnorm"), ("step_time", "sec")]


def rl_records(users: int, seed: int) -> list[dict]:
    from prefscribe.data import load
    from prefscribe.schema import Interaction
    from prefscribe.train import RLRecord

    out = []
    for user in load("psoups", DATA / "psoups" / "student_phd.json", limit=users, seed=seed):
        target = Interaction(context=user.target.context, chosen=user.target.chosen, rejected=user.target.rejected)
        record = RLRecord(user_id=user.user_id, history=[*user.history, target], k=2, K=len(user.history))
        out.append(json.loads(record.model_dump_json(exclude_none=True)))
    return out


def print_table(log: Path) -> None:
    """One line per optimizer step; rollout metrics appear on the step that generated the rollout batch."""
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    steps = [r for r in rows if "loss" in r]
    print("\n" + " ".join(f"{name:>7}" for _, name in COLUMNS))
    for row in steps:
        cells = [f"{row['step']:>7d}"]
        cells += [f"{row[key]:>7.3f}" if key in row else f"{'-':>7}" for key, _ in COLUMNS[1:]]
        print(" ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps (2 per rollout batch)")
    parser.add_argument("--generations", type=int, default=4, help="G")
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--model", default="embedded:0.5b")
    parser.add_argument("--judge", default="embedded:0.5b")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--style", default="direct", choices=["direct", "reasoning"],
                        help="direct for the embedded models, which do not think (as `prefscribe infer` does)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from prefscribe.train import load_config, train_rl

    out = args.out or Path(tempfile.mkdtemp(prefix="prefscribe-rl-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    train_file = out / "rl.jsonl"
    records = rl_records(args.users, args.seed)
    train_file.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    G = args.generations
    config = load_config("rl", Path(__file__).resolve().parents[1] / "configs" / "rl.yaml", [
        f"model={args.model}", f"judge={args.judge}", f"train_file={train_file}", f"output_dir={out / 'run'}",
        f"num_generations={G}", f"max_completion_length={args.max_new_tokens}", "max_prompt_length=2048",
        f"style={args.style}", "lora.enabled=true", "lora.r=8", "lora.alpha=16", "dtype=bfloat16", "bf16=false",
        "gradient_checkpointing=false",
        # One record (2G sequences) per rollout batch, split into two optimizer steps: the second one is
        # off-policy, so the PPO clipping can act.
        f"per_device_train_batch_size={G}", "gradient_accumulation_steps=1", "steps_per_generation=2",
        f"max_steps={args.steps}", "learning_rate=2e-5", "save_steps=1000", f"seed={args.seed}",
    ])
    print(f"records: {len(records)} P-Soups users (k=2, K=4), G={G}, {args.style} style, policy {args.model} + LoRA r=8, "
          f"judge {args.judge} (both orders), max_new_tokens {args.max_new_tokens}, steps {args.steps}", flush=True)
    start = time.perf_counter()
    final = train_rl(config)
    wall = time.perf_counter() - start

    print_table(out / "run" / "train_log.jsonl")
    print(f"\nwall {wall:.0f} s; final model {final}; log {out / 'run' / 'train_log.jsonl'}; "
          f"plot {out / 'run' / 'training.png'}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
