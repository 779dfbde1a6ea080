"""Choosing tokens from logits in numpy, for the engines whose runtime hands back logits (ort, ov): greedy, or
sampled with temperature, top-k and top-p in the order transformers applies them."""

from __future__ import annotations

from collections.abc import Sequence

from .base import Sampling


def pick(scores, sampling: Sampling, rngs: Sequence):
    """The next token of each row of `scores` [rows, vocab]; row i samples with rngs[i]. One generator per row,
    seeded alike, makes a prompt's sample depend on the prompt and the seed only, not on its batch (as its cache
    key does)."""
    import numpy as np

    scores = np.asarray(scores, dtype=np.float64)
    if sampling.temperature <= 0:
        return scores.argmax(-1)
    scores = scores / sampling.temperature
    if sampling.top_k:
        kth = np.sort(scores, axis=-1)[:, -min(sampling.top_k, scores.shape[-1])][:, None]
        scores = np.where(scores < kth, -np.inf, scores)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    if sampling.top_p < 1:
        order = np.argsort(-probs, axis=-1)
        sorted_probs = np.take_along_axis(probs, order, -1)
        outside = np.cumsum(sorted_probs, -1) - sorted_probs >= sampling.top_p  # keeps at least the top token
        np.put_along_axis(probs, order, np.where(outside, 0.0, sorted_probs), -1)
        probs /= probs.sum(-1, keepdims=True)
    return np.array([rng.choice(len(row), p=row) for rng, row in zip(rngs, probs)])


def rngs_for(rows: int, seed: int) -> list:
    import numpy as np

    return [np.random.default_rng(seed) for _ in range(rows)]


def log_softmax(logits):
    import numpy as np

    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
