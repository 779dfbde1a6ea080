"""The OpenAI-compatible personalization proxy: POST /v1/chat/completions (streaming or not), GET /v1/models
and POST /v1/feedback, behind the same API keys as the rest of /v1.

The user is the X-Prefscribe-User header or else the request's `user` field. Their current profile goes in as
a system message (the prompt set's respond_system.j2) and the answer says which version it used (the
X-Prefscribe-Profile-Version header, `none` without a profile, and `prefscribe.profile_version` in the
body and in each chunk). Errors here have OpenAI's shape ({"error": {"message", "type", "param", "code"}}),
which service/errors.py gives every path in OPENAI_PATHS; the bodies are in service/openai_schemas.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError

from ...api_models import SHORT_CHARS, FeedbackIn, FeedbackOut
from ...errors import NotFoundError
from ...prompts import get_prompts
from ...schema import Interaction
from ...store import Version
from ..chat import ChatProxy, UpstreamError, text_of
from ..deps import RuntimeDep, TenantDep
from ..errors import ApiError
from ..openai_schemas import (
    ChatCompletion,
    ChatIn,
    ChatMessage,
    Model,
    ModelList,
    openai_error,
    openai_errors,
    stream_event,
)
from ..runtime import Runtime

router = APIRouter(tags=["chat"])
log = logging.getLogger("prefscribe.service")
USER_HEADER = "X-Prefscribe-User"
VERSION_HEADER = "X-Prefscribe-Profile-Version"


def _proxy(runtime: Runtime) -> ChatProxy:
    assert runtime.chat is not None
    return runtime.chat


def _head(runtime: Runtime, tenant_id: int, user_id: str) -> Version | None:
    try:
        return runtime.store.head(tenant_id, user_id)[1]
    except NotFoundError:  # a user seen here first has no history yet: no profile
        return None


def _last_user_text(messages: list[ChatMessage]) -> str | None:
    return next((text_of(m.content) for m in reversed(messages) if m.role == "user"), None)


def _upstream_failed(exc: UpstreamError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message)


def _completion(data: Any, completion_id: str, name: str, meta: dict) -> dict:
    """The upstream's answer renamed to this completion, or a 502 if it is not a chat completion."""
    if isinstance(data, dict):
        data = {**data, "id": completion_id, "model": name, "prefscribe": meta}
        try:
            ChatCompletion.model_validate(data)
            return data
        except ValidationError as exc:
            log.warning("chat %s: the upstream's answer is not a chat completion: %s", completion_id, exc)
    raise ApiError(502, "upstream_error", "the model's answer is not a chat completion: try again later")


_VERSION = {VERSION_HEADER: {"description": "The profile version added, or `none`.", "required": True,
                             "schema": {"type": "string"}}}


@router.get("/models", response_model=ModelList)
async def list_models(tenant: TenantDep, runtime: RuntimeDep) -> ModelList:
    """The one chat model this server proxies."""
    return ModelList(data=[Model(id=_proxy(runtime).upstream.name)])


@router.post("/chat/completions", response_model=ChatCompletion,
             responses={200: {"description": "The completion (or, streaming, its events).", "headers": _VERSION,
                              "content": {"text/event-stream": {"schema": stream_event()}}},
                        400: openai_error("The body is not strict JSON (invalid_json), or the request names no "
                                          "user (user_required)."),
                        404: openai_error("No such model here (model_not_found)."), **openai_errors(502, 504)})
async def chat_completions(body: ChatIn, tenant: TenantDep, runtime: RuntimeDep,
                           user_header: Annotated[str | None, Header(alias=USER_HEADER, max_length=SHORT_CHARS,
                                                                     description="The user whose profile is added "
                                                                     "(wins over the body's `user`).")]
                           = None) -> Response:
    """OpenAI's chat completion with the user's current profile added as a system message. The user is the
    X-Prefscribe-User header or else `user`; naming none is a 400 unless the server passes anonymous chats
    through (PREFSCRIBE_CHAT_ANONYMOUS)."""
    proxy = _proxy(runtime)
    name = proxy.upstream.name
    if body.model != name:
        raise ApiError(404, "model_not_found", f"no model {body.model!r} here: this server serves {name!r} "
                       "(GET /v1/models)", field="model")
    user_id = user_header or body.user
    if not user_id and not runtime.settings.chat_anonymous:
        raise ApiError(400, "user_required", f"name the user: send the {USER_HEADER} header or the request's "
                       "`user` field (a server started with PREFSCRIBE_CHAT_ANONYMOUS=true passes such requests "
                       "through without a profile)", field="user")
    head = await run_in_threadpool(_head, runtime, tenant.id, user_id) if user_id else None
    messages = [m.model_dump(exclude_none=True) for m in body.messages]
    forward = body.model_dump(exclude_none=True, exclude={"user", "stream"})
    forward["messages"] = get_prompts().chat_messages(head.profile if head else None, messages)
    completion_id = proxy.memory.new_id()
    meta = {"user": user_id, "profile_version": head.version if head else None}
    headers = {VERSION_HEADER: str(head.version) if head else "none"}
    context = _last_user_text(body.messages)

    def remember(reply: str) -> None:
        if user_id:
            proxy.memory.remember(tenant.id, completion_id, user_id, context, reply)

    if not body.stream:
        try:
            data = _completion(await proxy.upstream.complete(forward), completion_id, name, meta)
        except UpstreamError as exc:
            raise _upstream_failed(exc) from None
        remember(text_of(data["choices"][0]["message"].get("content") if data["choices"] else None))
        return JSONResponse(data, headers=headers)

    chunks = proxy.upstream.stream(forward)
    try:  # the first chunk before the answer starts, so a failing upstream still gets a 502/504 status
        first = await anext(chunks)
    except StopAsyncIteration:
        raise _upstream_failed(UpstreamError(502, "upstream_error", "the model sent an empty stream")) from None
    except UpstreamError as exc:
        raise _upstream_failed(exc) from None
    return StreamingResponse(_events(first, chunks, completion_id, name, meta, remember),
                             media_type="text/event-stream", headers=headers)


async def _events(first: dict, chunks: AsyncIterator[dict], completion_id: str, name: str, meta: dict,
                  remember) -> AsyncIterator[str]:
    """Server-sent events of the chunks, renamed to this completion. A client that goes away cancels this
    generator, and closing `chunks` closes the upstream request."""
    parts: list[str] = []
    chunk: dict | None = first
    try:
        while chunk is not None:
            chunk.update(id=completion_id, model=name, prefscribe=meta)
            for choice in chunk.get("choices") or ():
                parts.append(text_of((choice.get("delta") or {}).get("content")))
            yield f"data: {json.dumps(chunk)}\n\n"
            chunk = await anext(chunks, None)
    except UpstreamError as exc:  # mid-stream: the status is sent, so the error goes as an event
        log.warning("chat stream %s failed upstream: %s", completion_id, exc.code)
        error = {"message": exc.message, "type": "api_error", "param": None, "code": exc.code}
        yield f"data: {json.dumps({'error': error})}\n\n"
        return
    finally:
        await chunks.aclose()
    remember("".join(parts))
    yield "data: [DONE]\n\n"


@router.post("/feedback", status_code=201,
             responses={200: {"model": FeedbackOut, "description": "This completion already had this feedback: "
                              "nothing was added (duplicate)."},
                        404: openai_error("No such completion in this process's memory (not_found)."),
                        409: openai_error("The completion already had different feedback (conflict).")})
async def feedback(body: FeedbackIn, response: Response, tenant: TenantDep, runtime: RuntimeDep) -> FeedbackOut:
    """A rating of a chat reply, or the reply the user kept instead, becomes an interaction of that user
    (context: the last user message). One feedback per completion: the same again is a no-op (200,
    duplicate), a different one a 409."""
    if body.rating is None and body.preferred is None:
        raise ApiError(422, "invalid_request", "send a rating (good or bad) or the reply the user preferred "
                       "(preferred)")
    if body.preferred is None and body.rating == "bad":
        raise ApiError(422, "invalid_request", "a bad rating alone does not say what the user wanted: send the "
                       "reply they preferred as `preferred`", field="preferred")
    if body.preferred is not None and len(body.preferred) > runtime.settings.max_field_chars:
        raise ApiError(422, "too_long", f"field 'preferred': {len(body.preferred)} characters; the limit is "
                       f"{runtime.settings.max_field_chars}", field="preferred")
    proxy = _proxy(runtime)
    found = proxy.memory.recall(tenant.id, body.completion_id)
    if found is None:
        settings = runtime.settings
        raise ApiError(404, "not_found", f"no completion {body.completion_id!r} to take feedback on: this server "
                       f"keeps the latest {settings.chat_memory_per_tenant} completions per tenant for "
                       f"{settings.chat_memory_seconds:g} s, in the process that served them")
    meta = {"source": "chat-feedback", "completion_id": body.completion_id}
    if body.preferred is not None:
        item = Interaction(context=found.context, chosen=body.preferred, rejected=found.reply, domain="chat",
                           meta=meta)
    elif found.reply.strip():
        item = Interaction(context=found.context, chosen=found.reply, domain="chat", meta=meta)
    else:
        raise ApiError(422, "invalid_request", "the reply was empty, so a good rating says nothing: send the reply "
                       "the user preferred as `preferred`", field="rating")
    result = await run_in_threadpool(runtime.store.ingest, tenant.id, found.user_id, [item],
                                     f"feedback:{body.completion_id}")
    if result.duplicate:
        response.status_code = 200
    due = result.pending >= runtime.settings.update_every
    if due:
        runtime.notify(result.pending)
    return FeedbackOut(completion_id=body.completion_id, user_id=found.user_id, duplicate=result.duplicate,
                       interactions=result.interactions, pending=result.pending, update_due=due)
