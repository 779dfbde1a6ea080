"""Service settings: every field can be set from the environment as PREFSCRIBE_<NAME> (e.g.
PREFSCRIBE_DB, PREFSCRIBE_UPDATE_EVERY), and `prefscribe serve` / `worker` options override them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..store import DEFAULT_DB


class Settings(BaseSettings):
    """db: SQLAlchemy URL of the profile store (sqlite:///file.db or postgresql://user@host/db).
    model: model spec used for updates, choices and responses (see `prefscribe infer --help`).
    update_every: a user's profile is updated once this many new interactions are pending (or on refresh).
    worker: run the update worker inside the server process (turn off when running `prefscribe worker`).
    max_interactions_per_update: the most interactions one update takes in; more are taken by the next.
    users_per_update: how many due users one worker step batches into one model call.
    lease_seconds: a worker's claim on a user; renewed while it works, so a killed worker's claim lapses
      after this long and another worker takes the user over.
    poll_seconds: how often an idle worker looks for due users.
    retry_base_seconds / retry_max_seconds: backoff after a failed update (doubling per failure).
    style / max_new_tokens: how profiles are written (None: by model, as `prefscribe infer`).
    cache: reuse model replies from the result cache (off: a purged user must leave nothing behind).
    max_body_bytes, max_batch_items, max_field_chars, max_profile_chars: request size limits.
    auth_failures_per_minute: failed authentications a client (by address) may make in a minute before
      it is refused with 429 for the rest of that minute.
    auth_cache_seconds: how long a server trusts an API key it has found before asking the database again
      (a key revoked with `prefscribe keys revoke` stops working within this time; 0: ask every time).
    access_link_secret: the key that signs end-user access links (default: a random one per process, so
      links end with a restart and work only on the process that made them: set one shared secret when
      several server processes sit behind one address).
    """

    model_config = SettingsConfigDict(env_prefix="PREFSCRIBE_", extra="ignore")

    db: str = DEFAULT_DB
    model: str = "embedded"
    update_every: int = Field(10, ge=1)
    worker: bool = True
    max_interactions_per_update: int = Field(64, ge=1)
    users_per_update: int = Field(4, ge=1)
    lease_seconds: float = Field(60.0, gt=0)
    poll_seconds: float = Field(1.0, gt=0)
    retry_base_seconds: float = Field(5.0, ge=0)
    retry_max_seconds: float = Field(600.0, ge=0)
    style: Literal["reasoning", "direct"] | None = None
    max_new_tokens: int | None = None
    cache: bool = False
    max_body_bytes: int = Field(1_000_000, ge=1024)
    max_batch_items: int = Field(1000, ge=1)
    max_field_chars: int = Field(20_000, ge=1)
    max_profile_chars: int = Field(20_000, ge=1)
    auth_failures_per_minute: int = Field(20, ge=1)
    auth_cache_seconds: float = Field(2.0, ge=0)
    access_link_secret: SecretStr | None = None
