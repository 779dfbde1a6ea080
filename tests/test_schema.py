import json
import re
import sys
from contextlib import nullcontext

import pytest
from pydantic import BaseModel, Field, ValidationError

from prefscribe.api_models import NOT_BLANK
from prefscribe.errors import InputError
from prefscribe.schema import WHITESPACE, Interaction, Profile, read_history, read_profile


def write(tmp_path, name, content: bytes | str):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def test_reads_full_and_positive_only_lines(tmp_path):
    path = write(tmp_path, "h.jsonl",
                 '{"context": "q", "chosen": "x", "rejected": "y", "id": "1", "domain": "news"}\n\n'
                 '{"context": null, "chosen": "clicked title"}\n')
    history = read_history(path)
    assert [(h.context, h.chosen, h.rejected) for h in history] == [("q", "x", "y"), (None, "clicked title", None)]
    assert history[0].domain == "news"


@pytest.mark.parametrize("content, line, field, words", [
    ('{"chosen": "a"}\n{"chosen": "b", oops}\n', 2, None, "malformed JSON"),
    ('{"chosen": "a"}\n{"context": "q", "rejected": "y"}\n', 2, "chosen", "Field required"),
    ('{"chosen": ""}\n', 1, "chosen", "non-empty"),
    ('{"chosen": 3}\n', 1, "chosen", "string"),
    ('["chosen"]\n', 1, None, "JSON object"),
    ('{"chosen": "a", "surprise": 1}\n', 1, "surprise", "Extra inputs"),
])
def test_bad_lines_name_file_line_and_field(tmp_path, content, line, field, words):
    path = write(tmp_path, "bad.jsonl", content)
    with pytest.raises(InputError) as info:
        read_history(path)
    err = info.value
    assert (err.path, err.line, err.field) == (str(path), line, field)
    assert words in str(err) and f"{path}:{line}" in str(err)


def test_the_schemas_blank_is_the_validators_blank():
    # The OpenAPI pattern (read by ECMA and Python regex engines), pydantic's Rust regex and the validator's strip()
    # must call the same texts blank: a fuzzer found "\x1c" admitted by the schema and refused as blank.
    spaces = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    assert [ch for ch in map(chr, range(sys.maxunicode + 1)) if re.fullmatch(f"[{WHITESPACE}]", ch)] == spaces

    class Edit(BaseModel):
        text: str = Field(pattern=NOT_BLANK)

    for ch in [*spaces, "\ufeff", "\x1b"]:
        blank = not ch.strip()
        assert (re.fullmatch(NOT_BLANK, f" {ch}\t") is None) is blank
        with pytest.raises(ValidationError) if blank else nullcontext():
            Edit(text=f"{ch}\n")
        with pytest.raises(ValidationError) if blank else nullcontext():
            Interaction(chosen=ch)


def test_empty_history_is_an_error(tmp_path):
    with pytest.raises(InputError, match="empty"):
        read_history(write(tmp_path, "e.jsonl", "\n\n"))


def test_non_utf8_bytes_name_the_line(tmp_path):
    path = write(tmp_path, "latin.jsonl", b'{"chosen": "ok"}\n{"chosen": "caf\xe9"}\n')
    with pytest.raises(InputError, match="UTF-8") as info:
        read_history(path)
    assert info.value.line == 2


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_history(tmp_path / "nope.jsonl")


def test_profile_json_and_plain_text(tmp_path):
    data = {"profile": "Likes sci-fi.", "reasoning": "r", "model": "m", "prompt_version": "v1", "covers": 4,
            "usage": {"prompt_tokens": 1, "completion_tokens": 2}}
    profile = read_profile(write(tmp_path, "p.json", json.dumps(data)))
    assert profile == Profile(**data)
    plain = read_profile(write(tmp_path, "p.txt", "Prefers short answers.\n"))
    assert plain.profile == "Prefers short answers." and plain.author == "person"
    with pytest.raises(InputError, match="field 'profile'"):
        read_profile(write(tmp_path, "bad.json", '{"reasoning": "x"}'))
