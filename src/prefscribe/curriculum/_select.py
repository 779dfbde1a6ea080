"""The pruning formulas, as pure functions (METHOD.md section 5).

    S_tract = p_strong(true choice)
    S_learn = log p_strong - log p_weak
    keep the top alpha share by S_learn, then tau_low < S_tract < tau_high;
    per user, the two hardest kept points (lowest S_tract) become k < K.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import InputError
from ..schema import Interaction
from ._presets import PruneSettings

P_FLOOR = 1e-12  # log(0) guard: a probability of exactly 0 is treated as 1e-12

SCORE_FAILED = "scoring failed"
TOO_FEW_POINTS = "fewer than 2 points pass the filters"
NO_POINTS = "no scorable point (history too short or no rejected items)"


@dataclass(frozen=True)
class ScoredPoint:
    """Point (H[0:m], h_m) of one user, with both models' probability of the true choice."""

    user_id: str
    m: int
    p_weak: float | None
    p_strong: float | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.p_weak is not None and self.p_strong is not None

    @property
    def s_tract(self) -> float:
        assert self.p_strong is not None
        return self.p_strong

    @property
    def s_learn(self) -> float:
        assert self.p_strong is not None and self.p_weak is not None
        return math.log(max(self.p_strong, P_FLOOR)) - math.log(max(self.p_weak, P_FLOOR))


def alpha_threshold(values: Sequence[float], alpha: float) -> float:
    """The S_learn cut of the top `alpha` share: the ceil(alpha * N)-th largest value. Points equal to it
    are all kept, so ties can keep slightly more than the share."""
    if not values:
        return math.inf
    n_top = max(1, math.ceil(alpha * len(values) - 1e-9))  # 1e-9: 0.7 * 10 is 7.000000000000001
    return sorted(values, reverse=True)[n_top - 1]


@dataclass
class Selection:
    threshold: float                       # S_learn cut
    after_alpha: list[ScoredPoint]
    after_tau: list[ScoredPoint]
    picks: dict[str, tuple[int, int]]      # user -> (k, K)
    users_dropped: Counter = field(default_factory=Counter)
    failed: int = 0


def select(points: Sequence[ScoredPoint], settings: PruneSettings, users: Sequence[str] | None = None) -> Selection:
    """Apply the formulas. `users` lists every user considered (those with no point are counted too)."""
    valid = [p for p in points if p.ok]
    threshold = alpha_threshold([p.s_learn for p in valid], settings.alpha)
    after_alpha = [p for p in valid if p.s_learn >= threshold]
    after_tau = [p for p in after_alpha if settings.tau_low < p.s_tract < settings.tau_high]
    kept_by_user: dict[str, list[ScoredPoint]] = defaultdict(list)
    for p in after_tau:
        kept_by_user[p.user_id].append(p)
    picks: dict[str, tuple[int, int]] = {}
    dropped: Counter = Counter()
    with_points = {p.user_id for p in points}
    for user in (users if users is not None else sorted(with_points)):
        kept = kept_by_user.get(user, [])
        if len(kept) >= 2:
            hardest = sorted(kept, key=lambda p: (p.s_tract, p.m))[:2]
            k, K = sorted(p.m for p in hardest)
            picks[user] = (k, K)
        elif user not in with_points:
            dropped[NO_POINTS] += 1
        else:
            dropped[TOO_FEW_POINTS] += 1
    return Selection(threshold, after_alpha, after_tau, picks, dropped, failed=len(points) - len(valid))


def rl_record(user_id: str, history: Sequence[Interaction], k: int, K: int) -> dict:
    """The RL instance (H[0:k], h_k, H[k:K], h_K): history[k] and history[K] are the two targets; the
    trainer's stage 1 sees history[:k], stage 2 history[k:K]. Only history[:K + 1] is written."""
    if not 0 < k < K < len(history):
        raise InputError(f"need 0 < k < K < len(history), got k={k}, K={K}, len={len(history)}")
    if history[k].rejected is None or history[K].rejected is None:
        raise InputError("both targets need a rejected item", field="rejected")
    return {"user_id": user_id, "history": [h.model_dump(mode="json", exclude_none=True) for h in history[:K + 1]],
            "k": k, "K": K}
