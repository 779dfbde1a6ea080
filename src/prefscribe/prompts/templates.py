"""The one template set used by every role: inference, judging, response generation (and later data
synthesis and training). Templates are files; a directory of the same file names overrides them."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import jinja2

from ..errors import InputError
from ..llm.base import Conversation
from ..schema import Interaction

Style = Literal["reasoning", "direct"]
TEMPLATES = Path(__file__).parent / "templates"  # one folder per built-in version; older ones stay selectable
BUILTIN_VERSION = "v1"
BUILTIN = TEMPLATES / BUILTIN_VERSION
REQUIRED = ("infer_system_reasoning.txt", "infer_system_direct.txt", "infer_user.j2", "interaction.j2",
            "judge_system.txt", "judge_user.j2", "respond_system.j2",
            # SFT data synthesis (target-aware generation, merge)
            "synth_generate_system.txt", "synth_generate_user.j2", "synth_merge_system.txt",
            "synth_merge_user.j2",
            # the `generic` evaluation control: a fixed neutral preference text, versioned with the prompts
            "generic_preference.txt")

# The judge's reply starts with this prefill; the next token is the answer letter.
JUDGE_PREFILL = '{"selection": "Item'
JUDGE_OPTIONS = (" A", " B")
MAX_ITEM_CHARS = 2000  # one very long item must not crowd out the rest of the history


@dataclass
class RenderedHistory:
    text: str
    kept: int      # interactions shown (the most recent ones)
    omitted: int   # older interactions cut to fit the budget


class PromptSet:
    """Templates loaded from a folder. `version` names the content, so caches notice any edit."""

    def __init__(self, folder: str | Path = BUILTIN) -> None:
        self.folder = Path(folder)
        missing = [name for name in REQUIRED if not (self.folder / name).is_file()]
        if missing:
            raise InputError(f"prompt folder lacks {', '.join(missing)} (copy them from {BUILTIN})",
                             path=str(self.folder))
        sources = {name: (self.folder / name).read_text(encoding="utf-8") for name in REQUIRED}
        digest = hashlib.sha256("\0".join(sources[n] for n in REQUIRED).encode()).hexdigest()[:8]
        name = self.folder.name if self.folder.parent == TEMPLATES else "custom"
        self.version = f"{name}+{digest}"
        env = jinja2.Environment(keep_trailing_newline=True, undefined=jinja2.StrictUndefined,
                                 autoescape=False)
        self._templates = {n: env.from_string(src) for n, src in sources.items()}

    def _render(self, name: str, **values) -> str:
        return self._templates[name].render(**values)

    # ------------------------------------------------------------------------------------- inference
    def render_interaction(self, number: int, item: Interaction) -> str:
        return self._render("interaction.j2", number=number, context=clip_item(item.context),
                            chosen=clip_item(item.chosen), rejected=clip_item(item.rejected))

    def render_history(self, history: Sequence[Interaction], budget_tokens: int | None,
                       count_tokens: Callable[[str], int]) -> RenderedHistory:
        """Keep the most recent interactions whose rendered blocks fit `budget_tokens`: one pass from the
        newest backwards, so a long history is cut, never looped on."""
        n = len(history)
        keep = n
        if budget_tokens is not None:
            used, keep = 0, 0
            for offset, item in enumerate(reversed(history)):
                # Numbering changes little in length; measure with the number it would most likely get.
                cost = count_tokens(self.render_interaction(n - offset, item))
                if used + cost > budget_tokens:
                    break
                used, keep = used + cost, keep + 1
        kept = history[n - keep:]
        text = "".join(self.render_interaction(i, item) + "\n" for i, item in enumerate(kept, start=1))
        return RenderedHistory(text=text, kept=keep, omitted=n - keep)

    def inference_messages(self, rendered: RenderedHistory, past: str | None, style: Style) -> Conversation:
        system = self._render(f"infer_system_{style}.txt")
        user = self._render("infer_user.j2", past=past, interactions=rendered.text, omitted=rendered.omitted)
        return [{"role": "system", "content": system.strip()}, {"role": "user", "content": user.strip()}]

    def inference_overhead(self, past: str | None, style: Style, count_tokens: Callable[[str], int]) -> int:
        """Tokens the inference prompt takes besides the interactions themselves."""
        empty = RenderedHistory(text="", kept=0, omitted=1)
        return sum(count_tokens(m["content"]) + 8 for m in self.inference_messages(empty, past, style))

    # ------------------------------------------------------------------------------------------ judge
    def judge_messages(self, context: str | None, preference: str | None, item_a: str, item_b: str,
                       preference_kind: Literal["summary", "history"] = "summary") -> Conversation:
        user = self._render("judge_user.j2", context=clip_item(context), preference=preference,
                            preference_kind=preference_kind, item_a=clip_item(item_a), item_b=clip_item(item_b))
        return [{"role": "system", "content": self._render("judge_system.txt").strip()},
                {"role": "user", "content": user.strip()}]

    def direct_messages(self, history: Sequence[Interaction], context: str | None, item_a: str, item_b: str,
                        budget_tokens: int | None, count_tokens: Callable[[str], int]) -> Conversation:
        """Direct prediction from the raw history (the `raw` setting, TALLRec-style predictors, pruning
        scores): the judge prompt with the rendered interactions in place of a profile."""
        rendered = self.render_history(history, budget_tokens, count_tokens)
        return self.judge_messages(context, rendered.text.strip(), item_a, item_b, preference_kind="history")

    def item_text(self, text: str) -> str:
        """An item as every prompt shows it: cut at MAX_ITEM_CHARS (the likelihood judges score this text)."""
        return clip_item(text)  # type: ignore[return-value]

    def generic_preference(self) -> str:
        """A neutral preference text that describes nobody: the placebo beside a user's own profile."""
        return self._render("generic_preference.txt").strip()

    def respond_messages(self, preference: str | None, context: str) -> Conversation:
        return [{"role": "system", "content": self._render("respond_system.j2", preference=preference).strip()},
                {"role": "user", "content": context}]

    def chat_messages(self, preference: str | None, messages: Conversation) -> Conversation:
        """A chat conversation with the user's profile added as a system message (respond_system.j2, the
        same text `respond` uses) after the caller's own system messages, which keep their say on role and
        format; no profile leaves it as it is."""
        if not preference:
            return list(messages)
        split = next((i for i, m in enumerate(messages) if m.get("role") not in ("system", "developer")),
                     len(messages))
        note = {"role": "system", "content": self._render("respond_system.j2", preference=preference).strip()}
        return [*messages[:split], note, *messages[split:]]

    # ------------------------------------------------------------- SFT data synthesis (METHOD.md section 4)
    # Only the synthesis pipeline uses these; the SFT records it writes use `inference_messages` itself.
    def synth_generate_messages(self, rendered: RenderedHistory, past: str | None, context: str | None,
                                item_a: str, item_b: str) -> Conversation:
        """Target-aware generation: the inference task plus a later pair of items, in the order given and
        with no label. The caller shuffles the pair; nothing here knows which item the user took."""
        user = self._render("synth_generate_user.j2", past=past, interactions=rendered.text,
                            omitted=rendered.omitted, context=clip_item(context), item_a=clip_item(item_a),
                            item_b=clip_item(item_b))
        return [{"role": "system", "content": self._render("synth_generate_system.txt").strip()},
                {"role": "user", "content": user.strip()}]

    def synth_merge_messages(self, candidates: Sequence[tuple[str | None, str]]) -> Conversation:
        """Merge validated (reasoning, summary) candidates into one reasoning and one summary."""
        items = [{"reasoning": reasoning, "summary": summary} for reasoning, summary in candidates]
        user = self._render("synth_merge_user.j2", candidates=items)
        return [{"role": "system", "content": self._render("synth_merge_system.txt").strip()},
                {"role": "user", "content": user.strip()}]


def clip_item(text: str | None, limit: int = MAX_ITEM_CHARS) -> str | None:
    """An item cut to `limit` characters, marked as cut: one long item must not crowd out the rest."""
    if text is None or len(text) <= limit:
        return text
    return text[:limit].rstrip() + " [...]"


@lru_cache(maxsize=8)
def _load(folder: str) -> PromptSet:
    return PromptSet(folder)


def get_prompts(folder: str | Path | None = None) -> PromptSet:
    """The built-in set, or the folder (or built-in version name, e.g. "v1") given here or in PREFSCRIBE_PROMPTS."""
    chosen = str(folder or os.environ.get("PREFSCRIBE_PROMPTS") or BUILTIN)
    if (TEMPLATES / chosen).is_dir() and not Path(chosen).is_dir():
        chosen = str(TEMPLATES / chosen)
    return _load(chosen)
