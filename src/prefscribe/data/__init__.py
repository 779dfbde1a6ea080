"""Benchmark loaders (one module per format) and the transforms of the evaluation settings.

    from prefscribe.data import load
    users = load("psoups", "psoups/student_phd.json", limit=60, seed=0)

Every loader returns `list[UserRecord]` with the history oldest first and no target item inside it;
all sampling is seeded and the seed, the `limit` sampling and each loader's choices are written into
every record's meta. A relative path that does not exist is looked up under `$PREFSCRIBE_DATA`, the
folder users point at their own copies of the data.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..schema import UserRecord
from .amazon import load_amazon
from .dsp import load_dsp
from .hicupid import load_hicupid
from .mind import load_mind
from .movielens import load_movielens
from .personamem import load_personamem
from .psoups import load_psoups
from .transforms import (
    CrossDomainPair,
    Thirds,
    cross_domain_pairs,
    history_text,
    interleave_noise,
    minilm_embedder,
    positive_only,
    reference_thirds,
    split_segments,
)
from ._sampling import Split, sample_records, split_of, user_rng
from ._tags import clean_tags
from .upi import load_upi

__all__ = ["CrossDomainPair", "DATA_ENV", "LOADERS", "Split", "Thirds", "clean_tags", "cross_domain_pairs",
           "history_text", "interleave_noise", "load", "load_amazon", "load_dsp", "load_hicupid", "load_mind",
           "load_movielens", "load_personamem", "load_psoups", "load_upi", "minilm_embedder", "positive_only",
           "reference_thirds", "resolve_data_path", "split_of", "split_segments", "user_rng"]

DATA_ENV = "PREFSCRIBE_DATA"

Loader = Callable[..., list[UserRecord]]

LOADERS: dict[str, Loader] = {
    "upi": load_upi,
    "psoups": load_psoups,
    "dsp": load_dsp,
    "movielens": load_movielens,
    "mind": load_mind,
    "amazon": load_amazon,
    "personamem": load_personamem,
    "hicupid": load_hicupid,
}


def resolve_data_path(path: str | Path) -> Path:
    """`path` as given if it exists (or is absolute); else the same relative path under $PREFSCRIBE_DATA."""
    path = Path(path).expanduser()
    if path.exists() or path.is_absolute():
        return path
    root = os.environ.get(DATA_ENV)
    if root and (Path(root).expanduser() / path).exists():
        return Path(root).expanduser() / path
    return path


def load(benchmark: str, path: str | Path, *, limit: int | None = None, seed: int = 0, split: Split | None = None,
         **options: Any) -> list[UserRecord]:
    """Load `benchmark` from `path`; `options` are the loader's own keyword arguments. `split` keeps one half
    of the users (`split_of`) before `limit` samples from it."""
    loader = LOADERS.get(benchmark)
    if loader is None:
        raise InputError(f"unknown benchmark {benchmark!r}; known: {', '.join(sorted(LOADERS))}",
                         field="benchmark")
    accepted = [name for name, p in inspect.signature(loader).parameters.items()
                if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in ("limit", "seed")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InputError(f"unknown option(s) {', '.join(unknown)} for {benchmark!r}; it accepts: "
                         f"{', '.join(accepted) or 'none'}", field=unknown[0])
    resolved = resolve_data_path(path)
    if not resolved.exists():
        hint = f" (nor under ${DATA_ENV})" if not Path(path).is_absolute() else ""
        raise InputError(f"no such file or folder{hint}", path=str(path))
    if split is None:
        return loader(resolved, limit=limit, seed=seed, **options)
    if split not in ("dev", "test"):
        raise InputError(f"split must be dev or test, not {split!r}", field="split")
    records = [r for r in loader(resolved, limit=None, seed=seed, **options)
               if split_of(benchmark, r.user_id) == split]
    for record in records:
        record.meta["split"] = split
    return sample_records(records, limit, seed)
