"""/v1/users/{user_id}/profile: the current version, the history, a person's edit, rollback, refresh."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from ...store import UserState, Version
from ..deps import AuthenticatedRoute, RuntimeDep, TenantDep, UserId
from ..errors import ApiError
from ..schemas import (
    MAX_INT,
    EditIn,
    ProfileOut,
    RefreshOut,
    RollbackIn,
    UpdateState,
    VersionList,
    VersionOut,
    errors,
)

router = APIRouter(tags=["profiles"], route_class=AuthenticatedRoute)


def version_out(version: Version) -> VersionOut:
    return VersionOut(**version.to_json())


def profile_out(state: UserState, version: Version) -> ProfileOut:
    return ProfileOut(**version.to_json(), interactions=state.interactions, update=update_state(state))


def update_state(state: UserState) -> UpdateState:
    return UpdateState(pending=state.pending, updating=state.updating, refresh_requested=state.refresh_requested,
                       failures=state.failures, last_error=state.last_error, retry_at=state.retry_at)


@router.get("/users/{user_id}/profile", response_model=ProfileOut, summary="The current profile",
            responses=errors(404))
def get_profile(user_id: UserId, tenant: TenantDep, runtime: RuntimeDep) -> ProfileOut:
    """The head version, with the update state (pending interactions, last error)."""
    state, head = runtime.store.head(tenant.id, user_id)
    if head is None:
        raise ApiError(404, "no_profile", f"user {user_id!r} has no profile yet: {state.pending} interactions "
                       f"pending; an update runs at {runtime.settings.update_every} (or POST .../profile/refresh)",
                       pending=state.pending)
    return profile_out(state, head)


@router.get("/users/{user_id}/profile/versions", response_model=VersionList, summary="The version history",
            responses=errors(404))
def list_versions(user_id: UserId, tenant: TenantDep, runtime: RuntimeDep,
                  limit: Annotated[int, Query(ge=1, le=500)] = 50,
                  before: Annotated[int | None, Query(ge=1, le=MAX_INT, description="Only versions below this.")] = None
                  ) -> VersionList:
    """Versions, newest first."""
    state, _ = runtime.store.head(tenant.id, user_id)
    versions = runtime.store.versions(tenant.id, user_id, limit, before)
    return VersionList(user_id=user_id, head=state.head_version, versions=[version_out(v) for v in versions])


@router.get("/users/{user_id}/profile/versions/{version}", response_model=VersionOut, summary="One version",
            responses=errors(404))
def get_version(user_id: UserId, version: Annotated[int, Path(ge=1, le=MAX_INT)], tenant: TenantDep,
                runtime: RuntimeDep) -> VersionOut:
    return version_out(runtime.store.version(tenant.id, user_id, version))


@router.put("/users/{user_id}/profile", response_model=VersionOut, status_code=201, summary="Edit the profile",
            responses={200: {"model": VersionOut, "description": "The text is unchanged: no version was added."},
                       **errors(404, 409)})
def edit_profile(user_id: UserId, body: EditIn, response: Response, tenant: TenantDep,
                 runtime: RuntimeDep) -> VersionOut:
    """A person's text becomes a new version (author: person); the next update starts from it."""
    if len(body.profile) > runtime.settings.max_profile_chars:
        raise ApiError(422, "too_long", f"the profile has {len(body.profile)} characters; the limit is "
                       f"{runtime.settings.max_profile_chars}", field="profile")
    text = body.profile.strip()
    if not text:  # the schema's pattern and str.strip() differ on a few control characters
        raise ApiError(422, "invalid_request", "the profile text is only whitespace", field="profile")
    version, created = runtime.store.edit(tenant.id, user_id, text, body.editor, body.base_version)
    if not created:
        response.status_code = 200
    return version_out(version)


@router.post("/users/{user_id}/profile/rollback", response_model=VersionOut, status_code=201,
             summary="Roll back to an earlier version", responses=errors(404, 409))
def rollback_profile(user_id: UserId, body: RollbackIn, tenant: TenantDep, runtime: RuntimeDep) -> VersionOut:
    """A new version with an earlier version's text. Interactions taken in since then stay taken in (what
    they taught is dropped, not replayed)."""
    return version_out(runtime.store.rollback(tenant.id, user_id, body.version, body.editor))


@router.post("/users/{user_id}/profile/refresh", response_model=RefreshOut, status_code=202,
             summary="Update now", responses={200: {"model": RefreshOut, "description": "Nothing pending: nothing "
                                                   "to do."}, **errors(404)})
def refresh_profile(user_id: UserId, response: Response, tenant: TenantDep, runtime: RuntimeDep) -> RefreshOut:
    """Queue an update with the pending interactions now, below the threshold or after a failure."""
    pending = runtime.store.request_refresh(tenant.id, user_id)
    if pending == 0:
        response.status_code = 200
    elif runtime.worker is not None:
        runtime.worker.wake.set()
    return RefreshOut(user_id=user_id, queued=pending > 0, pending=pending)
