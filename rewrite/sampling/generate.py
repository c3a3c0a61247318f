"""Generate images for sample indices in batches.

Usage::

    arr = generate(G, range(32), batch_size=16)    # uint8 [32, H, W, 3]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..models.base import Generator
from ..utils.batching import batches
from ..utils.images import to_uint8


@torch.no_grad()
def generate(
    G: Generator, indices: Sequence[int], batch_size: int = 32, progress: bool | None = None
) -> np.ndarray:
    """Render samples ``indices`` with ``G``.

    Args:
        G: any generator.
        indices: sample indices (each always renders the same image).
        batch_size: samples per forward pass.
        progress: show a progress bar; None shows it when there is more than one batch.

    Returns:
        uint8 array [N, H, W, 3].
    """
    chunks = batches(indices, batch_size)
    show = len(chunks) > 1 if progress is None else progress
    out = []
    with tqdm(total=len(indices), unit="img", desc="sampling", disable=not show) as bar:
        for chunk in chunks:
            out.append(to_uint8(G(G.latents(chunk))))
            bar.update(len(chunk))
    return np.concatenate(out) if out else np.zeros((0, G.resolution, G.resolution, 3), np.uint8)
