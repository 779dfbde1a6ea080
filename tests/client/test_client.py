"""prefscribe.client against a live service: every operation, pagination, the error mapping, and retries
that cannot ingest a batch twice."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from prefscribe.client import (
    AsyncClient,
    AuthenticationError,
    Client,
    Conflict,
    InvalidRequest,
    NotFound,
    ServiceUnreachable,
)
from prefscribe.errors import ConflictError, InputError, NotFoundError

from ..conftest import wait_for


def items(n: int, start: int = 0) -> list[dict]:
    return [{"context": f"query {i}", "chosen": f"item chosen {i}", "rejected": f"item rejected {i}"}
            for i in range(start, start + n)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _profile_ready(client: Client, user: str) -> bool:
    try:
        return client.profile(user).version >= 1
    except NotFound:
        return False


def test_the_whole_api_round_trip(live):
    with Client(live.url, api_key=live.key, backoff=0.01) as client:
        first = client.add_interactions("u1", items(3), idempotency_key="batch-1")
        assert (first.accepted, first.duplicate, first.interactions) == (3, False, 3)
        again = client.add_interactions("u1", items(3), idempotency_key="batch-1")
        assert again.duplicate and again.interactions == 3 and again.first_seq == first.first_seq

        wait_for(lambda: _profile_ready(client, "u1"), 30, "the worker did not write a profile")
        profile = client.profile("u1")
        assert profile.author == "model" and "Total 3." in profile.profile and profile.covers == 3

        edited = client.edit_profile("u1", "Likes short answers.", editor="me", base_version=profile.version)
        assert edited.author == "person" and edited.version == profile.version + 1
        with pytest.raises(Conflict) as stale:
            client.edit_profile("u1", "Something else.", base_version=profile.version)
        assert isinstance(stale.value, ConflictError) and stale.value.status == 409
        back = client.rollback("u1", profile.version)
        assert back.kind == "rollback" and back.profile == profile.profile
        assert [v.version for v in client.versions("u1", page_size=1)] == [3, 2, 1]
        assert client.version("u1", 2).profile == "Likes short answers."

        client.add_interactions("u1", items(1, start=10))
        assert client.refresh("u1").queued is True
        assert [i.seq for i in client.interactions("u1", page_size=2)] == [4, 3, 2, 1]

        choice = client.choose("u1", a="query 0 item chosen 0", b="something unrelated")
        assert choice.choice in ("a", "b") and choice.version is not None
        reply = client.respond("u1", "Plan my weekend")
        assert reply.response.startswith("A reply for:") and reply.version is not None
        link = client.access_link("u1", scope="edit", expires_in=600)
        assert link.url.startswith(live.url + "/me?t=") and link.scope == "edit"

        for n in range(4):
            client.add_interactions(f"other-{n}", items(1))
        assert [u.user_id for u in client.users(page_size=2)] == ["other-0", "other-1", "other-2", "other-3", "u1"]

        deleted = client.delete_user("u1")
        assert deleted.deleted["interactions"] == 4
        with pytest.raises(NotFound) as gone:
            client.user("u1")
        assert isinstance(gone.value, NotFoundError) and gone.value.code == "not_found"


def test_errors_map_onto_prefscribe_errors(live):
    with Client(live.url, api_key=live.key) as client:
        client.add_interactions("fresh", items(1))
        with pytest.raises(NotFound) as none_yet:
            client.profile("fresh")
        assert none_yet.value.code == "no_profile" and none_yet.value.body["pending"] == 1
        with pytest.raises(InvalidRequest) as bad:
            client.edit_profile("fresh", "x" * 5000)
        assert isinstance(bad.value, InputError) and bad.value.field == "profile" and bad.value.code == "too_long"
    with Client(live.url, api_key=live.other_key) as other:  # another tenant sees nothing of tenant-a
        with pytest.raises(NotFound):
            other.user("fresh")
    with Client(live.url, api_key="psk_not_a_key") as wrong, pytest.raises(AuthenticationError) as denied:
        wrong.user("fresh")
    assert denied.value.status == 401 and "API key" in denied.value.message


class LoseAnswers(httpx.BaseTransport):
    """A real transport to the live server that drops the answer of the first `n` requests matching
    `method path-suffix` after the server has handled them: what a client sees when a connection breaks
    after the request arrived."""

    def __init__(self, method: str, suffix: str, n: int) -> None:
        self.inner, self.method, self.suffix, self.left = httpx.HTTPTransport(), method, suffix, n
        self.sent = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == self.method and request.url.path.endswith(self.suffix):
            self.sent += 1
            if self.left > 0:
                self.left -= 1
                response.read()
                response.close()
                raise httpx.ReadError("connection lost after the request was sent", request=request)
        return response


def test_a_lost_answer_is_retried_without_ingesting_twice(live):
    lossy = LoseAnswers("POST", "/interactions", n=2)
    with Client(live.url, api_key=live.key, backoff=0.01, transport=lossy) as client:
        result = client.add_interactions("u2", items(2))  # no key given: the client makes one per batch
    assert lossy.sent == 3 and result.duplicate is True and result.accepted == 2
    with Client(live.url, api_key=live.key) as client:
        assert client.user("u2").interactions == 2


def test_a_rollback_whose_answer_is_lost_is_not_sent_again(live):
    with Client(live.url, api_key=live.key) as client:
        client.add_interactions("u3", items(1))
        client.edit_profile("u3", "first")
        client.edit_profile("u3", "second")
    lossy = LoseAnswers("POST", "/profile/rollback", n=1)
    with Client(live.url, api_key=live.key, backoff=0.01, transport=lossy) as client:
        with pytest.raises(ServiceUnreachable):
            client.rollback("u3", 1)
        assert lossy.sent == 1 and [v.version for v in client.versions("u3")] == [3, 2, 1]


def test_an_unreachable_service_is_retried_then_reported():
    url = f"http://127.0.0.1:{free_port()}"
    with Client(url, api_key="k", max_retries=2, backoff=0.01) as client, \
            pytest.raises(ServiceUnreachable, match="is `prefscribe serve` running"):
        client.user("u")


def test_async_client(live):
    async def main():
        async with AsyncClient(live.url, api_key=live.key, backoff=0.01) as client:
            await client.add_interactions("a1", items(2))
            await client.edit_profile("a1", "Prefers terse replies.")
            await client.edit_profile("a1", "Prefers terse, practical replies.")
            versions = [v.version async for v in client.versions("a1", page_size=1)]
            seqs = [i.seq async for i in client.interactions("a1", page_size=2)]
            users = [u.user_id async for u in client.users(page_size=1)]
            reply = await client.respond("a1", "Hello")
            with pytest.raises(NotFound):
                await client.user("nobody")
            return versions, seqs, users, reply

    versions, seqs, users, reply = asyncio.run(main())
    assert versions[:2] == [max(versions), max(versions) - 1] and seqs == [2, 1] and users == ["a1"]
    assert reply.version == max(versions)
