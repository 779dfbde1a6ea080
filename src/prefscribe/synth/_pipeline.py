"""The generate - validate - merge pipeline (METHOD.md section 4), users in chunks, stage by stage.

Per user: segments early / middle / late. Pass "scratch": the early segment is summarized with targets
drawn from the middle one. Pass "update" (streaming): the middle segment updates the scratch summary,
with targets from the late one. In each pass, for every target the teacher writes a candidate, the judge
validates it, the teacher merges the valid ones, and the merged summary must predict enough targets.
All users of a chunk go through a stage together, so each stage is one batched (or concurrent) call.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cache import CachedCalls, ResultCache
from ..errors import InputError
from ..judge import ChoiceTask, Judge
from ..llm.base import Backend, Progress
from ..prompts import PromptSet, RenderedHistory, get_prompts
from ..schema import UserRecord
from . import _funnel as funnel
from ._calls import map_chunks
from ._config import SynthConfig
from ._generate import Candidate, generation_messages, parse_candidate
from ._journal import Journal
from ._merge import Merged, merge_messages, parse_merge
from ._records import sft_record
from ._scoring import DirectScorer, Point, Score
from ._segments import Segmented, seeded_rng, segment_user, working_history
from ._targets import Target, candidate_indices, select_targets

# Called with a stage description and its number of items; returns the callback advancing it.
StageProgress = Callable[[str, int], Progress]

JUDGE_WRONG = "judge picked the rejected item"
JUDGE_FAILED = "judge failed"
NO_TARGET = "no target left"
TOO_FEW_TARGETS = "fewer targets than min_valid"
TOO_FEW_VALID = "fewer valid candidates than min_valid"
BELOW_LAMBDA = "merged summary accuracy below lambda"
TOO_LONG = "an interaction exceeds max_history_tokens"
PROMPT_ROOM = 1024  # tokens for the instructions, the past summary and the target pair


def _no_progress(name: str, total: int) -> Progress:
    return lambda n=1: None


@dataclass
class SynthModels:
    """Any role can be any backend: in the paper all three are Qwen3-32B."""

    teacher: Backend
    judge: Backend
    scorer: Backend

    def specs(self) -> dict[str, str]:
        return {"teacher": self.teacher.info.spec, "judge": self.judge.info.spec, "scorer": self.scorer.info.spec}


@dataclass
class _User:
    record: UserRecord
    seg: Segmented
    events: list[dict] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)
    passes: dict[str, dict] = field(default_factory=dict)
    summary: str | None = None  # the merged scratch summary, the update pass's past

    def outcome(self) -> dict:
        return {"user_id": self.record.user_id, "events": self.events, "records": self.records,
                "passes": self.passes}


@dataclass
class _Work:
    """One user's state inside one pass."""

    user: _User
    rendered: RenderedHistory
    past: str | None
    targets: list[Target] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    merged: Merged | None = None


@dataclass
class SynthResult:
    records: list[dict]
    report: dict
    outcomes: list[dict]

    def write(self, out: str | Path, funnel_path: str | Path | None = None) -> Path:
        """The SFT records as JSONL at `out`, the funnel report as JSON beside it; returns the report path."""
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as fh:
            for record in self.records:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        report_path = Path(funnel_path) if funnel_path else default_funnel_path(out)
        report_path.write_text(json.dumps(self.report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        return report_path


def default_funnel_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".funnel.json")


def default_journal_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".journal.jsonl")


class Synthesizer:
    """Runs the pipeline on users; `cache` makes every model call resumable."""

    def __init__(self, models: SynthModels, config: SynthConfig | None = None, *,
                 cache: ResultCache | None = None, prompts: PromptSet | None = None, workers: int = 1,
                 progress: StageProgress | None = None) -> None:
        self.models = models
        self.config = config or SynthConfig()
        self.cache = cache
        self.prompts = prompts or get_prompts()
        self.workers = workers
        self.progress = progress or _no_progress
        self.scorer = DirectScorer(models.scorer, self.prompts, cache, self.config.max_history_tokens)
        self.judge = Judge(models.judge, prompts=self.prompts, cache=cache)
        self.teacher = CachedCalls(models.teacher, cache, self.prompts.version)

    # ---------------------------------------------------------------------------------------- driver
    def fingerprint(self, data: dict[str, Any] | None = None) -> dict[str, Any]:
        """What determines the results; a journal only resumes a run with the same fingerprint."""
        config = {k: v for k, v in self.config.as_dict().items() if k != "chunk_users"}
        return {"config": config, "models": self.models.specs(), "prompts": self.prompts.version,
                "data": data or {}}

    def run(self, users: Sequence[UserRecord], *, journal: Journal | None = None,
            data: dict[str, Any] | None = None) -> SynthResult:
        ids = [u.user_id for u in users]
        if len(set(ids)) != len(ids):
            raise InputError("user ids must be unique: the journal and the records are keyed by them", field="user_id")
        done = dict(journal.done) if journal else {}
        todo = [u for u in users if u.user_id not in done]
        advance_users = self.progress("users", len(users))
        if len(users) > len(todo):
            advance_users(len(users) - len(todo))
        size = self.config.chunk_users
        for start in range(0, len(todo), size):
            outcomes = self.run_chunk(todo[start:start + size])
            if journal:
                journal.append(outcomes)
            done.update((o["user_id"], o) for o in outcomes)
            advance_users(len(outcomes))
        outcomes = [done[i] for i in ids]
        report = funnel.funnel_report(outcomes, streaming=self.config.streaming, extra={
            "config": self.config.as_dict(), "models": self.models.specs(), "prompts": self.prompts.version,
            "data": data or {}, "resumed_users": len(users) - len(todo)})
        return SynthResult([r for o in outcomes for r in o["records"]], report, outcomes)

    def run_chunk(self, records: Sequence[UserRecord]) -> list[dict]:
        cfg = self.config
        outcomes: dict[str, dict] = {}
        users: list[_User] = []
        for record in records:
            history = working_history(record, cfg.max_history, cfg.include_target)
            seg = segment_user(history, cfg.min_segment)
            if isinstance(seg, str):
                outcomes[record.user_id] = {"user_id": record.user_id, "records": [], "passes": {},
                                            "events": [funnel.user_dropped("all", "segment", seg)]}
                continue
            user = _User(record, seg, events=[funnel.user_kept("all", "segment")])
            users.append(user)
        self._pass(users, "scratch")
        if cfg.streaming:
            self._pass([u for u in users if u.summary is not None], "update")
        for user in users:
            outcomes[user.record.user_id] = user.outcome()
        return [outcomes[r.user_id] for r in records]

    # ------------------------------------------------------------------------------------------ pass
    def _pass(self, users: list[_User], kind: str) -> None:
        if not users:
            return
        work = self._targets(users, kind)
        work = self._generate(work, kind)
        work = self._validate(work, kind)
        work = self._merge(work, kind)
        self._user_filter(work, kind)

    def _history_budget(self) -> int:
        teacher = self.models.teacher
        room = teacher.info.context_window - self.config.max_new_tokens - PROMPT_ROOM
        return max(64, min(self.config.max_history_tokens, room))

    def _targets(self, users: list[_User], kind: str) -> list[_Work]:
        cfg = self.config
        j = 0 if kind == "scratch" else 1  # the segment summarized; targets come from segment j + 1
        rendered: dict[int, RenderedHistory] = {}
        for u, user in enumerate(users):
            shown = self.prompts.render_history(user.seg.segment(j), self._history_budget(),
                                                self.models.teacher.count_tokens)
            if shown.kept == 0:
                user.events.append(funnel.user_dropped(kind, "targets", TOO_LONG))
            else:
                rendered[u] = shown
        points: list[Point] = []
        owners: list[tuple[int, int]] = []  # (user position, history index)
        for u in rendered:
            user = users[u]
            prefix_end = user.seg.bounds[j][1]
            start, end = user.seg.bounds[j + 1]
            for i in candidate_indices(list(range(start, end)), user.seg.history, prefix_end):
                points.append(Point(user.seg.history[:prefix_end], user.seg.history[i]))
                owners.append((u, i))
        scores = self.scorer.score(points, self.progress(f"score targets ({kind})", len(points)))
        by_user: dict[int, dict[int, Score]] = {}
        for (u, i), score in zip(owners, scores):
            by_user.setdefault(u, {})[i] = score
        work: list[_Work] = []
        for u, shown in rendered.items():
            user = users[u]
            start, end = user.seg.bounds[j + 1]
            rng = seeded_rng(cfg.seed, "synth-targets", user.record.user_id, kind)
            targets, dropped = select_targets(list(range(start, end)), user.seg.history, by_user.get(u, {}),
                                              cfg.tract_threshold, cfg.max_targets, rng,
                                              prefix_end=user.seg.bounds[j][1])
            user.events.append(funnel.event(kind, "targets", "candidates", len(targets), dropped))
            user.passes[kind] = {
                "segment": list(user.seg.bounds[j]),
                "scores": {str(i): sc.p_true for i, sc in by_user.get(u, {}).items()},  # every scored one
                "targets": [{"index": t.index, "score": t.score, "chosen_first": t.chosen_first} for t in targets]}
            if len(targets) < cfg.min_valid:
                reason = NO_TARGET if not targets else TOO_FEW_TARGETS
                user.events.append(funnel.user_dropped(kind, "targets", reason))
            else:
                user.events.append(funnel.user_kept(kind, "targets"))
                past = user.summary if kind == "update" else None
                work.append(_Work(user, shown, past, targets))
        return work

    def _generate(self, work: list[_Work], kind: str) -> list[_Work]:
        jobs = [(w, t) for w in work for t in w.targets]
        if not jobs:
            return work
        messages = [generation_messages(self.prompts, w.rendered, w.past, t) for w, t in jobs]
        completions = self.teacher.generate(messages, self.config.sampling, role="synth-generate",
                                             progress=self.progress(f"generate ({kind})", len(messages)))
        dropped: dict[int, Counter] = {id(w): Counter() for w in work}
        details: dict[int, list[dict]] = {id(w): [] for w in work}
        for (w, target), completion in zip(jobs, completions):
            result = parse_candidate(completion, target)
            if isinstance(result, str):
                dropped[id(w)][result] += 1
                details[id(w)].append({"index": target.index, "status": result, "raw": completion.text})
            else:
                w.candidates.append(result)
        for w in work:
            w.user.events.append(funnel.event(kind, "generate", "candidates", len(w.candidates), dropped[id(w)]))
            w.user.passes[kind]["generation_failures"] = details[id(w)]
        return work

    def _judge(self, tasks: list[ChoiceTask], description: str) -> list:
        return map_chunks(self.judge.choose_many, tasks, self.workers,
                          progress=self.progress(description, len(tasks)))

    def _validate(self, work: list[_Work], kind: str) -> list[_Work]:
        cfg = self.config
        jobs = [(w, c) for w in work for c in w.candidates]
        choices = self._judge([_task(c.target, c.summary) for _, c in jobs], f"validate ({kind})")
        verdicts: dict[int, list[tuple[Candidate, Any]]] = {id(w): [] for w in work}
        for (w, candidate), choice in zip(jobs, choices):
            verdicts[id(w)].append((candidate, choice))
        survivors = []
        for w in work:
            valid, dropped, details = [], Counter(), []
            for candidate, choice in verdicts[id(w)]:
                status = "valid" if choice.choice == "a" else JUDGE_FAILED if choice.choice is None else JUDGE_WRONG
                details.append({"index": candidate.target.index, "status": status, "p_true": choice.p_a,
                                "reasoning": candidate.reasoning, "summary": candidate.summary})
                if status == "valid":
                    valid.append(candidate)
                else:
                    dropped[status] += 1
            w.candidates = valid
            w.user.passes[kind]["candidates"] = details
            w.user.events.append(funnel.event(kind, "validate", "candidates", len(valid), dropped))
            if len(valid) < cfg.min_valid:
                w.user.events.append(funnel.user_dropped(kind, "validate", TOO_FEW_VALID))
            else:
                w.user.events.append(funnel.user_kept(kind, "validate"))
                survivors.append(w)
        return survivors

    def _merge(self, work: list[_Work], kind: str) -> list[_Work]:
        if not work:
            return work
        messages = [merge_messages(self.prompts, w.candidates) for w in work]
        completions = self.teacher.generate(messages, self.config.sampling, role="synth-merge",
                                             progress=self.progress(f"merge ({kind})", len(messages)))
        merged = []
        for w, completion in zip(work, completions):
            result = parse_merge(completion, w.targets)
            if isinstance(result, str):
                w.user.events.append(funnel.user_dropped(kind, "merge", result))
                w.user.passes[kind]["merge_failure"] = {"status": result, "raw": completion.text}
            else:
                w.merged = result
                w.user.events.append(funnel.user_kept(kind, "merge"))
                merged.append(w)
        return merged

    def _user_filter(self, work: list[_Work], kind: str) -> None:
        jobs = [(w, t) for w in work for t in w.targets]
        choices = self._judge([_task(t, w.merged.summary) for w, t in jobs],  # type: ignore[union-attr]
                              f"user filter ({kind})")
        hits: dict[int, list[bool]] = {id(w): [] for w in work}
        for (w, _), choice in zip(jobs, choices):
            hits[id(w)].append(choice.choice == "a")
        for w in work:
            accuracy = sum(hits[id(w)]) / len(hits[id(w)])
            user, merged = w.user, w.merged
            assert merged is not None
            user.passes[kind].update({"merged": {"reasoning": merged.reasoning, "summary": merged.summary},
                                      "accuracy": accuracy})
            if accuracy < self.config.lam:
                user.events.append(funnel.user_dropped(kind, "user_filter", BELOW_LAMBDA))
                continue
            user.events.append(funnel.user_kept(kind, "user_filter"))
            j = 0 if kind == "scratch" else 1
            meta = {"benchmark": user.record.meta.get("benchmark"), "segment": list(user.seg.bounds[j]),
                    "interactions_shown": w.rendered.kept, "targets": [t.index for t in w.targets],
                    "candidates": len(w.candidates), "accuracy": accuracy, **self.models.specs(),
                    "seed": self.config.seed}
            user.records.append(sft_record(self.prompts, w.rendered, w.past, merged, user_id=user.record.user_id,
                                           kind=kind, meta=meta))
            if kind == "scratch":
                user.summary = merged.summary


def _task(target: Target, summary: str) -> ChoiceTask:
    """The judge's view: a = the true item, b = the other; the Judge shows both orders itself."""
    h = target.interaction
    assert h.rejected is not None
    return ChoiceTask(a=h.chosen, b=h.rejected, context=h.context, preference=summary)


def synthesize(users: Sequence[UserRecord], models: SynthModels, config: SynthConfig | None = None, *,
               cache: ResultCache | None = None, prompts: PromptSet | None = None, workers: int = 1,
               progress: StageProgress | None = None, journal_path: str | Path | None = None,
               fresh: bool = False, data: dict[str, Any] | None = None) -> SynthResult:
    """Run the pipeline on `users`; with `journal_path`, finished users are kept there and skipped on rerun."""
    synth = Synthesizer(models, config, cache=cache, prompts=prompts, workers=workers, progress=progress)
    journal = Journal(journal_path, synth.fingerprint(data), fresh=fresh) if journal_path else None
    return synth.run(users, journal=journal, data=data)
