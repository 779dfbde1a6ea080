"""The bodies the HTTP API takes and returns: the service validates and documents with them (its OpenAPI
schema is generated from these) and `prefscribe.client` parses with them. A bottom-layer module, so that
front ends share it without importing each other."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from .schema import WHITESPACE, Interaction

# Sequence and version numbers are 32-bit INTEGER columns on PostgreSQL: larger ones are refused up front.
MAX_INT = 2**31 - 1
# What a text column can hold (PostgreSQL refuses NUL characters), and text that is more than whitespace.
STORABLE = r"^[^\x00]*$"
NOT_BLANK = rf"^[^\x00]*[^\x00{WHITESPACE}][^\x00]*$"
SHORT_CHARS = 200  # ids, domains, string timestamps, idempotency keys (the store's columns hold 200)


def _json_integer(value: object) -> object:
    """An integer as JSON Schema has it: 7 or 7.0, never true or "7"."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value  # anything else goes on to the strict int check, which refuses bool, str and 7.5


def json_int(ge: int, le: int) -> type[int]:
    """An integer field from `ge` to `le`. The bounds come before the validator: after it, or on the Field of an
    optional, they reach the OpenAPI document as "ge"/"le", which JSON Schema does not know."""
    return Annotated[int, Field(ge=ge, le=le), BeforeValidator(_json_integer)]  # type: ignore[return-value]


class Body(BaseModel):
    """A request body: JSON types as the schema says, as ingest takes them (no "7" for 7, no true for 1)."""

    model_config = ConfigDict(strict=True)


class ErrorOut(BaseModel):
    """Every error's body. `error` is a stable code to branch on, `message` says what went wrong and what to
    do; some errors add fields (index, field, limit, pending, details)."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="invalid_json, invalid_encoding, unauthorized, not_found, no_profile, "
                       "conflict, too_large, too_many_items, invalid_request, too_long, too_many_requests, "
                       "internal_error, model_error, model_unavailable, method_not_allowed")
    message: str


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class IngestOut(BaseModel):
    user_id: str
    accepted: int = Field(description="Interactions in this batch.")
    first_seq: int
    last_seq: int
    duplicate: bool = Field(description="True when this idempotency key was seen before: nothing was added.")
    idempotency_key: str | None
    interactions: int = Field(description="The user's interactions in all, now (also on a retry).")
    pending: int = Field(description="Interactions not yet in the profile, now (also on a retry).")
    update_due: bool = Field(description="Enough are pending for the worker to update the profile.")


class UpdateState(BaseModel):
    pending: int
    updating: bool
    refresh_requested: bool
    failures: int
    last_error: str | None
    retry_at: float | None


class VersionOut(BaseModel):
    """One profile version. The fields of `prefscribe infer --json` plus where the version came from."""

    user_id: str
    version: int
    parent: int | None
    author: Literal["model", "person"]
    kind: Literal["update", "edit", "rollback"]
    editor: str | None = Field(description="The model spec, or the name the person gave.")
    profile: str
    reasoning: str | None
    model: str | None
    prompt_version: str | None
    covers: int = Field(description="Interactions this profile summarizes.")
    first_seq: int | None = Field(description="First interaction this version took in (updates only).")
    last_seq: int | None
    covered_through: int = Field(description="Every interaction up to this seq is accounted for.")
    rollback_of: int | None
    usage: Usage
    created_at: str | None


class ProfileOut(VersionOut):
    interactions: int
    update: UpdateState


class VersionList(BaseModel):
    user_id: str
    head: int | None
    versions: list[VersionOut]


class EditIn(Body):
    profile: str = Field(pattern=NOT_BLANK, description="The new profile text (not only whitespace; at most the "
                         "service's max_profile_chars, 20,000 by default).")
    editor: str | None = Field(None, max_length=200, pattern=STORABLE,
                               description="Who made the change (shown in the history).")
    base_version: json_int(0, MAX_INT) | None = Field(
        None, description="Refuse (409) if the head is no longer this version (0: the user has no profile yet).")


class RollbackIn(Body):
    version: json_int(1, MAX_INT) = Field(description="The version whose text becomes current again.")
    editor: str | None = Field(None, max_length=200, pattern=STORABLE)


class RefreshOut(BaseModel):
    user_id: str
    queued: bool
    pending: int


class UserOut(BaseModel):
    user_id: str
    interactions: int
    pending: int
    covered_through: int
    head_version: int | None
    versions: int
    updating: bool
    refresh_requested: bool
    failures: int
    last_error: str | None
    retry_at: float | None
    created_at: str | None
    updated_at: str | None


class UserList(BaseModel):
    total: int
    users: list[UserOut]
    next_cursor: str | None = Field(None, description="Send as `cursor` for the next page (an opaque token); null "
                                    "on the last page. Users created or deleted between two pages move no page.")


class DeleteOut(BaseModel):
    user_id: str
    deleted: dict[str, int] = Field(description="Rows deleted per table.")


class InteractionOut(Interaction):
    seq: int
    created_at: str | None


class InteractionList(BaseModel):
    user_id: str
    interactions: list[InteractionOut]


class ChooseIn(Body):
    a: str = Field(min_length=1)
    b: str = Field(min_length=1)
    context: str | None = None
    method: Literal["logprobs", "generation"] = "logprobs"
    orders: Literal["both", "ab", "ba"] = "both"


class OrderOut(BaseModel):
    order: Literal["ab", "ba"]
    p_first: float | None = None
    p_a: float | None = None
    error: str | None = None


class ChooseOut(BaseModel):
    user_id: str
    choice: Literal["a", "b"] | None
    p_a: float | None
    p_b: float | None
    orders: list[OrderOut]
    method: str
    error: str | None
    version: int | None = Field(description="The profile version used (None: the user has no profile yet).")


class RespondIn(Body):
    context: str = Field(min_length=1, description="The user's message.")
    max_new_tokens: json_int(1, 4096) = 512


class RespondOut(BaseModel):
    user_id: str
    response: str
    version: int | None
    usage: Usage


class AccessLinkIn(Body):
    scope: Literal["read", "edit"] = Field("read", description="read: see the profile and its history; edit: "
                                           "also edit it, roll it back and delete the user's data.")
    expires_in: json_int(60, 7 * 24 * 3600) = Field(900, description="Seconds the link works (default 15 "
                            "minutes).")


class AccessLinkOut(BaseModel):
    user_id: str
    scope: Literal["read", "edit"]
    url: str = Field(description="Give this to the user: it opens their profile page, and only theirs.")
    expires_at: str


class FeedbackIn(BaseModel):
    """Feedback on a reply of the chat proxy (/v1/chat/completions): a rating, or the reply the user kept
    instead (e.g. a regenerated one). It becomes an interaction of the user the completion was for."""

    # What the route needs, stated for the OpenAPI document: the reply the user preferred, or a good rating.
    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"required": ["preferred"], "properties": {"preferred": {"type": "string"}}},
        {"required": ["rating"], "properties": {"rating": {"const": "good"}}}]})

    completion_id: str = Field(min_length=1, max_length=SHORT_CHARS, description="The completion's `id`.")
    rating: Literal["good", "bad"] | None = Field(None, description="good: the reply becomes a positive-only "
                                                  "interaction. bad needs `preferred` too.")
    preferred: str | None = Field(None, pattern=NOT_BLANK, description="The reply the user preferred to this "
                                  "one: chosen, with this completion's reply as rejected.")


class FeedbackOut(BaseModel):
    completion_id: str
    user_id: str
    duplicate: bool = Field(description="This completion already had feedback: nothing was added.")
    interactions: int
    pending: int
    update_due: bool
