"""POST and GET /v1/users/{user_id}/interactions: append a batch (idempotent by key), list the latest."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import ValidationError

from ...schema import Interaction
from ..deps import AuthenticatedRoute, RuntimeDep, TenantDep, UserId
from ..errors import ApiError
from ..jsonbody import check
from ..schemas import MAX_INT, SHORT_CHARS, IngestOut, InteractionList, InteractionOut, errors

router = APIRouter(tags=["interactions"], route_class=AuthenticatedRoute)

# The body is read by the route (it also takes JSON Lines); service/openapi.py documents it with the limits.
_BODY_DOC = {"requestBody": {"required": True, "content": {"application/json": {"schema": {}}}}}


def _too_long(index: int, name: str, length: int, limit: int) -> ApiError:
    return ApiError(422, "too_long", f"interaction {index}, field '{name}': {length} characters; the limit is "
                    f"{limit}", index=index, field=name)


def check_limits(index: int, item: Interaction, max_chars: int) -> None:
    """Every field has a size limit: the texts `max_chars`, ids, domains and timestamps SHORT_CHARS, and
    meta `max_chars` as JSON. Text columns cannot hold NUL characters (meta is stored as JSON, which can)."""
    for name, limit in (("context", max_chars), ("chosen", max_chars), ("rejected", max_chars),
                        ("id", SHORT_CHARS), ("domain", SHORT_CHARS), ("timestamp", SHORT_CHARS)):
        value = getattr(item, name)
        if not isinstance(value, str):
            continue
        if len(value) > limit:
            raise _too_long(index, name, len(value), limit)
        if "\x00" in value:
            raise ApiError(422, "invalid_request", f"interaction {index}, field '{name}': the text has a NUL "
                           "character, which cannot be stored", index=index, field=name)
    if item.meta:
        size = len(json.dumps(item.meta, ensure_ascii=False))
        if size > max_chars:
            raise _too_long(index, "meta", size, max_chars)


def parse_batch(values: list[Any], header_key: str | None, *, max_items: int, max_chars: int
                ) -> tuple[list[Interaction], str | None]:
    """The interactions and idempotency key of an ingest body, already parsed as strict JSON."""
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
        # 409, not 422: each key is valid alone (as the schema says); together they contradict each other
        raise ApiError(409, "conflict", "the Idempotency-Key header and the body's idempotency_key differ: "
                       "send one, or the same in both")
    key = header_key if header_key is not None else body_key
    if key is not None and not (1 <= len(key) <= SHORT_CHARS):
        raise ApiError(422, "invalid_request", f"an idempotency key has 1 to {SHORT_CHARS} characters")
    if header_key is not None:
        check(header_key, "the Idempotency-Key header")
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
            interaction = Interaction.model_validate(item, strict=True)  # JSON types as the schema says
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "(item)"
            raise ApiError(422, "invalid_request", f"interaction {index}, field '{field}': {first['msg']}",
                           index=index, field=field) from None
        check_limits(index, interaction, max_chars)
        out.append(interaction)
    return out, key


@router.post("/users/{user_id}/interactions", response_model=IngestOut, status_code=201,
             openapi_extra=_BODY_DOC, summary="Add a batch of interactions",
             responses={200: {"model": IngestOut, "description": "A retried batch (same idempotency key): nothing "
                               "added."}, **errors(409)})
async def add_interactions(
    user_id: UserId, request: Request, response: Response, tenant: TenantDep, runtime: RuntimeDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=SHORT_CHARS,
                                                  description="Makes a retry of this batch a no-op.")] = None,
) -> IngestOut:
    """Append interactions for a user (created on first sight). With an idempotency key, a retry of the
    same batch adds nothing and answers 200 with duplicate: true, the batch's own seqs and the user's current
    counts."""
    settings = runtime.settings
    items, key = parse_batch(request.state.json_values, idempotency_key, max_items=settings.max_batch_items,
                             max_chars=settings.max_field_chars)
    # The store's writer thread runs it, with the others waiting, in one transaction: no request thread
    # is held while it waits its turn.
    result = await asyncio.wrap_future(runtime.store.submit_ingest(tenant.id, user_id, items, key))
    if result.duplicate:
        response.status_code = 200
    due = result.pending >= settings.update_every
    if due:
        runtime.notify(result.pending)
    return IngestOut(**result.__dict__, update_due=due)


@router.get("/users/{user_id}/interactions", response_model=InteractionList, summary="List interactions",
            responses=errors(404))
def list_interactions(user_id: UserId, tenant: TenantDep, runtime: RuntimeDep,
                      limit: Annotated[int, Query(ge=1, le=500)] = 50,
                      before: Annotated[int | None, Query(ge=1, le=MAX_INT, description="Only seq below this.")] = None
                      ) -> InteractionList:
    """The user's interactions, newest first, with their sequence numbers."""
    rows = runtime.store.interactions(tenant.id, user_id, limit, before)
    return InteractionList(user_id=user_id, interactions=[
        InteractionOut(seq=r.seq, created_at=r.created_at, **r.interaction.model_dump()) for r in rows])
