"""What one service process holds: its settings, the store, the model (loaded on first use) and the worker."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..llm import Backend, load_backend
from ..llm.spec import is_server
from ..store import Store
from .settings import Settings

if TYPE_CHECKING:
    from .worker import Worker


class ModelRuntime:
    """The backend for the model spec, loaded once, on first use. Local models (embedded, hf) run one
    call at a time in this process (the worker's updates and the API's choose/respond share it); a
    server backend (openai:) takes calls concurrently."""

    def __init__(self, spec: str, backend: Backend | None = None) -> None:
        self.spec = spec
        self._backend = backend
        self._load_lock = threading.Lock()
        server = is_server(backend.info.spec if backend is not None else spec)
        self._call_lock = nullcontext() if server else threading.Lock()

    def backend(self) -> Backend:
        if self._backend is None:
            with self._load_lock:
                if self._backend is None:
                    self._backend = load_backend(self.spec)
        return self._backend

    @contextmanager
    def use(self) -> Iterator[Backend]:
        backend = self.backend()
        with self._call_lock:
            yield backend


@dataclass
class Runtime:
    settings: Settings
    store: Store
    models: ModelRuntime
    worker: Worker | None = None
    owns_store: bool = False

    def notify(self, pending: int) -> None:
        """Wake this process's worker when a user has become due (other processes poll)."""
        if self.worker is not None and pending >= self.settings.update_every:
            self.worker.wake.set()
