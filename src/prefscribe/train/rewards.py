"""Rewards of streaming GRPO (METHOD.md section 6), as plain functions.

- Format gate: a summary exists only when exactly one think block is closed and followed by non-empty text
  (and the reply was not cut off); otherwise the reward is 0. (Policies trained in the `direct` style, for
  models that do not think, must instead write a non-empty summary with no think block.)
- Immediate reward r(P): the judge's two-way probability of the true item of the target given P, from the
  answer log-probabilities (core Judge, both orders averaged by default).
- Cumulative reward: R(P2_j) = r(P2_j); R(P1_i) = r(P1_i) + gamma * mean_j R(P2_j) (the paper), or the public
  code's shortcut: that for the stage-1 rollout the updates were built on, r(P1_i) + a flat bonus for the rest.
- Advantages: R normalized within each group of G rollouts of one stage of one record.

`StreamingReward` puts them together as a TRL reward function `(completions, **kwargs) -> list[float]`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import InputError
from ..judge import ChoiceTask, Judge
from ..prompts import Style, parse_profile
from ..prompts.parse import THINK_CLOSE, THINK_OPEN, ParsedProfile
from ..schema import Target

Variant = Literal["paper", "reference"]
GateScope = Literal["total", "immediate"]


# ------------------------------------------------------------------------------------------- format gate
def summary_of(text: str, truncated: bool = False, style: Style = "reasoning") -> str | None:
    """The summary of a reply when it passes the format gate, else None. Reasoning style: exactly one
    `</think>`, at most one `<think>` and only at the start, a non-empty summary after it, not cut off.
    Direct style: no think tag at all, a non-empty summary, not cut off."""
    if truncated:
        return None
    if style == "direct":
        if THINK_OPEN in text or THINK_CLOSE in text:
            return None
        parsed = parse_profile(text, "direct", "stop")
        return parsed.profile if isinstance(parsed, ParsedProfile) else None
    if text.count(THINK_CLOSE) != 1 or text.count(THINK_OPEN) > 1:
        return None
    if THINK_OPEN in text and text.lstrip().find(THINK_OPEN) != 0:
        return None
    parsed = parse_profile(text, "reasoning", "stop")
    return parsed.profile if isinstance(parsed, ParsedProfile) else None


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or a list of chat messages (the last one's content)."""
    if isinstance(completion, str):
        return completion
    return completion[-1]["content"] if completion else ""


def format_reward(completions: Sequence[Any], truncated: Sequence[bool] | None = None, style: Style = "reasoning",
                  **kwargs) -> list[float]:
    """1.0 for a reply that passes the format gate, 0.0 otherwise."""
    flags = truncated or [False] * len(completions)
    return [1.0 if summary_of(completion_text(c), t, style) is not None else 0.0 for c, t in zip(completions, flags)]


# --------------------------------------------------------------------------------------- judge reward
def judge_rewards(summaries: Sequence[str | None], targets: Sequence[Target], judge: Judge) -> tuple[list[float], list[bool]]:
    """r(P) per summary: the judge's probability of the target's true item (0 for a summary the format gate
    refused); and whether the judge failed on it (then r = 0 too)."""
    todo = [i for i, s in enumerate(summaries) if s is not None]
    tasks = [ChoiceTask(a=targets[i].chosen, b=targets[i].rejected, context=targets[i].context,
                        preference=summaries[i]) for i in todo]
    rewards, failed = [0.0] * len(summaries), [False] * len(summaries)
    for i, choice in zip(todo, judge.choose_many(tasks) if tasks else []):
        if choice.p_a is None:  # item a is the true one: p_a is the probability of the truth
            failed[i] = True
        else:
            rewards[i] = float(choice.p_a)
    return rewards, failed


# ---------------------------------------------------------------------------------- cumulative reward
def cumulative_rewards(stage1: Sequence[float], stage2: Sequence[float], gamma: float, *,
                       valid: Sequence[bool] | None = None, selected: int | None = None,
                       variant: Variant = "paper", reference_bonus: float = 0.45,
                       gate_scope: GateScope = "total") -> list[float]:
    """R(P1_i) for one record's stage-1 group, from its immediate rewards `stage1` and the immediate rewards of
    the stage-2 group `stage2` (R(P2_j) = r(P2_j)).

    paper:     R(P1_i) = r(P1_i) + gamma * mean_j R(P2_j)
    reference: the same for i == selected (the rollout stage 2 was built on); r(P1_i) + reference_bonus else.
    A rollout that failed the format gate (`valid[i]` False) gets R = 0 with gate_scope "total", and only
    r = 0 (the stage-2 term still added) with "immediate"."""
    valid = list(valid) if valid is not None else [True] * len(stage1)
    future = gamma * (sum(stage2) / len(stage2)) if stage2 else 0.0
    out = []
    for i, r in enumerate(stage1):
        if not valid[i] and gate_scope == "total":
            out.append(0.0)
            continue
        extra = future if variant == "paper" or i == selected else reference_bonus
        out.append(r + extra)
    return out


# -------------------------------------------------------------------------------------------- advantages
def group_normalize(values: Sequence[float], group_size: int, eps: float = 1e-4) -> list[float]:
    """(R - group mean) / (group std + eps) within consecutive groups of `group_size`; std with Bessel's
    correction, as TRL computes it."""
    if len(values) % group_size:
        raise InputError(f"{len(values)} values do not split into groups of {group_size}")
    out: list[float] = []
    for start in range(0, len(values), group_size):
        group = values[start:start + group_size]
        mean = sum(group) / group_size
        std = math.sqrt(sum((v - mean) ** 2 for v in group) / (group_size - 1)) if group_size > 1 else 0.0
        out.extend((v - mean) / (std + eps) for v in group)
    return out


# ------------------------------------------------------------------------------- the TRL reward function
@dataclass
class Breakdown:
    """Everything the last call computed, row by row (for logs and tests)."""

    immediate: list[float] = field(default_factory=list)
    cumulative: list[float] = field(default_factory=list)
    valid: list[bool] = field(default_factory=list)
    judge_failed: list[bool] = field(default_factory=list)
    stage: list[int] = field(default_factory=list)


class StreamingReward:
    """The reward function of streaming GRPO for TRL: rows come in blocks of 2G per record, the G stage-1
    rollouts then the G stage-2 rollouts, with the per-row columns the rollout adds (`stage`, `selected`,
    `truncated`) and the dataset's `record` (RLRecord JSON). Returns R per row; logs per-stage metrics."""

    __name__ = "streaming_reward"

    def __init__(self, judge: Judge, group_size: int, gamma: float = 0.9, variant: Variant = "paper",
                 reference_bonus: float = 0.45, gate_scope: GateScope = "total", style: Style = "reasoning") -> None:
        self.judge, self.group_size, self.gamma, self.style = judge, group_size, gamma, style
        self.variant, self.reference_bonus, self.gate_scope = variant, reference_bonus, gate_scope
        self.last = Breakdown()

    def __call__(self, completions: Sequence[Any], record: Sequence[str], stage: Sequence[int],
                 selected: Sequence[bool], truncated: Sequence[bool], completion_ids: Sequence[Sequence[int]] | None = None,
                 log_metric: Callable[[str, float], None] | None = None, **kwargs) -> list[float]:
        from .records import RLRecord

        G, n = self.group_size, len(completions)
        if n % (2 * G):
            raise InputError(f"{n} rows do not split into records of 2 x {G} rollouts")
        parsed: dict[str, RLRecord] = {}
        targets, summaries = [], []
        for i in range(n):
            if stage[i] != (1 if (i % (2 * G)) < G else 2):
                raise InputError(f"row {i} is a stage-{stage[i]} rollout out of place: groups are misaligned")
            rec = parsed.get(record[i]) or parsed.setdefault(record[i], RLRecord.model_validate_json(record[i]))
            targets.append(rec.target(stage[i]))
            summaries.append(summary_of(completion_text(completions[i]), bool(truncated[i]), self.style))
        immediate, failed = judge_rewards(summaries, targets, self.judge)
        valid = [s is not None for s in summaries]
        total = list(immediate)
        for start in range(0, n, 2 * G):
            s1, s2 = slice(start, start + G), slice(start + G, start + 2 * G)
            picks = [j for j, flag in enumerate(selected[s1]) if flag]
            total[s1] = cumulative_rewards(immediate[s1], immediate[s2], self.gamma, valid=valid[s1],
                                           selected=picks[0] if picks else None, variant=self.variant,
                                           reference_bonus=self.reference_bonus, gate_scope=self.gate_scope)
        self.last = Breakdown(immediate, total, valid, failed, list(stage))
        if log_metric is not None:
            for name, value in self.metrics(completion_ids).items():
                log_metric(name, value)
        return total

    def metrics(self, completion_ids: Sequence[Sequence[int]] | None = None) -> dict[str, float]:
        """Per-stage means of the last call: immediate reward, cumulative reward (stage 1), format failures,
        response length in tokens; and the share of judged summaries the judge could not score."""
        b, out = self.last, {}
        for s in (1, 2):
            rows = [i for i, st in enumerate(b.stage) if st == s]
            if not rows:
                continue
            out[f"stage{s}/reward"] = _mean(b.immediate[i] for i in rows)
            out[f"stage{s}/format_failures"] = _mean(0.0 if b.valid[i] else 1.0 for i in rows)
            if completion_ids is not None:
                out[f"stage{s}/length"] = _mean(len(completion_ids[i]) for i in rows)
        out["stage1/cumulative_reward"] = _mean(b.cumulative[i] for i, st in enumerate(b.stage) if st == 1)
        judged = [i for i, v in enumerate(b.valid) if v]
        out["judge_failures"] = _mean(1.0 if b.judge_failed[i] else 0.0 for i in judged) if judged else 0.0
        return out


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0
