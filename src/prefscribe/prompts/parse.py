"""Parsing model output. Tolerant where the meaning is unambiguous; an explicit failure otherwise,
never a silent guess."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

from .templates import Style

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


@dataclass
class ParsedProfile:
    profile: str
    reasoning: str | None


@dataclass
class ParseFailure:
    error: str
    raw: str


def parse_profile(text: str, style: Style,
                  finish_reason: str = "stop") -> ParsedProfile | ParseFailure:
    """Split a summary reply into reasoning and profile.

    Only the text after the last </think> is the profile. A reasoning reply without </think> was cut off
    (or never finished thinking): it has no profile, and its reasoning must not be passed on as one.
    """
    if THINK_CLOSE in text:
        head, _, tail = text.rpartition(THINK_CLOSE)
        reasoning = head.replace(THINK_OPEN, "").strip() or None
        profile = _clean(tail)
        if not profile:
            return ParseFailure("empty summary after </think>", text)
        if finish_reason == "length":
            return ParseFailure("summary cut off by the token limit (raise max_new_tokens)", text)
        return ParsedProfile(profile, reasoning)
    if style == "reasoning" or THINK_OPEN in text:
        why = "cut off by the token limit" if finish_reason == "length" else "the model never closed it"
        return ParseFailure(f"no </think> in the reply ({why}): there is no summary", text)
    profile = _clean(text)
    if finish_reason == "length":
        # A direct summary cut mid-sentence keeps its complete sentences; with none, it is a failure.
        profile = _complete_sentences(profile)
    if not profile:
        return ParseFailure("empty summary" if finish_reason != "length" else
                            "summary cut off by the token limit before one full sentence", text)
    return ParsedProfile(profile, None)


# A leading label the model put before the profile: "Summary:", "**Preference summary:**", "### User Preferences".
# A bare word is a label only with a colon or alone on its line, so "Preferences for short answers..." is kept.
_HEADING = re.compile(
    r"^[ \t]*(?:#+[ \t]*)?\**[ \t]*(?:the[ \t]+)?(?:user'?s?[ \t]+)?"
    r"(?:preference[ \t]+summary|preference[ \t]+profile|preferences|summary|profile)"
    r"[ \t]*\**[ \t]*(?::[ \t]*\**|\n|$)\s*", re.IGNORECASE)


def _clean(text: str) -> str:
    return _HEADING.sub("", text.strip(), count=1).strip()


def _complete_sentences(text: str) -> str:
    # A sentence may end inside quotes or brackets: 'prefers "Arrival."' is complete.
    ends = [m.end() for m in re.finditer(r"[.!?][\"'\u201d\u2019)\]]*(\s|$)", text)]
    return text[: ends[-1]].strip() if ends else ""


_SELECTION = re.compile(r'"?selection"?\s*:\s*"?\s*(?:item\s*)?([AB])\b', re.IGNORECASE)
_ITEM = re.compile(r"\bitem\s*([AB])\b", re.IGNORECASE)


def parse_selection(text: str) -> Literal["A", "B"] | None:
    """The judge's selection from its reply, or None when it cannot be read unambiguously."""
    stripped = text.strip()
    if THINK_CLOSE in stripped:
        stripped = stripped.rpartition(THINK_CLOSE)[2]
    try:
        obj = json.loads(stripped[stripped.find("{"): stripped.rfind("}") + 1]) if "{" in stripped else None
    except json.JSONDecodeError:
        obj = None
    if isinstance(obj, dict) and isinstance(obj.get("selection"), str):
        match = re.fullmatch(r"\s*(?:item\s*)?([AB])\s*", obj["selection"], re.IGNORECASE)
        if match:
            return match.group(1).upper()  # type: ignore[return-value]
    match = _SELECTION.search(stripped)
    if match:
        return match.group(1).upper()  # type: ignore[return-value]
    letters = {m.group(1).upper() for m in _ITEM.finditer(stripped)}
    if len(letters) == 1:
        return letters.pop()  # type: ignore[return-value]
    if re.fullmatch(r"\(?([AB])\)?\.?", stripped, re.IGNORECASE):
        return stripped.strip("().").upper()  # type: ignore[return-value]
    return None
