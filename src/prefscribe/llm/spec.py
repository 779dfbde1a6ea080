"""Model specs: the strings users type to pick a model, parsed in one place.

    embedded | embedded:1.5b | embedded:0.5b     the offline default (Qwen2.5-Coder Instruct, CPU)
    embedded:1.5b+ort | embedded:0.5b+ct2        ... on a named engine: torch, torch-fp32, ct2, ort, ov (default:
                                                 PREFSCRIBE_ENGINE, else torch where the CPU has native bf16,
                                                 ort on other AVX2 CPUs, torch-fp32 below AVX2)
    hf:<model id or local path>                  any transformers causal LM, in bf16 where the CPU has native
    hf:<id or path>+torch | +torch-fp32          bf16 and float32 otherwise, or in the dtype the engine names
    openai:<model>@<base_url>                    any OpenAI-compatible server (vLLM, SGLang, Ollama, ...)
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ModelSpecError
from .embedded import DEFAULT_SIZE, ENGINES, MODELS
from .hf import TORCH_ENGINES

DEFAULT_SPEC = "embedded"
SERVER_KINDS = frozenset({"openai"})  # backends that call a server: they take calls concurrently


@dataclass(frozen=True)
class ModelSpec:
    kind: str
    name: str
    base_url: str | None = None
    engine: str | None = None  # embedded and hf: the runtime, when the spec names one

    def __str__(self) -> str:
        if self.kind == "openai":
            return f"openai:{self.name}@{self.base_url}"
        return f"{self.kind}:{self.name}"


def parse_spec(text: str) -> ModelSpec:
    text = (text or "").strip()
    kind, _, rest = text.partition(":")
    if kind == "embedded":
        size, _, engine = rest.lower().partition("+")
        size = size or DEFAULT_SIZE
        if size not in MODELS:
            choices = " or ".join(f"embedded:{s}" for s in MODELS)
            raise ModelSpecError(f"unknown embedded size {rest!r} in {text!r}: use {choices}")
        if engine and engine not in ENGINES:
            raise ModelSpecError(f"unknown engine {engine!r} in {text!r}: use " +
                                 " or ".join(f"+{e}" for e in ENGINES))
        return ModelSpec("embedded", size, engine=engine or None)
    if kind == "hf" and rest:
        # A path may hold a "+": only a known engine after the last one is an engine.
        name, _, engine = rest.rpartition("+")
        if name and engine.lower() in TORCH_ENGINES:
            return ModelSpec("hf", name, engine=engine.lower())
        return ModelSpec("hf", rest)
    if kind == "openai":
        model, _, url = rest.rpartition("@")
        if not model or not url.startswith(("http://", "https://")):
            raise ModelSpecError(
                f"bad openai spec {text!r}: write openai:<model>@<base_url>, "
                "e.g. openai:Qwen/Qwen3-8B@http://localhost:8000/v1")
        return ModelSpec("openai", model, url.rstrip("/"))
    if kind and rest and kind not in ("hf", "openai"):
        return ModelSpec(kind, rest)  # a plugin backend (entry point group prefscribe.backends)
    raise ModelSpecError(
        f"unknown model spec {text!r}: use 'embedded', 'embedded:0.5b', 'hf:<id-or-path>' or "
        "'openai:<model>@<base_url>'")


def is_server(spec: str) -> bool:
    """Whether the backend of `spec` (as typed, or a backend's canonical info.spec) calls a server."""
    return parse_spec(spec).kind in SERVER_KINDS
