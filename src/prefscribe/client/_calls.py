"""One description per API operation, shared by Client and AsyncClient: the method, path, body, the model
that parses the answer, and whether sending it twice is harmless (so a lost answer may be retried)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from ..api_models import (
    AccessLinkOut,
    ChooseOut,
    DeleteOut,
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
from ..schema import Interaction

T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    model: type[T]
    json: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    # Safe to send again when its answer was lost: reads, and writes the service deduplicates or that
    # end in the same state. A rollback or a delete is not (a second one would act, or answer 404).
    repeatable: bool = True


def _user(user_id: str) -> str:
    return f"/v1/users/{quote(user_id, safe='')}"


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def users(limit: int, offset: int) -> Call[UserList]:
    return Call("GET", "/v1/users", UserList, params={"limit": limit, "offset": offset})


def user(user_id: str) -> Call[UserOut]:
    return Call("GET", _user(user_id), UserOut)


def delete_user(user_id: str) -> Call[DeleteOut]:
    return Call("DELETE", _user(user_id), DeleteOut, repeatable=False)


def add_interactions(user_id: str, interactions: Iterable[Interaction | Mapping[str, Any]],
                     idempotency_key: str | None) -> Call[IngestOut]:
    """Every batch carries an idempotency key (a fresh one unless given): the service adds a batch once
    however often it arrives, so a retry after a lost answer cannot add it twice."""
    items = [Interaction.model_validate(i).model_dump(mode="json", exclude_none=True) for i in interactions]
    key = idempotency_key or f"client-{uuid.uuid4().hex}"
    return Call("POST", f"{_user(user_id)}/interactions", IngestOut, json=items,
                headers={"Idempotency-Key": key})


def interactions(user_id: str, limit: int, before: int | None) -> Call[InteractionList]:
    return Call("GET", f"{_user(user_id)}/interactions", InteractionList, params=_params(limit=limit, before=before))


def profile(user_id: str) -> Call[ProfileOut]:
    return Call("GET", f"{_user(user_id)}/profile", ProfileOut)


def versions(user_id: str, limit: int, before: int | None) -> Call[VersionList]:
    return Call("GET", f"{_user(user_id)}/profile/versions", VersionList, params=_params(limit=limit, before=before))


def version(user_id: str, number: int) -> Call[VersionOut]:
    return Call("GET", f"{_user(user_id)}/profile/versions/{number}", VersionOut)


def edit_profile(user_id: str, text: str, editor: str | None, base_version: int | None) -> Call[VersionOut]:
    # Sending the same text again adds no version (200, unchanged): repeatable.
    return Call("PUT", f"{_user(user_id)}/profile", VersionOut,
                json=_params(profile=text, editor=editor, base_version=base_version))


def rollback(user_id: str, number: int, editor: str | None) -> Call[VersionOut]:
    return Call("POST", f"{_user(user_id)}/profile/rollback", VersionOut,
                json=_params(version=number, editor=editor), repeatable=False)


def refresh(user_id: str) -> Call[RefreshOut]:
    return Call("POST", f"{_user(user_id)}/profile/refresh", RefreshOut)


def choose(user_id: str, a: str, b: str, context: str | None, method: Literal["logprobs", "generation"],
           orders: Literal["both", "ab", "ba"]) -> Call[ChooseOut]:
    return Call("POST", f"{_user(user_id)}/choose", ChooseOut,
                json=_params(a=a, b=b, context=context, method=method, orders=orders))


def respond(user_id: str, context: str, max_new_tokens: int) -> Call[RespondOut]:
    return Call("POST", f"{_user(user_id)}/respond", RespondOut,
                json={"context": context, "max_new_tokens": max_new_tokens})


def access_link(user_id: str, scope: Literal["read", "edit"], expires_in: int) -> Call[AccessLinkOut]:
    return Call("POST", f"{_user(user_id)}/access-links", AccessLinkOut,
                json={"scope": scope, "expires_in": expires_in})
