"""DCGAN family: the PyTorch-tutorial generator layout.

``main`` is an ``nn.Sequential`` of blocks ``ConvTranspose2d, BatchNorm2d, ReLU``
ending in ``ConvTranspose2d, Tanh``; state-dict keys are ``main.N.*``. The first
block maps the [nz, 1, 1] latent to 4x4 (stride 1, padding 0); every later one
doubles the resolution (stride 2, padding (k-2)/2). nz, the channel widths,
the kernel size and the depth are read off the tensor shapes.

Editable layers are the transposed convolutions, named by their module
(``main.0``, ``main.3``, ...). The keys of ``main.3k`` are its input (the
previous ReLU's output, or z); its values are the output of its own ReLU (or
Tanh, for the last layer).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..memory.layer import LayerFunction
from ..utils.errors import CheckpointError
from .base import Generator, LayerInfo, Split
from .statedict import (
    has_matching_key,
    key_problems,
    majority,
    preview_keys,
    shape_problems,
    tensor_shape,
    unwrap_state_dict,
)

_KEY = re.compile(r"^main\.(\d+)\.(weight|bias|running_mean|running_var|num_batches_tracked)$")
_BN_KEYS = ("weight", "bias", "running_mean", "running_var")


@dataclasses.dataclass(frozen=True)
class DCGANConfig:
    """Architecture of a tutorial-layout DCGAN.

    Attributes:
        nz: latent length.
        channels: output channels of each ConvTranspose2d, input to output (last = nc).
        kernel_size: square kernel size of every layer (even).
        conv_bias: whether the transposed convolutions carry a bias.
    """

    nz: int
    channels: tuple[int, ...]
    kernel_size: int = 4
    conv_bias: bool = False

    @property
    def nc(self) -> int:
        """Image channels."""
        return self.channels[-1]

    @property
    def depth(self) -> int:
        """Number of transposed convolutions."""
        return len(self.channels)

    @property
    def resolution(self) -> int:
        """Output image size in pixels."""
        return self.kernel_size * 2 ** (self.depth - 1)


class DCGANGenerator(Generator):
    """A tutorial-layout DCGAN generator; see the module docstring."""

    family = "dcgan"

    def __init__(self, config: DCGANConfig, latent_seed: int = 1):
        super().__init__(latent_seed=latent_seed)
        self.config = config
        k = config.kernel_size
        mods: list[nn.Module] = []
        c_in = config.nz
        for i, c_out in enumerate(config.channels):
            stride, pad = (1, 0) if i == 0 else (2, (k - 2) // 2)
            mods.append(nn.ConvTranspose2d(c_in, c_out, k, stride, pad, bias=config.conv_bias))
            if i < config.depth - 1:
                mods += [nn.BatchNorm2d(c_out), nn.ReLU(inplace=False)]
            else:
                mods.append(nn.Tanh())
            c_in = c_out
        self.main = nn.Sequential(*mods)
        self.z_shape = (config.nz, 1, 1)
        self.resolution = config.resolution
        self.eval()

    # Block b covers main[3b : 3b+3] (conv, BN, ReLU); the last block is conv, Tanh.
    def _block_range(self, b: int) -> tuple[int, int]:
        start = 3 * b
        return start, min(start + 3, len(self.main))

    def _block_of(self, layer: str) -> int:
        return self.layers().index(self.layer(layer))

    def layers(self) -> list[LayerInfo]:
        cfg = self.config
        infos = []
        c_in, res_in = cfg.nz, 1
        for b, c_out in enumerate(cfg.channels):
            res_out = cfg.kernel_size * 2**b
            infos.append(
                LayerInfo(
                    name=f"main.{3 * b}",
                    kind="ConvTranspose2d",
                    in_channels=c_in,
                    out_channels=c_out,
                    key_resolution=res_in,
                    value_resolution=res_out,
                    kernel_size=cfg.kernel_size,
                    weight_in_axis=0,
                    key_source="z" if b == 0 else f"main.{3 * b - 1}",
                )
            )
            c_in, res_in = c_out, res_out
        return infos

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images [N, nc, R, R] in [-1, 1] from latents z [N, nz, 1, 1]."""
        return self.main(z)

    def split(self, z: torch.Tensor, layer: str) -> Split:
        b = self._block_of(layer)
        start, stop = self._block_range(b)
        keys = self.main[:start](z)
        values = self.main[start:stop](keys)
        return Split(layer=layer, keys=keys, values=values)

    def resume(self, split: Split) -> torch.Tensor:
        _, stop = self._block_range(self._block_of(split.layer))
        return self.main[stop:](split.values)

    def layer_modules(self, layer: str) -> tuple[nn.Module, nn.Module]:
        """The block's transposed convolution (its input: the keys) and its last module
        (ReLU, or Tanh for the last block; its output: the values)."""
        start, stop = self._block_range(self._block_of(layer))
        return self.main[start], self.main[stop - 1]

    def weight_name(self, layer: str) -> str:
        self.layer(layer)
        return f"{layer}.weight"

    def layer_function(self, split: Split) -> LayerFunction:
        """Transposed conv (linear), then BatchNorm folded to a per-channel affine and ReLU,
        or Tanh for the last layer."""
        b = self._block_of(split.layer)
        start, _ = self._block_range(b)
        conv = self.main[start]
        assert isinstance(conv, nn.ConvTranspose2d), conv
        c_out = conv.out_channels
        scale = torch.ones(c_out, device=conv.weight.device)
        shift = (
            conv.bias.detach().clone()
            if conv.bias is not None
            else torch.zeros(c_out, device=conv.weight.device)
        )
        if b < self.config.depth - 1:
            bn = self.main[start + 1]
            assert isinstance(bn, nn.BatchNorm2d), bn
            assert bn.running_var is not None and bn.running_mean is not None
            inv = (bn.running_var + bn.eps).rsqrt() * bn.weight
            shift = (shift - bn.running_mean) * inv + bn.bias
            scale = inv
            activation = "relu"
        else:
            activation = "tanh"
        stride, padding = conv.stride, conv.padding
        assert not isinstance(padding, str), padding  # only Conv2d takes "same"/"valid"

        def linear(keys: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
            return nn.functional.conv_transpose2d(keys, weight, None, stride, padding)

        return LayerFunction(
            name=split.layer,
            weight=conv.weight.detach().clone(),
            in_axis=0,
            out_axis=1,
            linear=linear,
            scale=scale.detach().reshape(1, -1, 1, 1),
            shift=shift.detach().reshape(1, -1, 1, 1),
            activation=activation,
        )

    def unit_ablation(self, layer: str, units) -> dict[str, torch.Tensor]:
        """Zero the units' weights and, after BatchNorm, their scale and shift (ReLU(0) = 0)."""
        b = self._block_of(layer)
        start, _ = self._block_range(b)
        units = list(units)
        state = self.state_dict()
        names = [f"main.{start}.weight"]
        if self.config.conv_bias:
            names.append(f"main.{start}.bias")
        if b < self.config.depth - 1:
            names += [f"main.{start + 1}.weight", f"main.{start + 1}.bias"]
        new = {}
        for name in names:
            t = state[name].detach().clone()
            if t.ndim == 4:
                t[:, units] = 0
            else:
                t[units] = 0
            new[name] = t
        return new

    def checkpoint(self) -> dict[str, Any]:
        """``{'netG_state_dict': state_dict}``, the tutorial's training-checkpoint layout."""
        return {
            "netG_state_dict": {k: v.detach().cpu().clone() for k, v in self.state_dict().items()}
        }

    signature_key = "main.0.weight"

    @classmethod
    def claims(cls, obj: Any) -> bool:
        """A dict (possibly wrapped) with ``main.N.*`` keys."""
        return has_matching_key(obj, _KEY)

    @classmethod
    def from_checkpoint(cls, obj: Mapping[str, Any], latent_seed: int = 1) -> DCGANGenerator:
        """Load a tutorial-layout checkpoint (wrapped or bare state dict); see
        :func:`infer_config`."""
        state = unwrap_state_dict(obj)
        config = infer_config(state)
        model = cls(config, latent_seed=latent_seed)
        # infer_config has checked every key and shape, so strict loading cannot fail
        # except for num_batches_tracked, which older checkpoints may lack.
        missing, unexpected = model.load_state_dict(state, strict=False)
        assert not unexpected and all(m.endswith("num_batches_tracked") for m in missing), (
            missing,
            unexpected,
        )
        model.eval()
        return model


def infer_config(state: Mapping[str, Any]) -> DCGANConfig:
    """Read a :class:`DCGANConfig` off a tutorial-layout state dict.

    Every problem found (missing or unexpected keys, shapes that do not chain)
    is reported at once in one :class:`CheckpointError`.
    """
    problems: list[str] = []
    indices = [int(m.group(1)) for k in state if (m := _KEY.match(k))]
    if not indices:
        raise CheckpointError(
            "no DCGAN weights found: expected keys like 'main.0.weight' "
            f"(PyTorch-tutorial layout); found {preview_keys(state)}"
        )
    last = max(indices)
    if last % 3:
        raise CheckpointError(
            f"the last layer with weights is main.{last}, but in the tutorial layout the "
            "transposed convolutions sit at main.0, main.3, main.6, ... and the final one "
            "is followed only by Tanh; is this a DCGAN generator?"
        )
    depth = last // 3 + 1
    expected: set[str] = set()
    conv_bias = any(f"main.{3 * b}.bias" in state for b in range(depth))
    for b in range(depth):
        expected.add(f"main.{3 * b}.weight")
        if conv_bias:
            expected.add(f"main.{3 * b}.bias")
        if b < depth - 1:
            expected.update(f"main.{3 * b + 1}.{p}" for p in _BN_KEYS)
    optional = {f"main.{3 * b + 1}.num_batches_tracked" for b in range(depth - 1)}
    problems += key_problems(state, expected, optional)
    if problems:
        raise CheckpointError("checkpoint does not fit the DCGAN layout: " + "; ".join(problems))

    # Every conv weight must be [in, out, k, k] with one even k throughout.
    convs = [f"main.{3 * b}.weight" for b in range(depth)]
    shapes = {name: tensor_shape(state[name]) for name in convs}
    for name, shape in shapes.items():
        if shape is None or len(shape) != 4 or shape[2] != shape[3]:
            problems.append(
                f"{name} has shape {shape}, expected [in, out, k, k] of a ConvTranspose2d"
            )
    if problems:
        raise CheckpointError("checkpoint does not fit the DCGAN layout: " + "; ".join(problems))
    sizes = {name: shape for name, shape in shapes.items() if shape is not None}  # all of them
    nz, kernel = sizes[convs[0]][0], sizes[convs[0]][2]
    if kernel % 2:
        problems.append(f"main.0.weight has odd kernel size {kernel}; the layout needs an even one")
    # A block's width is what most of its tensors agree on (its conv's outputs, its
    # BatchNorm, the next conv's inputs), so the one tensor that disagrees is named.
    channels: list[int] = []
    for b in range(depth):
        votes: list[int | None] = [sizes[convs[b]][1]]
        if b < depth - 1:
            votes += [
                (tensor_shape(state[f"main.{3 * b + 1}.{p}"]) or (None,))[0] for p in _BN_KEYS
            ]
            votes.append(sizes[convs[b + 1]][0])
        channels.append(majority(votes))
    expected_shapes: dict[str, tuple[int, ...]] = {}
    c_in = nz
    for b, c_out in enumerate(channels):
        expected_shapes[convs[b]] = (c_in, c_out, kernel, kernel)
        if conv_bias:
            expected_shapes[f"main.{3 * b}.bias"] = (c_out,)
        if b < depth - 1:
            expected_shapes.update({f"main.{3 * b + 1}.{p}": (c_out,) for p in _BN_KEYS})
        c_in = c_out
    problems += shape_problems(state, expected_shapes)
    if problems:
        raise CheckpointError("checkpoint does not fit the DCGAN layout: " + "; ".join(problems))
    return DCGANConfig(nz=nz, channels=tuple(channels), kernel_size=kernel, conv_bias=conv_bias)
