"""One exception tree. Every message says what went wrong and, where it can, how to fix it."""

from __future__ import annotations


class PrefscribeError(Exception):
    """Root of every error prefscribe raises on purpose."""


class InputError(PrefscribeError, ValueError):
    """Bad user input: names the file, the line and the field so nothing is lost silently."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.path, self.line, self.field, self.reason = path, line, field, message
        where = ":".join(str(p) for p in (path, line) if p is not None)
        parts = [where] if where else []
        if field:
            parts.append(f"field '{field}'")
        prefix = ", ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ModelSpecError(PrefscribeError, ValueError):
    """A model spec string that no backend understands."""


class ModelUnavailableError(PrefscribeError):
    """A backend that cannot start: missing weights, missing extra, unreachable server."""


class IntegrityError(PrefscribeError):
    """Downloaded or joined weights whose hash does not match the pinned one."""


class BackendError(PrefscribeError):
    """A model call that failed after retries (server error, timeout)."""


class GenerationCancelled(PrefscribeError):
    """A generation stopped because its caller asked (`llm.Watch.cancel`): what it had written is not a reply, so
    it is returned to no one and cached nowhere."""


class NotFoundError(PrefscribeError, LookupError):
    """No such record. Another tenant's record gets the same error, so nothing leaks across tenants."""


class UserNotFoundError(NotFoundError):
    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        super().__init__(f"no user {user_id!r}")


class VersionNotFoundError(NotFoundError):
    def __init__(self, user_id: str, version: int) -> None:
        self.user_id, self.version = user_id, version
        super().__init__(f"user {user_id!r} has no version {version}")


class ConflictError(PrefscribeError):
    """The request contradicts the current state: a reused idempotency key, a stale base version."""


class SchemaOutdatedError(PrefscribeError):
    """A database whose schema is older (or newer) than this prefscribe's: `prefscribe db upgrade` fixes it."""
