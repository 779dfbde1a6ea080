"""What one service process holds: its settings, the store, the model (loaded on first use) and the worker."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from ..store import Store
from ..updates import ModelRuntime, Worker
from .access import AccessLinks
from .chat import ChatProxy
from .ratelimit import FailureLimiter
from .settings import Settings


@dataclass
class Runtime:
    settings: Settings
    store: Store
    models: ModelRuntime
    worker: Worker | None = None
    owns_store: bool = False
    limiter: FailureLimiter | None = None
    links: AccessLinks | None = None
    chat: ChatProxy | None = None

    def __post_init__(self) -> None:
        if self.limiter is None:
            self.limiter = FailureLimiter(self.settings.auth_failures_per_minute, window=60.0)
        if self.links is None:
            secret = self.settings.access_link_secret
            self.links = AccessLinks(secret.get_secret_value() if secret else secrets.token_urlsafe(32))

    def notify(self, pending: int) -> None:
        """Wake this process's worker when a user has become due (other processes poll)."""
        if self.worker is not None and pending >= self.settings.update_every:
            self.worker.wake.set()
