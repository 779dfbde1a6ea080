"""ASGI middleware: paths that are UTF-8, the body size limit, JSON bodies sent without a JSON content type,
and the security headers."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from .errors import BodyTooLarge, error_response


class Utf8PathMiddleware:
    """Refuse a path whose %-escapes are not UTF-8 (400 invalid_encoding). The server decodes them with
    replacement, so `alias%FF` and `alias%FE` would both reach the routes as `alias\ufffd`: one user."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        raw = scope.get("raw_path") if scope["type"] == "http" else None
        if raw:
            path = raw.split(b"?", 1)[0]
            try:
                unquote_to_bytes(path).decode("utf-8")  # strict: encoded surrogates (%ED%A0%80) fail too
            except UnicodeDecodeError as exc:
                response = error_response(400, "invalid_encoding", f"the path is not UTF-8 once its %-escapes "
                                          f"are decoded (byte {exc.start}): encode ids as UTF-8")
                return await response(scope, receive, send)
        return await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Refuse bodies over `limit` bytes: at once by Content-Length, or as soon as a streamed body passes it."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    exc = BodyTooLarge(self.limit)
                    response = error_response(413, exc.code, exc.message, limit=self.limit)
                    return await response(scope, receive, send)
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        return await self.app(scope, limited_receive, send)


class JsonBodyMiddleware:
    """The API speaks only JSON, so under /v1 a body sent as form data (what `curl -d` does by default) or
    without a content type is read as the JSON it is."""

    LENIENT = (b"", b"application/x-www-form-urlencoded")

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            headers = [(k, v) for k, v in scope.get("headers", ()) if k != b"content-type"]
            content_type = next((v for k, v in scope.get("headers", ()) if k == b"content-type"), b"")
            if content_type.split(b";")[0].strip().lower() in self.LENIENT:
                scope = dict(scope, headers=headers + [(b"content-type", b"application/json")])
        return await self.app(scope, receive, send)


class SecurityHeadersMiddleware:
    """Headers every answer carries (nosniff), and the pages more: they may not be framed (clickjacking),
    and load nothing but what this server sends. /ui and /me show profiles: no script at all, and never
    stored by a browser or a proxy. /docs runs Swagger UI: scripts and styles from this server only, and
    requests to it (the schema, "Try it out")."""

    EVERYWHERE = ((b"x-content-type-options", b"nosniff"),)
    FRAMING = ((b"x-frame-options", b"DENY"), (b"referrer-policy", b"same-origin"))  # no-referrer: "Origin: null"
    PAGES = (
        (b"content-security-policy", (b"default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
                                      b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")),
        *FRAMING,
        (b"cache-control", b"no-store"),
    )
    DOCS = (
        (b"content-security-policy", (b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                                      b"img-src 'self' data:; connect-src 'self'; form-action 'none'; "
                                      b"frame-ancestors 'none'; base-uri 'none'")),
        *FRAMING,
    )

    def __init__(self, app, pages: tuple[str, ...] = ("/ui", "/me"), docs: str = "/docs") -> None:
        self.app, self.pages, self.docs = app, pages, docs

    def _extra(self, path: str) -> tuple[tuple[bytes, bytes], ...]:
        if path.startswith(self.pages):
            return self.EVERYWHERE + self.PAGES
        if path == self.docs or path.startswith(self.docs + "/"):
            return self.EVERYWHERE + self.DOCS
        return self.EVERYWHERE

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        extra = list(self._extra(scope["path"]))
        names = {name for name, _ in extra}

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", ()) if k.lower() not in names]
                message = {**message, "headers": kept + extra}
            await send(message)

        return await self.app(scope, receive, send_with_headers)
