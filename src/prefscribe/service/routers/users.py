"""/v1/users: list a tenant's users, one user's state, delete a user with every row of theirs, and export
or import a whole user (docs/export.md)."""

from __future__ import annotations

import base64
import re
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from ...errors import UserNotFoundError
from ...formats import FORMATS, get_format, read_document
from ...store import UserState
from ..deps import AuthenticatedRoute, RuntimeDep, TenantDep, UserId
from ..schemas import MAX_INT, DeleteOut, UserList, UserOut, errors

router = APIRouter(tags=["users"], route_class=AuthenticatedRoute)


def user_out(state: UserState) -> UserOut:
    return UserOut(**state.to_json())


# A cursor is the last user id of a page, encoded so that clients treat it as a token (its form may change;
# the version prefix lets a later service read the cursors this one gave).
_CURSOR = "u1."
CursorQuery = Annotated[str | None, Query(pattern=r"^u1\.[A-Za-z0-9_-]+$", max_length=1200,
                                          description="The `next_cursor` of the page before: the page after it, "
                                          "whatever was created or deleted meanwhile.")]
OffsetQuery = Annotated[int, Query(ge=0, le=MAX_INT, description="Skip this many users (after the cursor when one is "
                                   "given). Kept for older clients: a user created or deleted before the offset "
                                   "moves the page; walk with `cursor`.")]


@router.get("/users", response_model=UserList, summary="List users")
def list_users(tenant: TenantDep, runtime: RuntimeDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
               offset: OffsetQuery = 0, cursor: CursorQuery = None) -> UserList:
    """This tenant's users, by id, a page at a time: follow `next_cursor` until it is null."""
    after = read_cursor(cursor) if cursor is not None else None
    # One more than asked: whether a next page exists is known without an empty last page.
    total, users = runtime.store.list_users(tenant.id, limit + 1, offset, after)
    more, users = len(users) > limit, users[:limit]
    return UserList(total=total, users=[user_out(u) for u in users],
                    next_cursor=user_cursor(users[-1].user_id) if more else None)


def user_cursor(user_id: str) -> str:
    return _CURSOR + base64.urlsafe_b64encode(user_id.encode()).decode().rstrip("=")


def read_cursor(cursor: str) -> str:
    """The text a cursor continues after. Every text is a place in the order of user ids, so a cursor the
    service did not give (the schema's pattern lets through only this alphabet) starts the page at some place
    among the tenant's own users rather than failing: a dangling last character is dropped, bytes that are not
    UTF-8 are read as U+FFFD, and NUL (no database compares it) as well."""
    body = cursor.removeprefix(_CURSOR)
    body = body[:-1] if len(body) % 4 == 1 else body
    text = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("utf-8", errors="replace")
    return text.replace("\x00", "\ufffd")


@router.get("/users/{user_id}", response_model=UserOut, summary="One user's state", responses=errors(404))
def get_user(user_id: UserId, tenant: TenantDep, runtime: RuntimeDep) -> UserOut:
    state = runtime.store.user(tenant.id, user_id)
    if state is None:
        raise UserNotFoundError(user_id)
    return user_out(state)


@router.delete("/users/{user_id}", response_model=DeleteOut, summary="Delete a user and all their data",
               responses=errors(404))
def delete_user(user_id: UserId, tenant: TenantDep, runtime: RuntimeDep) -> DeleteOut:
    """Purge the user: interactions, batches, every profile version and the user row. An update running
    for them is dropped when it finishes. Model replies are not cached by the service (cache=False)."""
    counts = runtime.store.purge(tenant.id, user_id)
    return DeleteOut(user_id=user_id, deleted=counts)


FormatQuery = Annotated[str, Query(pattern="^(" + "|".join(sorted(FORMATS)) + ")$",
                                   description="json (prefscribe's own, everything), markdown (for people), "
                                   "letta (an agent file whose human block holds the profile) or mem0 "
                                   "(one memory per statement).")]


@router.get("/users/{user_id}/export", summary="Export a user", responses=errors(404) | {
    200: {"description": "The user in the chosen format.", "content": {"application/json": {},
                                                                       "text/markdown": {}}}})
def export_user(user_id: UserId, tenant: TenantDep, runtime: RuntimeDep, format: FormatQuery = "json") -> Response:
    """Everything of the user in one file: with `json`, every profile version with its provenance and every
    interaction (import it into another prefscribe to move the user); the other formats carry the current
    profile to Letta, mem0 or a person."""
    fmt = get_format(format)
    text = fmt.dump(runtime.store.export_user(tenant.id, user_id))
    return Response(text, media_type=fmt.media_type, headers={"Content-Disposition": attachment(user_id + fmt.suffix)})


def attachment(filename: str) -> str:
    """A Content-Disposition for any user id: an ASCII name for old clients, the exact one RFC 6266 style. A
    user id may hold quotes, control characters or any Unicode; a header value may not (the fuzzer found it)."""
    plain = re.sub(r"[^A-Za-z0-9._-]", "_", filename)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"


@router.post("/users/{user_id}/import", response_model=UserOut, status_code=201, summary="Import a user",
             responses=errors(404, 409) | {201: {"description": "The user, created from the file."}},
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": {"type": "object", "description": "A prefscribe export (format=json), a Letta agent "
                            "file or a mem0 export."}}}}})
async def import_user(user_id: UserId, request: Request, tenant: TenantDep, runtime: RuntimeDep,
                      format: Annotated[str | None, Query(pattern="^(json|letta|mem0)$", description="The "
                                                         "file's format (default: recognized from it).")] = None
                      ) -> UserOut:
    """Create the user from an export, in one transaction: a bad file is refused with the record and field
    at fault and nothing stored. A user who exists already is a conflict (delete it first)."""
    text = (await request.body()).decode("utf-8", errors="strict")
    doc = read_document(text, "request body", format)
    state = await run_in_threadpool(runtime.store.import_user, tenant.id, doc, user_id)
    return user_out(state)
