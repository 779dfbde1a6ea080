"""mem0 memories: one memory per statement of the profile, with metadata saying where it came from, in the
shape mem0's `get_all` returns ({"results": [{"id", "memory", "hash", "user_id", "metadata", ...}]}, each
memory a mem0 MemoryItem). Import reads that shape (or a bare list of memories) and joins the memories into
one profile text."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import UTC, datetime

from ..errors import InputError
from ._prefscribe import parse_json
from ._records import UserDocument, VersionRecord
from ._registry import Format, register

# A statement ends at . ! or ? followed by whitespace, or at a line break; the whitespace after it is kept
# in the memory's metadata, so our own export joins back to the very same text.
_STATEMENT = re.compile(r"(.+?(?:[.!?](?=\s)|$|(?=\n)))(\s*)", re.DOTALL)
_NAMESPACE = uuid.UUID("6f1e3a52-5b0c-4c55-9d1e-7a2f8b9c0d11")  # makes memory ids stable across exports


def statements(text: str) -> list[tuple[str, str]]:
    """(statement, the whitespace after it) in order; joining them gives `text` back."""
    lead = text[: len(text) - len(text.lstrip())]
    out = [(m.group(1), m.group(2)) for m in _STATEMENT.finditer(text.lstrip())]
    if lead and out:
        out[0] = (lead + out[0][0], out[0][1])
    return out


def dump(doc: UserDocument) -> str:
    head = doc.head
    results = []
    for i, (memory, after) in enumerate(statements(head.profile) if head else []):
        results.append({
            "id": str(uuid.uuid5(_NAMESPACE, f"{doc.user_id}\0{head.version}\0{i}")),
            # mem0 keys a memory's text by its MD5 (MemoryItem.hash: how it spots a memory it already has)
            "memory": memory, "hash": hashlib.md5(memory.encode(), usedforsecurity=False).hexdigest(),
            "user_id": doc.user_id, "agent_id": None, "run_id": None,
            "metadata": {"source": "prefscribe", "profile_version": head.version, "statement": i, "after": after,
                         "author": head.author, "model": head.model},
            "categories": ["preferences"], "created_at": head.created_at, "updated_at": head.created_at})
    return json.dumps({"results": results}, indent=2, ensure_ascii=False) + "\n"


def _made_at(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        made = datetime.fromisoformat(value)
    except ValueError:
        return None
    return made if made.tzinfo else made.replace(tzinfo=UTC)


def _reading_order(memories: list[dict]) -> list[int]:
    """Each memory's place in the profile. mem0's `get_all` lists memories in its vector store's order
    (Qdrant's: by id), not in the order they were made: when every memory says when it was made, oldest
    first; otherwise as the file lists them."""
    made = [_made_at(m.get("created_at")) for m in memories]
    if any(t is None for t in made):
        return list(range(len(memories)))
    place = [0] * len(memories)
    for rank, i in enumerate(sorted(range(len(memories)), key=lambda i: made[i])):
        place[i] = rank
    return place


def load(text: str, source: str) -> UserDocument:
    data = parse_json(text, source)
    memories = data.get("results") if isinstance(data, dict) else data
    if not isinstance(memories, list):
        raise InputError("not a mem0 export: expected {\"results\": [memories]} or a list of memories",
                         path=source, field="results")
    for i, m in enumerate(memories):
        if not isinstance(m, dict) or not isinstance(m.get("memory"), str) or not m["memory"].strip():
            raise InputError("each memory needs its text in 'memory'", path=source, field=f"results[{i}].memory")
    parts, user_ids, place = [], set(), _reading_order(memories)
    for i, m in enumerate(memories):
        meta = m.get("metadata") if isinstance(m.get("metadata"), dict) else {}
        ours = meta.get("source") == "prefscribe" and isinstance(meta.get("after"), str)
        parts.append((meta.get("statement", i) if ours else place[i], m["memory"], meta["after"] if ours else " "))
        if m.get("user_id"):
            user_ids.add(m["user_id"])
    if not parts:
        raise InputError("the export holds no memories", path=source, field="results")
    if len(user_ids) > 1:
        raise InputError(f"the memories belong to several users ({', '.join(sorted(user_ids))}): export one user",
                         path=source, field="results[].user_id")
    parts.sort(key=lambda p: p[0])
    profile = "".join(memory + after for _, memory, after in parts)
    if profile != profile.rstrip() and not all(isinstance(m.get("metadata"), dict) and
                                               m["metadata"].get("source") == "prefscribe" for m in memories):
        profile = profile.rstrip()  # foreign memories were joined by spaces: none after the last
    version = VersionRecord(version=1, author="person", kind="edit", editor="import:mem0", profile=profile)
    return UserDocument(user_id=next(iter(user_ids), "mem0-user"), versions=[version])


def sniff(data: object) -> bool:
    if isinstance(data, dict):
        data = data.get("results")
    return isinstance(data, list) and bool(data) and all(isinstance(m, dict) and "memory" in m for m in data)


register(Format("mem0", "application/json", ".json", dump, load, sniff))
