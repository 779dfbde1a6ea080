"""How profile updates run, whichever front end drives them (the service, `prefscribe worker`, a batch job)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class UpdateConfig(BaseModel):
    """model: model spec the updates run on (see `prefscribe infer --help`).
    update_every: a user's profile is updated once this many new interactions are pending (or on refresh).
    max_interactions_per_update: the most interactions one update takes in; more are taken by the next.
    users_per_update: how many due users one worker step batches into one model call.
    lease_seconds: a worker's claim on a user; renewed while it works, so a killed worker's claim lapses
      after this long and another worker takes the user over.
    poll_seconds: how often an idle worker looks for due users.
    retry_base_seconds / retry_max_seconds: backoff after a failed update (doubling per failure).
    style / max_new_tokens: how profiles are written (None: by model, as `prefscribe infer`).
    cache: reuse model replies from the result cache (off: a purged user must leave nothing behind).
    """

    model: str = "embedded"
    update_every: int = Field(10, ge=1)
    max_interactions_per_update: int = Field(64, ge=1)
    users_per_update: int = Field(4, ge=1)
    lease_seconds: float = Field(60.0, gt=0)
    poll_seconds: float = Field(1.0, gt=0)
    retry_base_seconds: float = Field(5.0, ge=0)
    retry_max_seconds: float = Field(600.0, ge=0)
    style: Literal["reasoning", "direct"] | None = None
    max_new_tokens: int | None = None
    cache: bool = False
