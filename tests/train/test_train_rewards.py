"""Rewards of streaming GRPO against hand-computed values (table-driven)."""

from __future__ import annotations

import math

import pytest

from prefscribe.judge import Judge
from prefscribe.schema import Target
from prefscribe.train.records import RLRecord
from prefscribe.train.rewards import (
    StreamingReward,
    cumulative_rewards,
    format_reward,
    group_normalize,
    judge_rewards,
    summary_of,
)

from ..conftest import FakeBackend
from .conftest import history, keyword_judge

# ------------------------------------------------------------------------------------------ format gate
GATE = [
    # (reply, truncated, summary or None)
    ("<think>compare items</think>The user likes science.", False, "The user likes science."),
    ("compare items</think>The user likes science.", False, "The user likes science."),  # <think> in the prompt
    ("  <think>a</think>\n\nThe user likes science.  ", False, "The user likes science."),
    ("<think>a</think>The user likes science.", True, None),       # cut off by the token limit
    ("<think>a</think>   ", False, None),                          # empty summary
    ("<think>never closed, the user likes science.", False, None),  # no </think>
    ("The user likes science.", False, None),                      # no think block at all
    ("<think>a</think>b</think>The user likes science.", False, None),  # two closings
    ("<think>a<think>b</think>The user likes science.", False, None),   # two openings
    ("preamble <think>a</think>The user likes science.", False, None),  # think block not first
    ("<think>a</think>Preference summary: The user likes science.", False, "The user likes science."),
]


@pytest.mark.parametrize("reply,truncated,expected", GATE)
def test_format_gate(reply, truncated, expected):
    assert summary_of(reply, truncated) == expected


DIRECT_GATE = [
    ("The user likes science.", False, "The user likes science."),
    ("Preference summary: The user likes science.", False, "The user likes science."),
    ("The user likes science and", True, None),                     # cut off
    ("<think>a</think>The user likes science.", False, None),       # thinking is not the direct format
    ("   ", False, None),
]


@pytest.mark.parametrize("reply,truncated,expected", DIRECT_GATE)
def test_format_gate_direct_style(reply, truncated, expected):
    assert summary_of(reply, truncated, "direct") == expected


def test_format_reward_reads_chat_completions():
    completions = [[{"role": "assistant", "content": reply}] for reply, _, _ in GATE]
    truncated = [t for _, t, _ in GATE]
    assert format_reward(completions, truncated=truncated) == [0.0 if e is None else 1.0 for _, _, e in GATE]


# ---------------------------------------------------------------------------- two-way judge probability
def two_way(la, lb):
    return math.exp(la) / (math.exp(la) + math.exp(lb))


TWO_WAY = [
    # logprobs (A, B) seen in order ab (true item shown as A), then in order ba (true item shown as B)
    ((math.log(0.6), math.log(0.2)), (math.log(0.5), math.log(0.3))),
    ((-0.1, -3.0), (-3.0, -0.1)),
    ((-2.0, -2.0), (-1.0, -1.0)),
    ((-0.01, -9.0), (-0.01, -9.0)),  # a judge that always answers A: debiased to 0.5
]


@pytest.mark.parametrize("ab,ba", TWO_WAY)
def test_reward_is_two_way_probability_of_truth_averaged_over_orders(ab, ba):
    true_item = "The chosen answer."
    backend = FakeBackend(option_fn=lambda p: list(ab) if "## Item A\n" + true_item in p[-1]["content"] else list(ba))
    target = Target(context="Q?", chosen=true_item, rejected="The other answer.")
    rewards, failed = judge_rewards(["The user likes it."], [target], Judge(backend))
    # ab: truth is A -> p(A); ba: truth is B -> 1 - p(A); then the mean of the two orders.
    expected = (two_way(*ab) + (1 - two_way(*ba))) / 2
    assert rewards == [pytest.approx(expected)] and failed == [False]


def test_one_order_and_refused_summaries():
    backend = FakeBackend(option_fn=lambda p: [math.log(0.8), math.log(0.2)])
    target = Target(context=None, chosen="x", rejected="y")
    rewards, failed = judge_rewards([None, "P"], [target, target], Judge(backend, orders="ab"))
    assert rewards == [0.0, pytest.approx(0.8)] and failed == [False, False]
    assert sum(1 for call in backend.calls if call[0] == "options") == 1  # the refused one is not judged


def test_judge_failure_gives_zero_and_is_flagged():
    backend = FakeBackend(option_fn=lambda p: [None, None])
    rewards, failed = judge_rewards(["P"], [Target(chosen="x", rejected="y")], Judge(backend))
    assert rewards == [0.0] and failed == [True]


# ------------------------------------------------------------------------------------ cumulative reward
CUMULATIVE = [
    # (stage1 r, stage2 r, gamma, valid, selected, variant, gate_scope, expected R(P1))
    ([0.2, 0.8], [0.6, 1.0], 0.9, None, 0, "paper", "total", [0.2 + 0.72, 0.8 + 0.72]),
    ([0.2, 0.8], [0.6, 1.0], 0.0, None, 0, "paper", "total", [0.2, 0.8]),
    ([0.2, 0.8], [0.6, 1.0], 1.0, None, 1, "paper", "total", [1.0, 1.6]),
    ([0.5, 0.0, 0.3, 0.9], [0.2, 0.4, 0.6, 0.8], 0.5, [True, False, True, True], 2, "paper", "total",
     [0.75, 0.0, 0.55, 1.15]),
    ([0.5, 0.0], [0.2, 0.4], 0.5, [True, False], 0, "paper", "immediate", [0.65, 0.15]),
    ([0.2, 0.8, 0.4], [0.6, 1.0], 0.9, None, 1, "reference", "total", [0.2 + 0.45, 0.8 + 0.72, 0.4 + 0.45]),
    ([0.2, 0.8], [0.6, 1.0], 0.9, None, None, "reference", "total", [0.65, 1.25]),
]


@pytest.mark.parametrize("r1,r2,gamma,valid,selected,variant,scope,expected", CUMULATIVE)
def test_cumulative_reward(r1, r2, gamma, valid, selected, variant, scope, expected):
    got = cumulative_rewards(r1, r2, gamma, valid=valid, selected=selected, variant=variant,
                             reference_bonus=0.45, gate_scope=scope)
    assert got == pytest.approx(expected)


# --------------------------------------------------------------------------------- group normalization
GROUPS = [
    # (values, group size, eps, expected)
    ([1.0, 0.0], 2, 0.0, [1 / math.sqrt(2), -1 / math.sqrt(2)]),  # std (Bessel) of {1, 0} is 1/sqrt(2)
    ([1.0, 2.0, 3.0, 4.0], 4, 0.0, [x / math.sqrt(5 / 3) for x in (-1.5, -0.5, 0.5, 1.5)]),
    ([0.7, 0.7, 0.7, 0.7], 4, 1e-4, [0.0, 0.0, 0.0, 0.0]),        # no signal, no update
    ([1.0, 0.0], 2, 1e-4, [0.5 / (0.5 * math.sqrt(2) + 1e-4), -0.5 / (0.5 * math.sqrt(2) + 1e-4)]),
]


@pytest.mark.parametrize("values,size,eps,expected", GROUPS)
def test_group_normalize(values, size, eps, expected):
    assert group_normalize(values, size, eps=eps) == pytest.approx(expected, abs=1e-9)


def test_groups_are_normalized_separately():
    got = group_normalize([3.0, 1.0, 2.0, 10.0, 30.0, 20.0], 3, eps=0.0)
    assert got == pytest.approx([1.0, -1.0, 0.0, -1.0, 1.0, 0.0])  # each group: mean 2 / 20, std 1 / 10
    with pytest.raises(ValueError):
        group_normalize([1.0, 2.0, 3.0], 2)


# ------------------------------------------------------------------------------- the TRL reward function
def test_streaming_reward_on_one_record_by_hand():
    record = RLRecord(user_id="u", history=history(5), k=2, K=4).model_dump_json()
    replies = ["<think>a</think>The user likes science.", "<think>a</think>The user likes cooking.",
               "<think>b</think>The user likes science more and more.", "no think block"]
    completions = [[{"role": "assistant", "content": r}] for r in replies]
    logged = {}
    reward = StreamingReward(Judge(keyword_judge(0.9)), group_size=2, gamma=0.5)
    got = reward(completions, record=[record] * 4, stage=[1, 1, 2, 2], selected=[True, False, False, False],
                 truncated=[False] * 4, completion_ids=[[1] * 5, [1] * 7, [1] * 9, [1] * 3],
                 log_metric=lambda name, value: logged.__setitem__(name, value))
    # r: science summary 0.9, cooking summary 0.1; stage 2: 0.9 and 0 (format gate). mean R(P2) = 0.45.
    assert got == pytest.approx([0.9 + 0.5 * 0.45, 0.1 + 0.5 * 0.45, 0.9, 0.0])
    assert reward.last.immediate == pytest.approx([0.9, 0.1, 0.9, 0.0])
    assert logged == pytest.approx({
        "stage1/reward": 0.5, "stage2/reward": 0.45, "stage1/cumulative_reward": 0.725,
        "stage1/format_failures": 0.0, "stage2/format_failures": 0.5, "stage1/length": 6.0, "stage2/length": 6.0,
        "judge_failures": 0.0})


def test_streaming_reward_refuses_misaligned_groups():
    record = RLRecord(user_id="u", history=history(5), k=2, K=4).model_dump_json()
    reward = StreamingReward(Judge(keyword_judge()), group_size=2)
    with pytest.raises(ValueError, match="misaligned"):
        reward(["x"] * 4, record=[record] * 4, stage=[1, 2, 1, 2], selected=[False] * 4, truncated=[False] * 4)
