"""Deterministic latent vectors per sample index.

Sample ``i`` gets row ``i`` of ``numpy.random.RandomState(seed).standard_normal((n, z_dim))``
for any ``n > i`` (sample-major, cast to float32). That is the scheme of the
paper's original tool, so sample numbers in its saved edits name the same
images here. The row depends only on ``i``, never on the batch it is asked in.

Generating row ``i`` needs the random stream up to it. :class:`LatentTable`
keeps the generator state at every ``chunk_rows``-th row, so a lookup costs at
most one chunk of draws after the first pass, and memory stays small for any
index.

Usage::

    table = LatentTable(z_dim=100, seed=1)
    z = table.rows([0, 5, 3])      # float32 array [3, 100]
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

#: Sample indices run from 0 to MAX_SAMPLES - 1; higher ones would take minutes to
#: reach in the random stream and are almost certainly typos.
MAX_SAMPLES = 1_000_000


class LatentTable:
    """Rows of the seeded standard-normal stream, looked up by sample index.

    Args:
        z_dim (int): length of one latent row.
        seed (int, default 1): seed of ``numpy.random.RandomState``.
        chunk_rows (int, default 1024): rows between stored generator states.
    """

    def __init__(self, z_dim: int, seed: int = 1, chunk_rows: int = 1024):
        if z_dim <= 0:
            raise ValueError(f"z_dim must be positive, got {z_dim}")
        self.z_dim = int(z_dim)
        self.seed = int(seed)
        self.chunk_rows = int(chunk_rows)
        self._states = [np.random.RandomState(self.seed).get_state()]
        self._chunk_cache: tuple[int, np.ndarray] | None = None

    def _chunk(self, c: int) -> np.ndarray:
        """Rows ``[c*chunk_rows, (c+1)*chunk_rows)`` as float32 [chunk_rows, z_dim]."""
        if self._chunk_cache is not None and self._chunk_cache[0] == c:
            return self._chunk_cache[1]
        rng = np.random.RandomState()
        # Walk forward from the last stored state, storing states on the way.
        while len(self._states) <= c:
            rng.set_state(self._states[-1])
            rng.standard_normal(self.chunk_rows * self.z_dim)
            self._states.append(rng.get_state())
        rng.set_state(self._states[c])
        rows = rng.standard_normal((self.chunk_rows, self.z_dim)).astype(np.float32)
        self._chunk_cache = (c, rows)
        return rows

    def rows(self, indices: Iterable[int]) -> np.ndarray:
        """Latent rows for ``indices`` (non-negative ints), float32 [len(indices), z_dim]."""
        idx = np.asarray(list(indices), dtype=np.int64)
        if idx.ndim != 1:
            raise ValueError("indices must be a flat list of integers")
        if idx.size and idx.min() < 0:
            raise ValueError(f"sample indices must be >= 0, got {int(idx.min())}")
        if idx.size and idx.max() >= MAX_SAMPLES:
            raise ValueError(f"sample indices must be below {MAX_SAMPLES}, got {int(idx.max())}")
        out = np.empty((idx.size, self.z_dim), dtype=np.float32)
        chunks = idx // self.chunk_rows
        for c in np.unique(chunks):
            sel = chunks == c
            out[sel] = self._chunk(int(c))[idx[sel] - c * self.chunk_rows]
        return out
