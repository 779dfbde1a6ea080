"""ASGI middleware: the body size limit, and JSON bodies sent without a JSON content type."""

from __future__ import annotations

from .errors import BodyTooLarge, error_response


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
    """Headers every answer carries (nosniff), and the pages (/ui, /me) more: they may not be framed
    (clickjacking), load nothing but themselves and their inline style, and, since they show profiles,
    are never stored by a browser or a proxy."""

    EVERYWHERE = ((b"x-content-type-options", b"nosniff"),)
    PAGES = (
        (b"content-security-policy", (b"default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
                                      b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"same-origin"),  # no-referrer would make browsers send "Origin: null"
        (b"cache-control", b"no-store"),
    )

    def __init__(self, app, pages: tuple[str, ...] = ("/ui", "/me")) -> None:
        self.app, self.pages = app, pages

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        extra = list(self.EVERYWHERE + (self.PAGES if scope["path"].startswith(self.pages) else ()))
        names = {name for name, _ in extra}

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", ()) if k.lower() not in names]
                message = {**message, "headers": kept + extra}
            await send(message)

        return await self.app(scope, receive, send_with_headers)
