"""Write or update a user's preference profile from interactions: full history, streaming updates,
many users at once (batched on local models, concurrent on servers), every reply cached.

    profile = infer(backend, history)                    # full history (cached in the user cache; cache=None: off)
    profile = infer(backend, new_items, past=profile)    # streaming update: only the new interactions
    steps = stream(backend, history, segments=3)         # one profile per consecutive segment
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from .cache import USER_CACHE, CachedCalls, ResultCache, UserCache, cache_key, resolve_cache
from .data.transforms import split_segments
from .errors import InputError
from .llm.base import Backend, Completion, Conversation, Progress, Sampling
from .prompts import PromptSet, Style, get_prompts, parse_profile
from .prompts.parse import ParseFailure
from .schema import InferenceFailure, Interaction, Profile, Usage

Result = Profile | InferenceFailure

# The reference samples summaries at T=0.6, top-p 0.95, top-k 20. A reasoning model needs room to think;
# a direct summary of 3-5 sentences fits in far fewer tokens.
DEFAULT_SAMPLING: dict[str, Sampling] = {
    "reasoning": Sampling(max_new_tokens=4096),
    "direct": Sampling(max_new_tokens=256),
}
ROLE = "infer"  # the role part of every profile's cache key
BUDGET_MARGIN = 32  # tokens of slack between the estimated prompt and the context window


@dataclass
class InferConfig:
    """How profiles are written.

    style: "reasoning" (think, then summarize) or "direct" (summary only); None picks by the backend.
    sampling: decoding settings; None takes DEFAULT_SAMPLING for the style.
    max_new_tokens, seed: when given, override those of `sampling` (or of the style's default).
    max_history_tokens: cap on the rendered interactions; the context window caps it anyway.
    prompts: the template set; None is the built-in set (or PREFSCRIBE_PROMPTS).
    """

    style: Style | None = None
    sampling: Sampling | None = None
    max_new_tokens: int | None = None
    seed: int | None = None
    max_history_tokens: int | None = None
    prompts: PromptSet | None = None


@dataclass
class InferJob:
    history: Sequence[Interaction]
    past: Profile | None = None


@dataclass
class _Plan:
    messages: Conversation
    covers: int
    key: str  # where the reply is cached (batch/ looks it up before sending the prompt elsewhere)


@dataclass
class Inferrer:
    """Profiles from one backend with one config; `cache=None` disables caching."""

    backend: Backend
    config: InferConfig = field(default_factory=InferConfig)
    cache: ResultCache | None = None

    def __post_init__(self) -> None:
        self.prompts = self.config.prompts or get_prompts()
        self.style: Style = self.config.style or ("reasoning" if self.backend.info.thinks else "direct")
        sampling = self.config.sampling or DEFAULT_SAMPLING[self.style]
        overrides = {"max_new_tokens": self.config.max_new_tokens, "seed": self.config.seed}
        self.sampling = replace(sampling, **{k: v for k, v in overrides.items() if v is not None})

    @property
    def writer(self) -> str:
        """Who writes the profiles, as evaluation results name it."""
        return self.backend.info.spec

    @property
    def _calls(self) -> CachedCalls:
        return CachedCalls(self.backend, self.cache, self.prompts.version)  # the fields as they are now

    @property
    def _key_parts(self) -> dict[str, str]:
        return {"style": self.style}  # the same messages and sampling in another style is another entry

    # ------------------------------------------------------------------------------------------ plan
    def plan(self, job: InferJob) -> _Plan:
        past_text = job.past.profile if job.past else None
        count = self.backend.count_tokens
        window = self.backend.info.context_window
        budget = (window - self.sampling.max_new_tokens - BUDGET_MARGIN
                  - self.prompts.inference_overhead(past_text, self.style, count))
        if self.config.max_history_tokens is not None:
            budget = min(budget, self.config.max_history_tokens)
        if budget <= 0:
            raise InputError(f"no room for any interaction: the {window}-token context is taken by the prompt "
                             f"and {self.sampling.max_new_tokens} new tokens; shorten the past profile or "
                             "lower max_new_tokens")
        rendered = self.prompts.render_history(job.history, budget, count)
        if rendered.kept == 0:
            raise InputError(f"the most recent interaction alone exceeds the {budget}-token history budget")
        messages = self.prompts.inference_messages(rendered, past_text, self.style)
        key = self._calls.generation_key(ROLE, messages, self.sampling, self._key_parts)
        return _Plan(messages, (job.past.covers if job.past else 0) + rendered.kept, key)

    # ------------------------------------------------------------------------------------------- run
    def run(self, jobs: Sequence[InferJob], progress: Progress | None = None) -> list[Result]:
        for job in jobs:
            check_past(job.past)
            if not job.history and job.past is None:
                raise InputError("empty history and no past profile: nothing to infer from")
        results: list[Result | None] = [None] * len(jobs)
        plans: dict[int, _Plan] = {}
        for i, job in enumerate(jobs):
            if not job.history:  # nothing new: the past profile stands
                results[i] = job.past
            else:
                plans[i] = self.plan(job)
        order = list(plans)
        completions = self._calls.generate([plans[i].messages for i in order], self.sampling, role=ROLE,
                                           progress=progress, key_parts=self._key_parts)
        for i, completion in zip(order, completions):
            results[i] = self._to_result(completion, plans[i], jobs[i].past)
        return results  # type: ignore[return-value]

    def _to_result(self, completion: Completion, plan: _Plan, past: Profile | None) -> Result:
        usage = Usage(prompt_tokens=completion.prompt_tokens, completion_tokens=completion.completion_tokens)
        common = {"model": self.backend.info.spec, "prompt_version": self.prompts.version, "usage": usage}
        if completion.finish_reason == "error":
            return InferenceFailure(error=completion.error or "model call failed", raw="", **common)
        parsed = parse_profile(completion.text, self.style, completion.finish_reason)
        if isinstance(parsed, ParseFailure):
            return InferenceFailure(error=parsed.error, raw=parsed.raw, **common)
        parent = profile_id(past) if past else None
        return Profile(profile=parsed.profile, reasoning=parsed.reasoning, covers=plan.covers, parent=parent,
                       **common)

    # ------------------------------------------------------------------------------------- streaming
    def stream_many(self, histories: Sequence[Sequence[Interaction]], segments: int,
                    pasts: Sequence[Profile | None] | None = None,
                    progress: Progress | None = None) -> list[list[Result]]:
        """For each user, one result per segment: segment k updates the profile from segment k-1.
        All users advance one segment at a time so each step is one batch. A failure ends that user."""
        chunks = [split_segments(h, segments) for h in histories]
        current: list[Profile | None] = list(pasts) if pasts else [None] * len(histories)
        out: list[list[Result]] = [[] for _ in histories]
        for step in range(segments):
            alive = [u for u in range(len(histories))
                     if not (out[u] and isinstance(out[u][-1], InferenceFailure)) and chunks[u][step]]
            results = self.run([InferJob(chunks[u][step], current[u]) for u in alive], progress)
            for u, result in zip(alive, results):
                out[u].append(result)
                if isinstance(result, Profile):
                    current[u] = result
        return out


def check_past(past: object) -> None:
    if isinstance(past, InferenceFailure):
        raise InputError(f"past is a failed inference ({past.error}), not a profile: check a result with "
                         "isinstance(result, Profile) before updating it", field="past")
    if past is not None and not isinstance(past, Profile):
        raise InputError(f"past must be a Profile, not {type(past).__name__}", field="past")


def profile_id(profile: Profile) -> str:
    return cache_key(text=profile.profile, covers=profile.covers)[:16]


# ------------------------------------------------------------------------------------ function forms
def infer(backend: Backend, history: Sequence[Interaction], past: Profile | None = None, *,
          config: InferConfig | None = None, cache: ResultCache | UserCache | None = USER_CACHE) -> Result:
    """One profile from `history`, updating `past` when given. Replies are cached in the user cache
    unless `cache` is another ResultCache or None."""
    return Inferrer(backend, config or InferConfig(), resolve_cache(cache)).run([InferJob(history, past)])[0]


def stream(backend: Backend, history: Sequence[Interaction], segments: int, past: Profile | None = None, *,
           config: InferConfig | None = None, cache: ResultCache | UserCache | None = USER_CACHE) -> list[Result]:
    """Profiles after each of `segments` consecutive chunks of `history`, each updating the previous one;
    cached as infer()."""
    return Inferrer(backend, config or InferConfig(), resolve_cache(cache)).stream_many([history], segments,
                                                                                        [past])[0]

