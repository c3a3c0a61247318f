"""Where an edit's rule fires: the context direction's response to a layer's keys.

The response at a key position is ``d · k`` for a rank-1 direction (its sign
is aligned with the context keys) and ``|D k|`` for rank r. A position fires
when its response exceeds a threshold, by default the 99th percentile of the
responses over all positions of the (unedited) samples being measured. Firing
cells are grown by one cell in every direction (the next layers spread a key's
effect to its neighbours) and upsampled to image pixels. Where the layer's key
grid carries a margin around the image (StyleGAN3), responses are cropped to the
image window, so they line up with the image.

Usage::

    resp = key_response(G, "main.6", D, range(1000, 1032))      # [32, 8, 8]
    fire = firing_mask(resp, quantile_threshold(resp), G.resolution)   # bool [32, 64, 64]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..edit.masks import crop_window, layer_window
from ..models.base import Generator
from ..utils.batching import batches
from ..utils.distributed import DistContext, interleave


@torch.no_grad()
def key_response(
    G: Generator,
    layer: str,
    D: torch.Tensor,
    indices: Sequence[int],
    batch_size: int = 64,
    dist: DistContext | None = None,
) -> torch.Tensor:
    """Response of directions ``D`` [r, C_in] to the keys of ``layer`` for samples
    ``indices``: float [N, h, w], on the key grid's image window (batches shared out over
    ranks under torchrun)."""
    dist = dist or DistContext()
    window = layer_window(G.layer(layer), "key")
    out = []
    d = D.to(torch.float32)
    for chunk in dist.my_batches(list(indices), batch_size):
        keys = crop_window(G.split(G.latents(chunk), layer).keys, window)  # [B, C_in, h, w]
        proj = torch.einsum("rc,bchw->brhw", d.to(keys.device), keys)
        out.append((proj[:, 0] if d.shape[0] == 1 else proj.norm(dim=1)).cpu())
    if dist.enabled:
        out = interleave(dist.gather(out), len(batches(list(indices), batch_size)))
    return torch.cat(out)


def heat(response: torch.Tensor) -> torch.Tensor:
    """Responses [N, h, w] scaled to [0, 1] by the largest over all samples: one scale for
    every sample, so heat maps of different samples compare (the CLI and the app both)."""
    peak = float(response.max()) if response.numel() else 1.0
    return (response / max(peak, 1e-12)).clamp(0, 1)


def quantile_threshold(response: torch.Tensor, q: float = 0.99) -> float:
    """The ``q`` quantile of all responses (every position of every sample)."""
    return float(torch.quantile(response.flatten().double(), q))


def firing_mask(response: torch.Tensor, threshold: float, size: int, grow: int = 1) -> torch.Tensor:
    """Cells above ``threshold``, grown by ``grow`` cells, at image resolution:
    bool [N, size, size]."""
    fire = (response > threshold).float()[:, None]  # [N, 1, h, w]
    if grow > 0:
        fire = torch.nn.functional.max_pool2d(fire, 2 * grow + 1, stride=1, padding=grow)
    return torch.nn.functional.interpolate(fire, size=(size, size), mode="nearest")[:, 0] > 0
