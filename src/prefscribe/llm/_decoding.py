"""What every local engine does with a Watch (base.Watch), written once: follow each row of a batch as it decodes,
tell the watch each reply's new text, and say when to stop. An engine's decode loop calls `step` once per decode
step (the torch path from a StoppingCriteria, CTranslate2 from its token callback, ort and ov from their own
loops) and `finish` after the batch."""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Sequence

from .base import Watch

log = logging.getLogger("prefscribe.llm")

# The end of a partial reply that the next token may still change: an incomplete UTF-8 character (decoded as
# U+FFFD until its last byte arrives) and trailing whitespace (a tokenizer that cleans up spaces may drop it
# before punctuation). Held back until more text follows, so every piece said is final.
_UNSETTLED = re.compile(r"[\s\ufffd]*\Z")


class Decoding:
    """One batch of a generate call as its engine decodes it. `prompts[row]` is the index (in the call) of the
    batch's row; `eos` ends a row (its reply is the tokens before it, as Completion texts are)."""

    def __init__(self, tokenizer, watch: Watch | None, prompts: Sequence[int], eos: Collection[int]) -> None:
        self.tokenizer, self.watch, self.prompts, self.eos = tokenizer, watch, list(prompts), set(eos)
        self._tokens: list[list[int]] = [[] for _ in self.prompts]
        self._ended = [False] * len(self.prompts)
        self._said = [""] * len(self.prompts)

    def step(self, tokens: Sequence[int], rows: Sequence[int] | None = None) -> bool:
        """This step's token of each row (`rows`: which rows of the batch they are, when not all of them, in
        order); rows already past their end are ignored. True when the engine should stop: the watch was
        cancelled."""
        watch = self.watch
        if watch is None:
            return False
        for row, token in zip(range(len(tokens)) if rows is None else rows, tokens):
            row, token = int(row), int(token)
            if self._ended[row]:
                continue
            if token in self.eos:
                self._ended[row] = True
                continue
            self._tokens[row].append(token)
            watch.tokens += 1
            if watch.on_text:
                self._say(row, final=False)
        return watch.cancel.is_set()

    def finish(self) -> None:
        """After the batch: GenerationCancelled if the watch was cancelled (what was decoded is no reply), else
        the rest of each row's text (what was held back)."""
        if self.watch is None:
            return
        self.watch.stop_if_cancelled()
        if self.watch.on_text:
            for row in range(len(self.prompts)):
                self._say(row, final=True)

    def _say(self, row: int, *, final: bool) -> None:
        # The whole row is decoded again each step (a reply is at most a few thousand tokens: milliseconds), so
        # what is said is always a prefix of the reply's own decoding.
        text = self.tokenizer.decode(self._tokens[row], skip_special_tokens=True)
        if not final:
            text = text[:_UNSETTLED.search(text).start()]
        said = self._said[row]
        if not text.startswith(said):
            if final:  # a tokenizer that rewrote text it had decoded: the pieces no longer join to the reply
                log.warning("streamed text of a reply differs from its final decoding")
            return
        if len(text) > len(said):
            self._said[row] = text
            self.watch.on_text(self.prompts[row], text[len(said):])  # type: ignore[union-attr]
