"""StyleGAN3-T and -R in plain PyTorch: NVIDIA's ``stylegan3`` network pickles.

The model is built from what :mod:`rewrite.models.nvidia_pickle` reads out of a
``network-snapshot-*.pkl`` / ``stylegan3-*.pkl`` (``G_ema``'s saved attributes and
tensors), never from the code stored in the file. Module and tensor names are
NVIDIA's (``synthesis.input.freqs``, ``synthesis.L3_36_512.weight``, ...), so
``state_dict()`` keys equal those of ``G_ema``.

What is implemented (``training/networks_stylegan3.py``, reference paths of its
custom ops): the mapping network (shared with :mod:`.stylegan2ada`), the synthesis
input (Fourier features whose frequencies and phases are rotated / translated by
the affine of w and by the stored ``transform``, out-of-band damping, the trainable
channel mixing), and the SynthesisLayers: modulated convolution of the base weight
(weight and style pre-normalisation, demodulation, input gain ``magnitude_ema**-0.5``),
then the filtered leaky ReLU: bias, upsampling with ``up_filter``, leaky ReLU(0.2)
times sqrt(2), clamp at ``conv_clamp``, downsampling with ``down_filter`` (1-D
separable filters, or 2-D radial ones for -R), with the stored paddings (critically
sampled layers included); the last layer is ToRGB (1x1, no demodulation, slope 1,
gain 1) and the image is its output times ``output_scale``. The filters are the
stored buffers, not redesigned. Everything runs in float32 (``use_fp16`` ignored);
``magnitude_ema`` is not updated (eval).

One deliberate difference: NVIDIA normalises the styles by their mean square over
the whole batch (``s * s.square().mean().rsqrt()``), which demodulation cancels up to
its 1e-8 epsilon; here each sample is normalised on its own, so a sample renders the
same in any batch (the difference is below 1e-7 of the output's scale).

Editable layers are the SynthesisLayers ``L0_*`` .. ``L{n}_*`` (ToRGB included). The
keys are the layer's input times the per-channel style and input gain (what the
convolution sees); the rewritten weight is the base weight ``[out, in, k, k]``
(input-channel axis 1). The true layer (demodulation from the edited weight and the
whole filtered non-linearity) is ``LayerFunction.exact``; the closed-form solvers see
an approximation: the linear part is the convolution followed by the up and down
filters, the tail an elementwise leaky ReLU with the filtered bias and the
demodulation frozen at W0 (exact for ToRGB but for the clamp).

The feature maps carry a margin around the image (``margin_size``, 10 cells in
NVIDIA's configs: a 36-px map at sampling rate 16 holds the image in its central
16 cells). Each layer's :class:`LayerInfo` says where the image lies on its key and
value grids (``key_margin``/``key_cells``, ``value_margin``/``value_cells``: the
central ``sampling_rate`` cells, :func:`image_window`), and the edit engine maps
masks through that window, so every layer can be edited.

Usage::

    G = load_model("stylegan3-r-ffhqu-256x256.pkl")   # content-detected
    G.set_sampling(truncation=0.7)
    images = G(G.latents(range(4)))                  # [4, 3, R, R], about [-1, 1]
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..memory.layer import LayerFunction
from ..utils.errors import CheckpointError, EditError
from .base import LayerInfo, Split
from .nvidia_family import NvidiaPickleGenerator, known_config_fields
from .nvidia_pickle import PersistentObject
from .stylegan2 import upfirdn2d
from .stylegan2ada import (
    FullyConnectedLayer,
    MappingConfig,
    MappingNetwork,
    StyleGAN2ADAGenerator,
    bias_act,
)

SQRT2 = math.sqrt(2.0)


# -- ops (reference path of NVIDIA's filtered_lrelu; upfirdn2d: stylegan2's, shared) ---


def filtered_lrelu(
    x: torch.Tensor,
    fu: torch.Tensor | None,
    fd: torch.Tensor | None,
    b: torch.Tensor | None,
    up: int,
    down: int,
    padding: tuple[int, int, int, int],
    gain: float,
    slope: float,
    clamp: float | None,
) -> torch.Tensor:
    """``filtered_lrelu`` reference path: bias, upsample with ``fu`` (gain up²), leaky ReLU
    times ``gain``, clamp, downsample with ``fd``."""
    x = bias_act(x, b)
    x = upfirdn2d(x, fu, up=up, padding=padding, gain=up**2)
    if slope != 1:
        x = F.leaky_relu(x, slope)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return upfirdn2d(x, fd, down=down)


# -- modules ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SG3LayerConfig:
    """One SynthesisLayer, as NVIDIA's module attributes name it."""

    name: str
    in_channels: int
    out_channels: int
    in_size: int
    out_size: int
    is_torgb: bool = False
    is_critically_sampled: bool = False
    conv_kernel: int = 3
    conv_clamp: float | None = 256.0
    up_factor: int = 2
    down_factor: int = 2
    padding: tuple[int, ...] = (0, 0, 0, 0)  # [x0, x1, y0, y1]: checked on reading
    up_shape: tuple[int, ...] | None = None
    down_shape: tuple[int, ...] | None = None
    in_sampling_rate: float | None = None
    out_sampling_rate: float | None = None


@dataclasses.dataclass(frozen=True)
class StyleGAN3Config:
    """Architecture of an NVIDIA stylegan3 generator, as read off the pickle."""

    z_dim: int
    c_dim: int
    w_dim: int
    img_resolution: int
    img_channels: int
    layers: tuple[SG3LayerConfig, ...]
    input_channels: int
    input_size: int
    input_sampling_rate: float
    input_bandwidth: float
    mapping_layers: int = 2
    mapping_lr: float = 0.01
    output_scale: float = 0.25

    @property
    def num_ws(self) -> int:
        return len(self.layers) + 1

    @property
    def radial(self) -> bool:
        """Whether some layer has a 2-D (radial) filter: the -R configuration."""
        return any(L.down_shape is not None and len(L.down_shape) == 2 for L in self.layers)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["layers"] = [dataclasses.asdict(L) for L in self.layers]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StyleGAN3Config:
        d = known_config_fields(cls, d, "stylegan3")
        layers = []
        for L in d["layers"]:
            L = dict(L)
            L["padding"] = tuple(int(p) for p in L["padding"])
            for k in ("up_shape", "down_shape"):
                L[k] = None if L.get(k) is None else tuple(int(s) for s in L[k])
            layers.append(SG3LayerConfig(**L))
        d["layers"] = tuple(layers)
        return cls(**d)


class SynthesisInput(nn.Module):
    """Fourier features, rotated and translated per sample by the affine of w."""

    transform: torch.Tensor  # buffers
    freqs: torch.Tensor
    phases: torch.Tensor

    def __init__(
        self, w_dim: int, channels: int, size: int, sampling_rate: float, bandwidth: float
    ):
        super().__init__()
        self.channels, self.size = channels, (size, size)
        self.sampling_rate, self.bandwidth = sampling_rate, bandwidth
        self.weight = nn.Parameter(torch.zeros(channels, channels))
        self.affine = FullyConnectedLayer(w_dim, 4)
        self.register_buffer("transform", torch.eye(3))
        self.register_buffer("freqs", torch.zeros(channels, 2))
        self.register_buffer("phases", torch.zeros(channels))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        n = w.shape[0]
        t = self.affine(w)  # (r_c, r_s, t_x, t_y)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        m_r = torch.eye(3, device=w.device).unsqueeze(0).repeat(n, 1, 1)
        m_r[:, 0, 0], m_r[:, 0, 1], m_r[:, 1, 0], m_r[:, 1, 1] = t[:, 0], -t[:, 1], t[:, 1], t[:, 0]
        m_t = torch.eye(3, device=w.device).unsqueeze(0).repeat(n, 1, 1)
        m_t[:, 0, 2], m_t[:, 1, 2] = -t[:, 2], -t[:, 3]
        transforms = m_r @ m_t @ self.transform.unsqueeze(0)
        freqs = self.freqs.unsqueeze(0)
        phases = self.phases.unsqueeze(0) + (freqs @ transforms[:, :2, 2:]).squeeze(2)
        freqs = freqs @ transforms[:, :2, :2]
        amplitudes = (
            1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)
        ).clamp(0, 1)
        theta = torch.eye(2, 3, device=w.device)
        theta[0, 0] = 0.5 * self.size[0] / self.sampling_rate
        theta[1, 1] = 0.5 * self.size[1] / self.sampling_rate
        grids = F.affine_grid(
            theta.unsqueeze(0), [1, 1, self.size[1], self.size[0]], align_corners=False
        )
        x = (grids.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)
        x = x + phases.unsqueeze(1).unsqueeze(2)
        x = torch.sin(x * (np.pi * 2))
        x = x * amplitudes.unsqueeze(1).unsqueeze(2)
        x = x @ (self.weight / np.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)


class SynthesisLayer(nn.Module):
    """Modulated conv of the base weight, then the filtered leaky ReLU (or ToRGB)."""

    magnitude_ema: torch.Tensor  # buffers
    up_filter: torch.Tensor | None
    down_filter: torch.Tensor | None

    def __init__(self, cfg: SG3LayerConfig, w_dim: int):
        super().__init__()
        self.cfg = cfg
        self.is_torgb = cfg.is_torgb
        self.in_channels, self.out_channels = cfg.in_channels, cfg.out_channels
        self.conv_kernel, self.conv_clamp = cfg.conv_kernel, cfg.conv_clamp
        self.up_factor, self.down_factor = cfg.up_factor, cfg.down_factor
        x0, x1, y0, y1 = cfg.padding
        self.padding = (x0, x1, y0, y1)
        self.act_gain = 1.0 if cfg.is_torgb else SQRT2
        self.slope = 1.0 if cfg.is_torgb else 0.2
        self.affine = FullyConnectedLayer(w_dim, cfg.in_channels)
        k = cfg.conv_kernel
        self.weight = nn.Parameter(torch.zeros(cfg.out_channels, cfg.in_channels, k, k))
        self.bias = nn.Parameter(torch.zeros(cfg.out_channels))
        self.register_buffer("magnitude_ema", torch.ones([]))
        self.register_buffer(
            "up_filter", None if cfg.up_shape is None else torch.zeros(cfg.up_shape)
        )
        self.register_buffer(
            "down_filter", None if cfg.down_shape is None else torch.zeros(cfg.down_shape)
        )

    def styles(self, w: torch.Tensor) -> torch.Tensor:
        """The styles [N, C_in] as the convolution uses them (normalised per sample, or
        scaled by 1/sqrt(fan-in) for ToRGB), before the input gain."""
        s = self.affine(w)
        if self.is_torgb:
            return s * (1 / math.sqrt(self.in_channels * self.conv_kernel**2))
        return s * s.square().mean(dim=1, keepdim=True).rsqrt()

    def keys(self, x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The modulated input ``x * s * magnitude_ema**-0.5`` and the styles ``s``."""
        s = self.styles(w)
        m = s * self.magnitude_ema.rsqrt()
        return x * m[:, :, None, None], s

    def conv(self, keys: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.conv2d(keys, weight, padding=self.conv_kernel - 1)

    def demod(self, weight: torch.Tensor, s: torch.Tensor) -> torch.Tensor | None:
        """Per-(sample, output channel) factor of the weight's pre-normalisation and
        demodulation [N, C_out, 1, 1] (None for ToRGB, which does not demodulate)."""
        if self.is_torgb:
            return None
        a = weight.square().mean(dim=[1, 2, 3]).rsqrt()  # [O]
        sq = torch.einsum("oikl,ni->no", weight.square(), s.square()) * a.square()
        return (a[None] * (sq + 1e-8).rsqrt())[:, :, None, None]

    def pre(self, keys: torch.Tensor, weight: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """The modulated convolution's output (before bias and filters)."""
        x = self.conv(keys, weight)
        d = self.demod(weight, s)
        return x if d is None else x * d

    def filtered(self, x: torch.Tensor) -> torch.Tensor:
        return filtered_lrelu(
            x,
            self.up_filter,
            self.down_filter,
            self.bias,
            self.up_factor,
            self.down_factor,
            self.padding,
            self.act_gain,
            self.slope,
            self.conv_clamp,
        )

    def resample(self, x: torch.Tensor) -> torch.Tensor:
        """The filters alone (linear): up-filter with the padding, then down-filter."""
        x = upfirdn2d(
            x, self.up_filter, up=self.up_factor, padding=self.padding, gain=self.up_factor**2
        )
        return upfirdn2d(x, self.down_filter, down=self.down_factor)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        keys, s = self.keys(x, w)
        return self.filtered(self.pre(keys, self.weight, s))


class SynthesisNetwork(nn.Module):
    def __init__(self, cfg: StyleGAN3Config):
        super().__init__()
        self.layer_names = [L.name for L in cfg.layers]
        self.output_scale = cfg.output_scale
        self.input = SynthesisInput(
            cfg.w_dim,
            cfg.input_channels,
            cfg.input_size,
            cfg.input_sampling_rate,
            cfg.input_bandwidth,
        )
        for L in cfg.layers:
            setattr(self, L.name, SynthesisLayer(L, cfg.w_dim))

    def layers(self) -> list[SynthesisLayer]:
        return [getattr(self, n) for n in self.layer_names]


# -- reading the pickle -----------------------------------------------------------


def _shape(obj: PersistentObject, name: str) -> tuple[int, ...] | None:
    t = obj.tensors().get(name)
    return tuple(t.shape) if isinstance(t, torch.Tensor) else None


def _side(v: Any) -> int:
    """A stored size (an int, or NVIDIA's [width, height] array) as one side; square only."""
    sides = [int(s) for s in np.asarray(v).reshape(-1)]
    if not sides or any(s != sides[0] for s in sides):
        raise CheckpointError(f"non-square feature maps {sides} are not supported")
    return sides[0]


def config_from_pickle(G: PersistentObject) -> StyleGAN3Config:
    """Read a :class:`StyleGAN3Config` off the saved ``G_ema`` (attributes and shapes)."""
    try:
        mapping, syn = G.module("mapping"), G.module("synthesis")
        inp = syn.module("input")
        layers = []
        for name in syn.get("layer_names"):
            L = syn.module(str(name))
            clamp = L.get("conv_clamp")
            layers.append(
                SG3LayerConfig(
                    name=str(name),
                    in_channels=int(L.get("in_channels")),
                    out_channels=int(L.get("out_channels")),
                    in_size=_side(L.get("in_size")),
                    out_size=_side(L.get("out_size")),
                    is_torgb=bool(L.get("is_torgb")),
                    is_critically_sampled=bool(L.get("is_critically_sampled")),
                    conv_kernel=int(L.get("conv_kernel")),
                    conv_clamp=None if clamp is None else float(clamp),
                    up_factor=int(L.get("up_factor")),
                    down_factor=int(L.get("down_factor")),
                    padding=tuple(int(p) for p in np.asarray(L.get("padding")).reshape(-1)),
                    up_shape=_shape(L, "up_filter"),
                    down_shape=_shape(L, "down_filter"),
                    in_sampling_rate=float(L.get("in_sampling_rate")),
                    out_sampling_rate=float(L.get("out_sampling_rate")),
                )
            )
        cfg = StyleGAN3Config(
            z_dim=int(G.get("z_dim")),
            c_dim=int(G.get("c_dim")),
            w_dim=int(G.get("w_dim")),
            img_resolution=int(G.get("img_resolution")),
            img_channels=int(G.get("img_channels")),
            layers=tuple(layers),
            input_channels=int(inp.get("channels")),
            input_size=_side(inp.get("size")),
            input_sampling_rate=float(inp.get("sampling_rate")),
            input_bandwidth=float(inp.get("bandwidth")),
            mapping_layers=int(mapping.get("num_layers")),
            mapping_lr=float(mapping.module("fc0").get("bias_gain")),
            output_scale=float(syn.get("output_scale")),
        )
    except (CheckpointError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise CheckpointError(f"G_ema does not have the stylegan3 layout ({e})") from None
    if not layers or not layers[-1].is_torgb or layers[-1].out_size != cfg.img_resolution:
        raise CheckpointError("the last stylegan3 layer must be ToRGB at the image resolution")
    for layer in layers:
        if len(layer.padding) != 4:
            raise CheckpointError(f"{layer.name}: padding {layer.padding} is not [x0, x1, y0, y1]")
    return cfg


def _is_sg3(G: Any) -> bool:
    if not isinstance(G, PersistentObject) or G.class_name != "Generator":
        return False
    syn = G.children().get("synthesis")
    if not isinstance(syn, PersistentObject):
        return False
    inp = syn.children().get("input")
    return isinstance(inp, PersistentObject) and inp.class_name == "SynthesisInput"


def _mapping_config(cfg: StyleGAN3Config) -> MappingConfig:
    """What :class:`.stylegan2ada.MappingNetwork` reads, for stylegan3's mapping (its
    hidden layers and class embedding are w_dim wide, lrelu, lr multiplier)."""
    return MappingConfig(
        z_dim=cfg.z_dim,
        c_dim=cfg.c_dim,
        w_dim=cfg.w_dim,
        mapping_layers=cfg.mapping_layers,
        embed_features=cfg.w_dim if cfg.c_dim > 0 else 0,
        layer_features=cfg.w_dim,
        mapping_activation="lrelu",
        mapping_lr=cfg.mapping_lr,
    )


# -- the generator ------------------------------------------------------------------


def image_window(size: int, sampling_rate: float | None) -> tuple[int, int]:
    """Where the image lies on a ``size``-cell feature map: ``(margin, cells)``, the image
    spanning cells ``margin .. margin + cells - 1`` of each axis (stylegan3's feature maps
    carry a margin around the image: the central ``sampling_rate`` cells are the image;
    no rate: the whole map). Each layer's :class:`LayerInfo` carries it for its key and
    value grids, and the engine's masks go through those fields."""
    cells = round(sampling_rate) if sampling_rate is not None else size
    return (size - cells) // 2, cells


class StyleGAN3Generator(NvidiaPickleGenerator):
    """An NVIDIA stylegan3 (-T or -R) generator; see the module docstring."""

    family = "stylegan3"
    # No noise inputs: every noise mode is taken and renders the same (as in NVIDIA's
    # code), so the noise is not among the fields read (nor in the cache tag).
    sampling_fields = frozenset({"truncation", "cutoff", "class_index"})
    noise_modes = ("const", "random", "none")

    @classmethod
    def check_config(cls, config: StyleGAN3Config) -> None:
        """The layer chain as NVIDIA's code builds it: the first layer reads the input's
        size, each next one its predecessor's output, the last writes the image; each
        padding is the one NVIDIA derives from the sizes, factors and filter taps; sampling
        rates positive and the input's bandwidth below its Nyquist rate."""

        def bad(msg):
            raise CheckpointError(f"stylegan3 network: {msg}; the file is damaged or crafted")

        if not config.layers:
            bad("no synthesis layers")
        if not 0 <= config.input_bandwidth < config.input_sampling_rate / 2:
            bad(
                f"input bandwidth {config.input_bandwidth} must be in [0, sampling rate / 2 = "
                f"{config.input_sampling_rate / 2})"
            )
        size = config.input_size
        for L in config.layers:
            if L.in_size != size:
                bad(f"{L.name} reads {L.in_size}x{L.in_size} maps but is given {size}x{size}")
            size = L.out_size
            for rate in (L.in_sampling_rate, L.out_sampling_rate):
                if rate is not None and not rate > 0:
                    bad(f"{L.name} has sampling rate {rate}")
            up_taps = L.up_shape[0] if L.up_shape else 1
            down_taps = L.down_shape[0] if L.down_shape else 1
            total = (
                (L.out_size - 1) * L.down_factor
                + 1
                - (L.in_size + L.conv_kernel - 1) * L.up_factor
                + up_taps
                + down_taps
                - 2
            )
            lo = (total + L.up_factor) // 2
            want = (lo, total - lo, lo, total - lo)
            if tuple(L.padding) != want:
                bad(f"{L.name} padding {L.padding} is not the {want} its sizes give")
        if size != config.img_resolution:
            bad(f"the last layer writes {size}x{size}, not the image's {config.img_resolution}")

    def __init__(self, config: StyleGAN3Config, latent_seed: int = 1):
        super().__init__(config, latent_seed=latent_seed)
        self.synthesis = SynthesisNetwork(config)
        self.mapping = MappingNetwork(_mapping_config(config))
        self.num_ws = config.num_ws
        self.z_shape = (config.z_dim,)
        self.resolution = config.img_resolution
        #: The source pickle's objects (kept to write the file back), if loaded from one.
        self.source: Any = None
        self.eval()

    # -- latents (the same as stylegan2-ada's) ---------------------------------------
    # Borrowed, not inherited: typed loosely, since they were written for stylegan2-ada's
    # class and read only what both classes have (config, mapping, sampling).
    labels: Callable[..., torch.Tensor] = StyleGAN2ADAGenerator.labels
    broadcast_latents: Callable[..., torch.Tensor] = StyleGAN2ADAGenerator.broadcast_latents

    # -- layers ------------------------------------------------------------
    def layers(self) -> list[LayerInfo]:
        infos, prev = [], "input"
        for L in self.config.layers:
            kind = "ModConv2d-ToRGB" if L.is_torgb else "ModConv2d-filtered"
            km, kc = image_window(L.in_size, L.in_sampling_rate)
            vm, vc = image_window(L.out_size, L.out_sampling_rate)
            infos.append(
                LayerInfo(
                    L.name,
                    kind,
                    L.in_channels,
                    L.out_channels,
                    L.in_size,
                    L.out_size,
                    L.conv_kernel,
                    1,
                    prev,
                    key_margin=km,
                    key_cells=kc,
                    value_margin=vm,
                    value_cells=vc,
                )
            )
            prev = L.name
        return infos

    def _index(self, layer: str) -> int:
        return self.synthesis.layer_names.index(self.layer(layer).name)

    def weight_name(self, layer: str) -> str:
        return f"synthesis.{self.layer(layer).name}.weight"

    # -- forward / split ---------------------------------------------------
    def _walk(
        self,
        ws: torch.Tensor,
        stop: int | None = None,
        resume: Split | None = None,
        taps: dict | None = None,
    ):
        """Run the synthesis network on ws. ``stop``: return layer ``stop``'s input;
        ``resume``: continue after ``resume``'s layer from its values. ``taps`` (a dict)
        collects the input's and every layer's output (the last before output_scale)."""
        syn = self.synthesis
        layers = syn.layers()
        if resume is None:
            x, start = syn.input(ws[:, 0]), 0
            if taps is not None:
                taps["input"] = x
        else:
            x, start = resume.values, self._index(resume.layer) + 1
        for i in range(start, len(layers)):
            if i == stop:
                return x
            x = layers[i](x, ws[:, i + 1])
            if taps is not None:
                taps[syn.layer_names[i]] = x
        return x * syn.output_scale if syn.output_scale != 1 else x

    def synthesize(self, ws: torch.Tensor, taps: dict | None = None) -> torch.Tensor:
        """Images from ws [N, num_ws, w_dim] (NVIDIA's ``G.synthesis(ws)``)."""
        return self._walk(ws.to(torch.float32), taps=taps)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images [N, img_channels, R, R] from z [N, z_dim]."""
        return self.synthesize(self.broadcast_latents(z))

    def split(self, z: torch.Tensor, layer: str) -> Split:
        i = self._index(layer)
        ws = self.broadcast_latents(z)
        x = self._walk(ws, stop=i)
        conv = self.synthesis.layers()[i]
        keys, s = conv.keys(x, ws[:, i + 1])
        values = conv.filtered(conv.pre(keys, conv.weight, s))
        return Split(layer=layer, keys=keys, values=values, extras={"ws": ws, "style": s})

    def resume(self, split: Split) -> torch.Tensor:
        return self._walk(split.extras["ws"], resume=split)

    def layer_function(self, split: Split) -> LayerFunction:
        """``exact``: the true layer (demodulation from the edited weight, the filtered
        leaky ReLU). The closed form's view: linear = convolution then the up/down
        filters; tail = demodulation frozen at W0, the filtered bias, leaky ReLU(0.2)
        times sqrt(2) (identity for ToRGB), i.e. the non-linearity moved after the
        filters; the clamp is left out."""
        conv = self.synthesis.layers()[self._index(split.layer)]
        s = split.extras["style"]
        w0 = conv.weight.detach().clone()

        def linear(keys, weight):
            return conv.resample(conv.conv(keys, weight))

        def exact(keys, weight):
            return conv.filtered(conv.pre(keys, weight, s))

        with torch.no_grad():
            d = conv.demod(w0, s)
            scale = torch.ones(1, conv.out_channels, 1, 1, device=w0.device) if d is None else d
            h = split.keys.shape[-1] + conv.conv_kernel - 1
            bias = conv.bias.detach().reshape(1, -1, 1, 1).expand(1, -1, h, h)
            shift = conv.resample(bias)
        return LayerFunction(
            name=split.layer,
            weight=w0,
            in_axis=1,
            out_axis=0,
            linear=linear,
            scale=scale,
            shift=shift,
            activation="identity" if conv.is_torgb else "leaky_relu",
            negative_slope=0.2,
            gain=conv.act_gain,
            exact=exact,
        )

    def unit_ablation(self, layer: str, units) -> dict[str, torch.Tensor]:
        """Not available: each layer divides a unit's weight by its own RMS before
        modulating, so a zeroed unit renders NaN (in NVIDIA's code too)."""
        raise EditError(
            f"unit ablation (dissect-erase) is not defined for stylegan3 layers "
            f"such as {layer}: each unit's weight is normalised by its own RMS, so "
            "a zeroed unit is undefined; use the constrained erase instead"
        )

    # -- checkpoints -------------------------------------------------------
    signature_key = "G_ema (an NVIDIA stylegan3 network pickle)"

    config_key = "stylegan3_config"
    config_class = StyleGAN3Config
    pickle_config = staticmethod(config_from_pickle)
    is_family = staticmethod(_is_sg3)
    expected = "a Generator with a SynthesisInput"
