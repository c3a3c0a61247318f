"""Rendered samples cached on disk, so re-running an evaluation does not render again.

Images of ``seeds`` from a model are stored under
``<cache>/samples/<fingerprint><sampling tag>/<hash of the seed list>.npy``; an
edited model has another fingerprint, so its images are cached apart.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence

import numpy as np

from ..models.base import Generator
from ..utils.cache import cache_dir, cache_usable, model_key, read_cached_array
from ..utils.distributed import DistContext, interleave
from ..utils.errors import OutputPathError
from ..utils.fileio import atomic_path
from .generate import batches, generate


def sharded_generate(
    G: Generator,
    seeds: Sequence[int],
    batch_size: int = 32,
    progress: bool | None = None,
    dist: DistContext | None = None,
) -> np.ndarray:
    """``generate(G, seeds)`` with the batches shared out over ranks; every rank gets all
    images (uint8 [N, H, W, 3]), each batch computed as a single process would."""
    dist = dist or DistContext()
    if not dist.enabled:
        return generate(G, seeds, batch_size=batch_size, progress=progress)
    mine = [
        generate(G, chunk, batch_size=batch_size, progress=False)
        for chunk in dist.my_batches(seeds, batch_size)
    ]
    n_batches = len(batches(list(seeds), batch_size))
    return np.concatenate(interleave(dist.gather(mine), n_batches))


def cached_generate(
    G: Generator,
    seeds: Sequence[int],
    batch_size: int = 32,
    progress: bool | None = None,
    cache: bool = True,
    dist: DistContext | None = None,
) -> np.ndarray:
    """``generate(G, seeds)`` (uint8 [N, H, W, 3]), read from / written to the cache
    (rank 0 writes under torchrun)."""
    dist = dist or DistContext()
    seeds = list(seeds)
    key = hashlib.sha256(",".join(map(str, seeds)).encode()).hexdigest()[:16]
    path = cache_dir() / "samples" / model_key(G) / f"{key}.npy"
    if cache and path.is_file():
        want = (len(seeds), G.resolution, G.resolution, 3)
        try:
            return read_cached_array(path, np.uint8, want)
        except (OSError, ValueError) as e:
            why = str(e)
        print(
            f"warning: the cached samples {path} were refused ({why}); rendering again",
            file=sys.stderr,
        )
    keep = cache and dist.is_main and cache_usable("rendered samples")
    arr = sharded_generate(G, seeds, batch_size, progress, dist)
    if keep:
        try:
            with atomic_path(path) as tmp, open(tmp, "wb") as f:
                np.save(f, arr)
        except OutputPathError as e:  # e.g. the disk filled up: keep the result anyway
            print(f"warning: samples not cached: {e}", file=sys.stderr)
    return arr
