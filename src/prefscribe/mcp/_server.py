"""The MCP tools and resource, on the official SDK's MCPServer. Each tool is the library call the CLI makes
(the store, the judge), and a prefscribe error comes back as a tool error with the message the CLI prints."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError

from ..errors import BackendError, InputError, PrefscribeError
from ..judge import RESPOND_SAMPLING, ChoiceTask, Judge
from ..schema import Interaction
from ..store import Store, TenantInfo, Version
from ..updates import ModelRuntime, Worker

INSTRUCTIONS = ("Each user has a short text profile of their preferences, kept current from their interactions. "
                "Read it (get_profile or profile://{user_id}) to personalize; record what the user chose or "
                "preferred (record_interaction) so the profile learns; let the user correct it (edit_profile).")


@contextmanager
def _as_tool_errors() -> Iterator[None]:
    try:
        yield
    except PrefscribeError as exc:
        raise ToolError(str(exc)) from None


def _version(version: Version) -> dict[str, Any]:
    return {"user_id": version.user_id, "version": version.version, "profile": version.profile,
            "author": version.author, "kind": version.kind, "covers": version.covers,
            "created_at": version.created_at}


def build_server(store: Store, tenant: TenantInfo, models: ModelRuntime, worker: Worker | None = None,
                 *, max_field_chars: int = 20_000) -> MCPServer:
    """The server for one tenant's users. `worker` (optional) is woken when a user has enough new
    interactions for an update."""
    server = MCPServer("prefscribe", instructions=INSTRUCTIONS)

    def check(**fields: str | None) -> None:
        for name, value in fields.items():
            if value is not None and len(value) > max_field_chars:
                raise InputError(f"{len(value)} characters; the limit is {max_field_chars}", field=name)

    def head(user_id: str) -> Version | None:
        return store.head(tenant.id, user_id)[1]

    @server.tool()
    def get_profile(user_id: str) -> dict[str, Any]:
        """The user's current preference profile (text) and its version."""
        with _as_tool_errors():
            state, current = store.head(tenant.id, user_id)
            if current is None:
                raise ToolError(f"user {user_id!r} has no profile yet: {state.pending} interactions pending")
            return {**_version(current), "pending": state.pending}

    @server.tool()
    def record_interaction(user_id: str, chosen: str, context: str | None = None, rejected: str | None = None,
                           idempotency_key: str | None = None) -> dict[str, Any]:
        """Record what the user chose (and, if known, what they passed over) in a situation. The profile is
        updated from these. The same idempotency_key again records nothing."""
        with _as_tool_errors():
            check(chosen=chosen, context=context, rejected=rejected)
            try:
                item = Interaction(context=context, chosen=chosen, rejected=rejected)
            except ValueError as exc:
                raise InputError(str(exc)) from None
            result = store.ingest(tenant.id, user_id, [item], idempotency_key)
            if worker is not None and result.pending >= worker.settings.update_every:
                worker.wake.set()
            return {"user_id": user_id, "duplicate": result.duplicate, "interactions": result.interactions,
                    "pending": result.pending}

    @server.tool()
    def choose(user_id: str, a: str, b: str, context: str | None = None) -> dict[str, Any]:
        """Which of two items (a or b) this user would prefer, with probabilities, from their profile."""
        with _as_tool_errors():
            check(a=a, b=b, context=context)
            current = head(user_id)
            with models.use() as backend:
                result = Judge(backend).choose(ChoiceTask(a=a, b=b, context=context,
                                                          preference=current.profile if current else None))
            if result.p_a is None:
                raise BackendError(f"the model could not judge: {result.error}")
            return {"choice": result.choice, "p_a": result.p_a, "p_b": result.p_b,
                    "version": current.version if current else None}

    @server.tool()
    def respond(user_id: str, message: str, max_new_tokens: int = 512) -> dict[str, Any]:
        """A reply to `message` written for this user, from their profile."""
        with _as_tool_errors():
            check(message=message)
            current = head(user_id)
            with models.use() as backend:
                completion = Judge(backend).respond(current.profile if current else None, message,
                                                    replace(RESPOND_SAMPLING, max_new_tokens=max_new_tokens))
            if completion.finish_reason == "error":
                raise BackendError(f"the model call failed: {completion.error}")
            return {"response": completion.text, "version": current.version if current else None}

    @server.tool()
    def edit_profile(user_id: str, profile: str, base_version: int | None = None,
                     editor: str | None = None) -> dict[str, Any]:
        """Replace the user's profile with this text (a new version; later updates start from it).
        base_version: refuse if the profile has moved on since that version."""
        with _as_tool_errors():
            text = profile.strip()
            if not text:
                raise InputError("the profile text is empty", field="profile")
            check(profile=text)
            version, _ = store.edit(tenant.id, user_id, text, editor or "mcp", base_version)
            return _version(version)

    @server.resource("profile://{user_id}", mime_type="text/plain",
                     description="The user's current preference profile, as text.")
    def profile_resource(user_id: str) -> str:
        try:
            current = head(user_id)
        except PrefscribeError as exc:
            raise ResourceError(str(exc)) from None
        if current is None:
            raise ResourceError(f"user {user_id!r} has no profile yet")
        return current.profile

    return server


def http_app(server: MCPServer, store: Store, tenant: TenantInfo, host: str = "127.0.0.1") -> Callable:
    """The streamable HTTP app at /mcp, behind this tenant's API keys (Authorization: Bearer <key>)."""
    inner = server.streamable_http_app(host=host)

    async def app(scope, receive, send):
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or ())
            auth = headers.get(b"authorization", b"").decode("latin-1")
            key = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
            found = store.remembered(key) or store.authenticate(key) if key else None
            if found is None or found.id != tenant.id:
                await _refuse(send)
                return
        await inner(scope, receive, send)

    return app


async def _refuse(send) -> None:
    body = (b'{"error": "unauthorized", "message": "missing or unknown API key for this tenant: send '
            b'\'Authorization: Bearer <key>\' (prefscribe keys create --tenant NAME)"}')
    await send({"type": "http.response.start", "status": 401,
                "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
    await send({"type": "http.response.body", "body": body})
