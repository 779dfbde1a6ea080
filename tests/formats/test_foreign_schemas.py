"""Our Letta and mem0 files checked by those projects' own published code, not by shapes we copied:
letta-client's AgentFileSchema (the agent file's type, generated from Letta's API) parses our `.af`, and
mem0's MemoryItem parses each memory; a real mem0 `Memory` (local Qdrant, an embedder on loopback) takes our
memories in and its `get_all` comes back into prefscribe. The other way too: a file built with the official
types imports. The users are real: a DSP user's interactions, stored, with a profile a person wrote."""

from __future__ import annotations

import hashlib
import json
import typing
import warnings
from datetime import datetime
from types import SimpleNamespace

import pytest
from fastapi import FastAPI, Request

from prefscribe.formats import UserDocument, get_format, read_document
from prefscribe.formats._letta import HUMAN_LIMIT
from prefscribe.formats._mem0 import statements
from prefscribe.store import Store

from ..conftest import DATA
from ..loopback import Loopback
from .test_formats import TEXT, _doc

# mem0 puts these beside MemoryItem's fields in each memory `get_all` returns; its platform adds categories.
MEM0_PROMOTED = {"user_id", "agent_id", "run_id", "actor_id", "role", "categories"}


def _real_user(tmp_path) -> UserDocument:
    """A DSP user from ../shared/data: its interactions ingested into a SQLite store, then a person writes
    the profile (the user's gold preference and two more statements), exported the way users export."""
    from prefscribe.data import load

    user = load("dsp", str(DATA / "dsp"), limit=1, seed=0)[0]
    store = Store(f"sqlite:///{tmp_path / 'profiles.db'}")
    try:
        tenant = store.tenant("t").id
        store.ingest(tenant, user.user_id, user.history)
        store.edit(tenant, user.user_id, f"{user.gold_preference}\nAvoids jargon!  Wants one example per answer?",
                   editor="ann")
        return store.export_user(tenant, user.user_id)
    finally:
        store.close()


@pytest.fixture(params=["dsp-user", "hand-built"])
def doc(request, tmp_path) -> UserDocument:
    if request.param == "hand-built":
        return _doc()  # test_formats' document: double spaces, a blank line, no final dot
    if not (DATA / "dsp").exists():
        pytest.skip("needs ../shared/data (set PREFSCRIBE_DATA)")
    return _real_user(tmp_path)


# ----------------------------------------------------------------------------------------------- Letta
def _agent_types() -> set[str]:
    from letta_client.types import AgentType

    literal = typing.get_args(AgentType)[0]  # AgentType = Union[Literal[...], Any]: the named ones
    return set(typing.get_args(literal))


def test_our_agent_file_is_a_letta_agent_file_schema(doc):
    from letta_client.types import AgentFileSchema

    text = get_format("letta").dump(doc)
    af = AgentFileSchema.model_validate_json(text)  # pydantic validation against Letta's generated type
    # the type allows extra fields; ours are all ones it declares, so a Letta server reads every one
    assert af.model_extra == {} and af.agents[0].model_extra == {} and af.blocks[0].model_extra == {}
    (agent,), (block,) = af.agents, af.blocks
    assert agent.block_ids == [block.id] and agent.agent_type in _agent_types()
    assert block.label == "human" and block.value == doc.head.profile
    assert len(block.value) <= block.limit == HUMAN_LIMIT  # what Letta's Block checks when it loads one
    assert block.metadata["user_id"] == doc.user_id
    assert af.created_at == datetime.fromisoformat(doc.head.created_at)
    assert read_document(text, "agent.af").head.profile == doc.head.profile


def test_an_agent_file_built_with_letta_types_imports_its_human_block(tmp_path):
    from letta_client.types import AgentFileSchema, BlockSchema, LettaSchemasAgentFileAgentSchema

    blocks = [BlockSchema(id="block-0", label="persona", value="I am Sam, a patient tutor.", limit=5000),
              BlockSchema(id="block-1", label="human", value=TEXT, limit=8000, description="The user.")]
    agent = LettaSchemasAgentFileAgentSchema(id="agent-0", name="alex", agent_type="letta_v1_agent",
                                             block_ids=["block-0", "block-1"], tags=["tutor"])
    af = AgentFileSchema(agents=[agent], groups=[], blocks=blocks, files=[], sources=[], tools=[],
                         mcp_servers=[], metadata={"revision_id": "abc"})
    text = af.model_dump_json(by_alias=True)

    imported = read_document(text, "alex.af")  # recognized as Letta from the content
    assert (imported.user_id, imported.head.profile, imported.head.editor) == ("alex", TEXT, "import:letta")
    # into a store and out again as Letta: still an agent file Letta's type reads, with the same text
    store = Store(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        tenant = store.tenant("t").id
        store.import_user(tenant, imported)
        again = AgentFileSchema.model_validate_json(get_format("letta").dump(store.export_user(tenant, "alex")))
    finally:
        store.close()
    assert again.blocks[0].value == TEXT and again.blocks[0].metadata["user_id"] == "alex"


# ------------------------------------------------------------------------------------------------ mem0
@pytest.fixture(scope="module")
def mem0(tmp_path_factory):
    """mem0 imported with its telemetry off and its home in a temporary folder (it reads both once, when
    first imported), and a real `Memory`: a local Qdrant, SQLite history, and an OpenAI-compatible embedder
    on loopback that gives each text a fixed vector (mem0 calls it for every memory it stores)."""
    home = tmp_path_factory.mktemp("mem0")
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        mp.setenv("MEM0_TELEMETRY", "False")
        mp.setenv("MEM0_DIR", str(home / "home"))
        warnings.simplefilter("ignore", DeprecationWarning)  # mem0's pydantic v1-style configs
        from mem0 import Memory
        from mem0.configs.base import MemoryItem

    dims = 8
    app = FastAPI()

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> dict:
        body = await request.json()
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i,
                 "embedding": [b / 255 for b in hashlib.sha256(str(t).encode()).digest()[:dims]]}
                for i, t in enumerate(texts)]
        return {"object": "list", "data": data, "model": body.get("model", ""),
                "usage": {"prompt_tokens": 0, "total_tokens": 0}}

    with Loopback(app) as url:
        openai = {"api_key": "loopback", "openai_base_url": f"{url}/v1"}
        memory = Memory.from_config({
            "embedder": {"provider": "openai", "config": {**openai, "model": "loopback", "embedding_dims": dims}},
            "llm": {"provider": "openai", "config": openai},  # built, never called: every add is infer=False
            "vector_store": {"provider": "qdrant", "config": {"path": str(home / "qdrant"), "collection_name": "t",
                                                              "embedding_model_dims": dims}},
            "history_db_path": str(home / "history.db"),
        })
        yield SimpleNamespace(Memory=memory, MemoryItem=MemoryItem)
        memory.vector_store.client.close()
        memory._telemetry_vector_store.client.close()


def test_each_memory_we_write_is_a_mem0_memory_item(doc, mem0):
    results = json.loads(get_format("mem0").dump(doc))["results"]
    items = [mem0.MemoryItem.model_validate(m) for m in results]
    assert [i.memory for i in items] == [s for s, _ in statements(doc.head.profile)]
    assert all(i.hash == hashlib.md5(i.memory.encode()).hexdigest() for i in items)  # as mem0 hashes them
    assert all(set(m) <= set(mem0.MemoryItem.model_fields) | MEM0_PROMOTED for m in results)
    assert {m["user_id"] for m in results} == {doc.user_id}
    assert "".join(i.memory + i.metadata["after"] for i in items) == doc.head.profile


def test_our_memories_go_into_mem0_and_its_get_all_comes_back_as_the_same_profile(doc, mem0):
    user = f"{doc.user_id}-{len(doc.head.profile)}"  # one mem0 user per document: the Memory is shared
    for m in json.loads(get_format("mem0").dump(doc))["results"]:
        added = mem0.Memory.add([{"role": "user", "content": m["memory"]}], user_id=user, metadata=m["metadata"],
                                infer=False)  # store the statement as it is, no LLM
        assert [r["memory"] for r in added["results"]] == [m["memory"]]
    exported = mem0.Memory.get_all(user_id=user)
    kept = [mem0.MemoryItem.model_validate(m) for m in exported["results"]]
    assert sorted(i.memory for i in kept) == sorted(s for s, _ in statements(doc.head.profile))
    back = read_document(json.dumps(exported), "mem0.json")
    assert (back.user_id, back.head.profile, back.head.editor) == (user, doc.head.profile, "import:mem0")


def test_memories_mem0_made_itself_import_oldest_first(mem0):
    said = ["Prefers tea to coffee.", "Runs every morning.", "Reads science fiction."]
    for text in said:
        mem0.Memory.add([{"role": "user", "content": text}], user_id="alex", infer=False)
    exported = mem0.Memory.get_all(user_id="alex")  # Qdrant lists them by id, not in the order added
    assert sorted(m["memory"] for m in exported["results"]) == sorted(said)
    doc = read_document(json.dumps(exported), "alex.json")
    assert (doc.user_id, doc.head.profile, doc.head.editor) == ("alex", " ".join(said), "import:mem0")
    # and out again: prefscribe's own export of that user is a list of MemoryItems, one per statement
    out = json.loads(get_format("mem0").dump(doc))["results"]
    assert [mem0.MemoryItem.model_validate(m).memory for m in out] == said
