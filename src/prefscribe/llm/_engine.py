"""What every converted CPU engine (ct2, ort, ...) shares: importing its runtime with an install hint, the
thread count, and the source checkpoint's tokenizer files copied beside the converted weights so that prompts
render identically on every engine. An engine is one module in llm/ with `ENGINE` (an `EngineInfo`), `convert`
and a backend class with `from_path`; `registry.py` and `embedded.py` find it by name.
"""

from __future__ import annotations

import importlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from ..errors import ModelUnavailableError

TOKENIZER_DIR = "tokenizer"  # inside a converted folder: the source's tokenizer, chat template and configs
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json",
                    "generation_config.json", "config.json")


@dataclass(frozen=True)
class EngineInfo:
    """A converted engine as the embedded models' cache and messages name it."""

    name: str          # in specs and PREFSCRIBE_ENGINE: embedded:1.5b+<name>
    library: str       # the runtime's distribution name, in the manifest and in messages
    module: str        # the module to import to use it
    install: str       # how to install it
    quantization: str  # the weights the embedded models are converted to
    duration: str      # how long the first conversion takes, said while it runs


def runtime(engine: EngineInfo) -> ModuleType:
    """The engine's runtime module, or an error that says how to install it (or to pick another engine)."""
    try:
        return importlib.import_module(engine.module)
    except ImportError:
        raise ModelUnavailableError(
            f"the {engine.name} engine needs {engine.library}: {engine.install} (or PREFSCRIBE_ENGINE=torch)") from None


def version(engine: EngineInfo) -> str:
    return runtime(engine).__version__


def threads() -> int:
    """Every core by default: a CPU forward pass is the hot path of everything local. On a machine shared with
    other jobs, oversubscribed threads spin and crawl (measured: 1 thread 4.7x faster than 2 under load), so
    PREFSCRIBE_THREADS can set it."""
    return int(os.environ.get("PREFSCRIBE_THREADS") or 0) or max(1, os.cpu_count() or 1)


def copy_tokenizer(source: Path, out: Path) -> None:
    """The source checkpoint's tokenizer files into `out/tokenizer` (the model config lets transformers
    recognise them)."""
    (out / TOKENIZER_DIR).mkdir(parents=True, exist_ok=True)
    for name in _TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, out / TOKENIZER_DIR / name)


def token_ids(value: int | Sequence[int] | None) -> list[int]:
    """An eos_token_id field (one id, a list, or none) as a list."""
    if value is None:
        return []
    return [value] if isinstance(value, int) else list(value)
