"""StyleGAN2 family in plain PyTorch: checkpoints in the rosinality/stylegan2-pytorch layout.

A checkpoint is ``{'g_ema': state_dict, 'latent_avg': [style_dim]}`` or a bare
state dict. Size, style_dim, n_mlp and the per-resolution channel widths are
read off the tensor shapes; the mapping network's learning-rate multiplier is
not stored and defaults to rosinality's 0.01. No custom CUDA ops: the FIR
filters (``upfirdn2d``, also stylegan2-ada's and stylegan3's) and the fused leaky ReLU
are written with ordinary tensor operations, so the model runs on any device.

Sampling: sample ``i``'s z is row ``i`` of the seeded stream (see
:mod:`rewrite.models.latents`); the mapping network gives w, broadcast to every
layer (no style mixing); ``G.sampling.truncation`` < 1 pulls w toward ``latent_avg``;
noise comes from the stored ``noises.noise_i`` buffers (``G.sampling.noise`` ``'const'``,
deterministic, the default) or is drawn afresh (``'random'``).

Editable layers are the StyledConvs, ``conv1`` and ``convs.0`` ... ``convs.{2L-1}``.
The key at a StyledConv is its input feature map after per-channel style
modulation; the layer's weight is the base convolution weight
``[1, out, in, k, k]`` (input-channel axis 2). Demodulation, noise, bias and
activation are recomputed from the (edited) weight exactly as the unedited
model does. A split carries the broadcast latents, the noise and the RGB skip
image so rendering resumes where it stopped.

Usage::

    G = load_model("stylegan2-ffhq.pt")           # or StyleGAN2Generator.from_checkpoint(obj)
    G.set_sampling(truncation=0.7)
    images = G(G.latents(range(4)))              # [4, 3, size, size] in about [-1, 1]
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
from .statedict import key_problems, shape_problems

SQRT2 = math.sqrt(2.0)


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: int = 1,
    down: int = 1,
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    gain: float = 1.0,
) -> torch.Tensor:
    """``upfirdn2d`` (NVIDIA's, flip_filter False; rosinality's is the same op): zero-insertion
    upsampling, padding ``[x0, x1, y0, y1]`` (negative crops), FIR filter ``f`` (1-D =
    separable, 2-D, or None = identity; a true convolution) scaled by ``gain``, then
    keeping every ``down``-th pixel. The one used by all three StyleGAN families.

    x [N, C, H, W]; returns [N, C, (H*up + y0 + y1 - kh + 1) / down, ...] (ceil)."""
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    px0, px1, py0, py1 = padding
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]
    if f is None:
        return x[:, :, ::down, ::down] if down > 1 else x
    f = (f * gain ** (f.ndim / 2)).to(x.dtype).flip(list(range(f.ndim)))
    if f.ndim == 2:
        return F.conv2d(x, f[None, None].expand(c, 1, *f.shape), groups=c, stride=down)
    x = F.conv2d(x, f.reshape(1, 1, 1, -1).expand(c, 1, 1, f.numel()), groups=c, stride=(1, down))
    return F.conv2d(
        x, f.reshape(1, 1, -1, 1).expand(c, 1, f.numel(), 1), groups=c, stride=(down, 1)
    )


def fused_lrelu(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``leaky_relu(x + bias, 0.2) * sqrt(2)`` with bias [C] on axis 1."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return F.leaky_relu(x + bias.reshape(shape), 0.2) * SQRT2


# Holders of one tensor each, under rosinality's module and tensor names (``blur.kernel``,
# ``noise.weight``, ``activate.bias``, ``input.input``), so the state-dict keys match his.
class Blur(nn.Module):
    """The 4x4 FIR kernel of an up-sampling conv or skip (a buffer; filled on loading)."""

    kernel: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("kernel", torch.zeros(4, 4))


class NoiseInjection(nn.Module):
    """The learned strength of the per-pixel noise."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))


class FusedBias(nn.Module):
    """The bias of the scaled leaky ReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))


class ConstantInput(nn.Module):
    """The learned 4x4 input of the synthesis network."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.zeros(1, channels, 4, 4))


class EqualLinear(nn.Module):
    """Linear layer with run-time weight scaling (rosinality ``EqualLinear``)."""

    def __init__(self, in_dim: int, out_dim: int, lr_mul: float = 1.0, activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(out_dim, in_dim))
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation:
            return fused_lrelu(F.linear(x, self.weight * self.scale), self.bias * self.lr_mul)
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class PixelNorm(nn.Module):
    """Normalise each vector to unit mean square."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(1, keepdim=True) + 1e-8)


class ModulatedConv2d(nn.Module):
    """Style-modulated convolution, written as modulate-input / conv / demodulate-output
    (the non-fused form of rosinality's, equal in value)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        k: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, c_out, c_in, k, k))
        self.modulation = EqualLinear(style_dim, c_in)
        self.scale = 1 / math.sqrt(c_in * k * k)
        self.padding = k // 2
        self.demodulate = demodulate
        self.upsample = upsample
        if upsample:
            self.blur = Blur()

    def keys(self, x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Modulated input ``x * s`` [N, C_in, H, W] and the style ``s`` [N, C_in]."""
        s = self.modulation(w)
        return x * s[:, :, None, None], s

    def linear(self, keys: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """The convolution of modulated keys, before demodulation (linear in weight)."""
        wt = weight[0] * self.scale  # [out, in, k, k]
        if self.upsample:
            out = F.conv_transpose2d(keys, wt.transpose(0, 1), stride=2)
            kh = self.blur.kernel.shape[0]
            p = (kh - 2) - (wt.shape[-1] - 1)
            a, b = (p + 1) // 2 + 1, p // 2 + 1
            return upfirdn2d(out, self.blur.kernel, padding=(a, b, a, b))
        return F.conv2d(keys, wt, padding=self.padding)

    def demod(self, weight: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Demodulation coefficients [N, C_out, 1, 1] for weight and style s [N, C_in]."""
        wt = weight[0] * self.scale  # [out, in, k, k]
        sq = torch.einsum("oikl,ni->no", wt.pow(2), s.pow(2))
        return torch.rsqrt(sq + 1e-8)[:, :, None, None]


class StyledConv(nn.Module):
    """Modulated conv, noise, bias and scaled leaky ReLU."""

    def __init__(self, c_in: int, c_out: int, style_dim: int, upsample: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(c_in, c_out, 3, style_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate = FusedBias(c_out)

    def tail(self, pre: torch.Tensor, demod: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return fused_lrelu(pre * demod + self.noise.weight * noise, self.activate.bias)

    def forward(self, x, w, noise):
        keys, s = self.conv.keys(x, w)
        weight = self.conv.weight
        return self.tail(self.conv.linear(keys, weight), self.conv.demod(weight, s), noise)


class ToRGB(nn.Module):
    """1x1 modulated conv to RGB (no demodulation), plus the upsampled skip."""

    def __init__(self, c_in: int, style_dim: int, upsample: bool = True):
        super().__init__()
        self.conv = ModulatedConv2d(c_in, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        if upsample:
            self.upsample = Blur()

    def forward(self, x, w, skip=None):
        keys, _ = self.conv.keys(x, w)
        out = self.conv.linear(keys, self.conv.weight) + self.bias
        if skip is not None:
            kh = self.upsample.kernel.shape[0]
            p = kh - 2
            a, b = (p + 1) // 2 + 1, p // 2
            out = out + upfirdn2d(skip, self.upsample.kernel, up=2, padding=(a, b, a, b))
        return out


@dataclasses.dataclass(frozen=True)
class StyleGAN2Config:
    """Architecture of a rosinality-layout StyleGAN2 generator.

    Attributes:
        size: output resolution (a power of two, at least 8).
        style_dim: length of z and w.
        n_mlp: layers of the mapping network.
        channels: channel width at each resolution 4, 8, ..., size.
        lr_mlp: the mapping network's learning-rate multiplier (not stored in checkpoints).
    """

    size: int
    style_dim: int
    n_mlp: int
    channels: tuple[int, ...]
    lr_mlp: float = 0.01

    @classmethod
    def standard(
        cls, size: int = 256, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2
    ) -> StyleGAN2Config:
        """The configuration of rosinality's
        ``Generator(size, style_dim, n_mlp, channel_multiplier)``."""
        table = {
            4: 512,
            8: 512,
            16: 512,
            32: 512,
            64: 256 * channel_multiplier,
            128: 128 * channel_multiplier,
            256: 64 * channel_multiplier,
            512: 32 * channel_multiplier,
            1024: 16 * channel_multiplier,
        }
        res = [4 * 2**i for i in range(int(math.log2(size)) - 1)]
        return cls(size, style_dim, n_mlp, tuple(table[r] for r in res))

    @property
    def log_size(self) -> int:
        return int(math.log2(self.size))

    @property
    def num_layers(self) -> int:
        """Number of StyledConvs (and noise buffers)."""
        return (self.log_size - 2) * 2 + 1

    @property
    def n_latent(self) -> int:
        """Number of w vectors used (StyledConvs and ToRGBs that take a style)."""
        return self.log_size * 2 - 2


class StyleGAN2Generator(Generator):
    """A rosinality-layout StyleGAN2 generator; see the module docstring."""

    family = "stylegan2"
    sampling_fields = frozenset({"truncation", "noise"})
    noise_modes = ("const", "random")
    latent_avg: torch.Tensor  # buffer

    def __init__(self, config: StyleGAN2Config, latent_seed: int = 1):
        super().__init__(latent_seed=latent_seed)
        self.config = config
        sd, ch = config.style_dim, config.channels
        self.style = nn.Sequential(
            PixelNorm(), *[EqualLinear(sd, sd, config.lr_mlp, True) for _ in range(config.n_mlp)]
        )
        self.input = ConstantInput(ch[0])
        self.conv1 = StyledConv(ch[0], ch[0], sd)
        self.to_rgb1 = ToRGB(ch[0], sd, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        for i in range(1, len(ch)):
            self.convs.append(StyledConv(ch[i - 1], ch[i], sd, upsample=True))
            self.convs.append(StyledConv(ch[i], ch[i], sd))
            self.to_rgbs.append(ToRGB(ch[i], sd))
        self.noises = nn.Module()
        for i in range(config.num_layers):
            r = 4 * 2 ** ((i + 1) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.zeros(1, 1, r, r))
        self.register_buffer("latent_avg", torch.zeros(sd))
        self.has_latent_avg = False
        self.z_shape = (sd,)
        self.resolution = config.size
        self.eval()

    # -- latents -----------------------------------------------------------
    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """w [N, style_dim] from z [N, style_dim], truncated toward ``latent_avg``."""
        w = self.style(z)
        truncation = self.sampling.truncation
        if truncation != 1.0:
            if not self.has_latent_avg:
                raise CheckpointError(
                    "truncation needs 'latent_avg', which this checkpoint "
                    "lacks; use truncation 1 or a checkpoint saved with it"
                )
            w = self.latent_avg + truncation * (w - self.latent_avg)
        return w

    def broadcast_latents(self, z: torch.Tensor) -> torch.Tensor:
        """W+ latents [N, n_latent, style_dim]: w repeated for every layer (no mixing)."""
        return self.mapping(z)[:, None].expand(-1, self.config.n_latent, -1)

    def _noise(self, n: int) -> list[torch.Tensor]:
        bufs = [getattr(self.noises, f"noise_{i}") for i in range(self.config.num_layers)]
        if self.sampling.noise == "const":
            return bufs
        return [torch.randn(n, 1, *b.shape[2:], device=b.device) for b in bufs]

    # -- layers ------------------------------------------------------------
    def _conv(self, index: int) -> StyledConv:
        """StyledConv by layer index: 0 is conv1, i >= 1 is convs[i-1]."""
        conv = self.conv1 if index == 0 else self.convs[index - 1]
        assert isinstance(conv, StyledConv), conv
        return conv

    @staticmethod
    def _name(index: int) -> str:
        return "conv1" if index == 0 else f"convs.{index - 1}"

    def _index(self, layer: str) -> int:
        return [L.name for L in self.layers()].index(self.layer(layer).name)

    def layers(self) -> list[LayerInfo]:
        ch = self.config.channels
        infos = [LayerInfo("conv1", "ModulatedConv2d", ch[0], ch[0], 4, 4, 3, 2, "const input")]
        for i in range(1, len(ch)):
            r = 4 * 2**i
            infos.append(
                LayerInfo(
                    f"convs.{2 * i - 2}",
                    "ModulatedConv2d-up",
                    ch[i - 1],
                    ch[i],
                    r // 2,
                    r,
                    3,
                    2,
                    self._name(2 * i - 2),
                )
            )
            infos.append(
                LayerInfo(
                    f"convs.{2 * i - 1}",
                    "ModulatedConv2d",
                    ch[i],
                    ch[i],
                    r,
                    r,
                    3,
                    2,
                    f"convs.{2 * i - 2}",
                )
            )
        return infos

    def weight_name(self, layer: str) -> str:
        return f"{self.layer(layer).name}.conv.weight"

    # -- forward / split ---------------------------------------------------
    def _run(self, z: torch.Tensor, stop: int | None = None):
        """Run to StyledConv ``stop`` (its input state); None runs to the image."""
        latent = self.broadcast_latents(z)
        noise = self._noise(z.shape[0])
        x = self.input.input.expand(z.shape[0], -1, -1, -1)
        state = {"latent": latent, "noise": noise, "skip": None}
        if stop == 0:
            return x, state
        x = self.conv1(x, latent[:, 0], noise[0])
        state["skip"] = self.to_rgb1(x, latent[:, 1])
        return self._continue(x, 1, state, stop)

    def _continue(self, x, start: int, state: dict, stop: int | None = None):
        """Run StyledConvs ``start``, ``start+1``, ... (with their ToRGBs) from features x."""
        latent, noise, skip = state["latent"], state["noise"], state["skip"]
        for i in range(start, self.config.num_layers):
            if i == stop:
                return x, dict(state, skip=skip)
            x = self._conv(i)(x, latent[:, i], noise[i])
            if i % 2 == 0:  # second conv of a block: emit RGB
                skip = self.to_rgbs[i // 2 - 1](x, latent[:, i + 1], skip)
        return skip, dict(state, skip=skip)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images [N, 3, size, size] from z [N, style_dim]."""
        return self._run(z)[0]

    def split(self, z: torch.Tensor, layer: str) -> Split:
        i = self._index(layer)
        x, state = self._run(z, stop=i)
        conv = self._conv(i)
        keys, s = conv.conv.keys(x, state["latent"][:, i])
        weight = conv.conv.weight
        values = conv.tail(
            conv.conv.linear(keys, weight), conv.conv.demod(weight, s), state["noise"][i]
        )
        return Split(layer=layer, keys=keys, values=values, extras=dict(state, style=s))

    def resume(self, split: Split) -> torch.Tensor:
        i = self._index(split.layer)
        state, x = split.extras, split.values
        latent, skip = state["latent"], state["skip"]
        if i == 0:
            skip = self.to_rgb1(x, latent[:, 1])
        elif i % 2 == 0:
            skip = self.to_rgbs[i // 2 - 1](x, latent[:, i + 1], skip)
        return self._continue(x, i + 1, dict(state, skip=skip))[0]

    def layer_function(self, split: Split) -> LayerFunction:
        """Linear part: the modulated keys convolved with the weight. Tail: demodulation
        (frozen at W0 for the closed form; recomputed from the weight in ``exact``),
        noise, bias, leaky ReLU(0.2) times sqrt(2)."""
        i = self._index(split.layer)
        conv = self._conv(i)
        s, noise = split.extras["style"], split.extras["noise"][i]
        w0 = conv.conv.weight.detach().clone()
        shift = (conv.noise.weight * noise + conv.activate.bias.reshape(1, -1, 1, 1)).detach()

        def exact(keys, weight):
            return conv.tail(conv.conv.linear(keys, weight), conv.conv.demod(weight, s), noise)

        return LayerFunction(
            name=split.layer,
            weight=w0,
            in_axis=2,
            out_axis=1,
            linear=conv.conv.linear,
            scale=conv.conv.demod(w0, s).detach(),
            shift=shift,
            activation="leaky_relu",
            negative_slope=0.2,
            gain=SQRT2,
            exact=exact,
        )

    def unit_ablation(self, layer: str, units) -> dict[str, torch.Tensor]:
        """Zero the units' weights and biases. StyleGAN2 adds its per-pixel noise with one
        strength for every unit, so an ablated unit still carries ``leaky_relu(noise)``."""
        name = self.layer(layer).name
        units = list(units)
        state = self.state_dict()
        w = state[f"{name}.conv.weight"].clone()
        w[:, units] = 0
        b = state[f"{name}.activate.bias"].clone()
        b[units] = 0
        return {f"{name}.conv.weight": w, f"{name}.activate.bias": b}

    # -- checkpoints -------------------------------------------------------
    def checkpoint(self) -> dict[str, Any]:
        """``{'g_ema': state_dict, 'latent_avg': tensor}`` (rosinality layout)."""
        sd = {
            k: v.detach().cpu().clone() for k, v in self.state_dict().items() if k != "latent_avg"
        }
        out: dict[str, Any] = {"g_ema": sd}
        if self.has_latent_avg:
            out["latent_avg"] = self.latent_avg.detach().cpu().clone()
        return out

    signature_key = "g_ema / style.1.weight"

    @classmethod
    def claims(cls, obj: Any) -> bool:
        """Whether ``obj`` looks like this family's checkpoint (cheap key check)."""
        return isinstance(obj, Mapping) and ("g_ema" in obj or "style.1.weight" in obj)

    @classmethod
    def from_checkpoint(cls, obj: Mapping[str, Any], latent_seed: int = 1) -> StyleGAN2Generator:
        """Load a rosinality checkpoint (``g_ema`` + ``latent_avg``, or a bare state dict)."""
        if not isinstance(obj, Mapping):
            raise CheckpointError(f"expected a dict, found a {type(obj).__name__}")
        state = obj.get("g_ema", obj)
        if not isinstance(state, Mapping):
            raise CheckpointError("'g_ema' must be a state dict")
        state = {k.removeprefix("module."): v for k, v in state.items()}
        config = infer_config(state)
        G = cls(config, latent_seed=latent_seed)
        expected = G.state_dict()
        expected.pop("latent_avg")
        _check_keys_and_shapes(state, expected)
        G.load_state_dict(state, strict=False)
        avg = obj.get("latent_avg") if "g_ema" in obj else None
        if avg is not None:
            if tuple(avg.shape) != (config.style_dim,):
                raise CheckpointError(
                    f"latent_avg has shape {tuple(avg.shape)}, expected ({config.style_dim},)"
                )
            G.latent_avg.copy_(avg)
            G.has_latent_avg = True
        return G.eval()

    @classmethod
    def random(cls, config: StyleGAN2Config, seed: int = 0) -> StyleGAN2Generator:
        """A model with random weights as rosinality initialises them (for benchmarks)."""
        G = cls(config)
        g = torch.Generator().manual_seed(seed)
        k = torch.tensor([1.0, 3.0, 3.0, 1.0])
        k = (k[None] * k[:, None]) / 64 * 4
        with torch.no_grad():
            for name, t in G.named_parameters():
                if name.endswith("modulation.bias"):
                    t.fill_(1.0)
                elif name.startswith("style.") and name.endswith("weight"):
                    t.copy_(torch.randn(t.shape, generator=g) / config.lr_mlp)
                elif name.endswith("weight") or name == "input.input":
                    t.copy_(torch.randn(t.shape, generator=g))
            for name, b in G.named_buffers():
                if name.endswith("kernel"):
                    b.copy_(k)
                elif name.startswith("noises."):
                    b.copy_(torch.randn(b.shape, generator=g))
        return G.eval()


_STYLE = re.compile(r"^style\.(\d+)\.weight$")


def infer_config(state: Mapping[str, Any]) -> StyleGAN2Config:
    """Read a :class:`StyleGAN2Config` off a rosinality state dict."""

    def shape(key):
        t = state.get(key)
        return tuple(t.shape) if isinstance(t, torch.Tensor) else None

    mlp = sorted(int(m.group(1)) for k in state if (m := _STYLE.match(k)))
    base = shape("input.input")
    if not mlp or base is None:
        missing = [k for k in ("style.1.weight", "input.input") if shape(k) is None]
        raise CheckpointError(
            "not a StyleGAN2 generator in the rosinality layout: missing " + ", ".join(missing)
        )
    style_dim = shape("style.1.weight")[1]
    n_blocks = 0
    while shape(f"convs.{2 * n_blocks}.conv.weight") is not None:
        n_blocks += 1
    channels = [base[1]]
    for i in range(n_blocks):
        s = shape(f"convs.{2 * i}.conv.weight")
        if len(s) != 5:
            raise CheckpointError(
                f"convs.{2 * i}.conv.weight has shape {s}, expected [1, out, in, 3, 3]"
            )
        channels.append(s[1])
    return StyleGAN2Config(
        size=4 * 2**n_blocks, style_dim=style_dim, n_mlp=len(mlp), channels=tuple(channels)
    )


def _check_keys_and_shapes(state: Mapping[str, Any], expected: Mapping[str, torch.Tensor]) -> None:
    problems = key_problems(state, expected)
    problems += shape_problems(state, {k: tuple(t.shape) for k, t in expected.items()})
    if problems:
        raise CheckpointError(
            "checkpoint does not fit the StyleGAN2 layout: " + "; ".join(problems)
        )
