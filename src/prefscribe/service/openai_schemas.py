"""The bodies of the OpenAI-compatible proxy (/v1/chat/completions, /v1/models, /v1/feedback) as the OpenAPI
document shows them: the subset of OpenAI's chat-completions format the proxy reads, what it answers, and
OpenAI's error shape, which these routes answer instead of the rest of the API's.

The request models allow fields they do not name: OpenAI's other options (stop, n, tools, response_format,
stream_options, ...) go to a server upstream as sent, and a local model ignores them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ..api_models import MAX_INT, SHORT_CHARS

USER_ID = r"^[^\x00]+$"  # a user id as the /v1/users/{user_id} routes take it
ROLES = Literal["system", "developer", "user", "assistant", "tool", "function"]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: ROLES
    content: str | list[dict[str, Any]] | None = Field(
        None, description="Text, or OpenAI's content parts: the text parts are the message's text for a local model "
                          "and for feedback; a server upstream gets every part.")


def _not_bool(value: Any) -> Any:
    # JSON true is not a number; pydantic would read it as 1.
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    return value


Number = BeforeValidator(_not_bool)


class ChatIn(BaseModel):
    """OpenAI's chat request. The fields named here are read or checked by the proxy; any other OpenAI field is
    passed to a server upstream as sent and ignored by a local model (which writes one choice)."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(description="The id GET /v1/models lists (the only model this server serves).")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = Field(False, description="Answer with server-sent events (text/event-stream), OpenAI's chunks.")
    user: str | None = Field(None, min_length=1, max_length=SHORT_CHARS, pattern=USER_ID,
                             description="The user whose profile is added, unless the X-Prefscribe-User header "
                                         "names one. Not passed upstream.")
    max_tokens: Annotated[int | None, Number] = Field(None, ge=1, le=MAX_INT)
    max_completion_tokens: Annotated[int | None, Number] = Field(None, ge=1, le=MAX_INT,
                                                                 description="Wins over max_tokens.")
    temperature: Annotated[float | None, Number] = Field(None, ge=0, le=2)
    top_p: Annotated[float | None, Number] = Field(None, gt=0, le=1)
    seed: Annotated[int | None, Number] = Field(None, ge=0, le=MAX_INT)


class AssistantMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | None = None


class Choice(BaseModel):
    model_config = ConfigDict(extra="allow")

    index: int
    message: AssistantMessage
    finish_reason: str | None = None


class CompletionUsage(BaseModel):
    model_config = ConfigDict(extra="allow")

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ProfileUsed(BaseModel):
    user: str | None = Field(description="The user the request named (none: an anonymous chat).")
    profile_version: int | None = Field(description="The profile version added (none: the user has no profile), "
                                                    "also in the X-Prefscribe-Profile-Version header.")


class ChatCompletion(BaseModel):
    """The upstream's chat.completion, renamed to this completion (`id`, `model`) and with `prefscribe` added.
    `id` is what POST /v1/feedback takes."""

    model_config = ConfigDict(extra="allow")

    id: str
    object: str = Field(description="chat.completion")
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage | None = None
    prefscribe: ProfileUsed


class Delta(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    model_config = ConfigDict(extra="allow")

    index: int
    delta: Delta
    finish_reason: str | None = None


class UpstreamChunk(BaseModel):
    """What a chat.completion.chunk from a server upstream must have."""

    model_config = ConfigDict(extra="allow")

    object: str = Field(description="chat.completion.chunk")
    created: int
    choices: list[ChunkChoice]


class ChatCompletionChunk(UpstreamChunk):
    """One event of a stream: the upstream's chunk renamed to this completion (`id`, `model`), with `prefscribe`."""

    id: str
    model: str
    prefscribe: ProfileUsed


def stream_event() -> dict[str, Any]:
    """One server-sent event of a streamed completion (OpenAPI before 3.2 describes a text/event-stream by its
    events): a chunk, an error after the stream started, or the closing [DONE]."""
    return {"type": "object", "required": ["data"], "properties": {"data": {"oneOf": [
        {"const": "[DONE]"},
        {"type": "string", "not": {"const": "[DONE]"}, "contentMediaType": "application/json", "contentSchema": {
            "anyOf": [{"$ref": "#/components/schemas/ChatCompletionChunk"},
                      {"$ref": "#/components/schemas/OpenAIErrorOut"}]}}]}},
        "description": "A `data:` line: a chat.completion.chunk of this completion; a failure after the first "
                       "event, as a last {\"error\": ...}; then `[DONE]`."}


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "prefscribe"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]


class OpenAIError(BaseModel):
    message: str = Field(description="What went wrong and what to do.")
    type: str = Field(description="invalid_request_error, authentication_error (401) or api_error (5xx).")
    param: str | None = Field(description="The request field at fault, where one is.")
    code: str | None = Field(description="prefscribe's error code: user_required, model_not_found, "
                                         "upstream_timeout, ...")


class OpenAIErrorOut(BaseModel):
    error: OpenAIError


_WHY = {
    400: "The body is not strict JSON (invalid_json).",
    401: "No API key, or an unknown or revoked one (unauthorized).",
    413: "The body is over max_body_bytes (too_large).",
    422: "A field is missing, of the wrong type or over its limit (invalid_request, too_long).",
    429: "Too many failed authentications from this client: wait Retry-After seconds (too_many_requests).",
    500: "An internal error (internal_error); details are in the server log only.",
    502: "The upstream model failed or cannot be reached (upstream_error, upstream_unreachable, "
         "upstream_unavailable).",
    504: "The upstream model did not answer within chat_timeout_seconds (upstream_timeout).",
}


def openai_error(why: str) -> dict:
    """An OpenAPI response with OpenAI's error body."""
    return {"model": OpenAIErrorOut, "description": why}


def openai_errors(*statuses: int) -> dict[int | str, dict]:
    """OpenAPI `responses` for these error statuses, each with OpenAI's error body."""
    return {status: openai_error(_WHY[status]) for status in statuses}
