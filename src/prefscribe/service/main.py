"""The app factory: `uvicorn --factory prefscribe.service.main:create_app` or `prefscribe serve`."""

from __future__ import annotations

import os
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from ..llm import Backend
from ..store import Store
from ..updates import ModelRuntime, Worker
from . import openapi
from .chat import build_chat
from .errors import install_error_handlers
from .jsonbody import strict_json_body
from .middleware import BodyLimitMiddleware, JsonBodyMiddleware, SecurityHeadersMiddleware, Utf8PathMiddleware
from .openai_schemas import openai_errors
from .routers import access, chat, docs, health, interactions, personalize, profiles, ui, users
from .runtime import Runtime
from .schemas import errors
from .settings import Settings


def create_app(settings: Settings | None = None, *, store: Store | None = None,
               backend: Backend | None = None) -> FastAPI:
    """The service for `settings` (default: from PREFSCRIBE_* environment variables). `store` and `backend`
    are for embedding and tests; by default they come from settings.db and settings.model."""
    settings = settings or Settings()
    runtime = Runtime(settings, store or Store(settings.db, auth_ttl=settings.auth_cache_seconds),
                      ModelRuntime(settings.model, backend),
                      owns_store=store is None)
    runtime.worker = Worker(runtime.store, settings, runtime.models)
    runtime.chat = build_chat(settings.chat_model or settings.model, runtime.models,
                              timeout=settings.chat_timeout_seconds, per_tenant=settings.chat_memory_per_tenant,
                              seconds=settings.chat_memory_seconds, api_key=os.environ.get("OPENAI_API_KEY"))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if settings.worker:
            runtime.worker.start()
        yield
        # An update still running after this is abandoned with the process; its lease lapses and
        # another worker redoes it, so nothing is lost.
        runtime.worker.stop(timeout=30)
        await runtime.chat.upstream.aclose()
        if runtime.owns_store:
            runtime.store.close()

    app = FastAPI(title="prefscribe", summary="Readable, editable user preference profiles, kept current.",
                  version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url="/v1/openapi.json")
    app.state.runtime = runtime
    install_error_handlers(app)
    app.add_middleware(JsonBodyMiddleware)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    app.add_middleware(Utf8PathMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.include_router(health.router, prefix="/v1", responses=errors(500))
    for module in (interactions, profiles, users, personalize, access):
        app.include_router(module.router, prefix="/v1", dependencies=[Depends(strict_json_body)],
                           responses=errors(400, 401, 413, 422, 429, 500))
    app.include_router(chat.router, prefix="/v1", dependencies=[Depends(strict_json_body)],
                       responses=openai_errors(400, 401, 413, 422, 429, 500))
    app.include_router(ui.router)
    app.include_router(access.pages)
    app.include_router(docs.router)
    openapi.install(app, settings, runtime.chat.upstream.name)
    return app
