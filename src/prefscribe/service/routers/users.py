"""/v1/users: list a tenant's users, one user's state, and delete a user with every row of theirs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ...errors import UserNotFoundError
from ...store import UserState
from ..deps import AuthenticatedRoute, RuntimeDep, TenantDep, UserId
from ..schemas import MAX_INT, DeleteOut, UserList, UserOut, errors

router = APIRouter(tags=["users"], route_class=AuthenticatedRoute)


def user_out(state: UserState) -> UserOut:
    return UserOut(**state.to_json())


@router.get("/users", response_model=UserList, summary="List users")
def list_users(tenant: TenantDep, runtime: RuntimeDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
               offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0) -> UserList:
    """This tenant's users, by id."""
    total, users = runtime.store.list_users(tenant.id, limit, offset)
    return UserList(total=total, users=[user_out(u) for u in users])


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
