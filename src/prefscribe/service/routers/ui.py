"""The profile inspector at /ui: a user's current profile, the version history with word diffs and who
made each change, and forms to edit, roll back, refresh and delete. Server-rendered, no JavaScript.

Sign-in takes an API key and keeps it in an HttpOnly, SameSite=Strict cookie scoped to /ui; every form
carries a token derived from the key, and the sign-in form a pre-session token, so another site cannot post
to any of them. Messages after an action are codes with fixed texts (MESSAGES).
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import re
import secrets
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from ...errors import ConflictError, NotFoundError, VersionNotFoundError
from ...store import Store, TenantInfo, Version
from ..deps import UserId, client_address
from ..runtime import Runtime
from ..schemas import MAX_INT

router = APIRouter(prefix="/ui", include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))
COOKIE = "prefscribe_key"
LOGIN_COOKIE = "prefscribe_login"
HISTORY_LIMIT = 50
USERS_PAGE = 100


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


def history_of(store: Store, tenant_id: int, user_id: str, versions: list[Version]) -> list[dict]:
    """Each version (newest first) with its word diff against its parent."""
    by_number: dict[int, Version] = {v.version: v for v in versions}
    oldest = versions[-1] if versions else None
    if oldest is not None and oldest.parent and oldest.parent not in by_number:
        by_number[oldest.parent] = store.version(tenant_id, user_id, oldest.parent)
    history = []
    for entry in versions:
        parent = by_number.get(entry.parent) if entry.parent else None
        history.append({"v": entry, "diff": word_diff(parent.profile if parent else "", entry.profile)})
    return history


def form_number(text: str) -> int | None:
    """A version or offset from a form or query: digits within the database's 32-bit range, else None."""
    text = text.strip()
    if not re.fullmatch(r"[0-9]{1,10}", text) or int(text) > MAX_INT:
        return None
    return int(text)


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def _csrf(key: str) -> str:
    return hmac.new(key.encode(), b"prefscribe-ui-form", hashlib.sha256).hexdigest()[:32]


def _signed_in(request: Request) -> tuple[TenantInfo, str] | Response:
    """The tenant and key of the sign-in cookie, or the answer instead: the sign-in page for no key or a
    wrong one (a wrong key counts as a failed authentication, as on the API), 429 while this client is
    refused."""
    runtime, client = _runtime(request), client_address(request)
    wait = runtime.limiter.retry_after(client)
    if wait is not None:
        return _login_form(request, request.url.path, f"Too many failed sign-ins: try again in {wait} s.",
                           status=429, headers={"Retry-After": str(wait)})
    key = request.cookies.get(COOKIE)
    tenant = runtime.store.authenticate(key) if key else None
    if tenant is None:
        response = _to_login(request)
        if key:
            runtime.limiter.fail(client)
            response.delete_cookie(COOKIE, path="/ui")
        return response
    return tenant, key


def _to_login(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/ui/login?{urlencode({'next': request.url.path})}", status_code=303)


# The flash box shows only these texts, picked by code; numbers come from the query (checked as numbers),
# so a link cannot put words of its own on the page.
MESSAGES: dict[str, tuple[str, bool]] = {
    "saved": ("Saved as version {v}.", False),
    "unchanged": ("No change: nothing saved.", False),
    "empty": ("The profile text is empty: nothing saved.", True),
    "too_long": ("The profile is over the length limit: nothing saved.", True),
    "stale": ("Not saved: the profile changed since this page was loaded. Reload it and edit the new version.",
              True),
    "malformed": ("The form's version number is malformed: reload the page.", True),
    "rolled_back": ("Rolled back to version {v}: now version {n}.", False),
    "no_version": ("Not rolled back: there is no version {v}.", True),
    "already_current": ("Not rolled back: version {v} is already the current version.", True),
    "queued": ("Update queued for {n} pending interactions.", False),
    "up_to_date": ("Nothing pending: the profile is up to date.", False),
    "confirm": ("Not deleted: type the user id to confirm.", True),
    "confirm_mine": ("Not deleted: type delete to confirm.", True),
    "no_user": ("No such user: nothing changed.", True),
    "deleted": ("Deleted the user and all their data.", False),
}


def flash(code: str | None, v: str | None = None, n: str | None = None) -> tuple[str, bool] | None:
    """The (text, is_error) of a message code, or None for an unknown code or missing numbers."""
    if code not in MESSAGES:
        return None
    text, is_error = MESSAGES[code]
    numbers = {"v": form_number(v or ""), "n": form_number(n or "")}
    if any(numbers[name] is None for name in ("v", "n") if "{" + name + "}" in text):
        return None
    return text.format(**numbers), is_error


def _back(user_id: str, code: str, **numbers: int) -> RedirectResponse:
    query = urlencode({"m": code, **numbers})
    return RedirectResponse(f"/ui/users/{quote(user_id, safe='')}?{query}", status_code=303)


def _check_form(request: Request, csrf: str) -> tuple[TenantInfo, str] | Response:
    signed = _signed_in(request)
    if isinstance(signed, Response):
        return signed
    if not hmac.compare_digest(csrf, _csrf(signed[1])):
        return HTMLResponse("The form is stale or came from another site: reload the page and try again.",
                            status_code=403)
    return signed


@router.get("")
@router.get("/")
def index() -> RedirectResponse:
    return RedirectResponse("/ui/users", status_code=303)


def _login_form(request: Request, next: str, error: str | None = None, status: int = 200,
                headers: dict[str, str] | None = None) -> Response:
    """The sign-in page, with a fresh pre-session token in a cookie and in the form: a sign-in posted from
    another site has neither (the cookie is SameSite=Strict), so nobody can sign a visitor in as them."""
    token = secrets.token_urlsafe(24)
    response = templates.TemplateResponse(request, "login.html", {"next": next, "error": error,
                                                                  "login_token": token}, status_code=status,
                                          headers=headers)
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/ui/login",
                        secure=request.url.scheme == "https")
    return response


def _same_origin(request: Request) -> bool:
    """A browser names the page a form came from in Origin; when it does, it must be this site."""
    origin = request.headers.get("origin")
    return origin is None or origin == f"{request.url.scheme}://{request.url.netloc}"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/ui/users") -> Response:
    return _login_form(request, next)


@router.post("/login")
def login(request: Request, key: Annotated[str, Form()], next: Annotated[str, Form()] = "/ui/users",
          login_token: Annotated[str, Form()] = "") -> Response:
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not (_same_origin(request) and expected and hmac.compare_digest(login_token, expected)):
        return _login_form(request, next, "The sign-in form was stale or came from another site: sign in here.",
                           status=403)
    runtime, client = _runtime(request), client_address(request)
    wait = runtime.limiter.retry_after(client)
    if wait is not None:
        return _login_form(request, next, f"Too many failed sign-ins: try again in {wait} s.", status=429,
                           headers={"Retry-After": str(wait)})
    tenant = runtime.store.authenticate(key.strip())
    if tenant is None:
        runtime.limiter.fail(client)
        return _login_form(request, next, "Unknown or revoked key.", status=401)
    target = next if next.startswith("/ui/") and "//" not in next else "/ui/users"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, key.strip(), httponly=True, samesite="strict", path="/ui",
                        secure=request.url.scheme == "https")
    response.delete_cookie(LOGIN_COOKIE, path="/ui/login")
    return response


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    checked = _check_form(request, csrf)
    if isinstance(checked, Response) and checked.status_code == 403:
        return checked
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, offset: str = "0", after: str | None = None, before: str | None = None,
               m: str | None = None) -> Response:
    """A page of users by id. Next and previous start after the page's last user and end before its first
    (`after`, `before`), so a person who deletes a user or sees one created misses none and sees none twice;
    `offset` still opens a page from an older link."""
    signed = _signed_in(request)
    if isinstance(signed, Response):
        return signed
    tenant, key = signed
    store = _runtime(request).store
    total, users, earlier, later = _users_page(store, tenant.id, form_number(offset) or 0, _place(after),
                                               _place(before))
    if not users and (after is not None or before is not None):  # turned past the end: the first page
        total, users, earlier, later = _users_page(store, tenant.id, 0, None, None)
    return templates.TemplateResponse(request, "users.html", {
        "tenant": tenant, "users": users, "total": total, "earlier": earlier, "later": later, "flash": flash(m),
        "csrf": _csrf(key)})


def _place(user_id: str | None) -> str | None:
    """A user id from a link, as a place in the order (no database compares NUL)."""
    return None if user_id is None else user_id.replace("\x00", "\ufffd")


def _users_page(store: Store, tenant_id: int, offset: int, after: str | None, before: str | None):
    """(total, the page's users, whether users come before them, whether users come after them). One user more
    than the page is read in the direction turned, and one in the other."""
    if before is not None:
        total, users = store.list_users(tenant_id, USERS_PAGE + 1, before=before)
        earlier, users = len(users) > USERS_PAGE, users[-USERS_PAGE:]
        later = bool(users) and bool(store.list_users(tenant_id, 1, after=users[-1].user_id)[1])
    else:
        total, users = store.list_users(tenant_id, USERS_PAGE + 1, offset, after)
        later, users = len(users) > USERS_PAGE, users[:USERS_PAGE]
        earlier = bool(users) and bool(store.list_users(tenant_id, 1, before=users[0].user_id)[1])
    return total, users, earlier, later


@router.get("/users/{user_id}", response_class=HTMLResponse)
def user_page(request: Request, user_id: UserId, m: str | None = None, v: str | None = None,
              n: str | None = None) -> Response:
    signed = _signed_in(request)
    if isinstance(signed, Response):
        return signed
    tenant, key = signed
    store = _runtime(request).store
    try:
        state, head = store.head(tenant.id, user_id)
        versions = store.versions(tenant.id, user_id, limit=HISTORY_LIMIT)
        recent = store.interactions(tenant.id, user_id, limit=20)
    except NotFoundError:
        return templates.TemplateResponse(request, "missing.html", {"tenant": tenant, "user_id": user_id,
                                                                    "csrf": _csrf(key)}, status_code=404)
    history = history_of(store, tenant.id, user_id, versions)
    return templates.TemplateResponse(request, "user.html", {
        "tenant": tenant, "user_id": user_id, "state": state, "head": head, "history": history,
        "recent": recent, "flash": flash(m, v, n), "csrf": _csrf(key),
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
        return _back(user_id, "empty")
    if len(text) > runtime.settings.max_profile_chars:
        return _back(user_id, "too_long")
    base = form_number(base_version) if base_version.strip() else None
    if base_version.strip() and base is None:
        return _back(user_id, "malformed")
    try:
        version, created = runtime.store.edit(tenant.id, user_id, text, editor.strip()[:200] or "inspector", base)
    except ConflictError:
        return _back(user_id, "stale")
    except NotFoundError:
        return _back(user_id, "no_user")
    return _back(user_id, "saved", v=version.version) if created else _back(user_id, "unchanged")


@router.post("/users/{user_id}/rollback")
def rollback(request: Request, user_id: UserId, version: Annotated[str, Form()], csrf: Annotated[str, Form()],
             editor: Annotated[str, Form()] = "") -> Response:
    checked = _check_form(request, csrf)
    if isinstance(checked, Response):
        return checked
    tenant, _ = checked
    number = form_number(version)
    if number is None or number < 1:
        return _back(user_id, "malformed")
    try:
        new = _runtime(request).store.rollback(tenant.id, user_id, number, editor.strip()[:200] or "inspector")
    except ConflictError:
        return _back(user_id, "already_current", v=number)
    except VersionNotFoundError:
        return _back(user_id, "no_version", v=number)
    except NotFoundError:
        return _back(user_id, "no_user")
    return _back(user_id, "rolled_back", v=number, n=new.version)


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
        return _back(user_id, "no_user")
    if pending and runtime.worker is not None:
        runtime.worker.wake.set()
    return _back(user_id, "queued", n=pending) if pending else _back(user_id, "up_to_date")


@router.post("/users/{user_id}/delete")
def delete(request: Request, user_id: UserId, csrf: Annotated[str, Form()],
           confirm: Annotated[str, Form()] = "") -> Response:
    checked = _check_form(request, csrf)
    if isinstance(checked, Response):
        return checked
    tenant, _ = checked
    if confirm != user_id:
        return _back(user_id, "confirm")
    try:
        _runtime(request).store.purge(tenant.id, user_id)
    except NotFoundError:  # never existed, already deleted, or another tenant's: say so, claim nothing
        return RedirectResponse("/ui/users?m=no_user", status_code=303)
    return RedirectResponse("/ui/users?m=deleted", status_code=303)
