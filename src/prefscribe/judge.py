"""Use a profile: choose which of two items a user prefers, or write a personalized response.

Three ways to choose:
- "logprobs" (default): the answer letter's log-probability after the judge prompt, one forward pass per
  order, both orders averaged so the position bias of small judges cancels;
- "generation": generate the JSON answer and parse it (servers without logprobs); an unparseable reply is
  a failure, never a guess;
- "likelihood": how much the profile raises each item's log-likelihood given the context,
  log p(y | x, P) - log p(y | x) (the AlignXplore paper's generation-based reward).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from .cache import ResultCache, cache_key
from .llm.base import GREEDY, Backend, Completion, Progress, Sampling
from .prompts import JUDGE_OPTIONS, JUDGE_PREFILL, PromptSet, get_prompts, parse_selection

Method = Literal["logprobs", "generation", "likelihood"]
Orders = Literal["both", "ab", "ba", "random"]


class OrderResult(BaseModel):
    order: Literal["ab", "ba"]         # "ab": item a shown as Item A
    p_first: float | None = None       # two-way probability of "Item A"
    p_a: float | None = None           # probability of the user's item a in this order
    error: str | None = None


class Choice(BaseModel):
    choice: Literal["a", "b"] | None
    p_a: float | None
    p_b: float | None
    orders: list[OrderResult] = []
    method: Method
    error: str | None = None
    prompt_tokens: int = 0


@dataclass
class ChoiceTask:
    """Which of `a` and `b` does the user prefer in `context`? `preference` is a profile text, a rendered
    raw history (preference_kind="history"), or None (no personalization)."""

    a: str
    b: str
    context: str | None = None
    preference: str | None = None
    preference_kind: Literal["summary", "history"] = "summary"


def two_way(logprob_first: float, logprob_second: float) -> float:
    """P(first) when the answer must be one of two: softmax over just those two log-probabilities."""
    top = max(logprob_first, logprob_second)
    e1, e2 = math.exp(logprob_first - top), math.exp(logprob_second - top)
    return e1 / (e1 + e2)


@dataclass
class Judge:
    backend: Backend
    method: Method = "logprobs"
    orders: Orders = "both"
    seed: int = 0
    prompts: PromptSet | None = None
    cache: ResultCache | None = None
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.prompts = self.prompts or get_prompts()
        self._rng = random.Random(self.seed)
        if self.method == "logprobs" and not self.backend.info.supports_logprobs:
            self.method = "generation"

    def _orders_for_task(self) -> list[Literal["ab", "ba"]]:
        if self.orders == "both":
            return ["ab", "ba"]
        if self.orders == "random":
            return [self._rng.choice(["ab", "ba"])]
        return [self.orders]

    def _messages(self, task: ChoiceTask, order: str):
        first, second = (task.a, task.b) if order == "ab" else (task.b, task.a)
        return self.prompts.judge_messages(task.context, task.preference, first, second, task.preference_kind)

    def choose_many(self, tasks: Sequence[ChoiceTask], progress: Progress | None = None) -> list[Choice]:
        out = []
        for task in tasks:
            if self.method == "likelihood":
                out.append(self._likelihood(task))
            elif self.method == "generation":
                out.append(self._generation(task))
            else:
                out.append(self._logprobs(task))
            if progress:
                progress(1)
        return out

    def choose(self, task: ChoiceTask) -> Choice:
        return self.choose_many([task])[0]

    # ------------------------------------------------------------------------------------ logprobs
    def _logprobs(self, task: ChoiceTask) -> Choice:
        orders = self._orders_for_task()
        prompts = [self._messages(task, o) for o in orders]
        key = cache_key(role="judge-logprobs", model=self.backend.info.spec, prompts=self.prompts.version,
                        messages=prompts)
        cached = self.cache.get(key) if self.cache is not None else None
        if cached is None:
            scores = self.backend.option_logprobs(prompts, JUDGE_PREFILL, JUDGE_OPTIONS)
            cached = [{"logprobs": s.logprobs, "prompt_tokens": s.prompt_tokens, "error": s.error} for s in scores]
            if self.cache is not None and not any(s.error for s in scores):
                self.cache.put(key, cached)
        results = []
        for order, score in zip(orders, cached):
            la, lb = score["logprobs"]
            if la is None and lb is None:
                results.append(OrderResult(order=order, error=score["error"] or "neither answer letter observed"))
                continue
            # A letter missing from a server's top logprobs is far less likely than any listed one.
            p_first = two_way(la if la is not None else -1e4, lb if lb is not None else -1e4)
            results.append(OrderResult(order=order, p_first=p_first,
                                       p_a=p_first if order == "ab" else 1.0 - p_first))
        return _combine(results, "logprobs", sum(s["prompt_tokens"] for s in cached))

    # ---------------------------------------------------------------------------------- generation
    def _generation(self, task: ChoiceTask) -> Choice:
        orders = self._orders_for_task()
        prompts = [self._messages(task, o) for o in orders]
        completions = self._generate_cached(prompts, GREEDY, role="judge-generation")
        results = []
        for order, completion in zip(orders, completions):
            if completion.finish_reason == "error":
                results.append(OrderResult(order=order, error=completion.error))
                continue
            letter = parse_selection(completion.text)
            if letter is None:
                results.append(OrderResult(order=order, error=f"unparseable judge reply: {completion.text!r}"))
                continue
            p_first = 1.0 if letter == "A" else 0.0
            results.append(OrderResult(order=order, p_first=p_first,
                                       p_a=p_first if order == "ab" else 1.0 - p_first))
        return _combine(results, "generation", sum(c.prompt_tokens for c in completions))

    def _generate_cached(self, prompts, sampling: Sampling, role: str) -> list[Completion]:
        keys = [cache_key(role=role, model=self.backend.info.spec, prompts=self.prompts.version,
                          sampling=sampling.__dict__, messages=p) for p in prompts]
        hits = [self.cache.get(k) if self.cache is not None else None for k in keys]
        todo = [i for i, h in enumerate(hits) if h is None]
        fresh = self.backend.generate([prompts[i] for i in todo], sampling) if todo else []
        out = [Completion(**h) if h else None for h in hits]
        for i, completion in zip(todo, fresh):
            out[i] = completion
            if self.cache is not None and completion.finish_reason != "error":
                self.cache.put(keys[i], completion.__dict__)
        return out  # type: ignore[return-value]

    # ---------------------------------------------------------------------------------- likelihood
    def _likelihood(self, task: ChoiceTask) -> Choice:
        context = task.context or "Recommend an item to me."
        without = self.prompts.respond_messages(None, context)
        if not task.preference:  # the baseline: the plain log p(y | x) ranking
            la0, lb0 = self.backend.continuation_logprobs([without, without], [task.a, task.b])
            p_a = two_way(la0, lb0)
            return Choice(choice="a" if p_a >= 0.5 else "b", p_a=p_a, p_b=1.0 - p_a, method="likelihood")
        with_p = self.prompts.respond_messages(task.preference, context)
        la, lb, la0, lb0 = self.backend.continuation_logprobs([with_p, with_p, without, without],
                                                              [task.a, task.b, task.a, task.b])
        gain_a, gain_b = la - la0, lb - lb0
        p_a = two_way(gain_a, gain_b)
        return Choice(choice="a" if p_a >= 0.5 else "b", p_a=p_a, p_b=1.0 - p_a, method="likelihood")

    # ------------------------------------------------------------------------------------ response
    def respond(self, preference: str | None, context: str, sampling: Sampling | None = None) -> Completion:
        """A response to `context` written for the user the profile describes."""
        sampling = sampling or Sampling(max_new_tokens=512, temperature=0.7)
        prompt = self.prompts.respond_messages(preference, context)
        return self._generate_cached([prompt], sampling, role="respond")[0]


def _combine(results: list[OrderResult], method: Method, prompt_tokens: int) -> Choice:
    valid = [r.p_a for r in results if r.p_a is not None]
    errors = [r.error for r in results if r.error]
    if not valid:
        return Choice(choice=None, p_a=None, p_b=None, orders=results, method=method,
                      error="; ".join(errors) or "no order could be judged", prompt_tokens=prompt_tokens)
    p_a = sum(valid) / len(valid)
    # Both orders failing to agree under generation leaves an exact tie: undecided, not a coin flip.
    choice = None if p_a == 0.5 and method == "generation" else ("a" if p_a >= 0.5 else "b")
    return Choice(choice=choice, p_a=p_a, p_b=1.0 - p_a, orders=results, method=method,
                  error="; ".join(errors) or ("the two orders disagree" if choice is None else None),
                  prompt_tokens=prompt_tokens)
