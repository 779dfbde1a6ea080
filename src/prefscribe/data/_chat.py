"""Chat transcripts (PersonaMem, HiCUPID) as interactions.

The representation, and why:
- each **user message** becomes one interaction whose `chosen` is that message. In these benchmarks the
  preference evidence is what the user says about themselves ("I've gone vegan", "my dog Max..."); the
  assistant's replies were written by a model, so calling them "chosen by the user" would attribute the
  model's words to the user.
- its `context` is the assistant message right before it (what the user was answering), or None for a
  user message that opens the conversation or follows another user message.
- `rejected` is None: a transcript has no alternative the user turned down (a positive-only signal).
- **system** messages are dropped: they are instructions, and PersonaMem's carries the hidden persona
  that is the benchmark's answer. An assistant message that no user message answers (the last one)
  is not evidence either. Both are counted, never hidden: see `ChatHistory`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..schema import Interaction


@dataclass
class ChatHistory:
    history: list[Interaction]
    dropped_system: int = 0
    unanswered_assistant: int = 0
    roles: dict[str, int] = field(default_factory=dict)

    def meta(self) -> dict[str, Any]:
        return {"history_format": "chat: user message = chosen, preceding assistant message = context",
                "chat_messages": dict(self.roles), "chat_system_dropped": self.dropped_system,
                "chat_assistant_unanswered": self.unanswered_assistant}


def message_text(content: Any, *, path: Path, line: int | None, where: str) -> str:
    """A message's text: a string, or OpenAI-style parts of which the text parts are kept."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        texts = [p["text"] for p in content if p.get("type") == "text" and isinstance(p.get("text"), str)]
        if texts:
            return "\n".join(texts)
    raise InputError("message content must be text (or a list of text parts), found "
                     f"{type(content).__name__}", path=str(path), line=line, field=f"{where}.content")


def chat_to_history(messages: Any, *, path: Path, line: int | None, field_name: str,
                    domain: str | None = None) -> ChatHistory:
    if not isinstance(messages, list):
        raise InputError(f"expected a list of chat messages, found {type(messages).__name__}",
                         path=str(path), line=line, field=field_name)
    out = ChatHistory(history=[])
    previous_assistant: str | None = None
    for index, message in enumerate(messages):
        where = f"{field_name}[{index}]"
        if not isinstance(message, dict):
            raise InputError(f"expected a message object, found {type(message).__name__}", path=str(path),
                             line=line, field=where)
        role = message.get("role")
        if not isinstance(role, str):
            raise InputError("missing role", path=str(path), line=line, field=f"{where}.role")
        if "content" not in message:
            raise InputError("missing content", path=str(path), line=line, field=f"{where}.content")
        text = message_text(message["content"], path=path, line=line, where=where)
        out.roles[role] = out.roles.get(role, 0) + 1
        if role == "system":
            out.dropped_system += 1
        elif role == "assistant":
            if previous_assistant is not None:  # two replies in a row: the earlier one answered nothing
                out.unanswered_assistant += 1
            previous_assistant = text if text.strip() else None
        elif role == "user":
            if not text.strip():
                raise InputError("user message is blank", path=str(path), line=line, field=f"{where}.content")
            out.history.append(Interaction(context=previous_assistant, chosen=text, domain=domain,
                                           meta={"message_index": index}))
            previous_assistant = None
        else:
            raise InputError(f"unknown role '{role}' (expected user, assistant or system)", path=str(path),
                             line=line, field=f"{where}.role")
    if previous_assistant is not None:
        out.unanswered_assistant += 1
    return out
