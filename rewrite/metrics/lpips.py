"""LPIPS (VGG, v0.1): the learned perceptual distance of Zhang et al. (CVPR 2018).

A torchvision-free re-implementation of the ``lpips`` package's ``LPIPS(net='vgg',
version='0.1')``, numerically identical to it (verified against reference outputs of the
package itself in ``tests/metrics/test_lpips.py``):

* inputs on a [-1, 1] scale (``normalize=True`` for [0, 1]), then the ScalingLayer
  ``(x - shift) / scale`` with shift (-0.030, -0.088, -0.188), scale (0.458, 0.448, 0.450);
* the trunk is VGG16's ``features[0:30]`` (torchvision layout, so torchvision's
  ``vgg16-397923af.pth`` loads as is), tapped after relu1_2, relu2_2, relu3_3, relu4_3, relu5_3;
* per tap: unit-normalise over channels (``f / (sqrt(sum_c f²) + 1e-10)``), square the
  difference of the two images' features, weight the channels with the learned 1x1
  ``lin`` layer (shipped with this package: ``weights/lpips_v0.1_vgg_lin.pth``, BSD-2, see
  ``weights/lpips_LICENSE.txt``);
* scalar: each layer's spatial mean, summed over the 5 layers; spatial: each layer's map
  upsampled (bilinear, align_corners False) to the input size, summed.

:func:`masked_lpips` averages the spatial map over a region (e.g. outside the edit), the
locality measure of the rewriting paper.

Usage::

    net = LPIPS.from_files("vgg16-397923af.pth")
    d = net(x0, x1)                       # [N] on [-1, 1] images [N, 3, H, W]
    m = net(x0, x1, spatial=True)         # [N, 1, H, W]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..utils.errors import CheckpointError
from .weightfiles import load_state

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
LIN_FILE = WEIGHTS_DIR / "lpips_v0.1_vgg_lin.pth"

#: VGG16 configuration "D": channels per conv, "M" = 2x2 max pool.
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
#: Indices in ``features`` after which LPIPS taps the trunk (relu1_2 ... relu5_3).
TAPS = (3, 8, 15, 22, 29)
CHANNELS = (64, 128, 256, 512, 512)
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10


class VGG16Features(nn.Sequential):
    """torchvision's ``vgg16().features[0:30]``: same layers, same indices, same state-dict
    keys (without the ``features.`` prefix); the last max pool is not needed."""

    def __init__(self):
        layers: list[nn.Module] = []
        c = 3
        for v in _VGG16:
            if isinstance(v, str):  # "M"
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=False)]
                c = v
        super().__init__(*layers)

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, layer in enumerate(self):
            x = layer(x)
            if i in TAPS:
                out.append(x)
        return out


def _features_state(state: dict, source: str) -> dict:
    """The ``features.*`` tensors of a torchvision VGG16 state dict, prefix removed."""
    feats = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    expected = VGG16Features().state_dict()
    missing = sorted(set(expected) - set(feats), key=lambda k: int(k.split(".")[0]))
    if missing:
        raise CheckpointError(
            f"{source} is not a torchvision VGG16 state dict: no "
            + ", ".join("features." + k for k in missing[:4])
            + (" ..." if len(missing) > 4 else "")
        )
    for k, t in expected.items():
        if tuple(feats[k].shape) != tuple(t.shape):
            raise CheckpointError(
                f"{source}: features.{k} has shape {tuple(feats[k].shape)}, "
                f"VGG16 needs {tuple(t.shape)}"
            )
    return {k: feats[k].float() for k in expected}


def load_lin(path: str | os.PathLike = LIN_FILE) -> list[torch.Tensor]:
    """The five LPIPS v0.1 VGG lin weights [1, C, 1, 1] (``lin{k}.model.1.weight``)."""
    state = load_state(path)
    out = []
    for k, c in enumerate(CHANNELS):
        key = next((n for n in (f"lin{k}.model.1.weight", f"lin{k}.weight") if n in state), None)
        if key is None or tuple(state[key].shape) != (1, c, 1, 1):
            raise CheckpointError(f"{path}: no LPIPS lin{k} weight of shape (1, {c}, 1, 1)")
        out.append(state[key].float())
    return out


class LPIPS(nn.Module):
    """LPIPS-VGG v0.1 (see the module docstring). Always in eval mode, no gradients kept
    for its parameters."""

    shift: torch.Tensor  # buffers: the ScalingLayer's constants
    scale: torch.Tensor

    def __init__(
        self,
        vgg_state: dict,
        lin: Sequence[torch.Tensor] | None = None,
        source: str = "VGG16 state dict",
    ):
        super().__init__()
        self.net = VGG16Features()
        self.net.load_state_dict(_features_state(vgg_state, source))
        lin = load_lin() if lin is None else lin
        self.lins = nn.ParameterList(
            [nn.Parameter(w.float().clone(), requires_grad=False) for w in lin]
        )
        self.register_buffer("shift", torch.tensor(SHIFT)[None, :, None, None])
        self.register_buffer("scale", torch.tensor(SCALE)[None, :, None, None])
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_files(
        cls, vgg_path: str | os.PathLike, lin_path: str | os.PathLike = LIN_FILE
    ) -> LPIPS:
        """From torchvision's ``vgg16-397923af.pth`` (or any state dict with its
        ``features.*`` keys) and the lin weights (default: the shipped file)."""
        return cls(load_state(vgg_path), load_lin(lin_path), source=str(vgg_path))

    def train(self, mode: bool = True):
        return super().train(False)

    def layers(
        self, x0: torch.Tensor, x1: torch.Tensor, normalize: bool = False
    ) -> dict[str, list[torch.Tensor]]:
        """Intermediate values per layer: ``scaled`` (ScalingLayer of x0), ``feats0``
        (raw trunk features of x0), ``diffsum`` (unweighted Σ_c of squared differences of
        the normalised features), ``lin`` (the lin-weighted maps at native resolution)."""
        if normalize:
            x0, x1 = 2 * x0 - 1, 2 * x1 - 1
        s0, s1 = (x0 - self.shift) / self.scale, (x1 - self.shift) / self.scale
        f0, f1 = self.net.taps(s0), self.net.taps(s1)
        diffs = [(_unit(a) - _unit(b)) ** 2 for a, b in zip(f0, f1, strict=True)]
        return {
            "scaled": [s0],
            "feats0": f0,
            "diffsum": [d.sum(1, keepdim=True) for d in diffs],
            "lin": [F.conv2d(d, w) for d, w in zip(diffs, self.lins, strict=True)],
        }

    @torch.no_grad()
    def forward(
        self,
        x0: torch.Tensor,
        x1: torch.Tensor,
        normalize: bool = False,
        spatial: bool = False,
        per_layer: bool = False,
    ):
        """LPIPS between image batches [N, 3, H, W] on [-1, 1] ([0, 1] with ``normalize``).

        Returns [N] (scalar per pair) or, with ``spatial``, [N, 1, H, W]; with
        ``per_layer`` also the list of the 5 per-layer values ([N] or [N, 1, H, W])."""
        if x0.shape != x1.shape or x0.ndim != 4 or x0.shape[1] != 3:
            raise ValueError(
                f"need two image batches [N, 3, H, W] of one shape, got "
                f"{tuple(x0.shape)} and {tuple(x1.shape)}"
            )
        maps = self.layers(x0.float(), x1.float(), normalize)["lin"]
        if spatial:
            res = [
                F.interpolate(m, size=x0.shape[2:], mode="bilinear", align_corners=False)
                for m in maps
            ]
        else:
            res = [m.mean((2, 3), keepdim=True) for m in maps]
        val = res[0]
        for r in res[1:]:
            val = val + r
        if not spatial:
            val, res = val.flatten(), [r.flatten() for r in res]
        return (val, res) if per_layer else val


def _unit(f: torch.Tensor) -> torch.Tensor:
    return f / (torch.sqrt(torch.sum(f**2, dim=1, keepdim=True)) + EPS)


def uint8_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 images [N, H, W, 3] -> float32 [N, 3, H, W] on [-1, 1] as ``lpips.im2tensor``
    makes them (``x / 127.5 - 1`` in float64, then float32)."""
    x = np.asarray(images).astype(np.float64) / (255.0 / 2.0) - 1.0
    return torch.from_numpy(x.transpose(0, 3, 1, 2).astype(np.float32))


def masked_mean(spatial: torch.Tensor | np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Per-sample mean of spatial maps [N, 1, H, W] (or [N, H, W]) over ``mask`` (bool
    [N, H, W]; None = everywhere); NaN where a sample's mask is empty."""
    m = np.asarray(
        spatial.detach().cpu() if torch.is_tensor(spatial) else spatial, np.float64
    ).reshape(len(spatial), *np.shape(spatial)[-2:])
    if mask is None:
        return m.mean((1, 2))
    w = np.asarray(mask, bool).reshape(m.shape)
    count = w.sum((1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (m * w).sum((1, 2)) / np.maximum(count, 1), np.nan)


def masked_lpips(
    net: LPIPS,
    before: np.ndarray,
    after: np.ndarray,
    mask: np.ndarray | None = None,
    batch_size: int = 16,
    progress=None,
) -> np.ndarray:
    """Per-sample spatial LPIPS between uint8 images [N, H, W, 3], averaged over ``mask``
    (bool [N, H, W], e.g. outside the region an edit should touch; None = the whole
    image); NaN for samples whose mask is empty. ``progress``: optional callable(done, total)."""
    before, after = np.asarray(before), np.asarray(after)
    if before.shape != after.shape:
        raise ValueError(f"image sets differ in shape: {before.shape} vs {after.shape}")
    out = []
    for start in range(0, len(before), batch_size):
        sl = slice(start, start + batch_size)
        dev = net.shift.device
        s = net(
            uint8_to_tensor(before[sl]).to(dev), uint8_to_tensor(after[sl]).to(dev), spatial=True
        )
        out.append(masked_mean(s, None if mask is None else np.asarray(mask)[sl]))
        if progress is not None:
            progress(min(start + batch_size, len(before)), len(before))
    return np.concatenate(out) if out else np.zeros(0)
