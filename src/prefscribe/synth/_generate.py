"""Target-aware generation: the teacher summarizes the history with a later pair in view (no label), and
what it writes is checked for leaks of that pair before anything else sees it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..llm.base import Completion, Conversation
from ..prompts import PromptSet, RenderedHistory, parse_profile
from ..prompts.parse import ParseFailure
from ._targets import Target

MENTIONS_TARGET = "mentions a target item"
# A key shorter than this is a common phrase ("Fiction."), not evidence that the item was copied.
MIN_KEY_CHARS = 12
KEY_CHARS = 60
# The teacher prompt calls the pair "Item A" / "Item B" and "a later decision": none of that may reach
# a training example, whose prompt has no such pair. (Case-sensitive: "an item a user likes" is prose.)
_MARKERS = re.compile(r"\bItem [AB]\b|\b[Ll]ater (decision|choice)\b")
_YEAR = re.compile(r"\s*\(\d{4}\)\s*$")
@dataclass(frozen=True)
class Candidate:
    target: Target
    reasoning: str | None
    summary: str


def generation_messages(prompts: PromptSet, rendered: RenderedHistory, past: str | None,
                        target: Target) -> Conversation:
    item_a, item_b = target.shown
    return prompts.synth_generate_messages(rendered, past, target.interaction.context, item_a, item_b)


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def item_keys(item: str) -> list[str]:
    """The parts of an item a copy would reproduce: a MovieLens title without its genres (with and without
    its year), or the first characters of a longer text. Keys too short to tell a copy from a common
    phrase ("Fiction.", "Contact") are left out here; `short_title` covers short catalogue titles."""
    head = item.split(" — ")[0]
    keys = {_norm(text)[:KEY_CHARS].strip() for text in (head, _YEAR.sub("", head))}
    return sorted(k for k in keys if len(k) >= MIN_KEY_CHARS)


def short_title(item: str) -> re.Pattern | None:
    """A short catalogue title ("Contact (1997) — Drama, Sci-Fi"): matched as a whole, case-sensitive word
    ("Contact", not "contact sports"). Only for title-like items (a year or a genre tail), since a short
    answer ("Fiction.") is a common phrase, not a name."""
    head = item.split(" — ")[0]
    title = _YEAR.sub("", head).strip()
    if title == head.strip() and " — " not in item:
        return None
    if not 4 <= len(title) < MIN_KEY_CHARS:
        return None
    return re.compile(rf"(?<!\w){re.escape(title)}(?!\w)")


def leaks(text: str, targets: list[Target]) -> bool:
    """Does `text` name one of the targets' items, or refer to the teacher's later pair?"""
    if _MARKERS.search(text):
        return True
    flat = _norm(text)
    for target in targets:
        for item in target.shown:
            if any(key in flat for key in item_keys(item)):
                return True
            pattern = short_title(item)
            if pattern and pattern.search(text):
                return True
    return False


def parse_candidate(completion: Completion, target: Target) -> Candidate | str:
    """A candidate, or the reason it is dropped."""
    if completion.finish_reason == "error":
        return f"teacher call failed: {completion.error or 'unknown error'}"
    parsed = parse_profile(completion.text, "reasoning", completion.finish_reason)
    if isinstance(parsed, ParseFailure):
        return _short(parsed.error)
    if leaks(f"{parsed.reasoning or ''}\n{parsed.profile}", [target]):
        return MENTIONS_TARGET
    return Candidate(target, parsed.reasoning, parsed.profile)


def _short(error: str) -> str:
    """Parse errors worded for the funnel, where they are counted by reason."""
    return error.replace(": there is no summary", "").replace(" (raise max_new_tokens)", "").strip()
