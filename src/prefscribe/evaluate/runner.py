"""Run a benchmark under several settings: infer profiles, judge targets, write resumable results.

Per run folder:
  items.jsonl    one line per (user, setting): profile, probabilities, failure, tokens, timings
  summary.json   {"results": [{"benchmark", "setting", "model", "judge", "n", "accuracy", "ci_low", ...}]}
  table.md       the summary as a markdown table
  accuracy.png   accuracy by setting (with 95% intervals)
A rerun with the same arguments skips items already in items.jsonl; model replies are cached besides.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..infer import InferJob, Inferrer
from ..judge import ChoiceTask, Judge
from ..schema import InferenceFailure, Profile, UserRecord
from .metrics import ItemOutcome, summarize
from .settings import check_no_target_in_history, plan_history

Advance = Callable[[int], None]


@dataclass
class EvalConfig:
    benchmark: str
    settings: list[str]
    out: Path
    segments: int = 2
    chunk: int = 8                 # users per inference batch (and per write to items.jsonl)
    variant: str = ""              # e.g. "noise=0.25": kept apart in items and summary
    run_meta: dict = field(default_factory=dict)


def _prompt_hash(messages) -> str:
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:16]


def _done_keys(path: Path) -> set[tuple[str, ...]]:
    """(user, setting, variant, model, judge) of every item already judged: another model or judge in the same
    folder is a new item, not a resumed one."""
    if not path.exists():
        return set()
    keys = set()
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                keys.add((row["user_id"], row["setting"], row.get("variant", ""), row["model"], row["judge"]))
    return keys


def _load_items(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


class Evaluation:
    def __init__(self, inferrer: Inferrer, judge: Judge, config: EvalConfig) -> None:
        if judge.orders == "random":  # one random order per item: kept apart from both-order results
            config = replace(config, variant=",".join(filter(None, [config.variant, "order=random"])))
        self.inferrer, self.judge, self.config = inferrer, judge, config
        config.out.mkdir(parents=True, exist_ok=True)
        self.items_path = config.out / "items.jsonl"

    # ------------------------------------------------------------------------------------- profiles
    def _preferences(self, setting: str, users: Sequence[UserRecord], advance: Advance | None
                     ) -> list[tuple[str | None, str, dict]]:
        """(preference text or None, preference kind, record of how it was made) per user."""
        cfg = self.config
        if setting == "none":
            return [(None, "summary", {}) for _ in users]
        if setting == "gold":
            return [(u.gold_preference, "summary", {} if u.gold_preference else
                     {"error": "this benchmark has no gold preference for the user"}) for u in users]
        plans = [plan_history(u, cfg.benchmark, cfg.segments) for u in users]
        if setting == "raw":
            prompts, backend = self.judge.prompts, self.judge.backend
            # Leave room in the judge's context for the target and the items.
            budget = max(256, backend.info.context_window // 2)
            return [(prompts.render_history(p.full, budget, backend.count_tokens).text.strip(), "history", {})
                    for p in plans]
        start = time.perf_counter()
        if setting == "full":
            results = [[r] for r in self.inferrer.run([InferJob(p.full) for p in plans], advance)]
        else:
            results = self._stream(plans, advance)
        seconds = (time.perf_counter() - start) / max(1, len(users))
        out = []
        for steps in results:
            final = steps[-1]
            info = {"infer_seconds": seconds,
                    "prompt_tokens": sum(s.usage.prompt_tokens for s in steps),
                    # The last step is what one more update costs: set against a full re-run in reports.
                    "last_step_prompt_tokens": steps[-1].usage.prompt_tokens,
                    "completion_tokens": sum(s.usage.completion_tokens for s in steps),
                    "steps": len(steps)}
            if isinstance(final, InferenceFailure):
                out.append((None, "summary", {**info, "error": final.error, "raw": final.raw[-2000:]}))
            else:
                out.append((final.profile, "summary", {**info, "reasoning": final.reasoning,
                                                       "covers": final.covers}))
        return out

    def _stream(self, plans, advance: Advance | None) -> list[list[Profile | InferenceFailure]]:
        """Segment by segment across all users: each step is one batch."""
        current: list[Profile | None] = [None] * len(plans)
        out: list[list] = [[] for _ in plans]
        steps = max(len(p.segments) for p in plans)
        for step in range(steps):
            alive = [i for i, p in enumerate(plans) if step < len(p.segments)
                     and not (out[i] and isinstance(out[i][-1], InferenceFailure))]
            results = self.inferrer.run([InferJob(plans[i].segments[step], current[i]) for i in alive])
            for i, result in zip(alive, results):
                out[i].append(result)
                if isinstance(result, Profile):
                    current[i] = result
        if advance:
            advance(len(plans))
        return out

    # ------------------------------------------------------------------------------------------- run
    def run(self, records: Sequence[UserRecord], progress: Callable[[str, int], Advance] | None = None) -> list[dict]:
        cfg = self.config
        check_no_target_in_history(records)
        done = _done_keys(self.items_path)
        models = (self.inferrer.backend.info.spec, self.judge.backend.info.spec)
        for setting in cfg.settings:
            todo = [r for r in records if (r.user_id, setting, cfg.variant, *models) not in done]
            advance = progress(f"{cfg.benchmark} {setting}{' ' + cfg.variant if cfg.variant else ''}",
                               len(todo)) if progress else None
            for start in range(0, len(todo), cfg.chunk):
                chunk = todo[start:start + cfg.chunk]
                preferences = self._preferences(setting, chunk, None)
                rows = [self._judge_one(u, setting, pref) for u, pref in zip(chunk, preferences)]
                with self.items_path.open("a", encoding="utf-8") as fh:
                    for row in rows:
                        fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                if advance:
                    advance(len(chunk))
        return self.write_summary()

    def _judge_one(self, user: UserRecord, setting: str, preference: tuple[str | None, str, dict]) -> dict:
        text, kind, info = preference
        target = user.target
        row = {"user_id": user.user_id, "benchmark": self.config.benchmark, "setting": setting,
               "variant": self.config.variant, "model": self.inferrer.backend.info.spec,
               "judge": self.judge.backend.info.spec, "prompt_version": self.judge.prompts.version,
               "preference": text, **{k: v for k, v in info.items()}}
        if setting in ("gold", "full", "streaming") and text is None:
            row.update(correct=False, failed=True, p_true=None, orders=[])
            return row
        task = ChoiceTask(a=target.chosen, b=target.rejected, context=target.context, preference=text,
                          preference_kind=kind)
        start = time.perf_counter()
        choice = self.judge.choose(task)
        row["judge_seconds"] = time.perf_counter() - start
        row["judge_prompt_hash"] = _prompt_hash(self.judge.prompts.judge_messages(
            task.context, task.preference, task.a, task.b, task.preference_kind))
        row.update(correct=choice.choice == "a", failed=choice.choice is None, p_true=choice.p_a,
                   judge_prompt_tokens=choice.prompt_tokens,
                   orders=[{"true_first": o.order == "ab", "p_first": o.p_first, "error": o.error}
                           for o in choice.orders])
        if choice.error:
            row["judge_error"] = choice.error
        return row

    # --------------------------------------------------------------------------------------- summary
    def write_summary(self) -> list[dict]:
        rows = _load_items(self.items_path)
        return write_summary(self.config.out, rows, self.config.run_meta)


def outcomes_of(rows: Sequence[dict]) -> list[ItemOutcome]:
    return [ItemOutcome(correct=bool(r["correct"]), failed=bool(r["failed"]), p_true=r.get("p_true"),
                        orders=[(o["true_first"], o["p_first"]) for o in r.get("orders", [])
                                if o.get("p_first") is not None]) for r in rows]


def write_summary(out: Path, rows: Sequence[dict], run_meta: dict) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["benchmark"], row["setting"], row.get("variant", ""), row["model"], row["judge"]),
                          []).append(row)
    results = []
    for (benchmark, setting, variant, model, judge), items in groups.items():
        stats = summarize(outcomes_of(items))
        stats.update(
            benchmark=benchmark, setting=setting, variant=variant, model=model, judge=judge,
            prompt_tokens=sum(r.get("prompt_tokens", 0) for r in items),
            last_step_prompt_tokens=sum(r.get("last_step_prompt_tokens", 0) for r in items),
            completion_tokens=sum(r.get("completion_tokens", 0) for r in items),
            judge_prompt_tokens=sum(r.get("judge_prompt_tokens", 0) for r in items),
            wall_seconds=sum(r.get("infer_seconds", 0) + r.get("judge_seconds", 0) for r in items),
        )
        results.append(stats)
    order = {"none": 0, "raw": 1, "gold": 2, "full": 3, "streaming": 4}
    results.sort(key=lambda r: (r["benchmark"], r["variant"], order.get(r["setting"], 9)))
    (out / "summary.json").write_text(json.dumps({"run": run_meta, "results": results}, indent=2))
    (out / "table.md").write_text(markdown_table(results))
    return results


def markdown_table(results: Sequence[dict]) -> str:
    lines = [("| benchmark | variant | setting | model | judge | n | accuracy (95% CI) | mean P(true) | AUC | failed |"
              " P(A) when A true / B true | prompt tok | wall s |"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    fmt = lambda v, spec=".3f": "-" if v is None else format(v, spec)
    for r in results:
        lines.append(
            f"| {r['benchmark']} | {r['variant'] or '-'} | {r['setting']} | {r['model']} | {r['judge']} | {r['n']} | "
            f"{100 * r['accuracy']:.1f} ({100 * r['ci_low']:.1f}-{100 * r['ci_high']:.1f}) | {fmt(r['mean_p_true'])} | "
            f"{fmt(r['auc'])} | {r['failed']} | {fmt(r['p_a_when_a_true'], '.2f')} / {fmt(r['p_a_when_b_true'], '.2f')} | "
            f"{r['prompt_tokens']} | {r['wall_seconds']:.0f} |")
    return "\n".join(lines) + "\n"
