"""A Letta agent file (.af): a minimal agent whose `human` memory block holds the profile. The layout is
Letta's AgentFileSchema (agents, groups, blocks, files, sources, tools, mcp_servers, metadata): one agent,
one block, everything else empty. Import reads the `human` block's value back as the profile."""

from __future__ import annotations

import json

from ..errors import InputError
from ._prefscribe import parse_json
from ._records import UserDocument, VersionRecord
from ._registry import Format, register

# The human block's character limit in Letta's classic defaults (CORE_MEMORY_HUMAN_CHAR_LIMIT = 5000; newer
# servers allow more). A profile that fits here fits everywhere; the limit travels in the block itself.
HUMAN_LIMIT = 5000
HUMAN_DESCRIPTION = ("The human block: what this user prefers, written and kept current by prefscribe from "
                     "their interactions.")


def dump(doc: UserDocument) -> str:
    text = doc.head.profile if doc.head else ""
    if len(text) > HUMAN_LIMIT:
        raise InputError(f"the profile has {len(text)} characters; a Letta human block holds {HUMAN_LIMIT}: "
                         "shorten it (edit the profile) before exporting to Letta", field="profile")
    provenance = {"source": "prefscribe", "user_id": doc.user_id,
                  "version": str(doc.head.version) if doc.head else ""}
    # Only fields that Letta's published BlockSchema declares (letta-client's types; the test checks it):
    # `template_name` is left out, the server takes None for it.
    block = {"id": "block-0", "label": "human", "value": text, "limit": HUMAN_LIMIT,
             "description": HUMAN_DESCRIPTION, "metadata": provenance, "read_only": False,
             "is_template": False, "preserve_on_migration": False}
    agent = {"id": "agent-0", "name": f"prefscribe-{doc.user_id}", "agent_type": "memgpt_v2_agent",
             "description": f"Carries the preference profile of user {doc.user_id} (exported by prefscribe).",
             "system": None, "block_ids": ["block-0"], "memory_blocks": [], "tool_ids": [], "tools": [],
             "source_ids": [], "tags": ["prefscribe"], "metadata": provenance, "llm_config": None,
             "embedding_config": None, "include_base_tools": True, "messages": [], "in_context_message_ids": [],
             "files_agents": [], "group_ids": []}
    agent_file = {"agents": [agent], "groups": [], "blocks": [block], "files": [], "sources": [], "tools": [],
                  "mcp_servers": [], "metadata": {"exported_by": "prefscribe"},
                  "created_at": doc.head.created_at if doc.head else None}
    return json.dumps(agent_file, indent=2, ensure_ascii=False) + "\n"


def _human_block(data: object, source: str) -> tuple[int, dict]:
    if not isinstance(data, dict) or not isinstance(data.get("blocks"), list):
        raise InputError("not a Letta agent file: expected an object with a list of blocks", path=source,
                         field="blocks")
    humans = [(i, b) for i, b in enumerate(data["blocks"]) if isinstance(b, dict) and b.get("label") == "human"]
    if not humans:
        raise InputError("the agent file has no block labelled 'human' (the user's memory)", path=source,
                         field="blocks")
    return humans[0]


def load(text: str, source: str) -> UserDocument:
    data = parse_json(text, source)
    i, block = _human_block(data, source)
    value = block.get("value")
    if not isinstance(value, str) or not value.strip():
        raise InputError("the human block's value must be the profile text", path=source, field=f"blocks[{i}].value")
    meta = block.get("metadata") if isinstance(block.get("metadata"), dict) else {}
    agents = data.get("agents") or [{}]
    user_id = meta.get("user_id") or (agents[0].get("name") if isinstance(agents[0], dict) else None) or "letta-user"
    version = VersionRecord(version=1, author="person", kind="edit", editor="import:letta", profile=value)
    return UserDocument(user_id=user_id, versions=[version])


def sniff(data: object) -> bool:
    return isinstance(data, dict) and "agents" in data and "blocks" in data


register(Format("letta", "application/json", ".af", dump, load, sniff))
