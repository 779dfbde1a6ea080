"""Service settings: every field can be set from the environment as PREFSCRIBE_<NAME> (e.g.
PREFSCRIBE_DB, PREFSCRIBE_UPDATE_EVERY), and `prefscribe serve` / `worker` options override them."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..store import DEFAULT_DB
from ..updates import UpdateConfig


class Settings(BaseSettings, UpdateConfig):
    """The update fields (model, update_every, lease_seconds, ...) are `prefscribe.updates.UpdateConfig`'s,
    documented there; `model` also serves the API's choose and respond. The service adds:
    db: SQLAlchemy URL of the profile store (sqlite:///file.db or postgresql://user@host/db).
    worker: run the update worker inside the server process (turn off when running `prefscribe worker`).
    max_body_bytes, max_batch_items, max_field_chars, max_profile_chars: request size limits.
    auth_failures_per_minute: failed authentications a client (by address) may make in a minute before
      it is refused with 429 for the rest of that minute.
    auth_cache_seconds: how long a server trusts an API key it has found before asking the database again
      (a key revoked with `prefscribe keys revoke` stops working within this time; 0: ask every time).
    access_link_secret: the key that signs end-user access links (default: a random one per process, so
      links end with a restart and work only on the process that made them: set one shared secret when
      several server processes sit behind one address).
    chat_model: the model spec behind the OpenAI-compatible /v1/chat/completions (default: `model`).
    chat_anonymous: a chat request that names no user passes through without a profile (default: 400).
    chat_timeout_seconds: how long a chat completion may take upstream before the answer is a 504 (streaming:
      the longest wait for the next token); a local model stops generating then.
    chat_memory_per_tenant / chat_memory_seconds: the completions kept for /v1/feedback, per tenant: the
      latest this many, for this long, in the memory of the process that served them.
    """

    model_config = SettingsConfigDict(env_prefix="PREFSCRIBE_", extra="ignore")

    db: str = DEFAULT_DB
    worker: bool = True
    max_body_bytes: int = Field(1_000_000, ge=1024)
    max_batch_items: int = Field(1000, ge=1)
    max_field_chars: int = Field(20_000, ge=1)
    max_profile_chars: int = Field(20_000, ge=1)
    auth_failures_per_minute: int = Field(20, ge=1)
    auth_cache_seconds: float = Field(2.0, ge=0)
    access_link_secret: SecretStr | None = None
    chat_model: str | None = None
    chat_anonymous: bool = False
    chat_timeout_seconds: float = Field(120.0, gt=0)
    chat_memory_per_tenant: int = Field(1000, ge=1)
    chat_memory_seconds: float = Field(3600.0, gt=0)
