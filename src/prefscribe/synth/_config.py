"""The settings of the SFT synthesis pipeline, documented once."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import InputError
from ..llm.base import Sampling


@dataclass(frozen=True)
class SynthConfig:
    """How SFT examples are synthesized (METHOD.md section 4). Defaults are the paper's.

    max_history: keep only the most recent interactions of each user (long MovieLens histories).
    include_target: append the user's held-out target pair to the history first (off by default: it is
        the evaluation target, which training data should not see).
    min_segment: a user whose early, middle or late segment is shorter is dropped (paper: 3; P-Soups
        users have 4 interactions, so they need 1).
    tract_threshold: a next-segment interaction is a target candidate if the scorer gives its true
        choice at least this probability (paper: 0.9).
    max_targets: targets drawn at random among the tractable ones, per segment (paper: 5).
    min_valid: a user whose validated candidates are fewer is dropped (paper: 3). Checked as soon as
        the number of targets is known, since one target makes at most one candidate.
    lam: the merged summary must predict at least this share of the segment's targets (paper: 0.8).
    streaming: also run the second pass (middle segment, conditioned on the first summary; targets
        from the late segment) so the set holds update examples besides from-scratch ones.
    max_history_tokens: cap on the rendered interactions of every prompt (teacher tokenizer).
    max_new_tokens, temperature: sampling of the teacher (generation and merge); top-p 0.95, top-k 20.
    seed: target draws, item order, sampling.
    chunk_users: users carried through both passes together; the journal is written after each chunk.
    """

    max_history: int = 30
    include_target: bool = False
    min_segment: int = 3
    tract_threshold: float = 0.9
    max_targets: int = 5
    min_valid: int = 3
    lam: float = 0.8
    streaming: bool = False
    max_history_tokens: int = 3000
    max_new_tokens: int = 1024
    temperature: float = 0.6
    seed: int = 0
    chunk_users: int = 8

    def __post_init__(self) -> None:
        checks = [
            (self.max_history >= 3, "max_history must be >= 3 (three segments)"),
            (self.min_segment >= 1, "min_segment must be >= 1"),
            (0.0 <= self.tract_threshold <= 1.0, "tract_threshold must be in [0, 1]"),
            (self.max_targets >= 1, "max_targets must be >= 1"),
            (1 <= self.min_valid <= self.max_targets, "min_valid must be in [1, max_targets]"),
            (0.0 <= self.lam <= 1.0, "lam must be in [0, 1]"),
            (self.max_history_tokens >= 64, "max_history_tokens must be >= 64"),
            (self.max_new_tokens >= 16, "max_new_tokens must be >= 16"),
            (self.chunk_users >= 1, "chunk_users must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(message)

    @property
    def sampling(self) -> Sampling:
        return Sampling(max_new_tokens=self.max_new_tokens, temperature=self.temperature, top_p=0.95,
                        top_k=20, seed=self.seed)

    def as_dict(self) -> dict:
        return asdict(self)
