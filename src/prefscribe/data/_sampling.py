"""Seeded randomness for the loaders: one generator per user, and a stratified `limit`.

Each user's random choices (which negative, which candidate) come from a generator derived from
(seed, benchmark, user id) alone, so a user's record is the same whether it is loaded with all the
others or picked by `limit`, and the same on every machine (no use of Python's salted `hash`).
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from ..errors import InputError
from ..schema import UserRecord

# A gold text counts as a persona to stratify by only if the benchmark shares it among users; AlignX
# gives every user a different persona, P-Soups gives 300 users each of two.
_MAX_STRATA = 50

K = TypeVar("K")


def user_rng(seed: int, *keys: object) -> random.Random:
    """A generator that depends only on the seed and the keys (benchmark, user id, purpose)."""
    digest = hashlib.sha256(":".join(str(k) for k in (seed, *keys)).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def stratum_of(record: UserRecord) -> str | None:
    return record.meta.get("stratum")


def auto_strata(records: list[UserRecord]) -> str:
    """Label each record's stratum when the gold preference is a shared persona; say what was used."""
    golds = [r.gold_preference for r in records]
    if records and all(golds) and len(set(golds)) <= _MAX_STRATA and len(set(golds)) < len(records):
        for record in records:
            record.meta.setdefault("stratum", record.gold_preference)
        return "gold_preference"
    return "none"


def sample_records(records: list[UserRecord], limit: int | None, seed: int, *,
                   stratified_by: str = "auto") -> list[UserRecord]:
    """Keep `limit` users drawn with `seed`, in proportion to each stratum; record how in every meta.

    `stratified_by="auto"` uses `meta["stratum"]` when the loader set it on every record, else the gold
    preference when it is a persona shared by many users (P-Soups), else nothing.
    """
    if stratified_by == "auto":
        stratified_by = ("meta.stratum" if records and all(stratum_of(r) is not None for r in records)
                         else auto_strata(records))
    strata = stratum_of if stratified_by != "none" else None
    chosen, info = choose(records, limit, seed, strata)
    info["stratified_by"] = stratified_by
    stamp(chosen, seed, info)
    return chosen


def choose(items: list[K], limit: int | None, seed: int,
           strata: Callable[[K], str | None] | None = None) -> tuple[list[K], dict[str, Any]]:
    """The seeded `limit` draw on anything (records, or user ids before records are built).

    Allocation is proportional with largest remainders (ties broken by the seeded generator), so two
    personas of 300 users each give limit/2 each. The kept items come back in a seeded shuffled order:
    files sorted by persona must not come back sorted, or a later `[:n]` would repeat the trap.
    """
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise InputError(f"limit must be a positive integer, got {limit!r}", field="limit")
    population = len(items)
    info: dict[str, Any] = {"seed": seed, "limit": limit, "population": population}
    if limit is None or limit >= population:
        info["method"] = "all users" if limit is None else f"all users (limit {limit} >= {population})"
        return list(items), info
    rng = user_rng(seed, "limit")
    groups: dict[str | None, list[K]] = defaultdict(list)
    for item in items:
        groups[strata(item) if strata else None].append(item)
    quotas = _allocate({k: len(m) for k, m in groups.items()}, limit, rng)
    chosen: list[K] = []
    for key, members in groups.items():
        chosen.extend(rng.sample(members, quotas[key]))
    rng.shuffle(chosen)
    info["method"] = "seeded sample without replacement, proportional per stratum"
    info["strata"] = {_short(k): {"population": len(groups[k]), "kept": quotas[k]} for k in groups}
    return chosen, info


Split = Literal["dev", "test"]


def split_of(benchmark: str, user_id: str) -> Split:
    """A user's half, fixed by a hash of the benchmark and the user id: calibration and tuning take users of
    "dev", reported evaluations those of "test", so no reported user shaped what is reported on them."""
    digest = hashlib.sha256(f"split:{benchmark}:{user_id}".encode("utf-8")).digest()
    return "dev" if digest[0] % 2 == 0 else "test"


def stamp(records: list[UserRecord], seed: int, info: dict[str, Any]) -> None:
    """Write the seed and how the users were sampled into each record's meta."""
    for record in records:
        record.meta["seed"] = seed
        record.meta["sampling"] = dict(info)


def _allocate(sizes: dict[str | None, int], limit: int, rng: random.Random) -> dict[str | None, int]:
    total = sum(sizes.values())
    exact = {k: limit * n / total for k, n in sizes.items()}
    quotas = {k: int(v) for k, v in exact.items()}
    leftover = limit - sum(quotas.values())
    order = sorted(sizes, key=lambda k: (-(exact[k] - quotas[k]), rng.random()))
    for key in order[:leftover]:
        quotas[key] += 1
    return quotas


def _short(key: str | None) -> str:
    if key is None:
        return "(all)"
    return key if len(key) <= 80 else key[:77] + "..."
