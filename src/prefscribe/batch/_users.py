"""From one user's rows (interactions, the past profile, outputs of earlier runs) to what this run does
for the user: run an update, carry the past profile over unchanged, or skip it as already done."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from ..schema import Interaction, Profile

# The kinds of rows grouped per user. All share one schema so Ray can union and group them.
ITEM, PAST, DONE = "item", "past", "done"
ROW_SCHEMA = ("user_id", "kind", "ts", "source", "line", "payload")


@dataclass(frozen=True)
class Stepping:
    """How a user's interactions become model calls.

    chunk: with a past profile, the new interactions are taken in steps of at most `chunk`, each step
      updating the profile of the previous one (as `infer --past` does, once per chunk).
    segments: without one, the whole history is cut into this many segments, streamed the same way
      (1: one full-history profile).
    """

    chunk: int = 64
    segments: int = 1

    def steps(self, new_items: int, has_past: bool) -> int:
        if new_items == 0:
            return 0
        if has_past:
            return math.ceil(new_items / self.chunk)
        return min(self.segments, new_items)


@dataclass
class UserJob:
    """What the model stage needs for one user (one row of the planned dataset)."""

    user_id: str
    action: str              # run | resumed | unchanged
    input_hash: str
    history: list[Interaction]
    past: dict | None        # the past output row (its profile columns), or None
    steps: int
    covered_through: float | None

    def past_profile(self) -> Profile | None:
        if self.past is None or not self.past.get("profile"):
            return None
        return Profile(profile=self.past["profile"], reasoning=self.past.get("reasoning"),
                       model=self.past.get("model"), prompt_version=self.past.get("prompt_version"),
                       covers=int(self.past.get("covers") or 0))

    def to_row(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "action": self.action, "input_hash": self.input_hash,
                "history": json.dumps([i.model_dump(mode="json", exclude_defaults=True) for i in self.history],
                                      ensure_ascii=False),
                "past": json.dumps(self.past, ensure_ascii=False) if self.past is not None else "",
                "steps": self.steps, "covered_through": self.covered_through,
                "interactions": len(self.history)}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> UserJob:
        return cls(user_id=row["user_id"], action=row["action"], input_hash=row["input_hash"],
                   history=[Interaction.model_validate(i) for i in json.loads(row["history"])],
                   past=json.loads(row["past"]) if row["past"] else None, steps=int(row["steps"]),
                   covered_through=row["covered_through"])


def plan_user(rows: list[dict[str, Any]], run_key: str, stepping: Stepping) -> UserJob:
    """The job for one user from all of its rows. `run_key` names the model, prompts and settings: the
    same user with the same input under the same run key is done once, whatever the number of reruns."""
    user_id = rows[0]["user_id"]
    past = next((json.loads(r["payload"]) for r in rows if r["kind"] == PAST), None)
    if past is not None and not past.get("profile"):
        past = None  # a failed past row holds no profile: the user starts again from its history
    watermark = past.get("covered_through") if past else None
    items = sorted((r for r in rows if r["kind"] == ITEM), key=lambda r: (r["ts"], r["source"], r["line"]))
    if watermark is not None:
        items = [r for r in items if r["ts"] > watermark]  # only what the past profile has not seen
    history = [Interaction.model_validate_json(r["payload"]) for r in items]
    covered = items[-1]["ts"] if items else watermark
    digest = hashlib.sha256(run_key.encode())
    digest.update(json.dumps(past, sort_keys=True, ensure_ascii=False, default=str).encode())
    for r in items:
        digest.update(r["payload"].encode())
    input_hash = digest.hexdigest()
    done = {json.loads(r["payload"])["input_hash"] for r in rows if r["kind"] == DONE}
    if input_hash in done:
        action = "resumed"
    elif not history:
        action = "unchanged"
    else:
        action = "run"
    return UserJob(user_id, action, input_hash, history, past, stepping.steps(len(history), past is not None),
                   covered)
