import pytest

from prefscribe.errors import InputError
from prefscribe.prompts import (
    ParsedProfile,
    ParseFailure,
    PromptSet,
    get_prompts,
    parse_profile,
    parse_selection,
)
from prefscribe.schema import Interaction


def words(text: str) -> int:
    return len(text.split())


def test_positive_only_and_contextless_rendering():
    prompts = get_prompts()
    text = prompts.render_history([Interaction(chosen="Moon (2009)"),
                                   Interaction(context="Why?", chosen="Because.", rejected="No.")], None, words).text
    assert "### Interaction 1" in text and "### Interaction 2" in text
    first, second = text.split("### Interaction 2")
    assert "QUERY" not in first and "no rejected item" in first and "REJECTED" not in first
    assert "QUERY: Why?" in second and "REJECTED ITEM BY THE USER: No." in second


def test_budget_keeps_the_most_recent_and_says_how_many_were_cut():
    prompts = get_prompts()
    history = [Interaction(chosen=f"item {i}") for i in range(50)]
    one = words(prompts.render_interaction(50, history[-1]))
    rendered = prompts.render_history(history, budget_tokens=one * 10, count_tokens=words)
    assert rendered.kept == 10 and rendered.omitted == 40
    assert "item 40" in rendered.text and "item 49" in rendered.text and "item 39" not in rendered.text
    messages = prompts.inference_messages(rendered, None, "direct")
    assert "40 earlier interactions omitted" in messages[1]["content"]
    assert "Not Provided." in messages[1]["content"]


def test_a_history_far_longer_than_the_context_is_cut_in_one_pass():
    """Only the interactions that fit (and the first that does not) are measured; the speed is in
    bench/bench_render.py."""
    prompts = get_prompts()
    history = [Interaction(chosen="word " * 50, rejected="other " * 50) for _ in range(20000)]
    counted = []

    def count(text: str) -> int:
        counted.append(text)
        return words(text)

    rendered = prompts.render_history(history, budget_tokens=2000, count_tokens=count)
    assert rendered.kept < 20 and rendered.kept + rendered.omitted == 20000
    assert len(counted) == rendered.kept + 1  # newest first, stopping at the first that does not fit


def test_past_summary_changes_the_request():
    prompts = get_prompts()
    rendered = prompts.render_history([Interaction(chosen="x")], None, words)
    update = prompts.inference_messages(rendered, "Likes x.", "reasoning")
    assert "Likes x." in update[1]["content"] and "Merge the past summary" in update[1]["content"]
    assert "<think>" in update[0]["content"]


def test_override_folder_changes_version(tmp_path):
    builtin = get_prompts()
    for source in builtin.folder.iterdir():
        (tmp_path / source.name).write_text(source.read_text())
    (tmp_path / "judge_system.txt").write_text("Pick one. Reply with JSON.")
    custom = PromptSet(tmp_path)
    assert custom.version != builtin.version and custom.version.startswith("custom+")
    assert custom.judge_messages(None, None, "a", "b")[0]["content"] == "Pick one. Reply with JSON."
    (tmp_path / "interaction.j2").unlink()
    with pytest.raises(InputError, match="interaction.j2"):
        PromptSet(tmp_path)


@pytest.mark.parametrize("text, style, finish, expected", [
    ("<think>hmm</think>\nLikes short answers.", "reasoning", "stop", ParsedProfile("Likes short answers.", "hmm")),
    ("<think>still thinking about", "reasoning", "length", "no </think>"),
    ("I think the user likes cats.", "reasoning", "stop", "no </think>"),
    ("<think>x</think>   ", "reasoning", "stop", "empty summary"),
    ("Prefers sci-fi. Avoids romance.", "direct", "stop", ParsedProfile("Prefers sci-fi. Avoids romance.", None)),
    ("Preference summary: Prefers sci-fi.", "direct", "stop", ParsedProfile("Prefers sci-fi.", None)),
    ("**Preference summary:** Prefers sci-fi.", "direct", "stop", ParsedProfile("Prefers sci-fi.", None)),
    ("Summary: Prefers sci-fi.", "direct", "stop", ParsedProfile("Prefers sci-fi.", None)),
    ("### User Preferences\n- Prefers sci-fi.", "direct", "stop", ParsedProfile("- Prefers sci-fi.", None)),
    ("<think>x</think>\n**Summary**\nPrefers sci-fi.", "reasoning", "stop", ParsedProfile("Prefers sci-fi.", "x")),
    ("Preferences for sci-fi are strong.", "direct", "stop",
     ParsedProfile("Preferences for sci-fi are strong.", None)),
    ("Summary:", "direct", "stop", "empty summary"),
    ("Prefers sci-fi. Avoids rom", "direct", "length", ParsedProfile("Prefers sci-fi.", None)),
    ("Prefers sci-fi and", "direct", "length", "before one full sentence"),
    ('Prefers "Arrival." Then "Alien', "direct", "length", ParsedProfile('Prefers "Arrival."', None)),
    ("Likes (mostly sci-fi.) Avoids rom", "direct", "length", ParsedProfile("Likes (mostly sci-fi.)", None)),
    ("<think>unclosed", "direct", "stop", "no </think>"),
])
def test_parse_profile(text, style, finish, expected):
    result = parse_profile(text, style, finish)
    if isinstance(expected, str):
        assert isinstance(result, ParseFailure) and expected in result.error and result.raw == text
    else:
        assert result == expected


@pytest.mark.parametrize("text, expected", [
    ('{"selection": "Item A"}', "A"),
    ('```json\n{"selection": "Item B"}\n```', "B"),
    ('{"selection": "B"}', "B"),
    ('"selection": "Item A', "A"),
    ("I would pick Item B because it is short.", "B"),
    ("<think>Item A or Item B?</think>{\"selection\": \"Item B\"}", "B"),
    ("A", "A"),
    ("Item A and Item B are both fine.", None),
    ("I cannot decide.", None),
    ("", None),
])
def test_parse_selection(text, expected):
    assert parse_selection(text) == expected
