"""The formats registry on documents built by hand: each format writes what its consumer reads, reading
back gives the profile text exactly, and a bad file is refused naming the record and the field."""

from __future__ import annotations

import json

import pytest

from prefscribe.errors import InputError
from prefscribe.formats import FORMATS, UserDocument, VersionRecord, get_format, read_document
from prefscribe.formats._letta import HUMAN_LIMIT

TEXT = "Likes short, practical answers.  Avoids jargon!\nPrefers science fiction; dislikes horror?\n\nNo dot"


def _doc(text: str = TEXT) -> UserDocument:
    versions = [VersionRecord(version=1, author="model", kind="update", editor="hf:x", profile="Old.", covers=2,
                              first_seq=1, last_seq=2, covered_through=2, created_at="2026-01-02T03:04:05.123456Z"),
                VersionRecord(version=2, parent=1, author="person", kind="edit", editor="ann", profile=text,
                              covers=2, covered_through=2, created_at="2026-01-03T00:00:00Z")]
    items = [{"seq": i + 1, "chosen": f"c{i}", "rejected": None, "created_at": "2026-01-01T00:00:00Z"}
             for i in range(2)]
    return UserDocument(user_id="u1", versions=versions, interactions=items)


def test_the_registry_has_the_four_formats_and_names_them_on_a_typo():
    assert sorted(FORMATS) == ["json", "letta", "markdown", "mem0"]
    with pytest.raises(InputError, match="json, letta, markdown, mem0"):
        get_format("yaml")
    with pytest.raises(InputError, match="reading only"):
        read_document("{}", "x.md", "markdown")


@pytest.mark.parametrize("name", ["json", "letta", "mem0"])
def test_each_readable_format_gives_the_profile_text_back_exactly(name):
    text = get_format(name).dump(_doc())
    back = read_document(text, f"file.{name}")  # recognized from the content
    assert back.head.profile == TEXT and back.user_id == "u1"
    if name == "json":
        assert back == _doc() and get_format("json").dump(back) == text


def test_the_letta_file_is_an_agent_file_with_a_human_block_within_its_limit():
    af = json.loads(get_format("letta").dump(_doc()))
    assert set(af) >= {"agents", "groups", "blocks", "files", "sources", "tools", "mcp_servers", "metadata"}
    (agent,), (block,) = af["agents"], af["blocks"]
    assert agent["block_ids"] == [block["id"]] and block["label"] == "human"
    assert block["value"] == TEXT and block["limit"] == HUMAN_LIMIT and block["metadata"]["user_id"] == "u1"
    with pytest.raises(InputError, match=f"holds {HUMAN_LIMIT}"):
        get_format("letta").dump(_doc("x. " * HUMAN_LIMIT))


def test_mem0_has_one_memory_per_statement_with_provenance_and_reads_foreign_exports():
    memories = json.loads(get_format("mem0").dump(_doc()))["results"]
    assert [m["memory"] for m in memories] == ["Likes short, practical answers.", "Avoids jargon!",
                                               "Prefers science fiction; dislikes horror?", "No dot"]
    assert {m["user_id"] for m in memories} == {"u1"} and memories[0]["metadata"]["profile_version"] == 2
    foreign = [{"id": "a", "memory": "Prefers tea.", "user_id": "alex"}, {"id": "b", "memory": "Runs daily.",
                                                                          "user_id": "alex"}]
    doc = read_document(json.dumps(foreign), "mem0.json")
    assert (doc.user_id, doc.head.profile, doc.head.editor) == ("alex", "Prefers tea. Runs daily.", "import:mem0")
    # mem0 lists memories in its store's order: when each says when it was made, oldest first
    foreign[0]["created_at"], foreign[1]["created_at"] = "2026-05-01T10:00:00-07:00", "2026-05-01T16:00:00Z"
    assert read_document(json.dumps(foreign), "mem0.json").head.profile == "Runs daily. Prefers tea."
    foreign[1]["created_at"] = "yesterday"  # not every one does: as the file lists them
    assert read_document(json.dumps(foreign), "mem0.json").head.profile == "Prefers tea. Runs daily."


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["versions"][1].update(covers="many"), "versions[1].covers"),
    (lambda d: d["versions"][1].update(version=5), "versions[1].version"),
    (lambda d: d["versions"][0].update(author="robot"), "versions[0].author"),
    (lambda d: d["versions"][1].update(created_at="yesterday"), "versions[1].created_at"),
    (lambda d: d["versions"][0].update(covered_through=9), "versions[0].covered_through"),
    (lambda d: d["interactions"][1].update(seq=7), "interactions[1].seq"),
    (lambda d: d["interactions"][0].pop("chosen"), "interactions[0].chosen"),
    (lambda d: d.update(format_version=2), "format_version"),
])
def test_a_bad_document_names_the_record_and_the_field(mutate, field):
    data = json.loads(get_format("json").dump(_doc()))
    mutate(data)
    with pytest.raises(InputError) as caught:
        read_document(json.dumps(data), "user.json")
    assert caught.value.field == field and caught.value.path == "user.json"


def test_markdown_is_for_people():
    md = get_format("markdown").dump(_doc())
    assert md.startswith("# Preference profile of u1\n\n" + TEXT) and "| 2 | person | edit | ann |" in md
