"""Local transformers backend: batched generation, answer log-probabilities with a shared-prefix KV cache,
and continuation likelihoods. The embedded default model runs through this backend too."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..errors import ModelUnavailableError
from ._chat import ChatTokenizer
from ._cpu import cpu_class
from ._decoding import Decoding
from ._engine import threads, token_ids
from ._prefix import common_prefix_length, prefix_groups
from .base import BackendInfo, Completion, Conversation, OptionScores, Progress, Sampling, Watch


def _torch():
    import torch

    if torch.get_num_threads() != threads():
        torch.set_num_threads(threads())
    return torch


def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX-512 BF16 or AMX) and no override (ATEN_CPU_CAPABILITY,
    ONEDNN_MAX_CPU_ISA, ...: see _cpu.py) holds torch below it. Elsewhere torch emulates bf16 matmuls, several
    times slower than float32 (measured on an AVX2-only AMD EPYC: docs/results/engines.md)."""
    return cpu_class() == "bf16"


def cpu_dtype() -> str:
    """The dtype local weights load in by default: bf16 where the CPU runs it natively, float32 elsewhere."""
    return "bfloat16" if native_bf16() else "float32"


# The transformers engines by the name specs give them (`hf:<path>+torch-fp32`, `embedded:1.5b+torch`) and the
# dtype each loads weights in. A model's results depend on its dtype, so the name is part of every spec a
# backend reports, hence of every cache key: a cache shared by a bf16 and a float32 machine never mixes them.
TORCH_ENGINES = {"torch": "bfloat16", "torch-fp32": "float32"}


def torch_engine(dtype: str = "auto") -> str:
    """The engine name of a dtype ("auto": the CPU's, see cpu_dtype)."""
    dtype = cpu_dtype() if dtype == "auto" else dtype
    return next((name for name, d in TORCH_ENGINES.items() if d == dtype), f"torch-{dtype}")


class HFBackend(ChatTokenizer):
    """A transformers causal LM with its chat template."""

    def __init__(self, model, tokenizer, *, spec: str, thinks: bool = False, context_window: int | None = None,
                 batch_size: int = 16) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        window = context_window or getattr(model.config, "max_position_embeddings", 8192)
        self.info = BackendInfo(spec=spec, thinks=thinks, context_window=int(window), streams=True)

    @classmethod
    def from_path(cls, path: str | Path, *, spec: str | None = None, dtype: str = "auto", **kwargs) -> HFBackend:
        """`dtype` "auto": bf16 where the CPU runs it natively, else float32. `spec` defaults to
        `hf:<path>+<engine>`, the engine naming the dtype (TORCH_ENGINES)."""
        torch = _torch()
        from transformers import AutoModelForCausalLM, AutoTokenizer

        dtype = cpu_dtype() if dtype == "auto" else dtype
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path))
            torch_dtype = getattr(torch, dtype)
            with _no_loading_bar():
                model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch_dtype)
        except OSError as exc:
            raise ModelUnavailableError(
                f"cannot load transformers model {path!s}: {exc}. Give a local path or a model id "
                "that is in the local Hugging Face cache (this machine may have no hub access).") from None
        return cls(model, tokenizer, spec=spec or f"hf:{path}+{torch_engine(dtype)}", **kwargs)

    # ---------------------------------------------------------------------------------------- generate
    def generate(self, prompts: Sequence[Conversation], sampling: Sampling, progress: Progress | None = None,
                 watch: Watch | None = None) -> list[Completion]:
        torch = _torch()
        encoded = [self._encode(self.render(p)) for p in prompts]
        # Batches of similar length waste less compute on padding.
        order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
        results: list[Completion | None] = [None] * len(prompts)
        pad = self.tokenizer.pad_token_id
        eos = set(token_ids(self.model.generation_config.eos_token_id) + [self.tokenizer.eos_token_id])
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            width = max(len(encoded[i]) for i in batch)
            # Left padding keeps every prompt's last token at the same position for generation.
            ids = torch.tensor([[pad] * (width - len(encoded[i])) + encoded[i] for i in batch])
            mask = torch.tensor([[0] * (width - len(encoded[i])) + [1] * len(encoded[i]) for i in batch])
            torch.manual_seed(sampling.seed)
            kwargs = {"max_new_tokens": sampling.max_new_tokens, "pad_token_id": pad}
            if sampling.min_new_tokens:
                kwargs["min_new_tokens"] = sampling.min_new_tokens
            if sampling.temperature > 0:
                kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p,
                              top_k=sampling.top_k or None)
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            decoding = Decoding(self.tokenizer, watch, batch, eos)
            if watch is not None:
                kwargs["stopping_criteria"] = _watched(decoding)
            with torch.inference_mode():
                out = self.model.generate(input_ids=ids, attention_mask=mask, **kwargs)
            decoding.finish()
            for row, i in enumerate(batch):
                results[i] = self._completion(out[row, width:].tolist(), len(encoded[i]), eos)
            if progress:
                progress(len(batch))
        return [r for r in results if r is not None]

    # ---------------------------------------------------------------------------------- option logprobs
    def option_logprobs(self, prompts: Sequence[Conversation], prefill: str,
                        options: Sequence[str]) -> list[OptionScores]:
        torch = _torch()
        encoded = [self._encode(self.render(p, prefill)) for p in prompts]
        option_ids = [self._option_token(prefill, o) for o in options]
        with torch.inference_mode():
            hidden = torch.cat([self._group_hidden([encoded[i] for i in group])
                                for group in prefix_groups(encoded)])
            logprobs = self._token_logprobs(hidden, option_ids)
        return [OptionScores(logprobs=[float(x) for x in logprobs[row]], prompt_tokens=len(encoded[row]))
                for row in range(len(encoded))]

    def _group_hidden(self, encoded: list[list[int]]):
        shared = common_prefix_length(encoded)
        if shared >= 16 and len(encoded) > 1:
            return self._last_hidden_shared_prefix(encoded, shared)
        return self._last_hidden(encoded)

    def _token_logprobs(self, hidden, token_ids: list[int]):
        """log p(token) for each row of final hidden states [n, d].

        In bf16 a logit near 20 is only resolved to 1/8, which would quantize two-way probabilities; the
        chosen tokens' logits are recomputed in fp32 (cheap: a few rows of the output matrix)."""
        torch = _torch()
        head = self.model.get_output_embeddings()
        normalizer = torch.logsumexp(head(hidden).float(), dim=-1, keepdim=True)
        rows = head.weight[token_ids].float()
        picked = hidden.float() @ rows.T
        if getattr(head, "bias", None) is not None:
            picked = picked + head.bias[token_ids].float()
        return picked - normalizer

    def _cache_kwarg(self, cache) -> dict:
        """The KV cache argument under the name this transformers version takes (`cache` since 5.x;
        the old `past_key_values` still works there but warns on every call)."""
        import inspect

        accepted = inspect.signature(self.model.base_model.forward).parameters
        return {"cache": cache} if "cache" in accepted else {"past_key_values": cache}

    def _base(self, **kwargs):
        # The decoder without its output layer: we compute logits only where we need them.
        return self.model.base_model(**kwargs)

    def _last_hidden(self, encoded: list[list[int]]):
        """Final hidden state at the last token of each sequence (left-padded batch)."""
        torch = _torch()
        width = max(map(len, encoded))
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(seq)) + seq for seq in encoded])
        mask = torch.tensor([[0] * (width - len(seq)) + [1] * len(seq) for seq in encoded])
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self._base(input_ids=ids, attention_mask=mask, position_ids=positions)
        return out.last_hidden_state[:, -1]

    def _last_hidden_shared_prefix(self, encoded: list[list[int]], shared: int):
        """Run the common prefix once, then every suffix against a copy of its KV cache."""
        torch = _torch()
        prefix = torch.tensor([encoded[0][:shared]])
        cache = _kv_cache(self._base(input_ids=prefix, use_cache=True))
        n = len(encoded)
        cache.batch_repeat_interleave(n)
        suffixes = [seq[shared:] for seq in encoded]
        width = max(map(len, suffixes))
        pad = self.tokenizer.pad_token_id
        # Right padding: real suffix tokens keep their true positions; pads come after them.
        ids = torch.tensor([s + [pad] * (width - len(s)) for s in suffixes])
        mask = torch.tensor([[1] * (shared + len(s)) + [0] * (width - len(s)) for s in suffixes])
        positions = torch.arange(shared, shared + width).unsqueeze(0).expand(n, -1)
        out = self._base(input_ids=ids, attention_mask=mask, **self._cache_kwarg(cache), position_ids=positions,
                         use_cache=True)
        last = torch.tensor([len(s) - 1 for s in suffixes])
        return out.last_hidden_state[torch.arange(n), last]

    # --------------------------------------------------------------------------- continuation likelihood
    def continuation_logprobs(self, prompts: Sequence[Conversation], continuations: Sequence[str]) -> list[float]:
        """A prompt given with several continuations (the likelihood judge's two items) is run once and its
        KV cache shared by them; the other rows are batched as they come."""
        encoded = [(self._encode(self.render(conv)), self._encode(cont)) for conv, cont in zip(prompts, continuations)]
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (prompt, _) in enumerate(encoded):
            groups.setdefault(tuple(prompt), []).append(i)
        scores: list[float | None] = [None] * len(encoded)
        alone = []
        for prompt, rows in groups.items():
            if len(rows) > 1 and len(prompt) > 1:
                for start in range(0, len(rows), self.batch_size):
                    part = rows[start:start + self.batch_size]
                    for i, score in zip(part, self._shared_prompt_logprobs(list(prompt), [encoded[i][1] for i in part])):
                        scores[i] = score
            else:
                alone.extend(rows)
        for i, score in zip(alone, self._batched_logprobs([encoded[i] for i in alone])):
            scores[i] = score
        return scores  # type: ignore[return-value]

    def _shared_prompt_logprobs(self, prompt: list[int], continuations: list[list[int]]) -> list[float]:
        """Run the prompt but its last token once; then each continuation, preceded by that last token (whose
        state predicts the continuation's first token), against a copy of the prompt's KV cache."""
        torch = _torch()
        head = self.model.get_output_embeddings()
        pad = self.tokenizer.pad_token_id
        shared = len(prompt) - 1
        n = len(continuations)
        with torch.inference_mode():
            cache = _kv_cache(self._base(input_ids=torch.tensor([prompt[:shared]]), use_cache=True))
            cache.batch_repeat_interleave(n)
            suffixes = [prompt[shared:] + cont for cont in continuations]
            width = max(map(len, suffixes))
            ids = torch.tensor([s + [pad] * (width - len(s)) for s in suffixes])
            mask = torch.tensor([[1] * (shared + len(s)) + [0] * (width - len(s)) for s in suffixes])
            positions = torch.arange(shared, shared + width).unsqueeze(0).expand(n, -1)
            hidden = self._base(input_ids=ids, attention_mask=mask, **self._cache_kwarg(cache), position_ids=positions,
                                use_cache=True).last_hidden_state
            scores = []
            for row, cont in enumerate(continuations):
                logprobs = torch.log_softmax(head(hidden[row, :len(cont)]).float(), dim=-1)
                scores.append(float(logprobs[torch.arange(len(cont)), torch.tensor(cont)].sum()))
        return scores

    def _batched_logprobs(self, encoded: list[tuple[list[int], list[int]]]) -> list[float]:
        torch = _torch()
        scores: list[float] = []
        pad = self.tokenizer.pad_token_id
        head = self.model.get_output_embeddings()
        for start in range(0, len(encoded), self.batch_size):
            rows = encoded[start:start + self.batch_size]
            width = max(len(h) + len(c) for h, c in rows)
            ids = torch.tensor([h + c + [pad] * (width - len(h) - len(c)) for h, c in rows])
            mask = torch.tensor([[1] * (len(h) + len(c)) + [0] * (width - len(h) - len(c)) for h, c in rows])
            with torch.inference_mode():
                hidden = self._base(input_ids=ids, attention_mask=mask).last_hidden_state
                for row, (prompt, cont) in enumerate(rows):
                    # Token t is predicted by the hidden state at position t - 1.
                    states = hidden[row, len(prompt) - 1: len(prompt) + len(cont) - 1]
                    logprobs = torch.log_softmax(head(states).float(), dim=-1)
                    scores.append(float(logprobs[torch.arange(len(cont)), torch.tensor(cont)].sum()))
        return scores


def _watched(decoding: Decoding):
    """Stopping criteria that show transformers' decode loop to `decoding` after every token (the check it
    already makes between steps) and stop every row once the watch is cancelled."""
    torch = _torch()
    from transformers import StoppingCriteria, StoppingCriteriaList

    class Watched(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            stop = decoding.step(input_ids[:, -1].tolist())
            return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([Watched()])


@contextmanager
def _no_loading_bar() -> Iterator[None]:
    """Without transformers' "Loading weights" bar: local weights load in seconds, and a bar on every
    start (the CLI's, the service's) is noise; prefscribe says itself when a first start converts weights."""
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def _kv_cache(output):
    """The KV cache of a forward pass: `cache` in transformers 5.x, `past_key_values` before (it warns now)."""
    return output.cache if "cache" in output else output.past_key_values

