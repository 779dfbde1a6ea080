"""The evaluation settings: what the judge is given about the user. Each setting is an object that declares
its name, its place in tables and how it builds the judge's preference text; the runner and the reports read
the registry (`SETTINGS`), never a list of names of their own.

none                  nothing (the judge alone)
gold                  the benchmark's own preference text, where it has one
raw                   the raw history itself (the direct-sequence baseline)
full                  a profile inferred from the whole history at once
streaming             a profile built segment by segment, each step updating the previous profile
generic               a fixed neutral text that describes nobody (the prompt set's `generic_preference.txt`)
mismatched            the `full` profile the same writer wrote for another user (the donor)
streaming_mismatched  the donor's `streaming` profile
gold_mismatched       the gold text of another persona

The mismatched controls take their donors from one seeded derangement of the evaluated users (`donors`):
nobody gets their own, and a donor with another gold persona is preferred when the benchmark has personas.
A profile that carries its user beats its own mismatched control; one that does not, does not.

Recommendation sets (and any user whose history and target have no context) follow the reference: full = the
first two thirds of the history; streaming = the first third, then the second third. Others: full = the whole
history, streaming = k equal segments (default 2).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ..data.transforms import reference_thirds, split_segments
from ..errors import InputError
from ..schema import Interaction, UserRecord

RECOMMENDATION_SETS = {"movielens", "mind", "amazon"}
ProfileKind = Literal["full", "streaming"]


@dataclass(frozen=True)
class HistoryPlan:
    full: list[Interaction]
    segments: list[list[Interaction]]


def plan_history(record: UserRecord, benchmark: str, segments: int) -> HistoryPlan:
    feed = record.target is not None and record.target.context is None and all(
        h.context is None for h in record.history)
    if benchmark in RECOMMENDATION_SETS or feed:
        thirds = reference_thirds(record.history)
        if thirds.first and thirds.second:
            return HistoryPlan(full=thirds.full, segments=[thirds.first, thirds.second])
        # Under 3 interactions the thirds are empty: fall back to the whole history.
    k = min(segments, len(record.history))
    return HistoryPlan(full=list(record.history), segments=split_segments(record.history, k))


# ------------------------------------------------------------------------------------------ settings
@dataclass
class Preference:
    """What one setting gives the judge for one user. `text=None` with `required` is a failed item (no profile,
    no gold text): it counts as wrong. `info` is written into the item (errors, tokens, the donor)."""

    text: str | None
    kind: Literal["summary", "history"] = "summary"
    info: dict = field(default_factory=dict)
    required: bool = True


class SettingContext(Protocol):
    """What a setting may ask of the run (the runner implements it)."""

    benchmark: str
    segments: int
    seed: int

    def users(self) -> Sequence[UserRecord]:
        """Every user of the run (the chunk being judged is a part of them)."""

    def profiles(self, kind: ProfileKind, users: Sequence[UserRecord]) -> list[Preference]:
        """Each user's profile written the `kind` way; written once per run, shared by every setting."""

    def donor(self, user: UserRecord) -> UserRecord:
        """The user whose profile or gold text the mismatched controls give `user`."""

    def generic_text(self) -> str: ...

    def raw_history(self, history: Sequence[Interaction]) -> str: ...


class Setting:
    """One way of telling the judge about a user. Subclasses set the class attributes and `preferences`."""

    name: str = ""
    order: int = 99             # its row in tables: controls next to what they control
    needs_gold: bool = False    # only on benchmarks with a gold preference text
    writes_profiles: bool = False

    def preferences(self, users: Sequence[UserRecord], ctx: SettingContext) -> list[Preference]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<setting {self.name}>"


class NoPreference(Setting):
    name, order = "none", 0

    def preferences(self, users, ctx):
        return [Preference(None, required=False) for _ in users]


class Generic(Setting):
    name, order = "generic", 1

    def preferences(self, users, ctx):
        return [Preference(ctx.generic_text()) for _ in users]


class Gold(Setting):
    name, order, needs_gold = "gold", 2, True

    def preferences(self, users, ctx):
        return [Preference(u.gold_preference, info={} if u.gold_preference else
                           {"error": "this benchmark has no gold preference for the user"}) for u in users]


class GoldMismatched(Setting):
    name, order, needs_gold = "gold_mismatched", 3, True

    def preferences(self, users, ctx):
        out = []
        for user in users:
            donor = ctx.donor(user)
            if not donor.gold_preference or donor.gold_preference == user.gold_preference:
                # The derangement gave a same-persona donor (one persona holds more than half the users).
                donor = other_persona(user, ctx.users(), ctx.seed) or donor
            if not donor.gold_preference or donor.gold_preference == user.gold_preference:
                out.append(Preference(None, info={"donor": donor.user_id,
                                                  "error": "no user with another gold persona to borrow from"}))
            else:
                out.append(Preference(donor.gold_preference, info={"donor": donor.user_id}))
        return out


class Raw(Setting):
    name, order = "raw", 4

    def preferences(self, users, ctx):
        plans = [plan_history(u, ctx.benchmark, ctx.segments) for u in users]
        return [Preference(ctx.raw_history(p.full), kind="history") for p in plans]


class Own(Setting):
    """The user's own profile, written the `kind` way."""

    writes_profiles = True

    def __init__(self, name: str, order: int, kind: ProfileKind) -> None:
        self.name, self.order, self.kind = name, order, kind

    def preferences(self, users, ctx):
        return ctx.profiles(self.kind, users)


class Mismatched(Setting):
    """The donor's profile, written by the same writer the same way (the cached one its own setting uses)."""

    writes_profiles = True

    def __init__(self, name: str, order: int, kind: ProfileKind) -> None:
        self.name, self.order, self.kind = name, order, kind

    def preferences(self, users, ctx):
        donors = [ctx.donor(u) for u in users]
        borrowed = ctx.profiles(self.kind, donors)
        out = []
        for donor, profile in zip(donors, borrowed):
            info = {"donor": donor.user_id}
            if "error" in profile.info:
                info["error"] = f"the donor's profile failed: {profile.info['error']}"
            out.append(Preference(profile.text, info=info))
        return out


SETTINGS: dict[str, Setting] = {}


def register(setting: Setting) -> Setting:
    """Add a setting to the registry (a name already there is replaced)."""
    SETTINGS[setting.name] = setting
    return setting


for _setting in (NoPreference(), Generic(), Gold(), GoldMismatched(), Raw(), Own("full", 5, "full"),
                 Mismatched("mismatched", 6, "full"), Own("streaming", 7, "streaming"),
                 Mismatched("streaming_mismatched", 8, "streaming")):
    register(_setting)

# The paired comparisons the summary reports, a - b, when both settings ran on the same users.
COMPARISONS: tuple[tuple[str, str], ...] = (
    ("full", "none"), ("full", "mismatched"), ("streaming", "streaming_mismatched"), ("streaming", "none"),
    ("gold", "none"), ("gold", "gold_mismatched"), ("generic", "none"), ("full", "generic"), ("raw", "none"),
)


def setting_order(name: str) -> tuple[int, str]:
    """Sort key of a setting name in tables (unknown names last, alphabetically)."""
    setting = SETTINGS.get(name)
    return (setting.order if setting else 99, name)


def parse_settings(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in SETTINGS]
    if unknown or not names:
        raise InputError(f"unknown setting(s) {', '.join(unknown) or '(none given)'}; choose from "
                         f"{', '.join(SETTINGS)}", field="settings")
    return names


# ------------------------------------------------------------------------------------------ donors
def persona_of(record: UserRecord) -> str | None:
    """The persona a user shares with others: the loader's stratum, else the gold text."""
    stratum = record.meta.get("stratum")
    return str(stratum) if stratum is not None else record.gold_preference


def donors(records: Sequence[UserRecord], seed: int) -> dict[str, str]:
    """A seeded derangement of the users: user id -> donor id, nobody their own donor, each user donor once.

    Users are shuffled within their persona and laid out persona by persona, the largest first; each takes the
    user `m` places on (m = the largest persona's size), so while no persona holds more than half the users every
    donor has another persona, and otherwise as many as a one-to-one assignment allows. With one persona (or
    none) it is a random cycle."""
    ids = [r.user_id for r in records]
    if len(set(ids)) != len(ids):
        raise InputError("user ids repeat: the mismatched controls need one record per user", field="user_id")
    if len(ids) < 2:
        raise InputError("the mismatched controls need at least 2 users", field="settings")
    rng = random.Random(f"donors-{seed}")
    groups: dict[str | None, list[str]] = {}
    for record in sorted(records, key=lambda r: r.user_id):  # the input order must not change the donors
        groups.setdefault(persona_of(record), []).append(record.user_id)
    keys = sorted(groups, key=lambda k: "" if k is None else k)
    rng.shuffle(keys)
    for key in keys:
        rng.shuffle(groups[key])
    keys.sort(key=lambda k: -len(groups[k]))  # stable: ties keep their shuffled order
    laid = [uid for key in keys for uid in groups[key]]
    n, largest = len(laid), len(groups[keys[0]])
    shift = largest if largest < n else 1
    return {laid[i]: laid[(i + shift) % n] for i in range(n)}


def other_persona(user: UserRecord, users: Sequence[UserRecord], seed: int) -> UserRecord | None:
    """A user whose gold text differs from `user`'s, drawn with a generator of its own (seeded by the user)."""
    others = sorted((u for u in users if u.gold_preference and u.gold_preference != user.gold_preference),
                    key=lambda u: u.user_id)
    return random.Random(f"gold-{seed}-{user.user_id}").choice(others) if others else None


def check_no_target_in_history(records: Sequence[UserRecord]) -> None:
    """The target pair must never reach inference: a leak would inflate every profile setting."""
    for record in records:
        if record.target is None:
            raise InputError(f"user {record.user_id} has no target pair to evaluate", field="target")
        target_items = {record.target.chosen.strip(), record.target.rejected.strip()}
        for position, item in enumerate(record.history):
            seen = {item.chosen.strip(), (item.rejected or "").strip()}
            if seen & target_items:
                raise InputError(f"user {record.user_id}: a target item appears in history position {position}",
                                 field="history")
