"""/v1/users/{user_id}/choose and /respond: use the current profile with the service's model."""

from __future__ import annotations

from fastapi import APIRouter

from ...judge import ChoiceTask, Judge
from ...llm.base import Sampling
from ...store import NotFoundError, Version
from ..deps import RuntimeDep, TenantDep, UserId, translate_not_found
from ..errors import ApiError
from ..runtime import Runtime
from ..schemas import ChooseIn, ChooseOut, OrderOut, RespondIn, RespondOut, Usage

router = APIRouter(tags=["personalize"])


def _head(runtime: Runtime, tenant_id: int, user_id: str) -> Version | None:
    try:
        return runtime.store.head(tenant_id, user_id)[1]
    except NotFoundError as exc:
        raise translate_not_found(exc, user_id) from None


def _check_lengths(runtime: Runtime, **fields: str | None) -> None:
    limit = runtime.settings.max_field_chars
    for name, value in fields.items():
        if value is not None and len(value) > limit:
            raise ApiError(422, "too_long", f"field '{name}': {len(value)} characters; the limit is {limit}",
                           field=name)


@router.post("/users/{user_id}/choose", response_model=ChooseOut, summary="Which of two items the user prefers")
def choose(user_id: UserId, body: ChooseIn, tenant: TenantDep, runtime: RuntimeDep) -> ChooseOut:
    """Judge a vs b with the user's current profile (both item orders averaged by default). A user with no
    profile yet is judged without one (version: null)."""
    _check_lengths(runtime, a=body.a, b=body.b, context=body.context)
    head = _head(runtime, tenant.id, user_id)
    with runtime.models.use() as backend:
        judge = Judge(backend, method=body.method, orders=body.orders)
        result = judge.choose(ChoiceTask(a=body.a, b=body.b, context=body.context,
                                         preference=head.profile if head else None))
    return ChooseOut(user_id=user_id, choice=result.choice, p_a=result.p_a, p_b=result.p_b,
                     orders=[OrderOut(**o.model_dump()) for o in result.orders], method=result.method,
                     error=result.error, version=head.version if head else None)


@router.post("/users/{user_id}/respond", response_model=RespondOut, summary="A personalized response")
def respond(user_id: UserId, body: RespondIn, tenant: TenantDep, runtime: RuntimeDep) -> RespondOut:
    """A reply to `context` written for the user the current profile describes."""
    _check_lengths(runtime, context=body.context)
    head = _head(runtime, tenant.id, user_id)
    with runtime.models.use() as backend:
        completion = Judge(backend).respond(head.profile if head else None, body.context,
                                            Sampling(max_new_tokens=body.max_new_tokens, temperature=0.7))
    if completion.finish_reason == "error":
        raise ApiError(502, "model_error", f"the model failed: {completion.error}")
    return RespondOut(user_id=user_id, response=completion.text, version=head.version if head else None,
                      usage=Usage(prompt_tokens=completion.prompt_tokens,
                                  completion_tokens=completion.completion_tokens))
