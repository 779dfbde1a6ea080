"""Every error the API returns is JSON: {"error": code, "message": what went wrong and what to do, ...}.

prefscribe's own exceptions are translated here, in one place: not found 404, conflict 409, bad input 422,
model unavailable 503, model call failed 502; anything else is a 500 with the same body.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from ..errors import (
    BackendError,
    ConflictError,
    InputError,
    ModelSpecError,
    ModelUnavailableError,
    NotFoundError,
    PrefscribeError,
    UserNotFoundError,
)

log = logging.getLogger("prefscribe.service")


class ApiError(StarletteHTTPException):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(status_code=status, detail=message, headers=headers)
        self.code, self.message, self.extra = code, message, extra


_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          409: "conflict", 413: "too_large", 415: "unsupported_media_type", 422: "invalid_request",
          429: "too_many_requests", 500: "internal_error", 502: "model_error", 503: "unavailable"}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None,
                   **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status, headers=headers)


INTERNAL = "an internal error: the server log has the details"
# The OpenAI-compatible routes answer errors in OpenAI's shape, which OpenAI's clients read.
OPENAI_PATHS = ("/v1/chat/", "/v1/models", "/v1/feedback")


def _openai_type(status: int) -> str:
    if status == 401:
        return "authentication_error"
    return "invalid_request_error" if status < 500 else "api_error"


def answer(request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None,
           **extra: Any) -> JSONResponse:
    """The error body for this request's path: ours, or OpenAI's shape on the proxy's routes."""
    if request.url.path.startswith(OPENAI_PATHS):
        body = {"error": {"message": message, "type": _openai_type(status), "code": code,
                          "param": extra.get("field")}}
        return JSONResponse(body, status_code=status, headers=headers)
    return error_response(status, code, message, headers, **extra)


def _prefscribe_error(exc: PrefscribeError) -> tuple[int, str, str]:
    """The one mapping from prefscribe's exception tree to (status, code, message). Model failures answer
    without their detail, which can name internal hosts; the server log keeps it."""
    if isinstance(exc, UserNotFoundError):
        return 404, "not_found", f"no user {exc.user_id!r} for this API key's tenant"
    if isinstance(exc, NotFoundError):
        return 404, "not_found", str(exc)
    if isinstance(exc, ConflictError):
        return 409, "conflict", str(exc)
    if isinstance(exc, ModelSpecError):
        return 503, "model_unavailable", "the service's model spec is not usable: see the server log"
    if isinstance(exc, ModelUnavailableError):
        return 503, "model_unavailable", "the model cannot be loaded or reached right now: try again later"
    if isinstance(exc, BackendError):
        return 502, "model_error", "the model call failed: try again later"
    if isinstance(exc, InputError):
        return 422, "invalid_request", str(exc)
    return 500, "internal_error", INTERNAL


def allowed_methods(request: Request) -> list[str]:
    """Every method some route takes at this request's path."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if route.matches(request.scope)[0] != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, ApiError):
            return answer(request, exc.status_code, exc.code, exc.message, exc.headers, **exc.extra)
        if exc.status_code == 400:  # FastAPI's only own 400: a body its JSON parser gave up on (too deep)
            return answer(request, 400, "invalid_json", "the body is not valid JSON: it cannot be parsed")
        headers = exc.headers
        if exc.status_code == 405:  # Starlette names only the first route's methods; a path has several
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return answer(request, exc.status_code, _CODES.get(exc.status_code, "error"), message, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        bad_json = next((e for e in errors if e.get("type") == "json_invalid"), None)
        if bad_json is not None:
            reason = (bad_json.get("ctx") or {}).get("error", "malformed")
            return answer(request, 400, "invalid_json", f"the body is not valid JSON: {reason}")
        details = [{"loc": [str(p) for p in e.get("loc", ())], "message": e.get("msg", "")} for e in errors]
        first = details[0] if details else {"loc": [], "message": "invalid request"}
        where = ".".join(p for p in first["loc"] if p != "body") or "request"
        return answer(request, 422, "invalid_request", f"{where}: {first['message']}", details=details)

    @app.exception_handler(PrefscribeError)
    async def _prefscribe(request: Request, exc: PrefscribeError) -> JSONResponse:
        status, code, message = _prefscribe_error(exc)
        if status >= 500:
            log.error("%s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        # bad input names its field in the body too (an import file: "versions[3].parent"), for clients
        field = exc.field if status == 422 and isinstance(exc, InputError) and exc.field else None
        return answer(request, status, code, message, **({"field": field} if field else {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette logs the traceback after this answer is sent.
        return answer(request, 500, "internal_error", INTERNAL)


class BodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, "too_large", f"the request body is over the {limit}-byte limit: send smaller "
                         "batches", limit=limit)
