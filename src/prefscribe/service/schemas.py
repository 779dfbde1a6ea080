"""Request and response bodies of the HTTP API (the OpenAPI schema is generated from these). The models
live in prefscribe.api_models, which the client shares; this module adds the documented error responses."""

from __future__ import annotations

from ..api_models import (
    MAX_INT,
    NOT_BLANK,
    SHORT_CHARS,
    STORABLE,
    AccessLinkIn,
    AccessLinkOut,
    ChooseIn,
    ChooseOut,
    DeleteOut,
    EditIn,
    ErrorOut,
    IngestOut,
    InteractionList,
    InteractionOut,
    OrderOut,
    ProfileOut,
    RefreshOut,
    RespondIn,
    RespondOut,
    RollbackIn,
    UpdateState,
    Usage,
    UserList,
    UserOut,
    VersionList,
    VersionOut,
)

__all__ = ["MAX_INT", "STORABLE", "NOT_BLANK", "SHORT_CHARS", "ErrorOut", "Usage", "IngestOut",
           "UpdateState", "VersionOut", "ProfileOut", "VersionList", "EditIn", "RollbackIn", "RefreshOut",
           "UserOut", "UserList", "DeleteOut", "InteractionOut", "InteractionList", "ChooseIn", "OrderOut",
           "ChooseOut", "RespondIn", "RespondOut", "AccessLinkIn", "AccessLinkOut", "errors"]

_WHY = {
    400: "The body is not strict JSON (invalid_json) or not UTF-8 (invalid_encoding).",
    401: "No API key, or an unknown or revoked one (unauthorized).",
    404: "No such user for this key's tenant, or no such version (not_found); no profile yet (no_profile).",
    409: "The request contradicts the current state, or the Idempotency-Key header and the body's key differ "
         "(conflict).",
    413: "The body is over max_body_bytes (too_large) or the batch over max_batch_items (too_many_items).",
    422: "A field is missing, of the wrong type or over its limit (invalid_request, too_long).",
    429: "Too many failed authentications from this client: wait Retry-After seconds (too_many_requests).",
    500: "An internal error (internal_error); details are in the server log only.",
    502: "The model call failed (model_error).",
    503: "The model cannot be loaded or reached (model_unavailable).",
}


def errors(*statuses: int) -> dict[int | str, dict]:
    """OpenAPI `responses` for these error statuses, each with the ErrorOut body."""
    return {status: {"model": ErrorOut, "description": _WHY[status]} for status in statuses}


