"""Dependencies shared by the routers: the process runtime and the caller's tenant (from the API key)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Path, Request, Response
from fastapi.routing import APIRoute
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..store import Store, TenantInfo
from .errors import ApiError
from .runtime import Runtime
from .settings import Settings

_bearer = HTTPBearer(auto_error=False, description="An API key from `prefscribe keys create --tenant NAME`.")


# The dependencies that only read an attribute are `async def`: FastAPI runs a plain `def` dependency in its
# thread pool, a hop per request (and a wait for a free thread behind the requests holding one) for nothing.
async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_store(runtime: RuntimeDep) -> Store:
    return runtime.store


async def get_settings(runtime: RuntimeDep) -> Settings:
    return runtime.settings


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def too_many_failures(wait: int) -> ApiError:
    return ApiError(429, "too_many_requests", f"too many failed authentications from this address: try again "
                    f"in {wait} s", headers={"Retry-After": str(wait)}, retry_after=wait)


async def authenticate(request: Request) -> TenantInfo:
    """The tenant of the request's API key, or 401; 429 (for any key) while this client is refused."""
    runtime: Runtime = request.app.state.runtime
    challenge = {"WWW-Authenticate": "Bearer"}
    client = client_address(request)
    wait = runtime.limiter.retry_after(client)
    if wait is not None:  # refused before the key is looked at: a right guess must not show
        raise too_many_failures(wait)
    credentials = await _bearer(request)
    if credentials is None:
        raise ApiError(401, "unauthorized", "missing API key: send 'Authorization: Bearer <key>' "
                       "(create one with `prefscribe keys create --tenant NAME`)", headers=challenge)
    # A key found moments ago is answered here, on the event loop; only a lookup goes to a thread.
    key = credentials.credentials
    tenant = runtime.store.remembered(key) or await run_in_threadpool(runtime.store.authenticate, key)
    if tenant is None:
        runtime.limiter.fail(client)
        raise ApiError(401, "unauthorized", "unknown or revoked API key", headers=challenge)
    return tenant


class AuthenticatedRoute(APIRoute):
    """A route that takes an API key: the key is checked before FastAPI reads the body, so a client without
    a good one gets 401 (or 429) whatever it sends, and its body is never read or parsed."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def authenticated(request: Request) -> Response:
            request.state.tenant = await authenticate(request)
            return await handler(request)

        return authenticated


async def get_tenant(request: Request,
                     credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> TenantInfo:
    """The caller's tenant: found by AuthenticatedRoute before the body was read (`credentials` declares the
    scheme in the OpenAPI document)."""
    tenant = getattr(request.state, "tenant", None)
    return tenant if tenant is not None else await authenticate(request)


TenantDep = Annotated[TenantInfo, Depends(get_tenant)]
UserId = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[^\x00]+$",
                             description="Your id for the user (1 to 200 characters, no NUL).")]
