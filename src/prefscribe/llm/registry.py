"""Backends by kind. Built-ins register here the same way plugins do (entry point group
`prefscribe.backends`: a callable taking a ModelSpec and returning a Backend)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path

from ..errors import ModelSpecError
from .base import TRAIN_RECORD, Backend, thinks_by_name
from .spec import DEFAULT_SPEC, ModelSpec, parse_spec

Factory = Callable[[ModelSpec], Backend]
_FACTORIES: dict[str, Factory] = {}


def register(kind: str, factory: Factory) -> None:
    _FACTORIES[kind] = factory


def _embedded(spec: ModelSpec) -> Backend:
    from .embedded import CONVERTED, converted_dir, converted_engine, engine_dir, engine_from_env

    engine = spec.engine or engine_from_env()
    # The engine is part of the spec every cache key and result carries, so the two never mix.
    name = f"{spec}+{engine}"
    # 8k context keeps a CPU forward pass bounded; the history budget is derived from it.
    if engine in CONVERTED:
        return converted_engine(engine).load(engine_dir(spec.name, engine), spec=name, context_window=8192)
    from .hf import TORCH_ENGINES, HFBackend

    return HFBackend.from_path(converted_dir(spec.name), spec=name, dtype=TORCH_ENGINES[engine], thinks=False,
                               context_window=8192)


def _hf(spec: ModelSpec) -> Backend:
    from .hf import TORCH_ENGINES, HFBackend, torch_engine

    engine = spec.engine or torch_engine()  # named in the spec, or the CPU's dtype
    return HFBackend.from_path(spec.name, spec=f"{spec}+{engine}", dtype=TORCH_ENGINES[engine],
                               thinks=_hf_thinks(spec.name))


def _hf_thinks(name: str) -> bool:
    """A checkpoint of `prefscribe train` records its profile style; other models are judged by name."""
    record = Path(name) / TRAIN_RECORD
    if record.is_file():
        try:
            return json.loads(record.read_text(encoding="utf-8")).get("style") == "reasoning"
        except (OSError, ValueError) as exc:
            raise ModelSpecError(f"{record}: unreadable ({exc})") from None
    return thinks_by_name(name)


def _openai(spec: ModelSpec) -> Backend:
    from .openai import OpenAIBackend

    return OpenAIBackend(model=spec.name, base_url=spec.base_url or "")


register("embedded", _embedded)
register("hf", _hf)
register("openai", _openai)


def _plugins() -> None:
    for ep in entry_points(group="prefscribe.backends"):
        if ep.name not in _FACTORIES:
            register(ep.name, ep.load())


@lru_cache(maxsize=4)
def load_backend(spec: str = DEFAULT_SPEC) -> Backend:
    """The backend for a model spec string, loaded once per process."""
    parsed = parse_spec(spec)
    factory = _FACTORIES.get(parsed.kind)
    if factory is None:
        _plugins()
        factory = _FACTORIES.get(parsed.kind)
    if factory is None:
        raise ModelSpecError(f"no backend registered for {parsed.kind!r}")
    return factory(parsed)
