"""Rendered samples cached on disk, so re-running an evaluation does not render again.

Images of ``seeds`` from a model are stored under
``<cache>/samples/<fingerprint><sampling tag>/<hash of the seed list>.npy``; an
edited model has another fingerprint, so its images are cached apart.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from .fileio import atomic_path
from .models.base import Generator
from .models.zoo import cache_dir
from .sampling import generate


def cached_generate(G: Generator, seeds: Sequence[int], batch_size: int = 32,
                    progress: bool | None = None, cache: bool = True) -> np.ndarray:
    """``generate(G, seeds)`` (uint8 [N, H, W, 3]), read from / written to the cache."""
    seeds = list(seeds)
    key = hashlib.sha256(",".join(map(str, seeds)).encode()).hexdigest()[:16]
    path = cache_dir() / "samples" / (G.fingerprint() + G.sampling_tag()) / f"{key}.npy"
    if cache and path.is_file():
        try:
            arr = np.load(path)
            if arr.shape[0] == len(seeds):
                return arr
        except (OSError, ValueError):
            pass
    arr = generate(G, seeds, batch_size=batch_size, progress=progress)
    if cache:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, arr)
    return arr
