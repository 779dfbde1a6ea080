"""Run a benchmark under several settings: infer profiles, judge targets, write resumable results.

Per run folder:
  items.jsonl    one line per (user, setting): profile, probabilities, failure, tokens, timings, donor
  summary.json   {"results": [{"benchmark", "setting", "model", "judge", "n", "accuracy", "ci_low", ...}],
                  "comparisons": [{"benchmark", "variant", "a", "b", "n", "diff", "ci_low", "ci_high"}, ...],
                  "gain_recovered": [{"benchmark", "variant", "model", "judge", "value"}, ...]}
  table.md       the summary as a markdown table
  accuracy.png   accuracy by setting (with 95% intervals)
  measured.jsonl the people the measured writer compared each profile with (writers.KeepsState), in order
A rerun with the same arguments skips items already in items.jsonl; model replies are cached besides; a writer
that keeps state reads it back, so a stopped run, resumed, writes the profiles an uninterrupted one writes.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import InputError
from ..infer import InferJob, Result
from ..judge import ChoiceTask, Judge
from ..schema import InferenceFailure, Interaction, UserRecord
from .metrics import ItemOutcome, paired_difference, summarize
from .settings import (
    COMPARISONS,
    SETTINGS,
    Preference,
    ProfileKind,
    Setting,
    check_no_target_in_history,
    donors,
    plan_history,
    setting_order,
)
from .writers import KeepsState, ProfileWriter, Surveys

Advance = Callable[[int], None]


@dataclass
class EvalConfig:
    benchmark: str
    settings: list[str]
    out: Path
    segments: int = 2
    chunk: int = 8                 # users per inference batch (and per write to items.jsonl)
    variant: str = ""              # e.g. "noise=0.25": kept apart in items and summary
    seed: int = 0                  # of the mismatched controls' donors
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


# Item fields that describe how a profile was written: kept with the profile so another setting can reuse it.
_PROFILE_INFO = ("infer_seconds", "prompt_tokens", "last_step_prompt_tokens", "completion_tokens", "steps",
                 "reasoning", "covers", "error", "raw")


class Evaluation:
    """Judge each user of a benchmark under each setting; the settings build the preference texts through this
    object (it is their `SettingContext`): profiles are written once per user and kind, whichever setting asks
    first, and reused by the others (a mismatched control borrows the very profile its donor got)."""

    def __init__(self, inferrer: ProfileWriter, judge: Judge, config: EvalConfig) -> None:
        self._data_variant = config.variant  # the histories' variant: profiles written under it are reusable
        config = replace(config, variant=",".join(filter(None, [config.variant, *judge_labels(judge)])))
        unknown = [s for s in config.settings if s not in SETTINGS]
        if unknown:
            raise InputError(f"unknown setting(s) {', '.join(unknown)}; choose from {', '.join(SETTINGS)}",
                             field="settings")
        self.inferrer, self.judge, self.config = inferrer, judge, config
        config.out.mkdir(parents=True, exist_ok=True)
        self.items_path = config.out / "items.jsonl"
        self._profiles: dict[tuple[ProfileKind, str], Preference] = {}
        self._donors: dict[str, str] = {}
        self._users: dict[str, UserRecord] = {}

    # ------------------------------------------------------------------------ the settings' context
    @property
    def benchmark(self) -> str:
        return self.config.benchmark

    @property
    def segments(self) -> int:
        return self.config.segments

    @property
    def seed(self) -> int:
        return self.config.seed

    def users(self) -> list[UserRecord]:
        return list(self._users.values())

    def generic_text(self) -> str:
        return self.judge.prompts.generic_preference()

    def raw_history(self, history: Sequence[Interaction]) -> str:
        backend = self.judge.backend
        # Leave room in the judge's context for the target and the items.
        budget = max(256, backend.info.context_window // 2)
        return self.judge.prompts.render_history(history, budget, backend.count_tokens).text.strip()

    def donor(self, user: UserRecord) -> UserRecord:
        if not self._donors:
            self._donors = donors(list(self._users.values()), self.config.seed)
        return self._users[self._donors[user.user_id]]

    def profiles(self, kind: ProfileKind, users: Sequence[UserRecord]) -> list[Preference]:
        todo = list({u.user_id: u for u in users if (kind, u.user_id) not in self._profiles}.values())
        if todo:
            plans = [plan_history(u, self.config.benchmark, self.config.segments) for u in todo]
            start = time.perf_counter()
            steps = self._write_full(plans) if kind == "full" else self._write_streaming(plans)
            seconds = (time.perf_counter() - start) / len(todo)
            for user, user_steps in zip(todo, steps):
                self._profiles[(kind, user.user_id)] = _as_preference(user_steps, seconds)
        return [self._profiles[(kind, u.user_id)] for u in users]

    def _write_full(self, plans) -> list[list[Result]]:
        return [[r] for r in self.inferrer.run([InferJob(p.full) for p in plans])]

    def _write_streaming(self, plans) -> list[list[Result]]:
        """The inferrer's streaming loop, once per segment count (a short history has fewer segments)."""
        out: list[list[Result]] = [[] for _ in plans]
        by_count: dict[int, list[int]] = {}
        for i, plan in enumerate(plans):
            by_count.setdefault(len(plan.segments), []).append(i)
        for count, members in by_count.items():
            # plan.segments are split_segments(plan.full, count), the split stream_many makes itself.
            results = self.inferrer.stream_many([plans[i].full for i in members], count)
            for i, steps in zip(members, results):
                out[i] = steps
        return out

    def _remember_written_profiles(self) -> None:
        """Profiles already in items.jsonl (same writer, same histories): a control run later borrows those, and
        so does a run under another judge method or order (the judge does not change what was written)."""
        writer = self.inferrer.writer
        for row in _load_items(self.items_path):
            if (row["setting"] in ("full", "streaming") and row["model"] == writer
                    and data_variant(row.get("variant", "")) == self._data_variant):
                info = {k: row[k] for k in _PROFILE_INFO if k in row}
                self._profiles.setdefault((row["setting"], row["user_id"]), Preference(row.get("preference"),
                                                                                        info=info))

    # ------------------------------------------------------------------------------------------- run
    def run(self, records: Sequence[UserRecord], progress: Callable[[str, int], Advance] | None = None) -> list[dict]:
        cfg = self.config
        check_no_target_in_history(records)
        self._users = {r.user_id: r for r in records}
        self._donors = {}
        self._remember_written_profiles()
        if isinstance(self.inferrer, KeepsState):
            self.inferrer.keep_state(cfg.out)
        if isinstance(self.inferrer, Surveys) and any(SETTINGS[name].writes_profiles for name in cfg.settings):
            plans = [plan_history(r, cfg.benchmark, cfg.segments) for r in records]
            advance = progress(f"{cfg.benchmark} measuring users", len(plans)) if progress else None
            self.inferrer.survey([InferJob(p.full) for p in plans], advance)
        done = _done_keys(self.items_path)
        models = (self.inferrer.writer, self.judge.backend.info.spec)
        for name in cfg.settings:
            setting = SETTINGS[name]
            todo = [r for r in records if (r.user_id, name, cfg.variant, *models) not in done]
            advance = progress(f"{cfg.benchmark} {name}{' ' + cfg.variant if cfg.variant else ''}",
                               len(todo)) if progress else None
            for start in range(0, len(todo), cfg.chunk):
                chunk = todo[start:start + cfg.chunk]
                rows = self._judge(chunk, setting, setting.preferences(chunk, self))
                with self.items_path.open("a", encoding="utf-8") as fh:
                    for row in rows:
                        fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                if advance:
                    advance(len(chunk))
        return self.write_summary()

    def _judge(self, users: Sequence[UserRecord], setting: Setting, preferences: Sequence[Preference]
               ) -> list[dict]:
        rows = [{"user_id": u.user_id, "benchmark": self.config.benchmark, "setting": setting.name,
                 "variant": self.config.variant, "model": self.inferrer.writer,
                 "judge": self.judge.backend.info.spec, "method": self.judge.method, "prompt_version": self.judge.prompts.version,
                 "preference": p.text, **p.info} for u, p in zip(users, preferences)]
        asked = [i for i, p in enumerate(preferences) if not (p.required and p.text is None)]
        tasks = [ChoiceTask(a=users[i].target.chosen, b=users[i].target.rejected, context=users[i].target.context,
                            preference=preferences[i].text, preference_kind=preferences[i].kind) for i in asked]
        start = time.perf_counter()
        choices = self.judge.choose_many(tasks) if tasks else []
        seconds = (time.perf_counter() - start) / max(1, len(tasks))
        for row in rows:  # nothing to judge with: a failure, counted as wrong
            row.update(correct=False, failed=True, p_true=None, orders=[])
        for i, task, choice in zip(asked, tasks, choices):
            row = rows[i]
            row["judge_seconds"] = seconds
            row["judge_prompt_hash"] = _prompt_hash(self.judge.prompts.judge_messages(
                task.context, task.preference, task.a, task.b, task.preference_kind))
            row.update(correct=choice.choice == "a", failed=choice.choice is None, p_true=choice.p_a,
                       judge_prompt_tokens=choice.prompt_tokens,
                       orders=[{"true_first": o.order == "ab", "p_first": o.p_first, "error": o.error}
                               for o in choice.orders])
            if choice.error:
                row["judge_error"] = choice.error
        return rows

    # --------------------------------------------------------------------------------------- summary
    def write_summary(self) -> list[dict]:
        rows = _load_items(self.items_path)
        return write_summary(self.config.out, rows, self.config.run_meta)


JUDGE_LABELS = ("order=", "method=")  # variant labels that name how the judge read, not what it read


def judge_labels(judge: Judge) -> list[str]:
    """Variant labels that keep a judge's results apart from the default judge's (letters, both orders)."""
    labels = []
    if judge.orders == "random":  # one random order per item: kept apart from both-order results
        labels.append("order=random")
    if judge.method != "logprobs":  # another way of choosing: its own baseline and controls
        labels.append(f"method={judge.method}")
    return labels


def data_variant(variant: str) -> str:
    """The variant without the judge's labels: which histories the profiles were written from."""
    return ",".join(p for p in variant.split(",") if p and not p.startswith(JUDGE_LABELS))


def method_of(variant: str) -> str:
    """The judge method a variant label names ("logprobs" when none is named)."""
    return next((p.split("=", 1)[1] for p in variant.split(",") if p.startswith("method=")), "logprobs")


def _as_preference(steps: Sequence[Result], seconds: float) -> Preference:
    final = steps[-1]
    info = {"infer_seconds": seconds,
            "prompt_tokens": sum(s.usage.prompt_tokens for s in steps),
            # The last step is what one more update costs: set against a full re-run in reports.
            "last_step_prompt_tokens": steps[-1].usage.prompt_tokens,
            "completion_tokens": sum(s.usage.completion_tokens for s in steps),
            "steps": len(steps)}
    if isinstance(final, InferenceFailure):
        return Preference(None, info={**info, "error": final.error, "raw": final.raw[-2000:]})
    if final.validation is not None:  # kept among candidates: the judge's score on the user's own pairs
        info["validation"] = final.validation
    return Preference(final.profile, info={**info, "reasoning": final.reasoning, "covers": final.covers})


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
    results.sort(key=lambda r: (r["benchmark"], r["variant"], *setting_order(r["setting"])))
    comparisons = compare(rows, seed=int(run_meta.get("seed") or 0))
    summary = {"run": run_meta, "results": results, "comparisons": comparisons,
               "gain_recovered": gain_recovered(comparisons), "judge_methods": judge_methods(comparisons)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    paired = comparisons_table(comparisons, summary["gain_recovered"])
    methods = judge_methods_table(summary["judge_methods"])
    (out / "table.md").write_text(markdown_table(results) + (f"\nPaired comparisons\n\n{paired}" if paired else "")
                                  + (f"\nJudge methods\n\n{methods}" if methods else ""))
    return results


def compare(rows: Sequence[dict], pairs: Sequence[tuple[str, str]] = COMPARISONS, seed: int = 0) -> list[dict]:
    """accuracy(a) - accuracy(b) over the users both settings judged, per benchmark, variant, writer and judge,
    with a seeded paired-bootstrap 95% interval; only pairs where both settings ran."""
    correct: dict[tuple, dict[str, dict[str, bool]]] = {}
    for row in rows:
        key = (row["benchmark"], row.get("variant", ""), row["model"], row["judge"])
        correct.setdefault(key, {}).setdefault(row["setting"], {})[row["user_id"]] = bool(row["correct"])
    out = []
    for (benchmark, variant, model, judge), by_setting in sorted(correct.items()):
        for a, b in pairs:
            if a not in by_setting or b not in by_setting:
                continue
            users = sorted(set(by_setting[a]) & set(by_setting[b]))
            if not users:
                continue
            d = paired_difference([by_setting[a][u] for u in users], [by_setting[b][u] for u in users], seed)
            out.append({"benchmark": benchmark, "variant": variant, "model": model, "judge": judge, "a": a, "b": b,
                        "n": d.n, "diff": d.diff, "ci_low": d.ci_low, "ci_high": d.ci_high})
    return out


def gain_recovered(comparisons: Sequence[dict]) -> list[dict]:
    """(full - mismatched) / (gold - gold_mismatched): the share of what a user-specific text can add (as the
    gold persona shows) that the written profile adds over somebody else's. None when gold adds nothing."""
    diffs = {(c["benchmark"], c["variant"], c["model"], c["judge"], c["a"], c["b"]): c["diff"] for c in comparisons}
    out = []
    for (benchmark, variant, model, judge, a, b), own in diffs.items():
        if (a, b) != ("full", "mismatched"):
            continue
        gold = diffs.get((benchmark, variant, model, judge, "gold", "gold_mismatched"))
        if gold is None:
            continue
        out.append({"benchmark": benchmark, "variant": variant, "model": model, "judge": judge,
                    "value": own / gold if gold > 0 else None})
    return out


# The comparisons that say whether a judge reads a profile at all: the benchmark's own persona against another
# persona's first (a judge that cannot tell those apart cannot tell written profiles apart either).
READS_PROFILES: tuple[tuple[str, str], ...] = (("gold", "gold_mismatched"), ("gold", "none"), ("full", "mismatched"))


def judge_methods(comparisons: Sequence[dict]) -> list[dict]:
    """The READS_PROFILES comparisons of every judge method, each with its `method` and its data variant."""
    out = []
    for c in comparisons:
        if (c["a"], c["b"]) in READS_PROFILES:
            out.append({**c, "method": method_of(c["variant"]), "data_variant": data_variant(c["variant"])})
    return out


def judge_methods_table(rows: Sequence[dict]) -> str:
    """One row per data set and comparison, one column per judge method: a - b in points (95% CI, n). Only
    settings that ran are shown, and only runs with more than one method or a gold text have anything to say."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    if not rows:
        return ""
    cells: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        key = (r["benchmark"], r["data_variant"], r["model"], r["judge"], READS_PROFILES.index((r["a"], r["b"])))
        cells.setdefault(key, {})[r["method"]] = r
    lines = ["| benchmark | variant | model | judge | a - b | " + " | ".join(methods) + " |",
             "|---|---|---|---|---|" + "---|" * len(methods)]
    for key in sorted(cells):
        benchmark, variant, model, judge, pair = key
        shown = [f"{100 * c['diff']:+.1f} ({100 * c['ci_low']:+.1f} to {100 * c['ci_high']:+.1f}, n={c['n']})"
                 if (c := cells[key].get(m)) else "-" for m in methods]
        a, b = READS_PROFILES[pair]
        lines.append(f"| {benchmark} | {variant or '-'} | {model} | {judge} | {a} - {b} | " + " | ".join(shown) + " |")
    return "\n".join(lines) + "\n"


def comparisons_table(comparisons: Sequence[dict], gains: Sequence[dict] = ()) -> str:
    """The paired comparisons in points (a - b, 95% interval), and the user-specific gain recovered."""
    if not comparisons:
        return ""
    lines = ["| benchmark | variant | model | judge | a - b | n | diff (points) | 95% CI |",
             "|---|---|---|---|---|---|---|---|"]
    for c in comparisons:
        lines.append(f"| {c['benchmark']} | {c['variant'] or '-'} | {c['model']} | {c['judge']} | {c['a']} - {c['b']} | "
                     f"{c['n']} | {100 * c['diff']:+.1f} | {100 * c['ci_low']:+.1f} to {100 * c['ci_high']:+.1f} |")
    for g in gains:
        value = "- (gold adds nothing over gold_mismatched)" if g["value"] is None else f"{100 * g['value']:.0f}%"
        lines.append(f"\nUser-specific gain recovered, (full - mismatched) / (gold - gold_mismatched), "
                     f"{g['benchmark']}{' ' + g['variant'] if g['variant'] else ''} ({g['model']} / {g['judge']}): "
                     f"{value}")
    return "\n".join(lines) + "\n"


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
