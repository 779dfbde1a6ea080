"""Merge: the teacher joins the validated candidates into one reasoning and one summary."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..llm.base import Completion, Conversation
from ..prompts import PromptSet, parse_profile
from ..prompts.parse import ParseFailure
from ._generate import MENTIONS_TARGET, Candidate, _short, leaks
from ._targets import Target

# The SFT prompt shows interactions, not candidates: a completion talking about them teaches nonsense.
REFERS_TO_CANDIDATES = "refers to the candidates"
_CANDIDATES = re.compile(r"\bcandidates?\b", re.IGNORECASE)


@dataclass(frozen=True)
class Merged:
    reasoning: str
    summary: str


def merge_messages(prompts: PromptSet, candidates: list[Candidate]) -> Conversation:
    return prompts.synth_merge_messages([(c.reasoning, c.summary) for c in candidates])


def parse_merge(completion: Completion, targets: list[Target]) -> Merged | str:
    """The merged result, or why it fails. A merge without reasoning fails too: the SFT completion is
    reasoning then summary."""
    if completion.finish_reason == "error":
        return f"teacher call failed: {completion.error or 'unknown error'}"
    parsed = parse_profile(completion.text, "reasoning", completion.finish_reason)
    if isinstance(parsed, ParseFailure):
        return _short(parsed.error)
    if not parsed.reasoning:
        return "empty reasoning"
    if leaks(f"{parsed.reasoning}\n{parsed.profile}", targets):
        return MENTIONS_TARGET
    if _CANDIDATES.search(f"{parsed.reasoning}\n{parsed.profile}"):
        return REFERS_TO_CANDIDATES
    return Merged(parsed.reasoning, parsed.profile)
