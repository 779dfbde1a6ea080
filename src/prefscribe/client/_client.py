"""Client and AsyncClient: the profile service's HTTP API as typed methods, on httpx.

    with Client("http://localhost:8080", api_key=KEY) as client:
        client.add_interactions("u1", [{"context": "...", "chosen": "...", "rejected": "..."}])
        print(client.profile("u1").profile)

Answers are the service's own pydantic models (prefscribe.api_models) or, for export and import, the
export document (prefscribe.formats.UserDocument); errors are prefscribe's exceptions (client._errors); lists
are iterators that fetch page after page."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import Any, Literal, TypeVar

import httpx

from ..api_models import (
    AccessLinkOut,
    ChooseOut,
    DeleteOut,
    FeedbackOut,
    IngestOut,
    InteractionOut,
    ProfileOut,
    RefreshOut,
    RespondOut,
    UserList,
    UserOut,
    VersionOut,
)
from ..errors import InputError
from ..formats import UserDocument
from ..schema import Interaction
from . import _calls as calls
from ._errors import ServiceUnreachable, error_for
from ._retry import delay_after_error, delay_after_response

T = TypeVar("T")
KEY_ENV = "PREFSCRIBE_API_KEY"
InteractionLike = Interaction | Mapping[str, Any]
Method = Literal["logprobs", "generation"]
Orders = Literal["both", "ab", "ba"]
Scope = Literal["read", "edit"]
Rating = Literal["good", "bad"]


def _headers(api_key: str | None) -> dict[str, str]:
    key = api_key or os.environ.get(KEY_ENV)
    if not key:
        raise InputError(f"no API key: pass api_key= or set {KEY_ENV} (create one with `prefscribe keys "
                         "create --tenant NAME`)", field="api_key")
    return {"Authorization": f"Bearer {key}", "User-Agent": "prefscribe-client"}


def _unreachable(base_url: str, exc: httpx.TransportError) -> ServiceUnreachable:
    return ServiceUnreachable(f"no answer from the prefscribe service at {base_url} ({type(exc).__name__}: "
                              f"{exc}): is `prefscribe serve` running there?")


class Client:
    """A synchronous client. `api_key` defaults to $PREFSCRIBE_API_KEY. A request that fails on the way
    is retried up to `max_retries` times with doubling waits from `backoff` seconds (see client._retry);
    ingest batches always carry an idempotency key, so a retry never adds a batch twice. `transport` is
    httpx's (for tests and proxies)."""

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 60.0, max_retries: int = 3,
                 backoff: float = 0.5, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url, self.max_retries, self.backoff = base_url.rstrip("/"), max_retries, backoff
        self._http = httpx.Client(base_url=self.base_url, headers=_headers(api_key), timeout=timeout,
                                  transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: calls.Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = self._http.request(call.method, call.path, json=call.json, content=call.content,
                                              params=call.params, headers=call.headers)
            except httpx.TransportError as exc:
                wait = delay_after_error(call, exc, attempt, self.backoff) if attempt < self.max_retries else None
                if wait is None:
                    raise _unreachable(self.base_url, exc) from exc
            else:
                if response.is_success:
                    return call.read(response)
                wait = delay_after_response(call, response, attempt, self.backoff) \
                    if attempt < self.max_retries else None
                if wait is None:
                    raise error_for(response)
            time.sleep(wait)
            attempt += 1

    # ------------------------------------------------------------------------------------ users
    def users(self, page_size: int = 100) -> Iterator[UserOut]:
        """Every user of this key's tenant, by id, fetched `page_size` at a time (each page after the last
        user of the one before: users created or deleted meanwhile make none listed twice or skipped)."""
        call: calls.Call[UserList] | None = calls.users(page_size)
        while call is not None:
            page = self._send(call)
            yield from page.users
            call = calls.next_users(page, call)

    def user(self, user_id: str) -> UserOut:
        return self._send(calls.user(user_id))

    def delete_user(self, user_id: str) -> DeleteOut:
        """Delete the user and every row of theirs (interactions, versions)."""
        return self._send(calls.delete_user(user_id))

    def export_user(self, user_id: str) -> UserDocument:
        """Everything the service holds of the user (every version with its provenance, every interaction),
        as the export document: give it to import_user() of another service to move the user there."""
        return self._send(calls.export_document(user_id))

    def export_file(self, user_id: str, format: str = "json") -> str:
        """The export file's text as the service writes it: json (prefscribe's own, everything), markdown (for
        people), letta (an agent file) or mem0 (one memory per statement); see docs/export.md."""
        return self._send(calls.export_text(user_id, format))

    def import_user(self, document: UserDocument | str, user_id: str | None = None,
                    format: str | None = None) -> UserOut:
        """Create the user from an export: a UserDocument, or a file's text (prefscribe JSON, Letta or mem0;
        `format` when the service should not recognize it). As `user_id` when given, else the document's own
        user. All of it is stored or nothing: a bad file is an InvalidRequest naming the record and field, a
        user who exists already a Conflict. Never sent twice."""
        return self._send(calls.import_user(document, user_id, format))

    # ----------------------------------------------------------------------------- interactions
    def add_interactions(self, user_id: str, interactions: Iterable[InteractionLike],
                         idempotency_key: str | None = None) -> IngestOut:
        """Append a batch (the user is created on first sight). Give your own `idempotency_key` to make a
        retry of yours, too, a no-op (the answer then says duplicate=True)."""
        return self._send(calls.add_interactions(user_id, interactions, idempotency_key))

    def interactions(self, user_id: str, page_size: int = 100) -> Iterator[InteractionOut]:
        """The user's interactions, newest first."""
        before = None
        while True:
            page = self._send(calls.interactions(user_id, page_size, before))
            yield from page.interactions
            if len(page.interactions) < page_size:
                return
            before = page.interactions[-1].seq

    # --------------------------------------------------------------------------------- profiles
    def profile(self, user_id: str) -> ProfileOut:
        """The current version. No profile yet: NotFound with code 'no_profile'."""
        return self._send(calls.profile(user_id))

    def versions(self, user_id: str, page_size: int = 50) -> Iterator[VersionOut]:
        """Every version, newest first."""
        before = None
        while True:
            page = self._send(calls.versions(user_id, page_size, before))
            yield from page.versions
            if len(page.versions) < page_size:
                return
            before = page.versions[-1].version

    def version(self, user_id: str, number: int) -> VersionOut:
        return self._send(calls.version(user_id, number))

    def edit_profile(self, user_id: str, text: str, editor: str | None = None,
                     base_version: int | None = None) -> VersionOut:
        """A person's text becomes the current version. `base_version`: refuse (Conflict) if the head moved."""
        return self._send(calls.edit_profile(user_id, text, editor, base_version))

    def rollback(self, user_id: str, version: int, editor: str | None = None) -> VersionOut:
        return self._send(calls.rollback(user_id, version, editor))

    def refresh(self, user_id: str) -> RefreshOut:
        """Queue an update with the pending interactions now."""
        return self._send(calls.refresh(user_id))

    # ----------------------------------------------------------------------------- personalize
    def choose(self, user_id: str, a: str, b: str, context: str | None = None, *, method: Method = "logprobs",
               orders: Orders = "both") -> ChooseOut:
        return self._send(calls.choose(user_id, a, b, context, method, orders))

    def respond(self, user_id: str, context: str, max_new_tokens: int = 512) -> RespondOut:
        return self._send(calls.respond(user_id, context, max_new_tokens))

    def access_link(self, user_id: str, scope: Scope = "read", expires_in: int = 900) -> AccessLinkOut:
        """A URL for the user to see (scope edit: also change) their own profile."""
        return self._send(calls.access_link(user_id, scope, expires_in))

    # ------------------------------------------------------------------------------- chat proxy
    def feedback(self, completion_id: str, rating: Rating | None = None, preferred: str | None = None) -> FeedbackOut:
        """Feedback on a reply of the chat proxy (/v1/chat/completions, by the completion's id): the reply the
        user kept instead (`preferred`), or rating good. It becomes an interaction of the completion's user;
        the same feedback again is a no-op (duplicate=True), a different one a Conflict."""
        return self._send(calls.feedback(completion_id, rating, preferred))


class AsyncClient:
    """Client's twin for asyncio: the same methods, awaited; lists are async iterators."""

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 60.0, max_retries: int = 3,
                 backoff: float = 0.5, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url, self.max_retries, self.backoff = base_url.rstrip("/"), max_retries, backoff
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=_headers(api_key), timeout=timeout,
                                       transport=transport)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: calls.Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = await self._http.request(call.method, call.path, json=call.json,
                                                    content=call.content, params=call.params, headers=call.headers)
            except httpx.TransportError as exc:
                wait = delay_after_error(call, exc, attempt, self.backoff) if attempt < self.max_retries else None
                if wait is None:
                    raise _unreachable(self.base_url, exc) from exc
            else:
                if response.is_success:
                    return call.read(response)
                wait = delay_after_response(call, response, attempt, self.backoff) \
                    if attempt < self.max_retries else None
                if wait is None:
                    raise error_for(response)
            await asyncio.sleep(wait)
            attempt += 1

    async def users(self, page_size: int = 100) -> AsyncIterator[UserOut]:
        call: calls.Call[UserList] | None = calls.users(page_size)
        while call is not None:
            page = await self._send(call)
            for item in page.users:
                yield item
            call = calls.next_users(page, call)

    async def user(self, user_id: str) -> UserOut:
        return await self._send(calls.user(user_id))

    async def delete_user(self, user_id: str) -> DeleteOut:
        return await self._send(calls.delete_user(user_id))

    async def export_user(self, user_id: str) -> UserDocument:
        return await self._send(calls.export_document(user_id))

    async def export_file(self, user_id: str, format: str = "json") -> str:
        return await self._send(calls.export_text(user_id, format))

    async def import_user(self, document: UserDocument | str, user_id: str | None = None,
                          format: str | None = None) -> UserOut:
        return await self._send(calls.import_user(document, user_id, format))

    async def add_interactions(self, user_id: str, interactions: Iterable[InteractionLike],
                               idempotency_key: str | None = None) -> IngestOut:
        return await self._send(calls.add_interactions(user_id, interactions, idempotency_key))

    async def interactions(self, user_id: str, page_size: int = 100) -> AsyncIterator[InteractionOut]:
        before = None
        while True:
            page = await self._send(calls.interactions(user_id, page_size, before))
            for item in page.interactions:
                yield item
            if len(page.interactions) < page_size:
                return
            before = page.interactions[-1].seq

    async def profile(self, user_id: str) -> ProfileOut:
        return await self._send(calls.profile(user_id))

    async def versions(self, user_id: str, page_size: int = 50) -> AsyncIterator[VersionOut]:
        before = None
        while True:
            page = await self._send(calls.versions(user_id, page_size, before))
            for item in page.versions:
                yield item
            if len(page.versions) < page_size:
                return
            before = page.versions[-1].version

    async def version(self, user_id: str, number: int) -> VersionOut:
        return await self._send(calls.version(user_id, number))

    async def edit_profile(self, user_id: str, text: str, editor: str | None = None,
                           base_version: int | None = None) -> VersionOut:
        return await self._send(calls.edit_profile(user_id, text, editor, base_version))

    async def rollback(self, user_id: str, version: int, editor: str | None = None) -> VersionOut:
        return await self._send(calls.rollback(user_id, version, editor))

    async def refresh(self, user_id: str) -> RefreshOut:
        return await self._send(calls.refresh(user_id))

    async def choose(self, user_id: str, a: str, b: str, context: str | None = None, *,
                     method: Method = "logprobs", orders: Orders = "both") -> ChooseOut:
        return await self._send(calls.choose(user_id, a, b, context, method, orders))

    async def respond(self, user_id: str, context: str, max_new_tokens: int = 512) -> RespondOut:
        return await self._send(calls.respond(user_id, context, max_new_tokens))

    async def access_link(self, user_id: str, scope: Scope = "read", expires_in: int = 900) -> AccessLinkOut:
        return await self._send(calls.access_link(user_id, scope, expires_in))

    async def feedback(self, completion_id: str, rating: Rating | None = None,
                       preferred: str | None = None) -> FeedbackOut:
        return await self._send(calls.feedback(completion_id, rating, preferred))
