"""The model stage: profiles for a batch of users with the library's own `Inferrer` (its templates, its
parser, its cache keys), and the output row of each user."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from ..cache import ResultCache
from ..errors import PrefscribeError
from ..formats import profile_record
from ..infer import InferConfig, Inferrer
from ..prompts import get_prompts
from ..schema import InferenceFailure, Profile
from ._users import UserJob

STATUSES = ("done", "unchanged", "failed")
OUTPUT_COLUMNS = ("user_id", "profile", "reasoning", "covers", "model", "prompt_version", "prompt_tokens",
                  "completion_tokens", "status", "error", "covered_through", "input_hash")


@dataclass(frozen=True)
class ModelSettings:
    """How profiles are written; the same fields as `prefscribe infer`. cache: the result cache file
    (None: the default one of the machine that runs the stage; "" : no cache)."""

    model: str
    style: str | None = None
    max_new_tokens: int | None = None
    seed: int = 0
    prompts: str | None = None
    cache: str | None = None

    def inferrer(self) -> Inferrer:
        from ..llm import load_backend

        return self.inferrer_for(load_backend(self.model))

    def inferrer_for(self, backend) -> Inferrer:
        """The Inferrer `prefscribe infer` builds from the same options (so the same cache keys)."""
        config = InferConfig(style=self.style, max_new_tokens=self.max_new_tokens,  # type: ignore[arg-type]
                             seed=self.seed, prompts=get_prompts(self.prompts))
        cache = None if self.cache == "" else ResultCache(self.cache)
        return Inferrer(backend, config, cache)

    def run_key(self) -> str:
        """Names everything that decides a profile besides the input."""
        return repr((self.model, get_prompts(self.prompts).version, self.style, self.max_new_tokens, self.seed))


def write_profiles(inferrer: Inferrer, jobs: list[UserJob]) -> list[dict[str, Any]]:
    """One output row per job. Users with the same number of streaming steps share each step's batch."""
    by_steps: dict[int, list[int]] = defaultdict(list)
    for i, job in enumerate(jobs):
        by_steps[job.steps].append(i)
    rows: list[dict[str, Any] | None] = [None] * len(jobs)
    for steps, members in sorted(by_steps.items()):
        try:
            results = _stream(inferrer, [jobs[i] for i in members], steps)
        except PrefscribeError:  # one user's prompt cannot be built: find it, the others still run together
            results = []
            for i in members:
                try:
                    results.extend(_stream(inferrer, [jobs[i]], steps))
                except PrefscribeError as exc:
                    results.append([InferenceFailure(error=str(exc), model=inferrer.backend.info.spec,
                                                     prompt_version=inferrer.prompts.version)])
        for i, steps_of_user in zip(members, results):
            rows[i] = result_row(jobs[i], steps_of_user)
    return rows  # type: ignore[return-value]


def _stream(inferrer: Inferrer, jobs: list[UserJob], steps: int) -> list[list[Profile | InferenceFailure]]:
    return inferrer.stream_many([job.history for job in jobs], steps, [job.past_profile() for job in jobs])


def result_row(job: UserJob, steps: list[Profile | InferenceFailure]) -> dict[str, Any]:
    final = steps[-1]
    row = empty_row(job.user_id, job.input_hash)
    row.update(model=final.model, prompt_version=final.prompt_version,
               prompt_tokens=sum(s.usage.prompt_tokens for s in steps),
               completion_tokens=sum(s.usage.completion_tokens for s in steps))
    if isinstance(final, InferenceFailure):
        row.update(status="failed", error=f"step {len(steps)} of {job.steps}: {final.error}",
                   covers=int(job.past["covers"] or 0) if job.past else 0,
                   covered_through=job.past.get("covered_through") if job.past else None)
    else:
        record = profile_record(final)
        row.update({k: record[k] for k in ("profile", "reasoning", "covers")}, status="done",
                   covered_through=job.covered_through)
    return row


def unchanged_row(job: UserJob) -> dict[str, Any]:
    """No new interactions: the past profile stands, as it was."""
    past = job.past or {}
    row = empty_row(job.user_id, job.input_hash)
    row.update({k: past.get(k) for k in ("profile", "reasoning", "model", "prompt_version")},
               covers=int(past.get("covers") or 0), covered_through=job.covered_through, status="unchanged")
    return row


def empty_row(user_id: str, input_hash: str) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(OUTPUT_COLUMNS)
    row.update(user_id=user_id, input_hash=input_hash, covers=0, prompt_tokens=0, completion_tokens=0)
    return row
