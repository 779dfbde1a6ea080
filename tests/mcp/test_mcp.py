"""`prefscribe mcp` driven by the official MCP SDK's own client session: over stdio (the server a subprocess,
as an agent spawns it) and over streamable HTTP (a live server, API key required)."""

from __future__ import annotations

import os
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest

pytest.importorskip("mcp")

from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from prefscribe.mcp import build_server, http_app
from prefscribe.store import Store
from prefscribe.updates import ModelRuntime, UpdateConfig, Worker

from ..loopback import Loopback
from ..service.scripted import ScriptedBackend

REPO = Path(__file__).resolve().parents[2]
CLI = "import tests.service.scripted; from prefscribe.cli import main; main()"  # registers scripted:*


async def _exercise(session: ClientSession, settle=None) -> dict:
    """What an agent does: list the tools, record a choice, read and edit the profile, ask for a choice and
    a reply; returns what it saw. `settle(session)` runs after the choice is recorded (a server with its own
    worker updates the profile then: the edit must come after that update, not race it)."""
    await session.initialize()
    seen = {"tools": sorted(t.name for t in (await session.list_tools()).tools)}
    recorded = await session.call_tool("record_interaction", {"user_id": "u1", "context": "Explain git rebase",
                                                             "chosen": "terse answer", "rejected": "long essay"})
    seen["recorded"] = recorded.structured_content
    if settle is not None:
        await settle(session)
    missing = await session.call_tool("get_profile", {"user_id": "nobody"})
    seen["missing"] = (missing.is_error, missing.content[0].text)
    edited = await session.call_tool("edit_profile", {"user_id": "u1", "profile": "Likes terse answers."})
    seen["edited"] = edited.structured_content
    stale = await session.call_tool("edit_profile", {"user_id": "u1", "profile": "x", "base_version": 99})
    seen["stale"] = (stale.is_error, stale.content[0].text)
    seen["profile"] = (await session.call_tool("get_profile", {"user_id": "u1"})).structured_content
    seen["resource"] = (await session.read_resource("profile://u1")).contents[0].text
    seen["choice"] = (await session.call_tool("choose", {"user_id": "u1", "a": "a terse answer",
                                                         "b": "an essay on history"})).structured_content
    seen["reply"] = (await session.call_tool("respond", {"user_id": "u1", "message": "Plan my day"})
                     ).structured_content
    return seen


def _check(seen: dict) -> None:
    assert seen["tools"] == ["choose", "edit_profile", "get_profile", "record_interaction", "respond"]
    assert seen["recorded"]["interactions"] == 1 and seen["recorded"]["duplicate"] is False
    assert seen["missing"][0] is True and "no user 'nobody'" in seen["missing"][1]
    assert seen["edited"]["version"] >= 1 and seen["edited"]["author"] == "person"
    # the CLI's message for a stale base version, word for word
    assert seen["stale"][0] is True and "99" in seen["stale"][1]
    assert seen["profile"]["profile"] == "Likes terse answers." == seen["resource"]
    assert seen["choice"]["choice"] == "a" and seen["choice"]["version"] == seen["edited"]["version"]
    assert seen["reply"]["response"].startswith("A reply for: Plan my day")


def test_over_stdio(tmp_path):
    db = f"sqlite:///{tmp_path / 'profiles.db'}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    params = StdioServerParameters(command=sys.executable, cwd=str(REPO), env=env,
                                   args=["-c", CLI, "mcp", "--db", db, "--tenant", "acme", "--model", "scripted:ok",
                                         "--update-every", "1"])

    async def updated(session: ClientSession, user: str = "u1") -> None:
        """Until the server's worker has written the user's profile (a hang guard, not a timing assertion)."""
        deadline = anyio.current_time() + 180
        while (await session.call_tool("get_profile", {"user_id": user})).is_error:
            assert anyio.current_time() < deadline, f"the worker wrote no profile for {user} in 180 s"
            await anyio.sleep(0.1)

    async def main():
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            seen = await _exercise(session, settle=updated)
            # record_interaction wakes the server's own worker: the model's update lands as a new version
            await session.call_tool("record_interaction", {"user_id": "u2", "chosen": "tea"})
            await updated(session, "u2")
            seen["updated"] = (await session.call_tool("get_profile", {"user_id": "u2"})).structured_content
            return seen

    seen = anyio.run(main)
    _check(seen)
    assert seen["updated"]["author"] == "model" and "tea" in seen["updated"]["profile"]
    store = Store(db)
    assert store.head(store.tenant("acme").id, "u1")[1].profile == "Likes terse answers."
    store.close()


@asynccontextmanager
async def _http_session(url: str, key: str | None):
    import httpx2

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http, \
            streamable_http_client(f"{url}/mcp", http_client=http) as streams, \
            ClientSession(streams[0], streams[1]) as session:
        yield session


def test_over_streamable_http_with_an_api_key(db_url):
    store = Store(db_url)
    tenant = store.tenant("acme")
    key, _ = store.create_key("acme")
    other, _ = store.create_key("another-tenant")
    config = UpdateConfig(model="scripted:ok", update_every=100)
    models = ModelRuntime(config.model, ScriptedBackend())
    server = build_server(store, tenant, models, Worker(store, config, models))
    with Loopback(http_app(server, store, tenant)) as url:
        _http_checks(url, key, other)
    store.close()


def _http_checks(url: str, key: str, other: str) -> None:
    async def main():
        async with _http_session(url, key) as session:
            return await _exercise(session)

    _check(anyio.run(main))
    for wrong in (None, "psk_unknown", other):  # no key, an unknown one, another tenant's
        async def refused(wrong=wrong):
            async with _http_session(url, wrong) as session:
                await session.initialize()

        with pytest.raises(Exception):  # noqa: B017 (the SDK wraps the refusal in task-group errors)
            anyio.run(refused)
        headers = {"Authorization": f"Bearer {wrong}"} if wrong else {}
        raw = httpx.post(f"{url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=headers)
        assert raw.status_code == 401 and raw.json()["error"] == "unauthorized"
