"""Shared prompt prefixes: which prompts of a batch start alike, and for how many tokens. Both local engines
run such a prefix once and score every suffix against a copy of its KV cache."""

from __future__ import annotations


MIN_GAIN = 16  # tokens a run must share beyond the whole batch before it is worth its own prefix pass


def prefix_groups(sequences: list[list[int]]) -> list[list[int]]:
    """Indices of runs of consecutive sequences that share more than the whole batch does (e.g. the two
    orders of one judgement in a batch of many): each run's prefix is then computed once for the run.

    A batch whose runs would share only a few tokens more than the batch itself (questions that differ after a
    common word: "more formal", "more technical") stays one batch: splitting it would read the long common
    part again for every run, and a run of one reads its whole prompt."""
    if len(sequences) < 2:
        return [list(range(len(sequences)))]
    joins = [common_prefix_length(sequences[i - 1:i + 1]) for i in range(1, len(sequences))]
    floor = min(joins)
    if max(joins) - floor < MIN_GAIN:  # nothing worth sharing beyond the common prefix: one batch
        return [list(range(len(sequences)))]
    groups = [[0]]
    for i, join in enumerate(joins, start=1):
        if join == floor:
            groups.append([])
        groups[-1].append(i)
    return groups


def common_prefix_length(sequences: list[list[int]]) -> int:
    if not sequences:
        return 0
    n = min(map(len, sequences)) - 1  # keep at least one token per sequence for the suffix pass
    first = sequences[0]
    for i in range(n):
        if any(seq[i] != first[i] for seq in sequences[1:]):
            return i
    return max(n, 0)
