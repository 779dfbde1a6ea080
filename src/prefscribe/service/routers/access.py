"""End users see their own profile. The tenant's backend asks POST /v1/users/{id}/access-links for a link;
the page it opens (/me) shows that user only: the current profile, the versions with word diffs, and the
actions the link's scope allows (edit, roll back, delete their data). Server-rendered, no JavaScript.

The token travels in the page's URL and in each form (no cookie, so no other site can post with it); a
page or form with a token that is expired, altered or not ours gets a page that says so, and nothing else.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ...errors import ConflictError, NotFoundError, UserNotFoundError, VersionNotFoundError
from ..access import Grant, LinkRefused
from ..deps import AuthenticatedRoute, RuntimeDep, TenantDep, UserId
from ..runtime import Runtime
from ..schemas import AccessLinkIn, AccessLinkOut, errors
from .ui import HISTORY_LIMIT, flash, form_number, history_of, templates

router = APIRouter(tags=["users"], route_class=AuthenticatedRoute)
pages = APIRouter(prefix="/me", include_in_schema=False)
EDITOR = "the user"  # how the user's own changes are named in the history


@router.post("/users/{user_id}/access-links", response_model=AccessLinkOut, status_code=201,
             summary="A link for the user to see their own profile", responses=errors(404))
def create_access_link(user_id: UserId, body: AccessLinkIn, request: Request, tenant: TenantDep,
                       runtime: RuntimeDep) -> AccessLinkOut:
    """A URL with a signed token for this user only: send it to the person whose profile it is. `read` shows
    the profile and its history; `edit` also lets them correct it, roll it back and delete their data."""
    state = runtime.store.user(tenant.id, user_id)
    if state is None:
        raise UserNotFoundError(user_id)
    token, expires_at = runtime.links.mint(tenant.id, user_id, state.created_at or "", body.scope, body.expires_in)
    url = f"{str(request.base_url).rstrip('/')}/me?{urlencode({'t': token})}"
    return AccessLinkOut(user_id=user_id, scope=body.scope, url=url, expires_at=_iso(expires_at))


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


REFUSED = {
    "invalid": ("This link is not valid", ("The link was changed or is not one of ours. Ask for a new link "
                                           "where you got this one.")),
    "expired": ("This link has expired", ("Links work for a short time only. Ask for a new link where you got "
                                          "this one.")),
    "gone": ("There is nothing here", "This profile and its data have been deleted."),
    "read_only": ("This link is for reading only", "Ask for a link that allows changes."),
}


def _refused(request: Request, reason: str, status: int) -> HTMLResponse:
    title, detail = REFUSED[reason]
    return templates.TemplateResponse(request, "refused.html", {"title": title, "detail": detail},
                                      status_code=status)


def _grant(request: Request, token: str, edit: bool = False) -> Grant | HTMLResponse:
    try:
        grant = _runtime(request).links.read(token)
    except LinkRefused as exc:
        return _refused(request, exc.reason, 403)
    if edit and not grant.can_edit:
        return _refused(request, "read_only", 403)
    # The link names one user row: deleted ("delete all my data"), the id may be someone's again later.
    state = _runtime(request).store.user(grant.tenant_id, grant.user_id)
    if state is None or state.created_at != grant.user_created:
        return _refused(request, "gone", 404)
    return grant


def _back(token: str, code: str, **numbers: int) -> RedirectResponse:
    return RedirectResponse(f"/me?{urlencode({'t': token, 'm': code, **numbers})}", status_code=303)


@pages.get("", response_class=HTMLResponse)
def my_profile(request: Request, t: Annotated[str, Query(max_length=2000)] = "", m: str | None = None,
               v: str | None = None, n: str | None = None) -> Response:
    grant = _grant(request, t)
    if isinstance(grant, Response):
        return grant
    store = _runtime(request).store
    try:
        state, head = store.head(grant.tenant_id, grant.user_id)
        versions = store.versions(grant.tenant_id, grant.user_id, limit=HISTORY_LIMIT)
    except NotFoundError:
        return _refused(request, "gone", 404)
    return templates.TemplateResponse(request, "me.html", {
        "grant": grant, "token": t, "state": state, "head": head, "flash": flash(m, v, n),
        "history": history_of(store, grant.tenant_id, grant.user_id, versions),
        "expires": _iso(grant.expires_at)})


@pages.post("/edit")
def edit(request: Request, t: Annotated[str, Form(max_length=2000)], profile: Annotated[str, Form()],
         base_version: Annotated[str, Form()] = "") -> Response:
    grant = _grant(request, t, edit=True)
    if isinstance(grant, Response):
        return grant
    runtime = _runtime(request)
    text = profile.replace("\r\n", "\n").strip()
    if not text:
        return _back(t, "empty")
    if len(text) > runtime.settings.max_profile_chars or "\x00" in text:
        return _back(t, "too_long")
    base = form_number(base_version) if base_version.strip() else None
    if base_version.strip() and base is None:
        return _back(t, "malformed")
    try:
        version, created = runtime.store.edit(grant.tenant_id, grant.user_id, text, EDITOR, base)
    except ConflictError:
        return _back(t, "stale")
    except NotFoundError:
        return _refused(request, "gone", 404)
    return _back(t, "saved", v=version.version) if created else _back(t, "unchanged")


@pages.post("/rollback")
def rollback(request: Request, t: Annotated[str, Form(max_length=2000)], version: Annotated[str, Form()]
             ) -> Response:
    grant = _grant(request, t, edit=True)
    if isinstance(grant, Response):
        return grant
    number = form_number(version)
    if number is None or number < 1:
        return _back(t, "malformed")
    try:
        new = _runtime(request).store.rollback(grant.tenant_id, grant.user_id, number, EDITOR)
    except ConflictError:
        return _back(t, "already_current", v=number)
    except VersionNotFoundError:
        return _back(t, "no_version", v=number)
    except NotFoundError:
        return _refused(request, "gone", 404)
    return _back(t, "rolled_back", v=number, n=new.version)


@pages.post("/delete")
def delete(request: Request, t: Annotated[str, Form(max_length=2000)], confirm: Annotated[str, Form()] = ""
           ) -> Response:
    grant = _grant(request, t, edit=True)
    if isinstance(grant, Response):
        return grant
    if confirm != "delete":
        return _back(t, "confirm_mine")
    try:
        _runtime(request).store.purge(grant.tenant_id, grant.user_id)
    except NotFoundError:
        return _refused(request, "gone", 404)
    return templates.TemplateResponse(request, "refused.html", {
        "title": "Your data was deleted", "detail": "Your profile, its history and your interactions are gone."})
