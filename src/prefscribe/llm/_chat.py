"""What every local backend does with its tokenizer: render a conversation with the model's chat template,
count and encode tokens, and find the token an answer option starts with. Shared by the torch and
CTranslate2 engines so both read prompts identically."""

from __future__ import annotations

from collections.abc import Collection

from .base import Completion, Conversation


class ChatTokenizer:
    """Mixin for backends that hold a transformers tokenizer in `self.tokenizer`."""

    tokenizer: object

    def count_tokens(self, text: str) -> int:
        return len(self._encode(text))

    def render(self, conversation: Conversation, prefill: str = "") -> str:
        text = self.tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
        return text + prefill

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _option_token(self, prefill: str, option: str) -> int:
        # The option's first token as it is tokenized right after the prefill (" A" after "Item").
        base = self._encode(prefill)
        full = self._encode(prefill + option)
        if full[: len(base)] != base or len(full) == len(base):
            return self._encode(option)[0]
        return full[len(base)]

    def _completion(self, new: list[int], prompt_tokens: int, eos: Collection[int]) -> Completion:
        """A generated continuation cut at its first end-of-sequence token ("stop"), or whole ("length")."""
        cut = next((at for at, tok in enumerate(new) if tok in eos), None)
        kept = new if cut is None else new[:cut]
        return Completion(text=self.tokenizer.decode(kept, skip_special_tokens=True), prompt_tokens=prompt_tokens,
                          completion_tokens=len(kept), finish_reason="length" if cut is None else "stop")
