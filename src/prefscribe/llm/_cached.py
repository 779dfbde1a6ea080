"""What the converted engines (ort, ov) share: a Backend built on one operation, `_extend` (new tokens of one
sequence on top of its KV cache), plus each engine's own batched `_generate_batch`. A new engine of this kind
writes those and `_empty_cache`; generation order, shared prefixes and likelihoods come from here."""

from __future__ import annotations

from collections.abc import Sequence

from ._chat import ChatTokenizer
from ._decoding import Decoding
from ._prefix import common_prefix_length, prefix_groups
from ._sampling import log_softmax
from .base import Completion, Conversation, OptionScores, Progress, Sampling, Watch


class CachedEngine(ChatTokenizer):
    """Subclasses set `batch_size` and `eos_ids` and implement the three methods below."""

    batch_size: int
    eos_ids: Sequence[int]

    def _empty_cache(self, rows: int) -> list:
        """An empty KV cache for `rows` sequences."""
        raise NotImplementedError

    def _extend(self, tokens: list[int], past: list, keep: list[int]) -> tuple:
        """One sequence's new tokens on top of its cache: logits [1, len(keep), vocab] at the new positions
        `keep`, and the grown cache."""
        raise NotImplementedError

    def _generate_batch(self, rows: list[list[int]], sampling: Sampling, decoding: Decoding) -> list[list[int]]:
        """New tokens for each prompt of a batch. The decode loop calls `decoding.step` with each step's tokens
        and stops when it says so."""
        raise NotImplementedError

    # ---------------------------------------------------------------------------------------- generate
    def generate(self, prompts: Sequence[Conversation], sampling: Sampling, progress: Progress | None = None,
                 watch: Watch | None = None) -> list[Completion]:
        encoded = [self._encode(self.render(p)) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))  # similar lengths pad less
        results: list[Completion | None] = [None] * len(prompts)
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            decoding = Decoding(self.tokenizer, watch, batch, self.eos_ids)
            news = self._generate_batch([encoded[i] for i in batch], sampling, decoding)
            decoding.finish()
            for i, new in zip(batch, news):
                results[i] = self._completion(new, len(encoded[i]), self.eos_ids)
            if progress:
                progress(len(batch))
        return [r for r in results if r is not None]

    # ---------------------------------------------------------------------------------- option logprobs
    def option_logprobs(self, prompts: Sequence[Conversation], prefill: str,
                        options: Sequence[str]) -> list[OptionScores]:
        encoded = [self._encode(self.render(p, prefill)) for p in prompts]
        option_ids = [self._option_token(prefill, o) for o in options]
        scores: list[OptionScores | None] = [None] * len(encoded)
        for group in prefix_groups(encoded):
            rows = [encoded[i] for i in group]
            # At least one token of each prompt runs on top of the shared cache (it gives the next-token logits).
            shared = min(common_prefix_length(rows), min(map(len, rows)) - 1) if len(rows) > 1 else 0
            past = self._empty_cache(1)
            if shared:
                _, past = self._extend(rows[0][:shared], past, [0])
            for i, seq in zip(group, rows):
                logits, _ = self._extend(seq[shared:], past, [len(seq) - shared - 1])
                logprobs = log_softmax(logits[0, -1])
                scores[i] = OptionScores(logprobs=[float(logprobs[t]) for t in option_ids], prompt_tokens=len(seq))
        return scores  # type: ignore[return-value]

    # --------------------------------------------------------------------------- continuation likelihood
    def continuation_logprobs(self, prompts: Sequence[Conversation], continuations: Sequence[str]) -> list[float]:
        """A prompt given with several continuations (the likelihood judge's two items) runs once; each
        continuation is scored on top of its cache, preceded by the prompt's last token (whose state predicts the
        continuation's first token)."""
        encoded = [(self._encode(self.render(conv)), self._encode(cont)) for conv, cont in zip(prompts, continuations)]
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (prompt, _) in enumerate(encoded):
            groups.setdefault(tuple(prompt), []).append(i)
        scores: list[float] = [0.0] * len(encoded)
        for prompt, rows in groups.items():
            past = self._empty_cache(1)
            if len(prompt) > 1:
                _, past = self._extend(list(prompt[:-1]), past, [0])
            for i in rows:
                cont = encoded[i][1]
                logits, _ = self._extend([prompt[-1], *cont], past, list(range(len(cont))))
                logprobs = log_softmax(logits[0])
                scores[i] = float(sum(logprobs[row, tok] for row, tok in enumerate(cont)))
        return scores
