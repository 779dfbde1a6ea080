"""GET /v1/health: liveness, without a key (for load balancers)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter

from ..deps import RuntimeDep

router = APIRouter(tags=["health"])

try:
    _VERSION = version("prefscribe")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    _VERSION = "unknown"


@router.get("/health", summary="Liveness")
def health(runtime: RuntimeDep) -> dict:
    return {"status": "ok", "version": _VERSION, "model": runtime.settings.model,
            "worker": bool(runtime.worker is not None and runtime.worker.running)}
