"""The profile service: HTTP API (/v1), inspector pages (/ui), running the update worker of
`prefscribe.updates` in the server process.

    prefscribe serve --db sqlite:///profiles.db --model embedded --port 8080

Needs the `serve` extra: pip install 'prefscribe[serve]'. Names are imported on first use, so reading
`Settings` never loads the web stack.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

__all__ = ["Settings", "create_app"]
_WHERE = {"create_app": ".main", "Settings": ".settings"}

if TYPE_CHECKING:  # pragma: no cover
    from .main import create_app
    from .settings import Settings


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(_WHERE[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
