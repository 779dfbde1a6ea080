"""Prompt templates (one versioned set for every role), history rendering, and output parsing."""

from .parse import ParsedProfile, ParseFailure, parse_profile, parse_selection
from .templates import JUDGE_OPTIONS, JUDGE_PREFILL, PromptSet, RenderedHistory, Style, get_prompts

__all__ = ["JUDGE_OPTIONS", "JUDGE_PREFILL", "ParseFailure", "ParsedProfile", "PromptSet", "RenderedHistory",
           "Style", "get_prompts", "parse_profile", "parse_selection"]
