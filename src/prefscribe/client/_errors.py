"""HTTP errors of the profile service as prefscribe's own exceptions: a 404 is a NotFoundError, a 409 a
ConflictError, and so on, so code that catches prefscribe.errors works the same against the library and the
service. Each carries the HTTP status and the service's stable error code."""

from __future__ import annotations

from typing import Any

import httpx

from ..errors import (
    BackendError,
    ConflictError,
    InputError,
    ModelUnavailableError,
    NotFoundError,
    PrefscribeError,
)


class ApiError(PrefscribeError):
    """An error answer of the service: `status` (HTTP), `code` (the body's `error`), `message` (what to do)
    and the whole `body`."""

    def __init__(self, status: int, code: str, message: str, body: dict[str, Any] | None = None) -> None:
        self.status, self.code, self.message, self.body = status, code, message, body or {}
        Exception.__init__(self, f"{status} {code}: {message}")


class AuthenticationError(ApiError):
    """401: no API key, or an unknown or revoked one."""


class NotFound(ApiError, NotFoundError):
    """404: no such user for this key's tenant, no such version, or no profile yet (code no_profile)."""


class Conflict(ApiError, ConflictError):
    """409: a stale base version, a rollback to the current version, contradicting idempotency keys."""


class InvalidRequest(ApiError, InputError):
    """400, 413, 422: the request itself is wrong; `field` names the field when the service did."""

    def __init__(self, status: int, code: str, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(status, code, message, body)
        self.path, self.line, self.reason = None, None, message
        self.field = self.body.get("field")


class RateLimited(ApiError):
    """429: wait `retry_after` seconds."""

    @property
    def retry_after(self) -> float | None:
        value = self.body.get("retry_after")
        return float(value) if value is not None else None


class ModelFailed(ApiError, BackendError):
    """502: the service's model call failed; trying again later may work."""


class ModelUnavailable(ApiError, ModelUnavailableError):
    """503: the service's model cannot be loaded or reached right now."""


class ServerError(ApiError):
    """500 and any other unexpected status: the server log has the details."""


class ServiceUnreachable(PrefscribeError):
    """No answer from the service (connection refused, timeout) after the retries."""


_BY_STATUS: dict[int, type[ApiError]] = {400: InvalidRequest, 401: AuthenticationError, 404: NotFound,
                                         409: Conflict, 413: InvalidRequest, 415: InvalidRequest,
                                         422: InvalidRequest, 429: RateLimited, 502: ModelFailed,
                                         503: ModelUnavailable}


def _from_openai(error: dict[str, Any]) -> dict[str, Any]:
    """The proxy's routes (/v1/feedback) answer errors in OpenAI's shape, {"error": {"message", "type",
    "code", "param"}}: read as the service's own, the param as `field`."""
    return {"error": str(error.get("code") or error.get("type") or "error"), "message": error.get("message", ""),
            "field": error.get("param"), "type": error.get("type")}


def error_for(response: httpx.Response) -> ApiError:
    """The exception for an error response (the service's JSON body when it has one)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = _from_openai(body["error"])
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        text = response.text[:200].strip() or response.reason_phrase
        body = {"error": "http_error", "message": f"not an answer of the prefscribe service: {text}"}
    kind = _BY_STATUS.get(response.status_code, ServerError)
    return kind(response.status_code, body["error"], str(body.get("message", "")), body)
