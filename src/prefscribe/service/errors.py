"""Every error the API returns is JSON: {"error": code, "message": what went wrong and what to do, ...}.

prefscribe's own exceptions are translated here: not found 404, conflict 409, bad input 422, model
unavailable 503, model call failed 502.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import BackendError, InputError, ModelSpecError, ModelUnavailableError, PrefscribeError
from ..store import ConflictError, NotFoundError

log = logging.getLogger("prefscribe.service")


class ApiError(StarletteHTTPException):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(status_code=status, detail=message, headers=headers)
        self.code, self.message, self.extra = code, message, extra


def not_found(message: str, **extra: Any) -> ApiError:
    return ApiError(404, "not_found", message, **extra)


_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          409: "conflict", 413: "too_large", 415: "unsupported_media_type", 422: "invalid_request",
          429: "too_many_requests", 500: "internal_error", 502: "model_error", 503: "unavailable"}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None,
                   **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, ApiError):
            return error_response(exc.status_code, exc.code, exc.message, exc.headers, **exc.extra)
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return error_response(exc.status_code, _CODES.get(exc.status_code, "error"), message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": [str(p) for p in e.get("loc", ())], "message": e.get("msg", "")} for e in exc.errors()]
        first = details[0] if details else {"loc": [], "message": "invalid request"}
        where = ".".join(p for p in first["loc"] if p != "body") or "request"
        return error_response(422, "invalid_request", f"{where}: {first['message']}", details=details)

    @app.exception_handler(PrefscribeError)
    async def _prefscribe(request: Request, exc: PrefscribeError) -> JSONResponse:
        if isinstance(exc, NotFoundError):
            return error_response(404, "not_found", str(exc))
        if isinstance(exc, ConflictError):
            return error_response(409, "conflict", str(exc))
        if isinstance(exc, (ModelUnavailableError, ModelSpecError)):
            return error_response(503, "model_unavailable", str(exc))
        if isinstance(exc, BackendError):
            return error_response(502, "model_error", str(exc))
        if isinstance(exc, (InputError, ValueError)):
            return error_response(422, "invalid_request", str(exc))
        log.exception("unexpected prefscribe error", exc_info=exc)
        return error_response(500, "internal_error", str(exc))


class BodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, "too_large", f"the request body is over the {limit}-byte limit: send smaller "
                         "batches", limit=limit)
