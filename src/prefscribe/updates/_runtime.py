"""The model an update process shares between its worker and its other callers, loaded on first use."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from ..llm import Backend, load_backend
from ..llm.spec import is_server


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
