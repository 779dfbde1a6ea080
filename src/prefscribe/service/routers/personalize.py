"""/v1/users/{user_id}/choose and /respond: use the current profile with the service's model."""

from __future__ import annotations

import logging
from dataclasses import replace

from fastapi import APIRouter

from ...errors import BackendError
from ...judge import RESPOND_SAMPLING, ChoiceTask, Judge
from ...store import Version
from ..deps import AuthenticatedRoute, RuntimeDep, TenantDep, UserId
from ..errors import ApiError
from ..runtime import Runtime
from ..schemas import ChooseIn, ChooseOut, OrderOut, RespondIn, RespondOut, Usage, errors

router = APIRouter(tags=["personalize"], route_class=AuthenticatedRoute)
log = logging.getLogger("prefscribe.service")
MODEL_FAILED = "the model call for this order failed"


def _head(runtime: Runtime, tenant_id: int, user_id: str) -> Version | None:
    return runtime.store.head(tenant_id, user_id)[1]


def _check_lengths(runtime: Runtime, **fields: str | None) -> None:
    limit = runtime.settings.max_field_chars
    for name, value in fields.items():
        if value is not None and len(value) > limit:
            raise ApiError(422, "too_long", f"field '{name}': {len(value)} characters; the limit is {limit}",
                           field=name)


@router.post("/users/{user_id}/choose", response_model=ChooseOut, summary="Which of two items the user prefers",
             responses=errors(404, 502, 503))
def choose(user_id: UserId, body: ChooseIn, tenant: TenantDep, runtime: RuntimeDep) -> ChooseOut:
    """Judge a vs b with the user's current profile (both item orders averaged by default). A user with no
    profile yet is judged without one (version: null)."""
    _check_lengths(runtime, a=body.a, b=body.b, context=body.context)
    head = _head(runtime, tenant.id, user_id)
    with runtime.models.use() as backend:
        judge = Judge(backend, method=body.method, orders=body.orders)
        result = judge.choose(ChoiceTask(a=body.a, b=body.b, context=body.context,
                                         preference=head.profile if head else None))
    failed = [o for o in result.orders if o.error and o.p_a is None]
    if result.p_a is None:  # no order could be judged: the model failed, not the user's input
        raise BackendError(f"choose for user {user_id!r}: {result.error}")
    if failed:  # the other order carried the answer; the failure's text stays in the server log
        log.warning("choose for user %r: %s", user_id, "; ".join(o.error or "" for o in failed))
    orders = [OrderOut(order=o.order, p_first=o.p_first, p_a=o.p_a,
                       error=MODEL_FAILED if o in failed else o.error) for o in result.orders]
    error = "the two orders disagree" if result.choice is None else (MODEL_FAILED if failed else None)
    return ChooseOut(user_id=user_id, choice=result.choice, p_a=result.p_a, p_b=result.p_b, orders=orders,
                     method=result.method, error=error, version=head.version if head else None)


@router.post("/users/{user_id}/respond", response_model=RespondOut, summary="A personalized response",
             responses=errors(404, 502, 503))
def respond(user_id: UserId, body: RespondIn, tenant: TenantDep, runtime: RuntimeDep) -> RespondOut:
    """A reply to `context` written for the user the current profile describes."""
    _check_lengths(runtime, context=body.context)
    head = _head(runtime, tenant.id, user_id)
    with runtime.models.use() as backend:
        completion = Judge(backend).respond(head.profile if head else None, body.context,
                                            replace(RESPOND_SAMPLING, max_new_tokens=body.max_new_tokens))
    if completion.finish_reason == "error":
        raise BackendError(f"respond for user {user_id!r}: {completion.error}")
    return RespondOut(user_id=user_id, response=completion.text, version=head.version if head else None,
                      usage=Usage(prompt_tokens=completion.prompt_tokens,
                                  completion_tokens=completion.completion_tokens))
