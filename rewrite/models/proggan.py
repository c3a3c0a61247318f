"""Progressive GAN family: the GAN-Dissection (netdissect ``proggan.py``) layout.

The generator is a chain of blocks ``layer1 ... layerN`` and one output block
``output_RxR``; state-dict keys are ``layerN.conv.weight``, ``layerN.wscale.b``,
``output_RxR.conv.weight`` and ``output_RxR.wscale.b``. Every block is::

    PixelNorm -> [nearest 2x upsample] -> Conv2d (no bias) -> * scale + b -> act

PixelNorm is ``x / sqrt(mean(x², channels) + 1e-8)``; the upsample sits in
``layer3, layer5, layer7, ...``; ``scale = gain / sqrt(C_in)`` (WScale) with
gain ``sqrt(2) / kernel_size``; act is LeakyReLU(0.2). ``layer1`` is a 4x4 conv
with padding 3 on the 1x1 latent map, the other layers 3x3 with padding 1; the
output block is a 1x1 conv with gain 1 and Hardtanh. The latent length, the
channel widths, the depth and R are read off the tensor shapes.

Editable layers are ``layer1 ... layerN``. The keys of ``layerN`` are the input
of its conv (the previous block's output, or z, after PixelNorm and, where the
block has one, the upsample); its values are the block's output (after
LeakyReLU). The next block's PixelNorm is not part of the values.

Usage::

    obj = torch.load("proggan.pth", weights_only=True)
    G = ProGANGenerator.from_checkpoint(obj)   # bare, 'state_dict'-wrapped or 'module.' keys
    z = G.latents([0, 1])                      # [2, 64]
    s = G.split(z, "layer5")                   # s.keys [2, 64, 16, 16], s.values [2, 48, 16, 16]
    images = G.resume(s)                       # [2, 3, 64, 64], equals G(z) exactly
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..memory.layer import LayerFunction
from ..utils.errors import CheckpointError
from .base import Generator, LayerInfo, Split
from .statedict import (
    has_matching_key,
    key_problems,
    majority,
    natural_key,
    preview_keys,
    shape_problems,
    tensor_shape,
    unwrap_state_dict,
)

_KEY = re.compile(r"^(layer(\d+)|output_(\d+)x(\d+))\.(conv\.weight|wscale\.b)$")
_PARAMS = ("conv.weight", "wscale.b")


@dataclasses.dataclass(frozen=True)
class ProGANConfig:
    """Architecture of a netdissect-layout Progressive GAN generator.

    Attributes:
        z_dim: latent length.
        channels: output channels of ``layer1 ... layerN``.
        nc: image channels (output of the 1x1 output conv).
    """

    z_dim: int
    channels: tuple[int, ...]
    nc: int = 3

    @property
    def depth(self) -> int:
        """Number of editable layers N."""
        return len(self.channels)

    @property
    def resolution(self) -> int:
        """Output image size: 4 pixels after layer1, doubled by each upsample."""
        return 4 * 2 ** sum(upsamples(n) for n in range(1, self.depth + 1))

    @property
    def output_name(self) -> str:
        """Name of the output block, ``output_RxR``."""
        return f"output_{self.resolution}x{self.resolution}"

    def in_channels(self, n: int) -> int:
        """Input channels of ``layer{n}`` (1-based)."""
        return self.z_dim if n == 1 else self.channels[n - 2]


def upsamples(n: int) -> bool:
    """Whether ``layer{n}`` (1-based) doubles the resolution before its conv."""
    return n >= 3 and n % 2 == 1


def kernel_size(n: int) -> int:
    """Kernel size of ``layer{n}``: 4 for layer1 (padding 3), else 3 (padding 1)."""
    return 4 if n == 1 else 3


def pixel_norm(x: torch.Tensor) -> torch.Tensor:
    """Normalise [N, C, H, W] to unit mean square over the channels at every position."""
    return x / torch.sqrt(torch.mean(x**2, dim=1, keepdim=True) + 1e-8)


class WScale(nn.Module):
    """``x * scale + b`` with the fixed He scale ``gain / sqrt(fan_in)`` and a learned bias
    ``b``."""

    def __init__(self, size: int, fan_in: int, gain: float):
        super().__init__()
        self.scale = gain / math.sqrt(fan_in)
        self.b = nn.Parameter(torch.zeros(size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, size, H, W] -> same shape."""
        return x * self.scale + self.b.view(1, -1, 1, 1)


class ProGANBlock(nn.Module):
    """PixelNorm, optional nearest 2x upsample, Conv2d without bias, WScale, then
    LeakyReLU(0.2) (hidden blocks) or Hardtanh (the output block)."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, padding: int, upsample: bool, output: bool = False
    ):
        super().__init__()
        self.upsample = upsample
        self.conv = nn.Conv2d(c_in, c_out, kernel, 1, padding, bias=False)
        self.wscale = WScale(c_out, c_in, gain=1.0 if output else math.sqrt(2) / kernel)
        self.act = nn.Hardtanh() if output else nn.LeakyReLU(0.2, inplace=False)

    def keys(self, x: torch.Tensor) -> torch.Tensor:
        """The conv's input: PixelNorm of x [N, C_in, h, w], upsampled to 2h if the block does."""
        x = pixel_norm(x)
        return F.interpolate(x, scale_factor=2, mode="nearest") if self.upsample else x

    def tail(self, keys: torch.Tensor) -> torch.Tensor:
        """The block's output [N, C_out, H, W] from its conv input."""
        return self.act(self.wscale(self.conv(keys)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.keys(x))


class ProGANGenerator(Generator):
    """A netdissect-layout Progressive GAN generator; see the module docstring."""

    family = "proggan"

    def __init__(self, config: ProGANConfig, latent_seed: int = 1):
        super().__init__(latent_seed=latent_seed)
        self.config = config
        for n in range(1, config.depth + 1):
            k = kernel_size(n)
            self.add_module(
                f"layer{n}",
                ProGANBlock(
                    config.in_channels(n),
                    config.channels[n - 1],
                    k,
                    k - 1 if n == 1 else 1,
                    upsamples(n),
                ),
            )
        self.add_module(
            config.output_name,
            ProGANBlock(config.channels[-1], config.nc, 1, 0, upsample=False, output=True),
        )
        self.z_shape = (config.z_dim,)
        self.resolution = config.resolution
        self.eval()

    def _blocks(self) -> list[ProGANBlock]:
        return [getattr(self, f"layer{n}") for n in range(1, self.config.depth + 1)] + [
            getattr(self, self.config.output_name)
        ]

    def _index(self, layer: str) -> int:
        return self.layers().index(self.layer(layer))

    def layers(self) -> list[LayerInfo]:
        cfg = self.config
        infos, res = [], 1
        for n in range(1, cfg.depth + 1):
            key_res = res * 2 if upsamples(n) else res
            res = 4 if n == 1 else key_res
            prev = "z" if n == 1 else f"layer{n - 1}"
            infos.append(
                LayerInfo(
                    name=f"layer{n}",
                    kind="Conv2d",
                    in_channels=cfg.in_channels(n),
                    out_channels=cfg.channels[n - 1],
                    key_resolution=key_res,
                    value_resolution=res,
                    kernel_size=kernel_size(n),
                    weight_in_axis=1,
                    key_source=f"norm({prev})" + ("+up" if upsamples(n) else ""),
                )
            )
        return infos

    @staticmethod
    def _as_map(z: torch.Tensor) -> torch.Tensor:
        return z.reshape(z.shape[0], -1, 1, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images [N, nc, R, R] in [-1, 1] from latents z [N, z_dim] (or [N, z_dim, 1, 1])."""
        x = self._as_map(z)
        for block in self._blocks():
            x = block(x)
        return x

    def split(self, z: torch.Tensor, layer: str) -> Split:
        i = self._index(layer)
        blocks = self._blocks()
        x = self._as_map(z)
        for block in blocks[:i]:
            x = block(x)
        keys = blocks[i].keys(x)
        return Split(layer=layer, keys=keys, values=blocks[i].tail(keys))

    def resume(self, split: Split) -> torch.Tensor:
        x = split.values
        for block in self._blocks()[self._index(split.layer) + 1 :]:
            x = block(x)
        return x

    def weight_name(self, layer: str) -> str:
        self.layer(layer)
        return f"{layer}.conv.weight"

    def layer_function(self, split: Split) -> LayerFunction:
        """Conv2d without bias (linear), then WScale as a per-channel affine and LeakyReLU(0.2).

        Exact for any weight: the PixelNorm that follows belongs to the next layer's keys.
        """
        block: ProGANBlock = getattr(self, split.layer)
        weight = block.conv.weight
        padding = block.conv.padding

        def linear(keys: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
            return F.conv2d(keys, w, None, 1, padding)

        c_out = weight.shape[0]
        return LayerFunction(
            name=split.layer,
            weight=weight.detach().clone(),
            in_axis=1,
            out_axis=0,
            linear=linear,
            scale=torch.full(
                (1, c_out, 1, 1), block.wscale.scale, dtype=weight.dtype, device=weight.device
            ),
            shift=block.wscale.b.detach().clone().reshape(1, -1, 1, 1),
            activation="leaky_relu",
            negative_slope=0.2,
        )

    def unit_ablation(self, layer: str, units) -> dict[str, torch.Tensor]:
        """Zero the units' conv filters and biases (LeakyReLU(0) = 0).

        The next layer's PixelNorm divides by the mean square over all channels, so
        silencing units rescales the surviving ones in the next layer's keys, as in
        GAN-Dissection's own ablations of this model.
        """
        self.layer(layer)
        units = list(units)
        state = self.state_dict()
        new = {}
        for name in (f"{layer}.conv.weight", f"{layer}.wscale.b"):
            t = state[name].detach().clone()
            t[units] = 0
            new[name] = t
        return new

    def checkpoint(self) -> dict[str, Any]:
        """The bare state dict, as netdissect saves it (``layerN.conv.weight``, ...)."""
        return {k: v.detach().cpu().clone() for k, v in self.state_dict().items()}

    signature_key = "layer1.conv.weight"

    @classmethod
    def claims(cls, obj: Any) -> bool:
        """A dict (possibly wrapped) with ``layerN.*`` / ``output_RxR.*`` keys."""
        return has_matching_key(obj, _KEY)

    @classmethod
    def from_checkpoint(cls, obj: Mapping[str, Any], latent_seed: int = 1) -> ProGANGenerator:
        """Load a netdissect-layout state dict (bare, ``state_dict``-wrapped, ``module.``
        prefixes); see :func:`infer_config`."""
        state = unwrap_state_dict(obj)
        model = cls(infer_config(state), latent_seed=latent_seed)
        model.load_state_dict(state, strict=True)  # infer_config checked every key and shape
        model.eval()
        return model


def _dim(t: Any, axis: int) -> int | None:
    return t.shape[axis] if isinstance(t, torch.Tensor) and t.ndim > axis else None


def infer_config(state: Mapping[str, Any]) -> ProGANConfig:
    """Read a :class:`ProGANConfig` off a netdissect-layout state dict.

    Every problem found (missing or unexpected keys, an output block whose size
    does not fit the depth, shapes that do not chain) is reported at once in one
    :class:`CheckpointError`.
    """
    fail = "checkpoint does not fit the ProGAN (netdissect) layout: "
    matches = {k: _KEY.match(k) for k in state}
    layers = [int(m.group(2)) for m in matches.values() if m and m.group(2)]
    if not layers:
        raise CheckpointError(
            "no ProGAN weights found: expected keys like 'layer1.conv.weight' "
            "and 'output_64x64.wscale.b' (GAN-Dissection layout); found " + preview_keys(state)
        )
    depth = max(layers)
    res = 4 * 2 ** sum(upsamples(n) for n in range(1, depth + 1))
    out = f"output_{res}x{res}"
    names = [f"layer{n}" for n in range(1, depth + 1)] + [out]
    expected = {f"{b}.{p}" for b in names for p in _PARAMS}
    problems = key_problems(state, expected)
    unexpected = set(state) - expected
    others = sorted(
        {k.split(".")[0] for k in unexpected if (m := matches[k]) and m.group(3)}, key=natural_key
    )
    if others and out + ".conv.weight" not in state:
        problems.append(f"found {', '.join(others)}, but {depth} layers render {res}x{res}")
    if problems:
        raise CheckpointError(fail + "; ".join(problems))

    convs = [f"{b}.conv.weight" for b in names]
    for name in convs:
        shape = tensor_shape(state[name])
        if shape is None or len(shape) != 4:
            problems.append(f"{name} has shape {shape}, expected [out, in, k, k] of a Conv2d")
    if problems:
        raise CheckpointError(fail + "; ".join(problems))
    # A block's width is what most of its tensors agree on (its conv's outputs, its
    # bias, the next conv's inputs), so the one tensor that disagrees is named.
    widths = []
    for i, b in enumerate(names):
        votes = [_dim(state[convs[i]], 0), _dim(state[f"{b}.wscale.b"], 0)]
        if i + 1 < len(names):
            votes.append(_dim(state[convs[i + 1]], 1))
        widths.append(majority(votes))
    z_dim = state[convs[0]].shape[1]
    want: dict[str, tuple[int, ...]] = {}
    c_in = z_dim
    for i, (b, c_out) in enumerate(zip(names, widths, strict=True)):
        k = 1 if b == out else kernel_size(i + 1)
        want[convs[i]] = (c_out, c_in, k, k)
        want[f"{b}.wscale.b"] = (c_out,)
        c_in = c_out
    problems += shape_problems(state, want)
    if problems:
        raise CheckpointError(fail + "; ".join(problems))
    return ProGANConfig(z_dim=z_dim, channels=tuple(widths[:-1]), nc=widths[-1])
