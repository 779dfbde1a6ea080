"""Which prompts of a batch share a prefix pass (llm/_prefix.py), table-driven."""

import pytest

from prefscribe.llm._prefix import MIN_GAIN, common_prefix_length, prefix_groups

SYSTEM = list(range(100, 130))           # what every prompt of a batch starts with
PAIR = list(range(200, 200 + 3 * MIN_GAIN))  # a long part two prompts share (e.g. a judgement's items)


@pytest.mark.parametrize("sequences, groups", [
    ([[1, 2, 3]], [[0]]),
    # Two judgements, each in two orders: runs of two that share far more than the batch.
    ([SYSTEM + PAIR + [1], SYSTEM + PAIR + [2], SYSTEM + PAIR[::-1] + [1], SYSTEM + PAIR[::-1] + [2]],
     [[0, 1], [2, 3]]),
    # One pair asked several questions that part after a shared word ("more formal", "more technical"):
    # one batch, so the pair is read once, not once per run.
    ([SYSTEM + PAIR + [7, 1], SYSTEM + PAIR + [8, 2], SYSTEM + PAIR + [8, 3], SYSTEM + PAIR + [9, 4]],
     [[0, 1, 2, 3]]),
])
def test_prefix_groups(sequences, groups):
    assert prefix_groups(sequences) == groups


def test_common_prefix_leaves_each_sequence_a_token():
    assert common_prefix_length([[1, 2, 3], [1, 2, 3]]) == 2
    assert common_prefix_length([[1, 2], [1, 3]]) == 1
