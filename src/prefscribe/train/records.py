"""The training inputs that cross stage boundaries: the RL records of curriculum pruning, and building the
inference prompt exactly as inference does (same templates, same history cut)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from ..errors import InputError
from ..infer import BUDGET_MARGIN, InferConfig, InferJob, Inferrer
from ..llm.base import BackendInfo, Conversation, Sampling
from ..prompts import PromptSet, Style
from ..schema import Interaction, Profile, Target


class RLRecord(BaseModel):
    """One streaming-RL instance from curriculum pruning (METHOD.md section 5).

    Stage 1 summarizes H[0:k] and is judged on h_k = history[k]; stage 2 updates that summary with the new
    interactions H[k:K] and is judged on h_K = history[K]. Both targets need a rejected item."""

    model_config = ConfigDict(extra="forbid")

    user_id: str
    history: list[Interaction]
    k: int
    K: int

    @model_validator(mode="after")
    def _split_points(self) -> RLRecord:
        n = len(self.history)
        if not 0 < self.k < self.K < n:
            raise ValueError(f"need 0 < k < K < len(history); got k={self.k}, K={self.K}, len(history)={n}")
        for name, index in (("k", self.k), ("K", self.K)):
            if self.history[index].rejected is None:
                raise ValueError(f"the target history[{name}={index}] has no rejected item: a target must be a pair")
        return self

    @property
    def stage1_history(self) -> list[Interaction]:
        return self.history[: self.k]

    @property
    def stage2_history(self) -> list[Interaction]:
        return self.history[self.k: self.K]

    def target(self, stage: int) -> Target:
        item = self.history[self.k if stage == 1 else self.K]
        return Target(context=item.context, chosen=item.chosen, rejected=item.rejected or "")


def read_rl_records(path: str | Path) -> list[RLRecord]:
    """Validated RL records, or InputError naming the file, the line and the field."""
    from ._common import read_jsonl_rows

    out = []
    for number, obj in read_jsonl_rows(path):
        try:
            out.append(RLRecord.model_validate(obj))
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InputError(first["msg"], path=str(path), line=number,
                             field=".".join(str(p) for p in first["loc"]) or None) from None
    return out


class _TokenCounter:
    """Enough of a Backend for Inferrer.plan: a tokenizer's count and a context window."""

    def __init__(self, count_tokens: Callable[[str], int], window: int) -> None:
        self.count_tokens = count_tokens
        self.info = BackendInfo(spec="train:prompt-builder", thinks=True, context_window=window)


class PromptBuilder:
    """The inference prompt for (new interactions, past summary), built by the core Inferrer's own plan so
    that training sees exactly what inference will: the most recent interactions that fit
    `max_prompt_tokens` after the instructions and the past summary."""

    def __init__(self, prompts: PromptSet, count_tokens: Callable[[str], int], max_prompt_tokens: int,
                 max_completion_tokens: int, style: Style = "reasoning") -> None:
        window = max_prompt_tokens + max_completion_tokens + BUDGET_MARGIN
        self._inferrer = Inferrer(_TokenCounter(count_tokens, window),  # type: ignore[arg-type]
                                  InferConfig(style=style, sampling=Sampling(max_new_tokens=max_completion_tokens),
                                              prompts=prompts))

    def __call__(self, history: Sequence[Interaction], past: str | None) -> Conversation:
        job = InferJob(history, Profile(profile=past) if past else None)
        return self._inferrer.plan(job).messages
