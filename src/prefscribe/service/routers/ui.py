"""The profile inspector at /ui: a user's current profile, the version history with word diffs and who
made each change, and forms to edit, roll back, refresh and delete. Server-rendered, no JavaScript.

Sign-in takes an API key and keeps it in an HttpOnly, SameSite=Strict cookie scoped to /ui; every form
carries a token derived from the key, so another site cannot post to it.
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import re
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from ...store import ConflictError, NotFoundError, TenantInfo, Version
from ..deps import UserId
from ..runtime import Runtime
from ..schemas import MAX_INT

router = APIRouter(prefix="/ui", include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))
COOKIE = "prefscribe_key"
HISTORY_LIMIT = 50


def _when(value: str | None) -> str:
    return (value or "").replace("T", " ").split(".")[0].rstrip("Z") + (" UTC" if value else "")


templates.env.filters["when"] = _when


def word_diff(old: str, new: str) -> list[tuple[str, str]]:
    """(op, text) segments, op in equal | delete | insert, diffing word by word (profiles are prose).
    Changes separated only by whitespace are merged, so a rewritten phrase reads as one deletion and one
    insertion rather than alternating words."""
    a, b = re.findall(r"\s+|\S+", old), re.findall(r"\s+|\S+", new)
    out: list[tuple[str, str]] = []
    deleted, inserted = "", ""
    opcodes = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    for index, (op, i1, i2, j1, j2) in enumerate(opcodes):
        if op == "equal":
            text = "".join(a[i1:i2])
            between_changes = (deleted or inserted) and index + 1 < len(opcodes)
            if between_changes and not text.strip():
                deleted, inserted = deleted + text, inserted + text
                continue
            out += [("delete", deleted)] if deleted else []
            out += [("insert", inserted)] if inserted else []
            deleted, inserted = "", ""
            out.append(("equal", text))
            continue
        deleted += "".join(a[i1:i2])
        inserted += "".join(b[j1:j2])
    out += [("delete", deleted)] if deleted else []
    out += [("insert", inserted)] if inserted else []
    return out


def _form_number(text: str) -> int | None:
    """A version or offset from a form or query: digits within the database's 32-bit range, else None."""
    text = text.strip()
    if not re.fullmatch(r"[0-9]{1,10}", text) or int(text) > MAX_INT:
        return None
    return int(text)


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def _csrf(key: str) -> str:
    return hmac.new(key.encode(), b"prefscribe-ui-form", hashlib.sha256).hexdigest()[:32]


def _signed_in(request: Request) -> tuple[TenantInfo, str] | None:
    key = request.cookies.get(COOKIE)
    tenant = _runtime(request).store.authenticate(key) if key else None
    return (tenant, key) if tenant else None


def _to_login(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/ui/login?{urlencode({'next': request.url.path})}", status_code=303)


def _back(user_id: str, message: str, error: bool = False) -> RedirectResponse:
    query = urlencode({"msg": message, **({"error": "1"} if error else {})})
    return RedirectResponse(f"/ui/users/{quote(user_id, safe='')}?{query}", status_code=303)


def _check_form(request: Request, csrf: str) -> tuple[TenantInfo, str] | Response:
    signed = _signed_in(request)
    if signed is None:
        return _to_login(request)
    if not hmac.compare_digest(csrf, _csrf(signed[1])):
        return HTMLResponse("The form is stale or came from another site: reload the page and try again.",
                            status_code=403)
    return signed


@router.get("")
@router.get("/")
def index() -> RedirectResponse:
    return RedirectResponse("/ui/users", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/ui/users") -> HTMLResponse:
    return templates.TemplateResponse(request, "login.html", {"next": next, "error": None})


@router.post("/login")
def login(request: Request, key: Annotated[str, Form()], next: Annotated[str, Form()] = "/ui/users") -> Response:
    tenant = _runtime(request).store.authenticate(key.strip())
    if tenant is None:
        return templates.TemplateResponse(request, "login.html", {"next": next, "error": "Unknown or revoked key."},
                                          status_code=401)
    target = next if next.startswith("/ui/") and "//" not in next else "/ui/users"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, key.strip(), httponly=True, samesite="strict", path="/ui",
                        secure=request.url.scheme == "https")
    return response


@router.post("/logout")
def logout() -> RedirectResponse:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, offset: str = "0", msg: str | None = None) -> Response:
    signed = _signed_in(request)
    if signed is None:
        return _to_login(request)
    tenant, key = signed
    start = _form_number(offset) or 0
    total, users = _runtime(request).store.list_users(tenant.id, limit=100, offset=start)
    return templates.TemplateResponse(request, "users.html", {
        "tenant": tenant, "users": users, "total": total, "offset": start, "msg": msg, "csrf": _csrf(key)})


@router.get("/users/{user_id}", response_class=HTMLResponse)
def user_page(request: Request, user_id: UserId, msg: str | None = None, error: str | None = None) -> Response:
    signed = _signed_in(request)
    if signed is None:
        return _to_login(request)
    tenant, key = signed
    store = _runtime(request).store
    try:
        state, head = store.head(tenant.id, user_id)
        versions = store.versions(tenant.id, user_id, limit=HISTORY_LIMIT)
        recent = store.interactions(tenant.id, user_id, limit=20)
    except NotFoundError:
        return templates.TemplateResponse(request, "missing.html", {"tenant": tenant, "user_id": user_id,
                                                                    "csrf": _csrf(key)}, status_code=404)
    by_number: dict[int, Version] = {v.version: v for v in versions}
    oldest = versions[-1] if versions else None
    if oldest is not None and oldest.parent and oldest.parent not in by_number:
        by_number[oldest.parent] = store.version(tenant.id, user_id, oldest.parent)
    history = []
    for v in versions:
        parent = by_number.get(v.parent) if v.parent else None
        history.append({"v": v, "diff": word_diff(parent.profile if parent else "", v.profile)})
    return templates.TemplateResponse(request, "user.html", {
        "tenant": tenant, "user_id": user_id, "state": state, "head": head, "history": history,
        "recent": recent, "msg": msg, "error": bool(error), "csrf": _csrf(key),
        "update_every": _runtime(request).settings.update_every})


@router.post("/users/{user_id}/edit")
def edit(request: Request, user_id: UserId, profile: Annotated[str, Form()], csrf: Annotated[str, Form()],
         editor: Annotated[str, Form()] = "", base_version: Annotated[str, Form()] = "") -> Response:
    checked = _check_form(request, csrf)
    if isinstance(checked, Response):
        return checked
    tenant, _ = checked
    runtime = _runtime(request)
    text = profile.replace("\r\n", "\n").strip()
    if not text:
        return _back(user_id, "The profile text is empty: nothing saved.", error=True)
    if len(text) > runtime.settings.max_profile_chars:
        return _back(user_id, f"The profile is over {runtime.settings.max_profile_chars} characters: "
                     "nothing saved.", error=True)
    base = _form_number(base_version) if base_version.strip() else None
    if base_version.strip() and base is None:
        return _back(user_id, "Not saved: the form's version is malformed; reload the page.", error=True)
    try:
        version, created = runtime.store.edit(tenant.id, user_id, text, editor.strip()[:200] or "inspector", base)
    except ConflictError as exc:
        return _back(user_id, f"Not saved: {exc}", error=True)
    except NotFoundError:
        return _back(user_id, "No such user.", error=True)
    return _back(user_id, f"Saved as version {version.version}." if created else "No change: nothing saved.")


@router.post("/users/{user_id}/rollback")
def rollback(request: Request, user_id: UserId, version: Annotated[str, Form()], csrf: Annotated[str, Form()],
             editor: Annotated[str, Form()] = "") -> Response:
    checked = _check_form(request, csrf)
    if isinstance(checked, Response):
        return checked
    tenant, _ = checked
    number = _form_number(version)
    if number is None or number < 1:
        return _back(user_id, "Not rolled back: the version is malformed.", error=True)
    try:
        new = _runtime(request).store.rollback(tenant.id, user_id, number, editor.strip()[:200] or "inspector")
    except (ConflictError, NotFoundError) as exc:
        return _back(user_id, f"Not rolled back: {exc}", error=True)
    return _back(user_id, f"Rolled back to version {version}: now version {new.version}.")


@router.post("/users/{user_id}/refresh")
def refresh(request: Request, user_id: UserId, csrf: Annotated[str, Form()]) -> Response:
    checked = _check_form(request, csrf)
    if isinstance(checked, Response):
        return checked
    tenant, _ = checked
    runtime = _runtime(request)
    try:
        pending = runtime.store.request_refresh(tenant.id, user_id)
    except NotFoundError:
        return _back(user_id, "No such user.", error=True)
    if pending and runtime.worker is not None:
        runtime.worker.wake.set()
    return _back(user_id, f"Update queued for {pending} pending interactions." if pending
                 else "Nothing pending: the profile is up to date.")


@router.post("/users/{user_id}/delete")
def delete(request: Request, user_id: UserId, csrf: Annotated[str, Form()],
           confirm: Annotated[str, Form()] = "") -> Response:
    checked = _check_form(request, csrf)
    if isinstance(checked, Response):
        return checked
    tenant, _ = checked
    if confirm != user_id:
        return _back(user_id, "Not deleted: type the user id to confirm.", error=True)
    try:
        _runtime(request).store.purge(tenant.id, user_id)
    except NotFoundError:
        pass
    return RedirectResponse(f"/ui/users?{urlencode({'msg': f'Deleted user {user_id} and all their data.'})}",
                            status_code=303)
