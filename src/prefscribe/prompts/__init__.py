"""Prompt templates (one versioned set of files for every role; a folder of the same names overrides it),
history rendering within a token budget, and output parsing (profiles, judge answers) with explicit
failures. The template set's version is part of every cache key."""

from .parse import ParsedProfile, ParseFailure, parse_profile, parse_selection
from .templates import JUDGE_OPTIONS, JUDGE_PREFILL, PromptSet, RenderedHistory, Style, clip_item, get_prompts

__all__ = ["JUDGE_OPTIONS", "JUDGE_PREFILL", "ParseFailure", "ParsedProfile", "PromptSet", "RenderedHistory",
           "Style", "clip_item", "get_prompts", "parse_profile", "parse_selection"]
