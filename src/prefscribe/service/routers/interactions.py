"""POST and GET /v1/users/{user_id}/interactions: append a batch (idempotent by key), list the latest."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from ...schema import Interaction
from ...store import NotFoundError
from ..deps import RuntimeDep, TenantDep, UserId, translate_not_found
from ..errors import ApiError
from ..schemas import IngestOut, InteractionList, InteractionOut

router = APIRouter(tags=["interactions"])

_ITEM = Interaction.model_json_schema()
_BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": "A JSON array of interactions, an object {idempotency_key, interactions}, or JSON Lines.",
        "content": {
            "application/json": {"schema": {"oneOf": [
                {"type": "array", "items": _ITEM},
                {"type": "object", "required": ["interactions"],
                 "properties": {"idempotency_key": {"type": "string", "maxLength": 200},
                                "interactions": {"type": "array", "items": _ITEM}}},
            ]}},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    },
}


def _json_values(text: str) -> list[Any]:
    """One JSON value, or several concatenated (JSON Lines, or JSON Lines whose newlines curl -d stripped)."""
    decoder = json.JSONDecoder()
    values, at, end = [], 0, len(text)
    while True:
        while at < end and text[at] in " \t\r\n":
            at += 1
        if at >= end:
            return values
        try:
            value, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError as exc:
            raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc.msg} at line {exc.lineno} "
                           f"column {exc.colno}") from None
        values.append(value)


def parse_batch(raw: bytes, header_key: str | None, *, max_items: int, max_chars: int
                ) -> tuple[list[Interaction], str | None]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_encoding", f"the body is not UTF-8 (byte {exc.start})") from None
    values = _json_values(text)
    body_key = None
    if len(values) == 1 and isinstance(values[0], list):
        items = values[0]
    elif len(values) == 1 and isinstance(values[0], dict) and "interactions" in values[0]:
        obj = values[0]
        unknown = sorted(set(obj) - {"interactions", "idempotency_key"})
        if unknown:
            raise ApiError(422, "invalid_request", f"unknown field(s) {unknown}: a batch object has "
                           "'interactions' and optionally 'idempotency_key'")
        items, body_key = obj["interactions"], obj.get("idempotency_key")
        if body_key is not None and not isinstance(body_key, str):
            raise ApiError(422, "invalid_request", "idempotency_key must be a string")
        if not isinstance(items, list):
            raise ApiError(422, "invalid_request", "'interactions' must be a list")
    else:
        items = values
    if header_key is not None and body_key is not None and header_key != body_key:
        raise ApiError(422, "invalid_request", "the Idempotency-Key header and the body's idempotency_key differ")
    key = header_key if header_key is not None else body_key
    if key is not None and not (1 <= len(key) <= 200):
        raise ApiError(422, "invalid_request", "an idempotency key has 1 to 200 characters")
    if not items:
        raise ApiError(422, "invalid_request", "the batch has no interactions")
    if len(items) > max_items:
        raise ApiError(413, "too_many_items", f"{len(items)} interactions in one batch; the limit is {max_items}: "
                       "split the batch", limit=max_items)
    out = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ApiError(422, "invalid_request", f"interaction {index}: expected an object with 'chosen'",
                           index=index)
        try:
            interaction = Interaction.model_validate(item)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "(item)"
            raise ApiError(422, "invalid_request", f"interaction {index}, field '{field}': {first['msg']}",
                           index=index, field=field) from None
        for name in ("context", "chosen", "rejected", "id", "domain"):
            value = getattr(interaction, name)
            if isinstance(value, str) and len(value) > max_chars:
                raise ApiError(422, "too_long", f"interaction {index}, field '{name}': {len(value)} characters; "
                               f"the limit is {max_chars}", index=index, field=name)
        out.append(interaction)
    return out, key


@router.post("/users/{user_id}/interactions", response_model=IngestOut, status_code=201,
             openapi_extra=_BODY_DOC, summary="Add a batch of interactions",
             responses={200: {"description": "A retried batch (same idempotency key): nothing added."}})
async def add_interactions(
    user_id: UserId, request: Request, response: Response, tenant: TenantDep, runtime: RuntimeDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> IngestOut:
    """Append interactions for a user (created on first sight). With an idempotency key, a retry of the
    same batch returns the first answer (200, duplicate: true) and adds nothing."""
    settings = runtime.settings
    raw = await request.body()
    items, key = parse_batch(raw, idempotency_key, max_items=settings.max_batch_items,
                             max_chars=settings.max_field_chars)
    result = await run_in_threadpool(runtime.store.ingest, tenant.id, user_id, items, key)
    if result.duplicate:
        response.status_code = 200
    due = result.pending >= settings.update_every
    if due:
        runtime.notify(result.pending)
    return IngestOut(**result.__dict__, update_due=due)


@router.get("/users/{user_id}/interactions", response_model=InteractionList, summary="List interactions")
def list_interactions(user_id: UserId, tenant: TenantDep, runtime: RuntimeDep,
                      limit: Annotated[int, Query(ge=1, le=500)] = 50,
                      before: Annotated[int | None, Query(ge=1, description="Only seq below this.")] = None
                      ) -> InteractionList:
    """The user's interactions, newest first, with their sequence numbers."""
    try:
        rows = runtime.store.interactions(tenant.id, user_id, limit, before)
    except NotFoundError as exc:
        raise translate_not_found(exc, user_id) from None
    return InteractionList(user_id=user_id, interactions=[
        InteractionOut(seq=r.seq, created_at=r.created_at, **r.interaction.model_dump()) for r in rows])
