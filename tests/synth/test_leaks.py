"""Leak checks on what the teacher writes: table-driven."""

from __future__ import annotations

import pytest

from prefscribe.llm.base import Completion
from prefscribe.schema import Interaction
from prefscribe.synth import (
    MENTIONS_TARGET,
    REFERS_TO_CANDIDATES,
    Merged,
    Target,
    item_keys,
    leaks,
    parse_candidate,
    parse_merge,
)

MOVIE = Target(7, Interaction(chosen="Man on a Ledge (2012) — Crime, Thriller",
                              rejected="Contact (1997) — Drama, Sci-Fi"), 0.95, True)
ANSWER = Target(3, Interaction(context="Explain photosynthesis.",
                               chosen="Plants use sunlight, water and carbon dioxide to make sugar and oxygen.",
                               rejected="Fiction."), 0.95, False)


@pytest.mark.parametrize("item, keys", [
    ("Man on a Ledge (2012) — Crime, Thriller", ["man on a ledge", "man on a ledge (2012)"]),
    ("Contact (1997) — Drama, Sci-Fi", ["contact (1997)"]),  # "contact" alone is a common word
    ("Fiction.", []),
    ("Plants use sunlight, water and carbon dioxide to make sugar and oxygen.",
     ["plants use sunlight, water and carbon dioxide to make sugar"]),
])
def test_item_keys(item, keys):
    assert item_keys(item) == keys


@pytest.mark.parametrize("text, leaked", [
    ("The user likes tense crime thrillers.", False),
    ("The user would enjoy MAN ON A LEDGE, a thriller.", True),
    ("Between Item A and Item B the user...", True),
    ("For the later decision, think of thrillers.", True),
    ("The user prefers an item a friend recommended.", False),  # prose, not the teacher's label
    ("The user likes contact sports films and fiction.", False),
    ("Like Contact (1997), it is thoughtful.", True),
    ("They prefer thrillers like Basic Instinct and Contact.", True),  # seen in the embedded-model run
    ("Avoids contact-heavy sports dramas.", False),
])
def test_leaks_in_movie_text(text, leaked):
    assert leaks(text, [MOVIE]) is leaked


def test_leaks_in_long_answers():
    assert leaks("They like: plants use sunlight,  water and carbon dioxide to make sugar and more", [ANSWER])
    assert not leaks("They like clear explanations of biology.", [ANSWER])


@pytest.mark.parametrize("text, finish, expected", [
    ("<think>r</think>\nLikes thrillers.", "stop", ("r", "Likes thrillers.")),
    ("<think>r</think>\nLikes Man on a Ledge.", "stop", MENTIONS_TARGET),
    ("<think>r never ends", "length", "no </think> in the reply (cut off by the token limit)"),
    ("Likes thrillers.", "stop", "no </think> in the reply (the model never closed it)"),
    ("<think>r</think>\nLikes thrillers and", "length", "summary cut off by the token limit"),
    ("<think>r</think>   ", "stop", "empty summary after </think>"),
])
def test_parse_candidate(text, finish, expected):
    result = parse_candidate(Completion(text=text, finish_reason=finish), MOVIE)
    if isinstance(expected, tuple):
        assert (result.reasoning, result.summary) == expected and result.target == MOVIE
    else:
        assert result == expected


@pytest.mark.parametrize("text, expected", [
    ("<think>Both analyses agree on thrillers.</think>\nLikes thrillers.", Merged("Both analyses agree on thrillers.",
                                                                                 "Likes thrillers.")),
    ("<think>Candidate 2 adds drama.</think>\nLikes thrillers.", REFERS_TO_CANDIDATES),
    ("<think></think>\nLikes thrillers.", "empty reasoning"),
    ("<think>x</think>\nLikes Contact (1997) — Drama, Sci-Fi... and Man on a Ledge", MENTIONS_TARGET),
])
def test_parse_merge(text, expected):
    assert parse_merge(Completion(text=text), [MOVIE]) == expected


@pytest.mark.parametrize("text, summary", [
    ("<think>r</think>\nSummary:\nLikes thrillers.", "Likes thrillers."),
    ("<think>r</think>\n**Summary:** Likes thrillers.", "Likes thrillers."),
    ("<think>r</think>\nSummary of taste: thrillers.", "Summary of taste: thrillers."),
])
def test_summary_label_is_dropped(text, summary):
    assert parse_candidate(Completion(text=text), MOVIE).summary == summary
    assert parse_merge(Completion(text=text), [MOVIE]).summary == summary


def test_short_answers_are_not_names():
    fiction = Target(1, Interaction(chosen="Non-fiction.", rejected="Fiction."), 0.95, True)
    assert not leaks("The user prefers Fiction. They like stories.", [fiction])


def test_failed_calls_are_reasons():
    assert parse_candidate(Completion(text="", finish_reason="error", error="timeout"), MOVIE) == \
        "teacher call failed: timeout"
