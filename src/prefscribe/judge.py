"""Use a profile: choose which of two items a user prefers, or write a personalized response.

Four ways to choose:
- "logprobs" (default): the answer letter's log-probability after the judge prompt, one forward pass per
  order, both orders averaged so the position bias of small judges cancels;
- "generation": generate the JSON answer and parse it (servers without logprobs); an unparseable reply is
  a failure, never a guess;
- "likelihood": how much the profile raises each item's log-likelihood given the context,
  log p(y | x, P) - log p(y | x) (the AlignXplore paper's generation-based reward);
- "contrast": the same gain measured against the generic persona instead of no persona,
  log p(y | x, P) - log p(y | x, P_generic), P_generic the prompt set's `generic_preference.txt`: what a
  profile adds beyond "some preference text is present" (any persona text shifts a judge). With no profile it
  is the `likelihood` method's `none` ranking, the plain log p(y | x); the generic profile itself gains
  nothing on either item and ties at 0.5.
The likelihood methods score each item as the prompts show it (clipped to MAX_ITEM_CHARS), and an exact tie
is undecided (a failure, counted wrong), never a pick of the first item: item a is the true one in evaluations.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from .cache import CachedCalls, ResultCache
from .llm.base import GREEDY, Backend, Completion, Conversation, OptionScores, Progress, Sampling
from .prompts import JUDGE_OPTIONS, JUDGE_PREFILL, PromptSet, get_prompts, parse_selection

Method = Literal["logprobs", "generation", "likelihood", "contrast"]
LIKELIHOOD_METHODS = ("likelihood", "contrast")  # scored by continuation log-likelihoods, one order
Orders = Literal["both", "ab", "ba", "random"]
Order = Literal["ab", "ba"]  # "ab": the user's item a shown as Item A

# A letter missing from a server's top logprobs is far less likely than any listed one.
MISSING_LOGPROB = -1e4
# The reference's sampling for personalized responses; a caller may change only the length.
RESPOND_SAMPLING = Sampling(max_new_tokens=512, temperature=0.7)


class OrderResult(BaseModel):
    order: Order                       # "ab": item a shown as Item A
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


def _order_result(order: Order, p_first: float) -> OrderResult:
    return OrderResult(order=order, p_first=p_first, p_a=p_first if order == "ab" else 1.0 - p_first)


def letter_orders(orders: Sequence[Order], scores: Sequence[OptionScores]) -> list[OrderResult]:
    """Each order's two-way probability of item a from the answer letters' log-probabilities (the letter
    options "A", "B"); an order where neither letter was observed is an error, never a guess."""
    results = []
    for order, score in zip(orders, scores):
        la, lb = score.logprobs
        if la is None and lb is None:
            results.append(OrderResult(order=order, error=score.error or "neither answer letter observed"))
            continue
        p_first = two_way(MISSING_LOGPROB if la is None else la, MISSING_LOGPROB if lb is None else lb)
        results.append(_order_result(order, p_first))
    return results


def mean_p_a(results: Sequence[OrderResult]) -> tuple[float | None, str | None]:
    """Item a's probability averaged over the orders that could be judged, and the errors of the others."""
    valid = [r.p_a for r in results if r.p_a is not None]
    errors = "; ".join(r.error for r in results if r.error) or None
    return (sum(valid) / len(valid) if valid else None), errors


@dataclass
class Judge:
    """Choices and responses from one backend. `tasks_per_call`: tasks sent to the backend in one call
    (both orders of each; local backends batch them, servers run them concurrently)."""

    backend: Backend
    method: Method = "logprobs"
    orders: Orders = "both"
    seed: int = 0
    prompts: PromptSet | None = None
    cache: ResultCache | None = None
    tasks_per_call: int = 8
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.prompts = self.prompts or get_prompts()
        self._rng = random.Random(self.seed)
        if self.method == "logprobs" and not self.backend.info.supports_logprobs:
            self.method = "generation"

    @property
    def _calls(self) -> CachedCalls:
        return CachedCalls(self.backend, self.cache, self.prompts.version)  # the fields as they are now

    def _orders_for_task(self) -> list[Order]:
        if self.orders == "both":
            return ["ab", "ba"]
        if self.orders == "random":
            return [self._rng.choice(["ab", "ba"])]
        return [self.orders]

    def _messages(self, task: ChoiceTask, order: Order) -> Conversation:
        first, second = (task.a, task.b) if order == "ab" else (task.b, task.a)
        return self.prompts.judge_messages(task.context, task.preference, first, second, task.preference_kind)

    def choose_many(self, tasks: Sequence[ChoiceTask], progress: Progress | None = None) -> list[Choice]:
        """One choice per task; the tasks go to the backend `tasks_per_call` at a time. `progress` counts tasks."""
        if self.method in LIKELIHOOD_METHODS:
            return self._chunked(tasks, self._likelihood, progress)
        orders = [self._orders_for_task() for _ in tasks]  # in task order, so a seed replays the same orders
        groups = [[self._messages(t, o) for o in task_orders] for t, task_orders in zip(tasks, orders)]
        if self.method == "generation":
            return self._chunked(list(zip(orders, groups)), self._generation, progress)
        scores = self._calls.option_logprobs(groups, JUDGE_PREFILL, JUDGE_OPTIONS, role="judge-logprobs",
                                             groups_per_call=self.tasks_per_call, progress=progress)
        return [_combine(letter_orders(o, s), "logprobs", sum(x.prompt_tokens for x in s))
                for o, s in zip(orders, scores)]

    def choose(self, task: ChoiceTask) -> Choice:
        return self.choose_many([task])[0]

    def _chunked(self, items: Sequence, fn, progress: Progress | None) -> list[Choice]:
        out: list[Choice] = []
        for start in range(0, len(items), self.tasks_per_call):
            chunk = items[start:start + self.tasks_per_call]
            out.extend(fn(chunk))
            if progress:
                progress(len(chunk))
        return out

    # ---------------------------------------------------------------------------------- generation
    def _generation(self, planned: Sequence[tuple[list[Order], list[Conversation]]]) -> list[Choice]:
        flat = [conv for _, group in planned for conv in group]
        completions = iter(self._calls.generate(flat, GREEDY, role="judge-generation"))
        out = []
        for orders, _ in planned:
            results, tokens = [], 0
            for order in orders:
                completion = next(completions)
                tokens += completion.prompt_tokens
                results.append(_generated_order(order, completion))
            out.append(_combine(results, "generation", tokens))
        return out

    # ---------------------------------------------------------------------------------- likelihood
    def _likelihood(self, tasks: Sequence[ChoiceTask]) -> list[Choice]:
        """The profile's gain in each item's log-likelihood over a baseline prompt: no persona ("likelihood")
        or the generic persona ("contrast"). Without a profile, the plain log p(y | x) (the baseline ranking).
        All tasks in one backend call."""
        baseline = self.prompts.generic_preference() if self.method == "contrast" else None
        prompts: list[Conversation] = []
        items: list[str] = []
        for task in tasks:
            context = task.context or "Recommend an item to me."
            pair = [self.prompts.item_text(task.a), self.prompts.item_text(task.b)]
            if task.preference:
                with_p = self.prompts.respond_messages(task.preference, context)
                prompts += [with_p, with_p]
                items += pair
            without = self.prompts.respond_messages(baseline if task.preference else None, context)
            prompts += [without, without]
            items += pair
        scores = iter(self.backend.continuation_logprobs(prompts, items) if prompts else [])
        out = []
        for task in tasks:
            la, lb = (next(scores), next(scores)) if task.preference else (0.0, 0.0)
            la0, lb0 = next(scores), next(scores)
            gain_a, gain_b = (la - la0, lb - lb0) if task.preference else (la0, lb0)
            out.append(_likelihood_choice(gain_a, gain_b, self.method))
        return out

    # ------------------------------------------------------------------------------------ response
    def respond(self, preference: str | None, context: str, sampling: Sampling | None = None) -> Completion:
        """A response to `context` written for the user the profile describes."""
        prompt = self.prompts.respond_messages(preference, context)
        return self._calls.generate([prompt], sampling or RESPOND_SAMPLING, role="respond")[0]


def _likelihood_choice(score_a: float, score_b: float, method: Method) -> Choice:
    """Two-way probability of a from the two scores; the higher score wins, an exact tie decides nothing."""
    p_a = two_way(score_a, score_b)
    if score_a == score_b:
        return Choice(choice=None, p_a=p_a, p_b=1.0 - p_a, method=method,
                      error="tie: the preference moves both items' log-likelihood equally")
    return Choice(choice="a" if score_a > score_b else "b", p_a=p_a, p_b=1.0 - p_a, method=method)


def _generated_order(order: Order, completion: Completion) -> OrderResult:
    if completion.finish_reason == "error":
        return OrderResult(order=order, error=completion.error)
    letter = parse_selection(completion.text)
    if letter is None:
        return OrderResult(order=order, error=f"unparseable judge reply: {completion.text!r}")
    return _order_result(order, 1.0 if letter == "A" else 0.0)


def _combine(results: list[OrderResult], method: Method, prompt_tokens: int) -> Choice:
    p_a, errors = mean_p_a(results)
    if p_a is None:
        return Choice(choice=None, p_a=None, p_b=None, orders=results, method=method,
                      error=errors or "no order could be judged", prompt_tokens=prompt_tokens)
    # Both orders failing to agree under generation leaves an exact tie: undecided, not a coin flip.
    choice = None if p_a == 0.5 and method == "generation" else ("a" if p_a >= 0.5 else "b")
    return Choice(choice=choice, p_a=p_a, p_b=1.0 - p_a, orders=results, method=method,
                  error=errors or ("the two orders disagree" if choice is None else None),
                  prompt_tokens=prompt_tokens)
