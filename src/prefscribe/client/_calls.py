"""One description per API operation, shared by Client and AsyncClient: the method, path, body, how the
answer is read (most into a model of api_models), and whether sending it twice is harmless (so a lost answer
may be retried)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from ..api_models import (
    AccessLinkOut,
    ChooseOut,
    DeleteOut,
    FeedbackOut,
    IngestOut,
    InteractionList,
    ProfileOut,
    RefreshOut,
    RespondOut,
    UserList,
    UserOut,
    VersionList,
    VersionOut,
)
from ..formats import UserDocument, get_format, read_document
from ..schema import Interaction

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
Reader = Callable[[httpx.Response], T]


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    read: Reader[T]  # a successful answer -> what the method returns
    json: Any = None
    content: str | None = None  # a body sent as it is (an import file), instead of `json`
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    # Safe to send again when its answer was lost: reads, and writes the service deduplicates or that
    # end in the same state. A rollback or a delete is not (a second one would act, or answer 404).
    repeatable: bool = True


def _user(user_id: str) -> str:
    return f"/v1/users/{quote(user_id, safe='')}"


def _model(model: type[M]) -> Reader[M]:
    return lambda response: model.model_validate_json(response.content)


def _text(response: httpx.Response) -> str:
    return response.text


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def users(limit: int, cursor: str | None = None, offset: int = 0) -> Call[UserList]:
    return Call("GET", "/v1/users", _model(UserList),
                params=_params(limit=limit, cursor=cursor, offset=offset or None))


def next_users(page: UserList, call: Call[UserList]) -> Call[UserList] | None:
    """The call for the page after `page` (the answer to `call`), or None after the last: by the page's cursor,
    so users created or deleted meanwhile move nothing; by offset from a service older than cursors (its answer
    has no next_cursor field)."""
    limit = call.params["limit"]
    if "next_cursor" in page.model_fields_set:
        return users(limit, cursor=page.next_cursor) if page.next_cursor is not None else None
    offset = call.params.get("offset", 0) + len(page.users)
    return users(limit, offset=offset) if page.users and offset < page.total else None


def user(user_id: str) -> Call[UserOut]:
    return Call("GET", _user(user_id), _model(UserOut))


def delete_user(user_id: str) -> Call[DeleteOut]:
    return Call("DELETE", _user(user_id), _model(DeleteOut), repeatable=False)


def add_interactions(user_id: str, interactions: Iterable[Interaction | Mapping[str, Any]],
                     idempotency_key: str | None) -> Call[IngestOut]:
    """Every batch carries an idempotency key (a fresh one unless given): the service adds a batch once
    however often it arrives, so a retry after a lost answer cannot add it twice."""
    items = [Interaction.model_validate(i).model_dump(mode="json", exclude_none=True) for i in interactions]
    key = idempotency_key or f"client-{uuid.uuid4().hex}"
    return Call("POST", f"{_user(user_id)}/interactions", _model(IngestOut), json=items,
                headers={"Idempotency-Key": key})


def interactions(user_id: str, limit: int, before: int | None) -> Call[InteractionList]:
    return Call("GET", f"{_user(user_id)}/interactions", _model(InteractionList),
                params=_params(limit=limit, before=before))


def profile(user_id: str) -> Call[ProfileOut]:
    return Call("GET", f"{_user(user_id)}/profile", _model(ProfileOut))


def versions(user_id: str, limit: int, before: int | None) -> Call[VersionList]:
    return Call("GET", f"{_user(user_id)}/profile/versions", _model(VersionList),
                params=_params(limit=limit, before=before))


def version(user_id: str, number: int) -> Call[VersionOut]:
    return Call("GET", f"{_user(user_id)}/profile/versions/{number}", _model(VersionOut))


def edit_profile(user_id: str, text: str, editor: str | None, base_version: int | None) -> Call[VersionOut]:
    # Sending the same text again adds no version (200, unchanged): repeatable.
    return Call("PUT", f"{_user(user_id)}/profile", _model(VersionOut),
                json=_params(profile=text, editor=editor, base_version=base_version))


def rollback(user_id: str, number: int, editor: str | None) -> Call[VersionOut]:
    return Call("POST", f"{_user(user_id)}/profile/rollback", _model(VersionOut),
                json=_params(version=number, editor=editor), repeatable=False)


def refresh(user_id: str) -> Call[RefreshOut]:
    return Call("POST", f"{_user(user_id)}/profile/refresh", _model(RefreshOut))


def choose(user_id: str, a: str, b: str, context: str | None, method: Literal["logprobs", "generation"],
           orders: Literal["both", "ab", "ba"]) -> Call[ChooseOut]:
    return Call("POST", f"{_user(user_id)}/choose", _model(ChooseOut),
                json=_params(a=a, b=b, context=context, method=method, orders=orders))


def respond(user_id: str, context: str, max_new_tokens: int) -> Call[RespondOut]:
    return Call("POST", f"{_user(user_id)}/respond", _model(RespondOut),
                json={"context": context, "max_new_tokens": max_new_tokens})


def access_link(user_id: str, scope: Literal["read", "edit"], expires_in: int) -> Call[AccessLinkOut]:
    return Call("POST", f"{_user(user_id)}/access-links", _model(AccessLinkOut),
                json={"scope": scope, "expires_in": expires_in})


def export_text(user_id: str, format: str) -> Call[str]:
    """The export file as the service writes it, in any format it has (formats.FORMATS)."""
    return Call("GET", f"{_user(user_id)}/export", _text, params={"format": format})


def export_document(user_id: str) -> Call[UserDocument]:
    source = f"the service's export of user {user_id!r}"
    return Call("GET", f"{_user(user_id)}/export", lambda response: read_document(response.text, source, "json"),
                params={"format": "json"})


def import_user(document: UserDocument | str, user_id: str | None, format: str | None) -> Call[UserOut]:
    """A document goes as prefscribe JSON; a file's text goes as it is, for the service to read (and to
    refuse naming the record and field at fault). Without `user_id` the user is the document's own, which
    for a text means reading it here first. Not repeatable: a second import of the same user is a conflict."""
    if isinstance(document, UserDocument):
        text, format = get_format("json").dump(document), "json"
        target = user_id or document.user_id
    else:
        text = document
        target = user_id or read_document(text, "the document to import", format).user_id
    return Call("POST", f"{_user(target)}/import", _model(UserOut), content=text, params=_params(format=format),
                headers={"Content-Type": "application/json"}, repeatable=False)


def feedback(completion_id: str, rating: Literal["good", "bad"] | None, preferred: str | None) -> Call[FeedbackOut]:
    # The service keeps one feedback per completion and answers the same one again as a duplicate: repeatable.
    return Call("POST", "/v1/feedback", _model(FeedbackOut),
                json=_params(completion_id=completion_id, rating=rating, preferred=preferred))
