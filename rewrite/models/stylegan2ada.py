"""StyleGAN2-ADA family in plain PyTorch: NVIDIA's ``stylegan2-ada-pytorch`` network pickles.

The model is built from what :mod:`rewrite.models.nvidia_pickle` reads out of a
``network-snapshot-*.pkl`` / ``ffhq.pkl`` (the ``G_ema`` generator's saved module
attributes and tensors), never from the code stored in the file. Module and
tensor names are NVIDIA's (``mapping.fc0.weight``, ``synthesis.b8.conv0.weight``,
``mapping.w_avg``, ...), so ``state_dict()`` keys equal those of ``G_ema``.

What is implemented (``training/networks.py``): the mapping network (2nd-moment
normalisation, lr-multiplied fully connected layers, optional class embedding,
``w_avg``, truncation toward ``w_avg`` with an optional cutoff), the synthesis
network with modulated / demodulated convolutions (2x up-convolution with the
FIR ``resample_filter``), per-layer noise with ``noise_strength``, bias, leaky
ReLU times sqrt(2), ``conv_clamp``, ToRGB layers without demodulation, and the
``skip`` (default), ``orig`` and ``resnet`` architectures. Everything runs in
float32: ``use_fp16`` / ``num_fp16_res`` are ignored (the stored weights are
float32 either way). All three architectures are checked against NVIDIA's own outputs
(``skip`` unconditional and class-conditional, ``orig`` and ``resnet``: the fixtures of
``tests/fixtures/`` and ``tests/fixtures/nvlabs/``).

Sampling: sample ``i``'s z is row ``i`` of the seeded stream; ws = mapping(z, c)
broadcast to every layer; ``G.sampling.truncation`` < 1 lerps the first
``G.sampling.cutoff`` ws (all when None) toward ``w_avg``; noise is ``'const'`` (the
stored ``noise_const`` buffers, deterministic, default), ``'random'`` or ``'none'``.
Class-conditional models (``c_dim > 0``) use the one-hot label of
``G.sampling.class_index`` (default 0).

Editable layers are the SynthesisLayers ``b4.conv1``, ``b8.conv0``, ``b8.conv1``, ...
The key is the layer's input after per-channel style modulation; the rewritten
weight is the base weight ``[out, in, k, k]`` (input-channel axis 1).
Demodulation, noise, bias, activation and clamp are recomputed from the (edited)
weight exactly as the unedited model does.

Usage::

    G = load_model("ffhq.pkl")                     # content-detected
    G.set_sampling(truncation=0.7)                 # or class_index=3, cutoff=8, noise=...
    images = G(G.latents(range(4)))               # [4, 3, R, R], about [-1, 1]
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..memory.layer import LayerFunction
from ..utils.errors import CheckpointError
from .base import LayerInfo, Split
from .nvidia_family import NvidiaPickleGenerator, known_config_fields
from .nvidia_pickle import PersistentObject
from .stylegan2 import upfirdn2d

SQRT2 = math.sqrt(2.0)
_ACT_GAIN = {"linear": 1.0, "lrelu": SQRT2, "relu": SQRT2}


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None,
    act: str = "linear",
    gain: float = 1.0,
    clamp: float | None = None,
) -> torch.Tensor:
    """NVIDIA's ``bias_act`` reference path: add bias, activate, scale, clamp."""
    if b is not None:
        x = x + b.reshape((1, -1) + (1,) * (x.ndim - 2))
    if act == "lrelu":
        x = F.leaky_relu(x, 0.2)
    elif act == "relu":
        x = F.relu(x)
    elif act != "linear":
        raise CheckpointError(f"unsupported activation {act!r} (supported: linear, lrelu, relu)")
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def filter_2d(f: torch.Tensor) -> torch.Tensor:
    """A stored resample filter as a 2-D kernel (separable 1-D filters are expanded)."""
    return f[:, None] * f[None, :] if f.ndim == 1 else f


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2) -> torch.Tensor:
    """``upfirdn2d.upsample2d``: zero-insertion upsampling and the FIR filter (gain up²)."""
    f = filter_2d(f)
    fw = f.shape[-1]
    a, b = (fw + up - 1) // 2, (fw - up) // 2
    return upfirdn2d(x, f * up**2, up=up, padding=(a, b, a, b))


def conv_up(
    x: torch.Tensor, weight: torch.Tensor, f: torch.Tensor, padding: int, up: int = 2
) -> torch.Tensor:
    """``conv2d_resample(x, weight, f, up, padding, flip_weight=False)`` for groups 1:
    transposed strided convolution, then the FIR filter with gain up²."""
    f = filter_2d(f)
    kw, fw = weight.shape[-1], f.shape[-1]
    if kw == 1:
        x = F.conv2d(x, weight)
        a, b = padding + (fw + up - 1) // 2, padding + (fw - up) // 2
        return upfirdn2d(x, f * up**2, up=up, padding=(a, b, a, b))
    p0 = padding + (fw + up - 1) // 2 - (kw - 1)
    p1 = padding + (fw - up) // 2 - (kw - up)
    pt = max(min(-p0, -p1), 0)
    x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=up, padding=pt)
    a, b = p0 + pt, p1 + pt
    return upfirdn2d(x, f * up**2, padding=(a, b, a, b))


class FullyConnectedLayer(nn.Module):
    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        bias: bool = True,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.activation = activation
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.weight_gain
        b: torch.Tensor | None = self.bias
        if b is not None and self.bias_gain != 1:
            b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, self.activation, gain=_ACT_GAIN[self.activation])


@dataclasses.dataclass(frozen=True)
class MappingConfig:
    """What :class:`MappingNetwork` reads when the config is not a stylegan2-ada one
    (stylegan3's mapping)."""

    z_dim: int
    c_dim: int
    w_dim: int
    mapping_layers: int
    embed_features: int
    layer_features: int
    mapping_activation: str
    mapping_lr: float


class MappingNetwork(nn.Module):
    w_avg: torch.Tensor  # buffer: the running mean of w

    def __init__(self, cfg: StyleGAN2ADAConfig | MappingConfig):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = cfg.z_dim, cfg.c_dim, cfg.w_dim
        self.num_layers = cfg.mapping_layers
        embed = cfg.embed_features if cfg.c_dim > 0 else 0
        feats = [cfg.z_dim + embed] + [cfg.layer_features] * (cfg.mapping_layers - 1) + [cfg.w_dim]
        if cfg.c_dim > 0:
            self.embed = FullyConnectedLayer(cfg.c_dim, embed)
        for i in range(cfg.mapping_layers):
            setattr(
                self,
                f"fc{i}",
                FullyConnectedLayer(feats[i], feats[i + 1], cfg.mapping_activation, cfg.mapping_lr),
            )
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """w [N, w_dim] (not broadcast, not truncated)."""
        x = normalize_2nd_moment(z.to(torch.float32)) if self.z_dim > 0 else None
        if self.c_dim > 0:
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        assert x is not None, "a mapping network has a latent or a class input"
        return x


class SynthesisLayer(nn.Module):
    """Modulated conv (optionally 2x up), noise, bias, activation, clamp."""

    resample_filter: torch.Tensor  # buffers
    noise_const: torch.Tensor

    def __init__(
        self,
        c_in: int,
        c_out: int,
        w_dim: int,
        resolution: int,
        up: int,
        kernel_size: int,
        use_noise: bool,
        activation: str,
        conv_clamp: float | None,
        filter_shape: tuple[int, ...],
    ):
        super().__init__()
        self.resolution, self.up, self.use_noise = resolution, up, use_noise
        self.activation, self.conv_clamp = activation, conv_clamp
        self.padding = kernel_size // 2
        self.act_gain = _ACT_GAIN[activation]
        self.weight = nn.Parameter(torch.zeros(c_out, c_in, kernel_size, kernel_size))
        if use_noise:
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.register_buffer("resample_filter", torch.zeros(filter_shape))
        if use_noise:
            self.register_buffer("noise_const", torch.zeros(resolution, resolution))
        self.affine = FullyConnectedLayer(w_dim, c_in)

    def keys(self, x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Modulated input ``x * s`` and the styles ``s`` [N, C_in]."""
        s = self.affine(w)
        return x * s[:, :, None, None], s

    def linear(self, keys: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """The convolution of the modulated keys, before demodulation (linear in weight)."""
        if self.up > 1:
            return conv_up(keys, weight, self.resample_filter, self.padding, self.up)
        return F.conv2d(keys, weight, padding=self.padding)

    @staticmethod
    def demod(weight: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Demodulation coefficients [N, C_out, 1, 1]."""
        sq = torch.einsum("oikl,ni->no", weight.square(), s.square())
        return (sq + 1e-8).rsqrt()[:, :, None, None]

    def noise_input(self, n: int, mode: str) -> torch.Tensor | None:
        """The unscaled noise for ``mode`` (``const`` / ``random`` / ``none``)."""
        if not self.use_noise or mode == "none":
            return None
        if mode == "const":
            return self.noise_const[None, None]
        if mode == "random":
            return torch.randn(
                n, 1, self.resolution, self.resolution, device=self.noise_const.device
            )
        raise ValueError(f"noise mode must be 'const', 'random' or 'none', got {mode!r}")

    def shift(self, noise: torch.Tensor | None) -> torch.Tensor:
        """What is added before the activation: noise x strength + bias."""
        b = self.bias.reshape(1, -1, 1, 1)
        return b if noise is None else noise * self.noise_strength + b

    def tail(self, pre, demod, noise, gain: float = 1.0) -> torch.Tensor:
        x = pre * demod
        if noise is not None:
            x = x + noise * self.noise_strength
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, self.activation, self.act_gain * gain, clamp)

    def forward(self, x, w, noise, gain: float = 1.0) -> torch.Tensor:
        keys, s = self.keys(x, w)
        return self.tail(self.linear(keys, self.weight), self.demod(self.weight, s), noise, gain)


class ToRGBLayer(nn.Module):
    def __init__(
        self, c_in: int, c_out: int, w_dim: int, kernel_size: int, conv_clamp: float | None
    ):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.weight = nn.Parameter(torch.zeros(c_out, c_in, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.affine = FullyConnectedLayer(w_dim, c_in)
        self.weight_gain = 1 / math.sqrt(c_in * kernel_size**2)
        self.padding = 0

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        s = self.affine(w) * self.weight_gain
        x = F.conv2d(x * s[:, :, None, None], self.weight, padding=self.padding)
        return bias_act(x, self.bias, clamp=self.conv_clamp)


class Conv2dLayer(nn.Module):
    """The resnet architecture's 1x1 up-sampling skip (no bias, linear)."""

    resample_filter: torch.Tensor  # buffer

    def __init__(self, c_in: int, c_out: int, filter_shape: tuple[int, ...]):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(c_out, c_in, 1, 1))
        self.register_buffer("resample_filter", torch.zeros(filter_shape))
        self.weight_gain = 1 / math.sqrt(c_in)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        x = conv_up(x, self.weight * self.weight_gain, self.resample_filter, 0)
        return x * gain if gain != 1 else x


class SynthesisBlock(nn.Module):
    resample_filter: torch.Tensor  # buffer

    def __init__(self, cfg: StyleGAN2ADAConfig, index: int):
        super().__init__()
        res = 4 * 2**index
        c_in = cfg.channels[index - 1] if index > 0 else 0
        c_out = cfg.channels[index]
        self.in_channels, self.resolution = c_in, res
        self.is_last = res == cfg.img_resolution
        self.architecture = cfg.architecture
        fs = cfg.filter_shape
        if c_in == 0:
            self.const = nn.Parameter(torch.zeros(c_out, res, res))
        self.register_buffer("resample_filter", torch.zeros(fs))
        kw = dict(
            w_dim=cfg.w_dim,
            resolution=res,
            kernel_size=cfg.kernel_size,
            use_noise=cfg.use_noise,
            activation=cfg.activation,
            conv_clamp=cfg.conv_clamp,
            filter_shape=fs,
        )
        if c_in != 0:
            self.conv0 = SynthesisLayer(c_in, c_out, up=2, **kw)
        self.conv1 = SynthesisLayer(c_out, c_out, up=1, **kw)
        if self.is_last or self.architecture == "skip":
            self.torgb = ToRGBLayer(c_out, cfg.img_channels, cfg.w_dim, 1, cfg.conv_clamp)
        if c_in != 0 and self.architecture == "resnet":
            self.skip = Conv2dLayer(c_in, c_out, fs)

    @property
    def convs(self) -> list[SynthesisLayer]:
        return [self.conv1] if self.in_channels == 0 else [self.conv0, self.conv1]

    @property
    def has_torgb(self) -> bool:
        return self.is_last or self.architecture == "skip"

    def conv_gain(self, j: int) -> float:
        """Gain of conv ``j`` of this block (resnet halves the variance of the sum)."""
        last = j == len(self.convs) - 1
        return (
            math.sqrt(0.5) if self.architecture == "resnet" and self.in_channels and last else 1.0
        )


class SynthesisNetwork(nn.Module):
    def __init__(self, cfg: StyleGAN2ADAConfig):
        super().__init__()
        self.block_resolutions = [4 * 2**i for i in range(len(cfg.channels))]
        for i, res in enumerate(self.block_resolutions):
            setattr(self, f"b{res}", SynthesisBlock(cfg, i))

    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, f"b{r}") for r in self.block_resolutions]


@dataclasses.dataclass(frozen=True)
class StyleGAN2ADAConfig:
    """Architecture of an NVIDIA stylegan2-ada generator, as read off the pickle.

    ``channels`` are the widths of blocks 4, 8, ..., img_resolution.
    """

    z_dim: int
    c_dim: int
    w_dim: int
    img_resolution: int
    img_channels: int
    channels: tuple[int, ...]
    mapping_layers: int = 8
    mapping_lr: float = 0.01
    mapping_activation: str = "lrelu"
    embed_features: int = 0
    layer_features: int = 512
    architecture: str = "skip"
    kernel_size: int = 3
    use_noise: bool = True
    activation: str = "lrelu"
    conv_clamp: float | None = None
    filter_shape: tuple[int, ...] = (4, 4)

    @property
    def num_ws(self) -> int:
        return 2 * len(self.channels)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["channels"], d["filter_shape"] = list(self.channels), list(self.filter_shape)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StyleGAN2ADAConfig:
        d = known_config_fields(cls, d, "stylegan2-ada")
        d["channels"] = tuple(int(c) for c in d["channels"])
        d["filter_shape"] = tuple(int(c) for c in d.get("filter_shape", (4, 4)))
        return cls(**d)


def _shape(obj: PersistentObject, name: str) -> tuple[int, ...]:
    t = obj.tensors().get(name)
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{obj.class_name} has no tensor {name!r}")
    return tuple(t.shape)


def config_from_pickle(G: PersistentObject) -> StyleGAN2ADAConfig:
    """Read a :class:`StyleGAN2ADAConfig` off the saved ``G_ema`` (attributes and shapes)."""
    try:
        mapping, synthesis = G.module("mapping"), G.module("synthesis")
        resolutions = [int(r) for r in synthesis.get("block_resolutions")]
        blocks = [synthesis.module(f"b{r}") for r in resolutions]
        channels = []
        for b in blocks:
            w = _shape(b.module("conv1"), "weight")
            channels.append(w[0])
        conv = blocks[0].module("conv1")
        fc0 = mapping.module("fc0")
        fc0_shape = _shape(fc0, "weight")
        c_dim = int(G.get("c_dim"))
        embed = _shape(mapping.module("embed"), "weight")[0] if c_dim > 0 else 0
        clamp = conv.get("conv_clamp")
        cfg = StyleGAN2ADAConfig(
            z_dim=int(G.get("z_dim")),
            c_dim=c_dim,
            w_dim=int(G.get("w_dim")),
            img_resolution=int(G.get("img_resolution")),
            img_channels=int(G.get("img_channels")),
            channels=tuple(channels),
            mapping_layers=int(mapping.get("num_layers")),
            mapping_lr=float(fc0.get("bias_gain")),
            mapping_activation=str(fc0.get("activation")),
            embed_features=embed,
            layer_features=fc0_shape[0],
            architecture=str(blocks[0].get("architecture")),
            kernel_size=_shape(conv, "weight")[-1],
            use_noise=bool(conv.get("use_noise")),
            activation=str(conv.get("activation")),
            conv_clamp=None if clamp is None else float(clamp),
            filter_shape=_shape(blocks[0], "resample_filter"),
        )
    except (CheckpointError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise CheckpointError(f"G_ema does not have the stylegan2-ada layout ({e})") from None
    if (
        resolutions != [4 * 2**i for i in range(len(resolutions))]
        or resolutions[-1] != cfg.img_resolution
    ):
        raise CheckpointError(
            f"unexpected block resolutions {resolutions[:12]} for "
            f"img_resolution {cfg.img_resolution}: expected 4, 8, ..., "
            "img_resolution"
        )
    if cfg.architecture not in ("skip", "orig", "resnet"):
        raise CheckpointError(f"unknown architecture {cfg.architecture!r}")
    if cfg.activation not in _ACT_GAIN or cfg.mapping_activation not in _ACT_GAIN:
        raise CheckpointError(f"unsupported activation {cfg.activation!r}")
    return cfg


def _is_sg2ada(G: Any) -> bool:
    if not isinstance(G, PersistentObject) or G.class_name != "Generator":
        return False
    syn = G.children().get("synthesis")
    return isinstance(syn, PersistentObject) and any(
        isinstance(b, PersistentObject) and b.class_name == "SynthesisBlock"
        for b in syn.children().values()
    )


class StyleGAN2ADAGenerator(NvidiaPickleGenerator):
    """An NVIDIA stylegan2-ada-pytorch generator; see the module docstring."""

    family = "stylegan2-ada"
    sampling_fields = frozenset({"truncation", "cutoff", "noise", "class_index"})
    noise_modes = ("const", "random", "none")

    @classmethod
    def check_config(cls, config: StyleGAN2ADAConfig) -> None:
        """One block per resolution 4, 8, ..., img_resolution, and a known architecture
        and activation (:class:`CheckpointError` otherwise)."""
        n = len(config.channels)
        if config.img_resolution != 4 * 2 ** (n - 1):
            raise CheckpointError(
                f"stylegan2-ada network: {n} blocks make "
                f"{4 * 2 ** (n - 1)} px images, but it declares "
                f"img_resolution {config.img_resolution}"
            )
        if config.architecture not in ("skip", "orig", "resnet"):
            raise CheckpointError(f"unknown architecture {config.architecture!r}")
        if config.activation not in _ACT_GAIN or config.mapping_activation not in _ACT_GAIN:
            raise CheckpointError(f"unsupported activation {config.activation!r}")

    def __init__(self, config: StyleGAN2ADAConfig, latent_seed: int = 1):
        super().__init__(config, latent_seed=latent_seed)
        self.synthesis = SynthesisNetwork(config)
        self.mapping = MappingNetwork(config)
        self.num_ws = config.num_ws
        self.z_shape = (config.z_dim,)
        self.resolution = config.img_resolution
        #: The source pickle's objects (kept to write the file back), if loaded from one.
        self.source: Any = None
        self.eval()

    # -- latents -----------------------------------------------------------
    def labels(self, n: int) -> torch.Tensor:
        """Class labels c [N, c_dim]: one-hot ``sampling.class_index`` (empty when
        unconditional; :meth:`set_sampling` keeps the class in range)."""
        c = torch.zeros(n, self.config.c_dim, device=self.device)
        if self.config.c_dim:
            c[:, self.sampling.class_index] = 1
        return c

    def broadcast_latents(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """ws [N, num_ws, w_dim], truncated toward ``w_avg`` as :attr:`sampling` says."""
        c = self.labels(z.shape[0]) if c is None else c
        ws = self.mapping(z, c).unsqueeze(1).repeat(1, self.num_ws, 1)
        psi, k = self.sampling.truncation, self.sampling.cutoff
        if psi != 1:
            avg = self.mapping.w_avg
            if k is None:
                ws = avg.lerp(ws, psi)
            else:
                ws = torch.cat([avg.lerp(ws[:, :k], psi), ws[:, k:]], dim=1)
        return ws

    # -- layers ------------------------------------------------------------
    def _layer_list(self) -> list[tuple[str, SynthesisBlock, int, SynthesisLayer]]:
        out = []
        for block in self.synthesis.blocks():
            for j, conv in enumerate(block.convs):
                name = f"b{block.resolution}.{'conv1' if conv is block.conv1 else 'conv0'}"
                out.append((name, block, j, conv))
        return out

    def layers(self) -> list[LayerInfo]:
        infos, prev = [], "const input"
        for name, _block, _j, conv in self._layer_list():
            c_out, c_in, k, _ = conv.weight.shape
            kind = "ModulatedConv2d-up" if conv.up > 1 else "ModulatedConv2d"
            infos.append(
                LayerInfo(
                    name, kind, c_in, c_out, conv.resolution // conv.up, conv.resolution, k, 1, prev
                )
            )
            prev = name
        return infos

    def _index(self, layer: str) -> int:
        return [L.name for L in self.layers()].index(self.layer(layer).name)

    def weight_name(self, layer: str) -> str:
        return f"synthesis.{self.layer(layer).name}.weight"

    # -- forward / split ---------------------------------------------------
    def _noises(self, n: int) -> list[torch.Tensor | None]:
        return [conv.noise_input(n, self.sampling.noise) for *_, conv in self._layer_list()]

    def _walk(
        self,
        ws: torch.Tensor,
        noise: list,
        stop: int | None = None,
        resume: Split | None = None,
        taps: dict | None = None,
    ):
        """Run the synthesis network on ws. ``stop``: return the state at layer ``stop``'s
        input ``(x, state)``; ``resume``: continue after ``resume``'s layer from its values.
        ``taps`` (a dict) collects every layer's and ToRGB's output."""
        n = ws.shape[0]
        li, w_idx = 0, 0
        x = img = None
        start = -1 if resume is None else self._index(resume.layer)
        for block in self.synthesis.blocks():
            convs = block.convs
            bws = ws[:, w_idx : w_idx + len(convs) + int(block.has_torgb)]
            w_idx += len(convs)
            if start >= li + len(convs):  # resuming after this block
                li += len(convs)
                continue
            if resume is not None and li <= start:  # resuming inside this block
                x, img, y = resume.values, resume.extras["img"], resume.extras["y"]
                first = start - li + 1
            else:
                first = 0
                if block.in_channels == 0:
                    x = block.const.unsqueeze(0).repeat(n, 1, 1, 1)
                y = (
                    block.skip(x, gain=math.sqrt(0.5))
                    if block.in_channels and block.architecture == "resnet"
                    else None
                )
            for j in range(first, len(convs)):
                if li + j == stop:
                    return x, {
                        "ws": ws,
                        "noise": noise,
                        "img": img,
                        "y": y,
                        "w": bws[:, j],
                        "gain": block.conv_gain(j),
                    }
                x = convs[j](x, bws[:, j], noise[li + j], gain=block.conv_gain(j))
                if taps is not None:
                    taps[
                        f"b{block.resolution}.{'conv1' if convs[j] is block.conv1 else 'conv0'}"
                    ] = x
            if y is not None:
                x = y + x
            if img is not None:
                img = upsample2d(img, block.resample_filter)
            if block.has_torgb:
                rgb = block.torgb(x, bws[:, len(convs)])
                if taps is not None:
                    taps[f"b{block.resolution}.torgb"] = rgb
                img = img + rgb if img is not None else rgb
            li += len(convs)
        return img, None

    def synthesize(self, ws: torch.Tensor, taps: dict | None = None) -> torch.Tensor:
        """Images from ws [N, num_ws, w_dim] (NVIDIA's ``G.synthesis(ws)``)."""
        return self._walk(ws, self._noises(ws.shape[0]), taps=taps)[0]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images [N, img_channels, R, R] from z [N, z_dim]."""
        return self.synthesize(self.broadcast_latents(z))

    def split(self, z: torch.Tensor, layer: str) -> Split:
        i = self._index(layer)
        ws = self.broadcast_latents(z)
        x, state = self._walk(ws, self._noises(z.shape[0]), stop=i)
        conv = self._layer_list()[i][3]
        keys, s = conv.keys(x, state["w"])
        values = conv.tail(
            conv.linear(keys, conv.weight),
            conv.demod(conv.weight, s),
            state["noise"][i],
            state["gain"],
        )
        return Split(layer=layer, keys=keys, values=values, extras=dict(state, style=s))

    def resume(self, split: Split) -> torch.Tensor:
        return self._walk(split.extras["ws"], split.extras["noise"], resume=split)[0]

    def layer_function(self, split: Split) -> LayerFunction:
        """Linear part: the modulated keys convolved with the weight. Tail: demodulation
        (frozen at W0 for the closed form; recomputed in ``exact``), noise, bias, leaky
        ReLU(0.2) times the activation gain; ``exact`` also clamps."""
        i = self._index(split.layer)
        conv = self._layer_list()[i][3]
        s, noise, gain = split.extras["style"], split.extras["noise"][i], split.extras["gain"]
        w0 = conv.weight.detach().clone()
        act = {"lrelu": "leaky_relu", "relu": "relu", "linear": "identity"}[conv.activation]

        def exact(keys, weight):
            return conv.tail(conv.linear(keys, weight), conv.demod(weight, s), noise, gain)

        return LayerFunction(
            name=split.layer,
            weight=w0,
            in_axis=1,
            out_axis=0,
            linear=conv.linear,
            scale=conv.demod(w0, s).detach(),
            shift=conv.shift(noise).detach(),
            activation=act,
            negative_slope=0.2,
            gain=conv.act_gain * gain,
            exact=exact,
        )

    # -- checkpoints -------------------------------------------------------
    signature_key = "G_ema (an NVIDIA stylegan2-ada network pickle)"

    config_key = "stylegan2ada_config"
    config_class = StyleGAN2ADAConfig
    pickle_config = staticmethod(config_from_pickle)
    is_family = staticmethod(_is_sg2ada)
    expected = "a Generator with SynthesisBlocks"
