"""The client's export, import and chat feedback against live services: a user moved from one database to
another through the client comes out byte for byte the same, a bad file is refused with the service's message
naming the record and field, and feedback on a proxied reply becomes the user's history."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from prefscribe.client import AsyncClient, Client, Conflict, InvalidRequest, NotFound
from prefscribe.errors import ConflictError, InputError
from prefscribe.formats import UserDocument

from ..conftest import wait_for
from .test_client import items


def _history(client: Client, user: str) -> str:
    """A model update, a person's edit, a rollback and pending interactions; returns the head's text."""
    client.add_interactions(user, items(3) + [{"chosen": "tea", "timestamp": 12.5, "domain": "food",
                                              "meta": {"k": [1, "ü"]}}])
    wait_for(lambda: client.user(user).versions >= 1, 30, "the worker did not write a profile")
    client.edit_profile(user, "Edited.  Two spaces!\nLine two.", editor="ann")
    return client.rollback(user, 1).profile


def test_export_then_import_elsewhere_reproduces_the_user_byte_for_byte(live, elsewhere):
    with Client(live.url, api_key=live.key) as here, Client(elsewhere.url, api_key=elsewhere.key) as there:
        _history(here, "u1")
        text = here.export_file("u1")
        doc = here.export_user("u1")
        assert isinstance(doc, UserDocument) and [v.kind for v in doc.versions] == ["update", "edit", "rollback"]
        assert len(doc.interactions) == 4 and doc.interactions[3].meta == {"k": [1, "ü"]}

        state = there.import_user(doc)  # the document's own user id
        assert (state.user_id, state.versions, state.interactions, state.head_version) == ("u1", 3, 4, 3)
        assert there.export_file("u1") == text  # byte for byte

        moved = there.import_user(text, user_id="moved")  # the file's text, as it is, under another id
        assert moved.user_id == "moved" and json.loads(there.export_file("moved")) == {**json.loads(text),
                                                                                        "user_id": "moved"}
        with pytest.raises(Conflict) as twice:
            there.import_user(doc)
        assert isinstance(twice.value, ConflictError) and twice.value.status == 409
        assert "exists already" in twice.value.message
        with pytest.raises(NotFound):  # another tenant of the first service has no such user to export
            Client(live.url, api_key=live.other_key).export_user("u1")


def test_a_bad_file_is_refused_with_the_services_message_and_nothing_is_stored(live, elsewhere):
    with Client(live.url, api_key=live.key) as here, Client(elsewhere.url, api_key=elsewhere.key) as there:
        _history(here, "u1")
        doc = json.loads(here.export_file("u1"))
        doc["versions"][2]["parent"] = 9  # the last record is bad: nothing before it may be stored either
        with pytest.raises(InvalidRequest) as bad:
            there.import_user(json.dumps(doc), user_id="never")
        error = bad.value
        assert isinstance(error, InputError) and error.status == 422 and error.code == "invalid_request"
        assert error.field == "versions[2].parent" and "versions[2].parent" in error.message
        with pytest.raises(NotFound):
            there.user("never")
        with pytest.raises(InvalidRequest) as not_json:
            there.import_user("{not json", user_id="never")
        assert not_json.value.status == 400 and "not valid JSON" in not_json.value.message


@pytest.mark.parametrize("fmt", ["letta", "mem0"])
def test_letta_and_mem0_files_carry_the_profile_text(live, elsewhere, fmt):
    with Client(live.url, api_key=live.key) as here, Client(elsewhere.url, api_key=elsewhere.key) as there:
        head = _history(here, "u1")
        text = here.export_file("u1", fmt)
        state = there.import_user(text, user_id=f"from-{fmt}", format=fmt)
        assert state.versions == 1
        imported = there.profile(f"from-{fmt}")
        assert imported.profile == head and imported.editor == f"import:{fmt}"
        assert there.import_user(text, user_id=f"sniffed-{fmt}").user_id == f"sniffed-{fmt}"  # format recognized
        assert head.split("\n")[0] in here.export_file("u1", "markdown")


def _chat(url: str, key: str, user: str, message: str) -> dict:
    r = httpx.post(f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}",
                                                          "X-Prefscribe-User": user},
                   json={"model": "scripted:ok", "messages": [{"role": "user", "content": message}]}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_feedback_on_a_proxied_reply_becomes_history(live):
    completion = _chat(live.url, live.key, "u7", "How do I undo a commit?")
    reply = completion["choices"][0]["message"]["content"]
    with Client(live.url, api_key=live.key) as client:
        kept = "Run git reset --soft HEAD~1."
        first = client.feedback(completion["id"], preferred=kept)
        assert (first.user_id, first.duplicate, first.interactions, first.pending) == ("u7", False, 1, 1)
        again = client.feedback(completion["id"], preferred=kept)
        assert again.duplicate and again.interactions == 1
        [stored] = client.interactions("u7")
        assert (stored.context, stored.chosen, stored.rejected) == ("How do I undo a commit?", kept, reply)

        with pytest.raises(Conflict):  # one feedback per completion
            client.feedback(completion["id"], rating="good")
        with pytest.raises(InvalidRequest) as bad:  # errors in the proxy's OpenAI shape, read the same
            client.feedback(completion["id"], rating="bad")
        assert bad.value.field == "preferred" and "preferred" in bad.value.message
        with pytest.raises(NotFound) as unknown:
            client.feedback("chatcmpl-nope", rating="good")
        assert "keeps the latest" in unknown.value.message


def test_async_client_exports_imports_and_sends_feedback(live, elsewhere):
    with Client(live.url, api_key=live.key) as here:
        head = _history(here, "u1")
    completion = _chat(live.url, live.key, "u1", "Hello")

    async def main():
        async with AsyncClient(live.url, api_key=live.key) as a, AsyncClient(elsewhere.url,
                                                                             api_key=elsewhere.key) as b:
            doc = await a.export_user("u1")
            text = await a.export_file("u1")
            state = await b.import_user(doc)
            with pytest.raises(Conflict):
                await b.import_user(text)
            letta = await b.import_user(await a.export_file("u1", "letta"), user_id="agent")
            good = await a.feedback(completion["id"], rating="good")
            return doc, text, state, await b.export_file("u1"), letta, good, (await b.profile("agent")).profile

    doc, text, state, copied, letta, good, agent_profile = asyncio.run(main())
    assert state.versions == len(doc.versions) == 3 and copied == text
    assert letta.user_id == "agent" and agent_profile == head
    assert good.user_id == "u1" and good.interactions == 5 and not good.duplicate
