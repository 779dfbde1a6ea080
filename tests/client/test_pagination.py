"""Walking every page of a listing through the client's iterators (the REST routes underneath), on SQLite and
PostgreSQL: each row exactly once, when many rows share a timestamp (fast inserts, imports) and when rows are
added or deleted between two pages."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import update

from prefscribe.api_models import UserList
from prefscribe.client import AsyncClient, Client
from prefscribe.client import _calls as calls
from prefscribe.formats import UserDocument
from prefscribe.store._models import User

from ..service.conftest import items

SAME_TIME = "2024-05-01T12:00:00+00:00"


def _users_with_one_created_at(live, n: int) -> list[str]:
    """`n` users whose rows all carry the same created_at, as a bulk import or a burst of first ingests does."""
    names = [f"user-{i:02d}" for i in range(n)]
    with Client(live.url, api_key=live.key) as client:
        for name in names:
            client.add_interactions(name, items(1))
    with live.store.db.write() as s:
        s.execute(update(User).values(created_at=datetime.fromisoformat(SAME_TIME)))
    return names


def test_users_sharing_a_created_at_are_each_listed_once(live):
    names = _users_with_one_created_at(live, 23)
    with Client(live.url, api_key=live.key) as client:
        for size in (1, 4, 7, 23, 100):
            assert [u.user_id for u in client.users(page_size=size)] == names, size

    async def walk() -> list[str]:
        async with AsyncClient(live.url, api_key=live.key) as client:
            return [u.user_id async for u in client.users(page_size=5)]

    assert asyncio.run(walk()) == names


def _imported(versions: int, interactions: int) -> UserDocument:
    """A user whose versions all carry one created_at, and whose interactions another (as an import of a user
    written in a burst gives); every interaction covered, so the worker writes no version of its own."""
    return UserDocument.model_validate({
        "user_id": "imported",
        "versions": [{"version": n, "parent": n - 1 or None, "author": "person", "kind": "edit",
                      "profile": f"text {n}", "covered_through": interactions, "created_at": SAME_TIME}
                     for n in range(1, versions + 1)],
        "interactions": [{"seq": n, "chosen": f"item {n}", "created_at": SAME_TIME}
                         for n in range(1, interactions + 1)]})


def test_versions_and_interactions_sharing_a_created_at_are_each_listed_once(live):
    with Client(live.url, api_key=live.key) as client:
        client.import_user(_imported(9, 17))
        for size in (1, 2, 4, 9):
            assert [v.version for v in client.versions("imported", page_size=size)] == list(range(9, 0, -1))
        for size in (1, 3, 5, 17):
            assert [i.seq for i in client.interactions("imported", page_size=size)] == list(range(17, 0, -1))


def test_a_user_deleted_during_the_walk_hides_no_other_user(live):
    names = _users_with_one_created_at(live, 10)
    with Client(live.url, api_key=live.key) as client:
        seen = []
        for user in client.users(page_size=3):
            seen.append(user.user_id)
            if len(seen) == 3:  # the first page is read: one of its users goes
                client.delete_user(names[0])
    assert seen == names  # with offsets the next page started one user late: user-03 was never listed


def test_a_user_created_during_the_walk_repeats_no_user(live):
    names = _users_with_one_created_at(live, 10)
    with Client(live.url, api_key=live.key) as client:
        seen = []
        for user in client.users(page_size=3):
            seen.append(user.user_id)
            if len(seen) == 3:  # a new user sorts before the page already read
                client.add_interactions("a-newcomer", items(1))
    assert seen == names  # with offsets user-02 came twice


def test_versions_and_interactions_added_during_the_walk_repeat_nothing(live):
    with Client(live.url, api_key=live.key) as client:
        client.import_user(_imported(7, 7))
        versions = []
        for version in client.versions("imported", page_size=3):
            versions.append(version.version)
            if len(versions) == 3:
                client.edit_profile("imported", "a newer text")
        seqs = []
        for interaction in client.interactions("imported", page_size=3):
            seqs.append(interaction.seq)
            if len(seqs) == 3:  # fewer than the update threshold: the worker leaves the versions alone
                client.add_interactions("imported", items(2, start=50))
    assert versions == list(range(7, 0, -1)) and seqs == list(range(7, 0, -1))


def test_the_walk_is_in_the_order_of_user_ids_whatever_the_creation_order(live):
    with Client(live.url, api_key=live.key) as client:
        for name in ("m", "b", "z", "a", "k"):
            client.add_interactions(name, items(1))
        assert [u.user_id for u in client.users(page_size=2)] == ["a", "b", "k", "m", "z"]


def test_a_service_older_than_cursors_is_still_walked_by_offset(live):
    """An older service answers without next_cursor (and ignores `cursor`): the client pages by offset then."""
    names = _users_with_one_created_at(live, 5)
    with Client(live.url, api_key=live.key) as client:
        call, seen, offsets = calls.users(2), [], []
        while call is not None:
            offsets.append(call.params.get("offset", 0))
            page = client._send(call)
            older = UserList.model_validate_json(page.model_dump_json(exclude={"next_cursor"}))
            seen += [u.user_id for u in older.users]
            call = calls.next_users(older, call)
    assert seen == names and offsets == [0, 2, 4]
