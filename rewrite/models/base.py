"""The generator protocol every model family implements.

A family module (``dcgan.py``, ...) subclasses :class:`Generator` and provides:

* ``latents(indices)``: deterministic latents per sample index (shared here);
* ``layers()``: the editable layers, as :class:`LayerInfo`;
* ``forward(z)``: images in [-1, 1];
* ``split(z, layer)``: the layer's input features (keys), its output after the
  layer's non-linear tail (values), and whatever else rendering needs;
* ``resume(split)``: finish rendering from (possibly edited) values;
* ``checkpoint()`` / ``from_checkpoint(obj)``: the family's own file format;
* ``sampling_fields`` / ``noise_modes``: which :class:`~rewrite.models.sampling.Sampling`
  settings its rendering reads from ``self.sampling`` (none by default).

Usage::

    G = load_model("dcgan-digiface64")
    z = G.latents([0, 1, 2])                  # [3, 100, 1, 1]
    s = G.split(z, "main.6")                  # s.keys [3, 256, 8, 8], s.values [3, 128, 16, 16]
    images = G.resume(s)                      # equals G(z) exactly
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import threading
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from ..memory.layer import LayerFunction
from ..utils.errors import EditError, LayerNotFoundError, RewriteError
from .checkpoint_file import save_checkpoint_file
from .latents import LatentTable
from .sampling import (
    DEFAULT_SAMPLING,
    Sampling,
    from_settings,
    non_default,
    sampling_problems,
)


@dataclasses.dataclass(frozen=True)
class LayerInfo:
    """One editable layer.

    Attributes:
        name: the layer's name in the model (e.g. ``"main.6"``).
        kind: the module type whose weight is rewritten (e.g. ``"ConvTranspose2d"``).
        in_channels: key length (C_in).
        out_channels: value length (C_out).
        key_resolution: spatial size of the keys (input feature map is key_resolution²).
        value_resolution: spatial size of the values.
        kernel_size: convolution kernel size.
        weight_in_axis: the weight's input-channel axis (0 for ConvTranspose2d, 1 for Conv2d).
        key_source: where the keys come from (the previous stage's name), for display.
        key_margin, key_cells: where the image lies on the key grid: cells
            ``key_margin .. key_margin + key_cells - 1`` of each axis (StyleGAN3's feature
            maps carry a margin around the image). Default: the whole grid (0 cells = all).
        value_margin, value_cells: the same on the value grid.
    """

    name: str
    kind: str
    in_channels: int
    out_channels: int
    key_resolution: int
    value_resolution: int
    kernel_size: int
    weight_in_axis: int
    key_source: str = ""
    key_margin: int = 0
    key_cells: int = 0
    value_margin: int = 0
    value_cells: int = 0


@contextlib.contextmanager
def frozen(G: nn.Module):
    """Within the block no parameter of ``G`` asks for a gradient (restored afterwards)."""
    flags = [(t, t.requires_grad) for t in G.parameters()]
    try:
        for t, _ in flags:
            t.requires_grad_(False)
        yield
    finally:
        for t, flag in flags:
            t.requires_grad_(flag)


@dataclasses.dataclass
class Split:
    """A forward pass stopped at one layer.

    Attributes:
        layer: the layer name.
        keys: the layer's input features, [N, C_in, h, w].
        values: the layer's output after its non-linear tail, [N, C_out, H, W].
        extras: anything else the rest of the network needs to resume.
    """

    layer: str
    keys: torch.Tensor
    values: torch.Tensor
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)

    def with_values(self, values: torch.Tensor) -> Split:
        """A copy whose values are replaced (same shape required)."""
        if values.shape != self.values.shape:
            raise ValueError(
                f"values must have shape {tuple(self.values.shape)}, got {tuple(values.shape)}"
            )
        return dataclasses.replace(self, values=values)


class _ValueWrap:
    """The hooks of one value wrap (:meth:`Generator.wrap_values`): the keys seen by the
    layer's first module, per thread, handed to ``fn`` with the values of its last. Bound
    methods of an object, not closures, so that ``copy.deepcopy`` of the model copies them
    (with their own keys) instead of sharing the original's."""

    def __init__(self, fn):
        self.fn = fn
        self.keys: dict[int, torch.Tensor] = {}

    def keep_keys(self, _mod, args):
        self.keys[threading.get_ident()] = args[0]

    def replace_values(self, _mod, _args, out):
        return self.fn(self.keys.pop(threading.get_ident()), out)


class Generator(nn.Module):
    """Base class of all generator families (see the module docstring)."""

    family: ClassVar[str] = ""
    #: Shape of one latent, without the batch axis (e.g. ``(100, 1, 1)``).
    z_shape: tuple[int, ...] = ()
    #: Output image size in pixels (square).
    resolution: int = 0

    def __init__(self, latent_seed: int = 1):
        super().__init__()
        self.latent_seed = latent_seed
        self._latent_tables: dict[int, LatentTable] = {}
        self._sampling = DEFAULT_SAMPLING

    # -- latents -----------------------------------------------------------
    @property
    def z_dim(self) -> int:
        """Number of latent entries per sample."""
        n = 1
        for s in self.z_shape:
            n *= s
        return n

    def latents(self, indices: Iterable[int], seed: int | None = None) -> torch.Tensor:
        """Latents for sample ``indices``: float32 [N, *z_shape] on the model's device.

        ``seed`` selects another stream (default: ``latent_seed``, the gallery's);
        statistics use their own so they do not depend on the samples a user edits.
        """
        seed = self.latent_seed if seed is None else int(seed)
        if seed not in self._latent_tables:
            self._latent_tables[seed] = LatentTable(self.z_dim, seed=seed)
        rows = self._latent_tables[seed].rows(indices)
        return torch.from_numpy(rows).reshape(-1, *self.z_shape).to(self.device)

    @property
    def device(self) -> torch.device:
        """The device of the model's parameters."""
        return next(self.parameters()).device

    # -- layers ------------------------------------------------------------
    def layers(self) -> list[LayerInfo]:
        """The editable layers, input to output."""
        raise NotImplementedError

    def layer(self, name: str) -> LayerInfo:
        """The :class:`LayerInfo` called ``name``; a clear error lists the valid names."""
        infos = self.layers()
        for info in infos:
            if info.name == name:
                return info
        names = ", ".join(i.name for i in infos)
        raise LayerNotFoundError(
            f"unknown layer {name!r}; editable layers of this {self.family} model: {names}"
        )

    # -- forward / split ---------------------------------------------------
    def split(self, z: torch.Tensor, layer: str) -> Split:
        """Run ``z`` [N, *z_shape] up to and through ``layer``; see :class:`Split`."""
        raise NotImplementedError

    def resume(self, split: Split) -> torch.Tensor:
        """Finish rendering from ``split.values``; returns images [N, 3, H, W] in [-1, 1]."""
        raise NotImplementedError

    def layer_function(self, split: Split) -> LayerFunction:
        """The layer of ``split`` as a :class:`LayerFunction` valid for its samples."""
        raise NotImplementedError

    def weight_name(self, layer: str) -> str:
        """State-dict name of the weight that an edit of ``layer`` rewrites."""
        raise NotImplementedError

    def layer_modules(self, layer: str) -> tuple[nn.Module, nn.Module] | None:
        """The module whose input is ``layer``'s keys and the module whose output is its
        values (after the tail), for :meth:`wrap_values`; None where the family cannot wrap a
        layer's values (then gated edits are not available on it)."""
        return None

    def wrap_values(self, layer: str, fn, tag: str):
        """From now on, every forward pass (``forward``, ``split`` of this or a later layer)
        replaces ``layer``'s values by ``fn(keys, values)`` (tensors as in :class:`Split`).

        ``fn`` should be an object (not a closure) when the model may be deep-copied: a copy
        of the model then gets a copy of ``fn`` whose references to this model point to the
        copy. ``tag`` names the wrap (e.g. a hash of what ``fn`` does): it becomes part of
        :meth:`fingerprint` and of the :meth:`key_fingerprint` of later layers, so caches
        keyed by them never mix wrapped and unwrapped features. While a wrap is active the
        model has no weight-only form: :meth:`save` refuses.

        Returns:
            ``remove()``: undoes the wrap (call it exactly once).
        Raises:
            EditError: the family cannot wrap ``layer``.
        """
        self.layer(layer)
        mods = self.layer_modules(layer)
        if mods is None:
            raise EditError(
                f"this {self.family} model cannot gate the values of {layer} (gated edits are "
                "available where the family exposes the layer's modules, e.g. DCGAN); use "
                "another method"
            )
        key_mod, value_mod = mods
        hooks = _ValueWrap(fn)
        handles = [
            key_mod.register_forward_pre_hook(hooks.keep_keys),
            value_mod.register_forward_hook(hooks.replace_values),
        ]
        wraps = self.__dict__.setdefault("_value_wraps", [])
        entry = (layer, tag)
        wraps.append(entry)

        def remove() -> None:
            for h in handles:
                h.remove()
            wraps.remove(entry)

        return remove

    def value_wraps(self) -> list[tuple[str, str]]:
        """The active value wraps, ``(layer, tag)``, oldest first."""
        return list(self.__dict__.get("_value_wraps", []))

    def unit_ablation(self, layer: str, units: Iterable[int]) -> dict[str, torch.Tensor]:
        """New values of the parameters that make ``units`` of ``layer`` output zero
        everywhere (GAN-Dissection ablation); ``{state-dict name: tensor}``."""
        raise NotImplementedError

    # -- checkpoints -------------------------------------------------------
    def checkpoint(self) -> dict[str, Any]:
        """The model in its family's own checkpoint layout (tensors on the CPU)."""
        raise NotImplementedError

    #: A key that marks this family's checkpoints, for messages (e.g. ``"main.0.weight"``).
    signature_key: ClassVar[str] = ""

    @classmethod
    def claims(cls, obj: Any) -> bool:
        """Whether a loaded checkpoint object looks like this family's (a cheap key check)."""
        return False

    @classmethod
    def from_checkpoint(cls, obj: Mapping[str, Any]) -> Generator:
        """Build a model from what ``checkpoint()`` (or the family's own tools) saved."""
        raise NotImplementedError

    def save(self, path) -> None:
        """Write ``checkpoint()`` to ``path`` atomically. EditError while a value wrap
        (a gated edit) is active: the family's format holds weights only."""
        self.check_weight_only()
        save_checkpoint_file(self.checkpoint(), path)

    def check_weight_only(self) -> None:
        """EditError when the model is not its weights alone (a gated edit is applied)."""
        wraps = self.value_wraps()
        if wraps:
            layers = ", ".join(sorted({layer for layer, _ in wraps}))
            raise EditError(
                f"the gated edit of {layers} cannot be written into a {self.family} "
                "checkpoint: the family's format holds weights only, and the gate is a "
                "function of the layer's keys. Save the edits as a delta file instead "
                "(`rewrite edit SPEC --delta FILE.safetensors`, or Export delta in the app), "
                "which keeps the gate and re-applies to the original model"
            )

    @property
    def checkpoint_suffix(self) -> str:
        """The file suffix of the format the model's own tools read (``.pt`` by default);
        :meth:`save` to a path with this suffix writes that format."""
        return ".pt"

    # -- sampling (rewrite.models.sampling) -------------------------------------
    #: The :class:`Sampling` fields this family's rendering reads (``class_index`` only
    #: on class-conditional models, see :attr:`num_classes`); the others keep their
    #: defaults. They decide the checks, the cache tag and what a spec records.
    sampling_fields: ClassVar[frozenset[str]] = frozenset()
    #: The noise modes the family accepts (``Sampling.noise``).
    noise_modes: ClassVar[tuple[str, ...]] = ("const",)

    @property
    def num_classes(self) -> int:
        """Number of classes of a class-conditional model; 0 otherwise."""
        return 0

    @property
    def sampling(self) -> Sampling:
        """How the model samples now (read-only: :meth:`set_sampling` replaces it)."""
        return self._sampling

    def set_sampling(self, **changes: Any) -> None:
        """Sample with ``changes`` (:class:`Sampling` fields: ``truncation``, ``cutoff``,
        ``noise``, ``class_index``) from now on, the other fields as they are: the one way
        to change how the model samples. Raises :class:`RewriteError` listing what this
        model cannot take (:func:`rewrite.models.sampling.sampling_problems`)."""
        problems = self._sampling_problems(changes)
        if problems:
            raise RewriteError("; ".join(problems))
        if "truncation" in changes:
            changes["truncation"] = float(changes["truncation"])
        if "class_index" in changes:
            changes["class_index"] = int(changes["class_index"])
        self._sampling = self.sampling.replace(**changes)

    def _sampling_problems(self, changes: Mapping[str, Any]) -> list[str]:
        return sampling_problems(
            changes,
            family=self.family,
            fields=self._fields_read(),
            noise_modes=self.noise_modes,
            classes=self.num_classes,
        )

    def _fields_read(self) -> frozenset[str]:
        """:attr:`sampling_fields`, without the class on a model without classes."""
        if self.num_classes:
            return self.sampling_fields
        return self.sampling_fields - {"class_index"}

    def sampling_tag(self) -> str:
        """The suffix naming the sampling settings in cache keys (statistics and samples
        are cached under fingerprint + tag; :meth:`Sampling.tag`). Empty at the defaults,
        but for the class of a class-conditional model (``-class0``)."""
        return self.sampling.tag(self._fields_read())

    def sampling_settings(self) -> dict[str, Any]:
        """The sampling as an edit spec's ``sampling`` field records it: ``truncation``
        (families that truncate toward a mean latent) and ``class`` (class-conditional
        models). Empty for families without either."""
        return self.sampling.settings(self._fields_read())

    def sampling_changes(self) -> dict[str, Any]:
        """The :meth:`sampling_settings` that differ from the defaults: what a spec made
        with this model records as ``sampling``."""
        return non_default(self.sampling_settings())

    def sampling_problems(self, settings: Mapping[str, Any]) -> list[str]:
        """What in ``settings`` (a spec's ``sampling``) this model cannot do; [] if fine."""
        return self._sampling_problems(from_settings(settings))

    @contextlib.contextmanager
    def using_sampling(self, settings: Mapping[str, Any] | None):
        """Within the block the model samples with ``settings`` (a spec's ``sampling``;
        None: as it is); the previous sampling comes back afterwards, also after an error."""
        if not settings:
            yield self
            return
        before = self.sampling
        self.set_sampling(**from_settings(settings))
        try:
            yield self
        finally:
            self.set_sampling(**before.changes_from(self.sampling))

    def fingerprint(self) -> str:
        """SHA-256 (hex, first 16 digits) of every parameter and buffer, in order.

        Changes whenever any weight changes (keys delta files to their base model). The
        hash is computed once per version of the weights: in-place changes bump a
        tensor's version counter, which is checked before hashing again.
        """
        return self._hash_tensors(None)

    def upstream(self, layer: str) -> tuple[str, ...]:
        """State-dict names of the tensors that ``layer``'s keys depend on, in state-dict
        order: the parameters autograd reaches from the keys of one sample, the buffers
        of the modules owning those parameters (e.g. BatchNorm running statistics), and
        every buffer of modules without parameters (a safe superset). Found once per
        layer; for DCGAN ``main.6`` these are the tensors of ``main.0`` .. ``main.4``."""
        memo = self.__dict__.setdefault("_upstream_memo", {})
        if layer in memo:
            return memo[layer]
        self.layer(layer)
        params = list(self.named_parameters())
        was = [t.requires_grad for _, t in params]
        try:
            for _, t in params:
                t.requires_grad_(True)
            with torch.enable_grad():
                keys = self.split(self.latents([0]), layer).keys
                grads = (
                    torch.autograd.grad(keys.sum(), [t for _, t in params], allow_unused=True)
                    if keys.requires_grad
                    else [None] * len(params)
                )
        finally:
            for (_, t), w in zip(params, was, strict=True):
                t.requires_grad_(w)
        used = {n for (n, _), g in zip(params, grads, strict=True) if g is not None}
        owners = {n.rpartition(".")[0] for n, _ in params}
        used_owners = {n.rpartition(".")[0] for n in used}
        buffers = {
            n
            for n, _ in self.named_buffers()
            if n.rpartition(".")[0] in used_owners or n.rpartition(".")[0] not in owners
        }
        memo[layer] = tuple(n for n in self.state_dict() if n in used or n in buffers)
        return memo[layer]

    def key_fingerprint(self, layer: str) -> str:
        """Fingerprint of what ``layer``'s keys depend on: the weights before it (see
        :meth:`upstream`), not the layer's own or later ones. An edit of ``layer`` or of
        a later layer keeps it; an edit of an earlier layer changes it."""
        return self._hash_tensors(self.upstream(layer))

    def _hash_tensors(self, names: tuple[str, ...] | None) -> str:
        state = self.state_dict()
        chosen = list(state.items()) if names is None else [(n, state[n]) for n in names]
        # Value wraps of layers whose weight is among the hashed tensors count too.
        wraps = tuple(
            tag
            for layer, tag in self.value_wraps()
            if names is None or self.weight_name(layer) in names
        )
        version = (
            tuple((n, t.data_ptr(), t._version, tuple(t.shape), t.dtype) for n, t in chosen),
            wraps,
        )
        memo = self.__dict__.setdefault("_hash_memo", {})
        hit = memo.get(names)
        if hit is not None and hit[0] == version:
            return hit[1]
        h = hashlib.sha256(self.family.encode())
        for name, t in chosen:
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        for tag in wraps:
            h.update(b"wrap:" + tag.encode())
        digest = h.hexdigest()[:16]
        memo[names] = (version, digest)
        return digest
