"""SFT records: the inference prompt exactly as inference builds it, and the teacher's merged answer."""

from __future__ import annotations

from typing import Any

from ..prompts import PromptSet, RenderedHistory
from ..prompts.parse import THINK_CLOSE, THINK_OPEN
from ._merge import Merged


def completion_text(merged: Merged) -> str:
    return f"{THINK_OPEN}{merged.reasoning}{THINK_CLOSE}\n{merged.summary}"


def sft_record(prompts: PromptSet, rendered: RenderedHistory, past: str | None, merged: Merged, *,
               user_id: str, kind: str, meta: dict[str, Any]) -> dict:
    """A chat-format prompt-completion record (TRL's conversational form).

    prompt: `PromptSet.inference_messages(rendered, past, "reasoning")`, the messages inference sends;
    completion: one assistant message, `<think>reasoning</think>` + newline + summary.
    """
    return {
        "user_id": user_id,
        "kind": kind,  # "scratch" (no past summary) or "update" (past summary + new interactions)
        "prompt": prompts.inference_messages(rendered, past, "reasoning"),
        "completion": [{"role": "assistant", "content": completion_text(merged)}],
        "summary": merged.summary,
        "prompt_version": prompts.version,
        "meta": meta,
    }
