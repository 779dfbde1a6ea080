"""Behavioural validation at inference time: write k candidate profiles, keep the one that best predicts the
user's own choices.

METHOD.md's generate-validate step, applied per user when a profile is written: each candidate is read by a
judge on the user's own history pairs (both orders), scored by the mean probability it gives the chosen
item, and the best one is kept. Only the interactions the profile is written from are used, never a target.
Small writers vary a lot from one sample to the next (one sample names the user's level, the next retells
topics), so choosing among a few samples by behaviour is what makes their profiles carry the user.

    inferrer = ValidatedInferrer(backend, config, cache, judge=Judge(backend), candidates=4)
    profiles = inferrer.run(jobs)                   # or stream_many(...): every step is validated

Candidate i is sampled with seed `sampling.seed + i`, so candidate 0 is the profile an unvalidated writer
writes and k = 1 is exactly the unvalidated writer. Histories without rejected items (clicks, likes) cannot be
validated this way: they keep candidate 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from .infer import InferJob, Inferrer, Result
from .judge import ChoiceTask, Judge
from .llm.base import Progress
from .schema import Interaction, Profile, Usage

MAX_PAIRS = 8  # the most recent pairs of a step score its candidates: enough signal, bounded cost


@dataclass
class ValidatedInferrer(Inferrer):
    """An Inferrer that writes `candidates` profiles per job and keeps the best-validated one."""

    judge: Judge | None = None
    candidates: int = 4
    max_pairs: int = MAX_PAIRS
    _seeded: list[Inferrer] = field(init=False, repr=False, default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.judge is None:
            self.judge = Judge(self.backend, cache=self.cache)
        self._seeded = [Inferrer(self.backend, dataclasses.replace(self.config, seed=self.sampling.seed + i),
                                 self.cache) for i in range(max(1, self.candidates))]

    @property
    def writer(self) -> str:
        return f"{self.backend.info.spec} k={self.candidates} by {self.judge.backend.info.spec}"

    def run(self, jobs: Sequence[InferJob], progress: Progress | None = None) -> list[Result]:
        pairs = [_pairs(job.history, self.max_pairs) for job in jobs]
        # Only jobs with pairs to score get more than candidate 0: the others could not choose among them.
        scorable = [j for j, found in enumerate(pairs) if found]
        drafts: list[list[Result | None]] = [list(self._seeded[0].run(jobs))]  # [candidate][job]
        for writer in self._seeded[1:]:
            row: list[Result | None] = [None] * len(jobs)
            for j, result in zip(scorable, writer.run([jobs[j] for j in scorable]) if scorable else []):
                row[j] = result
            drafts.append(row)
        scores, judged = self._scores(drafts, pairs)
        results: list[Result] = []
        for j, job in enumerate(jobs):
            written = [d[j] for d in drafts if d[j] is not None]
            options = [(scores[c][j], -c, drafts[c][j]) for c in range(len(drafts))
                       if isinstance(drafts[c][j], Profile)]
            if not options:
                results.append(drafts[0][j])  # every candidate failed: report the first failure
            else:
                score, _, best = max(options, key=lambda o: (o[0] if o[0] is not None else -1.0, o[1]))
                results.append(_with_cost(best, written, judged[j], score))
            if progress:
                progress(1)
        return results

    def _scores(self, drafts: list[list[Result | None]], pairs: list[list[Interaction]]
                ) -> tuple[list[list[float | None]], list[int]]:
        """Mean P(chosen) of each candidate over its job's pairs (None where there is nothing to score), and
        the prompt tokens the judge read for each job."""
        if len(drafts) == 1:
            return [[None] * len(pairs)], [0] * len(pairs)
        tasks, owners = [], []
        for c, row in enumerate(drafts):
            for j, draft in enumerate(row):
                if isinstance(draft, Profile):
                    for item in pairs[j]:
                        tasks.append(ChoiceTask(a=item.chosen, b=item.rejected or "", context=item.context,
                                                preference=draft.profile))
                        owners.append((c, j))
        choices = self.judge.choose_many(tasks) if tasks else []
        sums: dict[tuple[int, int], list[float]] = {}
        judged = [0] * len(pairs)
        for owner, choice in zip(owners, choices):
            judged[owner[1]] += choice.prompt_tokens
            # An unreadable judgement counts as no support for the candidate, never as a guess.
            sums.setdefault(owner, []).append(choice.p_a if choice.p_a is not None else 0.0)
        scores = [[(sum(sums[c, j]) / len(sums[c, j])) if (c, j) in sums else None for j in range(len(pairs))]
                  for c in range(len(drafts))]
        return scores, judged


def _pairs(history: Sequence[Interaction], limit: int) -> list[Interaction]:
    return [item for item in history if item.rejected][-limit:]


def _with_cost(best: Profile, drafts: Sequence[Result], judged: int, score: float | None) -> Profile:
    """The kept profile, carrying its validation score and what it cost: every candidate's writing, and the
    judge's reading of the candidates (in prompt tokens: all the tokens models read to make this profile)."""
    usage = Usage(prompt_tokens=sum(d.usage.prompt_tokens for d in drafts) + judged,
                  completion_tokens=sum(d.usage.completion_tokens for d in drafts))
    return best.model_copy(update={"usage": usage, "validation": score})


def validated_inferrer(inferrer: Inferrer, judge: Judge, candidates: int) -> Inferrer:
    """`inferrer` itself for one candidate; otherwise the same writer with validation by `judge`."""
    if candidates <= 1:
        return inferrer
    return ValidatedInferrer(inferrer.backend, inferrer.config, inferrer.cache, judge=judge,
                             candidates=candidates)
