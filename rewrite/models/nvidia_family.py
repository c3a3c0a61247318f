"""What the NVIDIA pickle families (StyleGAN2-ADA, StyleGAN3) share: unit ablation, reading a
snapshot read by :mod:`.nvidia_pickle`, saving either NVIDIA's ``.pkl`` (the input's metadata and
source text reused, only tensors replaced: ``G_ema``'s by the edited ones, and the training
copy ``G`` moved by the same difference) or a tensors-only file.

A family subclasses :class:`NvidiaPickleGenerator` and sets ``config_key`` (the key of
its tensors-only checkpoint), ``config_class`` (with ``to_dict`` / ``from_dict``),
``pickle_config`` (config from a persisted ``G_ema``), ``is_family`` (whether a persisted
``G_ema`` is one of its generators) and ``expected`` (for the refusal message).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

import torch

from ..utils.errors import CheckpointError
from ..utils.fileio import atomic_path
from .base import Generator
from .nvidia_pickle import PersistentObject, dumps_nvidia_pickle, replace_tensors
from .statedict import key_problems, shape_problems


def known_config_fields(config_class: type, d: Mapping[str, Any], family: str) -> dict:
    """A copy of ``d`` (a saved config) after checking every key is a field of the
    dataclass ``config_class``; :class:`CheckpointError` naming the unknown ones."""
    unknown = set(d) - {f.name for f in dataclasses.fields(config_class)}
    if unknown:
        raise CheckpointError(f"unknown {family} config fields: {sorted(unknown)}")
    return dict(d)


#: The largest size any NVIDIA generator declares: image / feature-map side, and width
#: (channels, latent and style dimensions). Released networks stay far below both
#: (1024 px, 1024 channels); a pickle declaring more is refused before anything is built.
MAX_SIDE = 8192
MAX_WIDTH = 1 << 14

#: Declared numbers by config field name: (smallest, largest). Fields not named here are
#: checked only for being finite numbers; every int of a config must be named here.
DECLARED_BOUNDS: dict[str, tuple[int, int]] = {
    "z_dim": (1, MAX_WIDTH),
    "w_dim": (1, MAX_WIDTH),
    "c_dim": (0, MAX_WIDTH),
    "img_resolution": (4, MAX_SIDE),
    "img_channels": (1, 4),
    "channels": (1, MAX_WIDTH),
    "mapping_layers": (1, 64),
    "embed_features": (0, MAX_WIDTH),
    "layer_features": (1, MAX_WIDTH),
    "kernel_size": (1, 15),
    "conv_kernel": (1, 15),
    "filter_shape": (1, 64),
    "in_channels": (1, MAX_WIDTH),
    "out_channels": (1, MAX_WIDTH),
    "input_channels": (1, MAX_WIDTH),
    "in_size": (1, MAX_SIDE),
    "out_size": (1, MAX_SIDE),
    "input_size": (1, MAX_SIDE),
    "up_factor": (1, 16),
    "down_factor": (1, 16),
    "padding": (-MAX_SIDE, MAX_SIDE),
    "up_shape": (1, 1024),
    "down_shape": (1, 1024),
}


def check_declared_sizes(config: Any, family: str, where: str = "") -> None:
    """Every number a config read off a file declares, before anything is allocated from
    it: ints (alone or in tuples, in nested dataclasses too) within
    :data:`DECLARED_BOUNDS`, floats finite. :class:`CheckpointError` naming the field,
    its value and the allowed range otherwise. ``config`` is a frozen dataclass."""
    for f in dataclasses.fields(config):
        value, name = getattr(config, f.name), f"{where}{f.name}"
        items = value if isinstance(value, tuple) else (value,)
        for v in items:
            if dataclasses.is_dataclass(v):
                check_declared_sizes(v, family, f"{where}{getattr(v, 'name', f.name)}.")
            elif isinstance(v, bool) or v is None or isinstance(v, str):
                continue
            elif isinstance(v, int):
                bounds = DECLARED_BOUNDS.get(f.name)
                if bounds is None:
                    raise CheckpointError(
                        f"{family} config field {name} = {v}: no known bound for this field"
                    )
                lo, hi = bounds
                if not lo <= v <= hi:
                    raise CheckpointError(
                        f"{family} network declares {name} = {_short(v)}, "
                        f"outside {lo}..{hi}; the file is damaged or not a "
                        "generator this program can load"
                    )
            elif isinstance(v, float) and not math.isfinite(v):
                raise CheckpointError(
                    f"{family} network declares {name} = {v}; it must be "
                    "a finite number (the file is damaged)"
                )


def _short(v: int) -> str:
    s = str(v) if abs(v) < 10**30 else f"a {len(str(abs(v)))}-digit number"
    return s


def check_tensor_storage(state: Mapping[str, Any]) -> None:
    """Each tensor read from a file must be backed by its own bytes: a view that declares
    more elements than its storage holds (a stride-0 view of one number as a 10^12-element
    weight) would allocate the declared size when copied. :class:`CheckpointError` naming
    the tensor otherwise."""
    for name, t in state.items():
        if not isinstance(t, torch.Tensor):
            continue
        have = t.untyped_storage().nbytes()
        need = t.numel() * t.element_size()
        if need > have:
            raise CheckpointError(
                f"tensor {name} declares shape {tuple(t.shape)} "
                f"({need} bytes) but the file holds only {have} bytes for it; "
                "the file is damaged or crafted"
            )


def training_copy_delta(
    snap: Mapping[str, Any], state: Mapping[str, torch.Tensor]
) -> PersistentObject | None:
    """The snapshot's training copy ``G`` with the same change as ``G_ema``: every tensor
    that differs between the snapshot's ``G_ema`` and ``state`` (the edited weights) gets
    that difference added to ``G``'s, so that training resumed from the written pickle
    starts from the edited model too. Returns None when nothing changed or when ``G`` is
    absent or does not have ``G_ema``'s tensors (then it is written as it was)."""
    G, G_ema = snap.get("G"), snap.get("G_ema")
    if not (isinstance(G, PersistentObject) and isinstance(G_ema, PersistentObject)):
        return None
    before, training = G_ema.state_dict(), G.state_dict()
    changed = {}
    for name, value in state.items():
        old = before.get(name)
        if old is None or torch.equal(old, value.to(old.dtype)):
            continue
        base = training.get(name)
        if base is None or base.shape != old.shape:
            return None
        changed[name] = base + (value.to(old.dtype) - old)
    return replace_tensors(G, changed) if changed else None


class NvidiaConfig(Protocol):
    """What a family's config dataclass provides (saved in tensors-only checkpoints)."""

    def to_dict(self) -> dict[str, Any]: ...

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NvidiaConfig: ...


class NvidiaPickleGenerator(Generator):
    """Checkpoint reading and writing of a generator loaded from an NVIDIA network pickle.

    ``source`` is the snapshot it was read from (None for a tensors-only file)."""

    config_key: ClassVar[str] = ""
    config_class: ClassVar[type[NvidiaConfig]]  # each family sets it
    expected: ClassVar[str] = ""
    source: Mapping | None = None

    def __init__(self, config: Any, latent_seed: int = 1):
        super().__init__(latent_seed=latent_seed)
        #: The family's config dataclass (``to_dict`` / ``from_dict``).
        self.config = config

    @property
    def num_classes(self) -> int:
        """The number of class labels the network takes (``c_dim``; 0: unconditional)."""
        return int(self.config.c_dim)

    @staticmethod
    def pickle_config(G: PersistentObject) -> Any:
        """The family's config read off a persisted ``G_ema`` (each family sets it)."""
        raise NotImplementedError

    @staticmethod
    def is_family(G: Any) -> bool:
        """Whether ``G`` is a persisted generator of this family (each family sets it)."""
        raise NotImplementedError

    def unit_ablation(self, layer: str, units) -> dict[str, torch.Tensor]:
        """Zero the units' weights and biases in ``synthesis.<layer>`` (StyleGAN2-ADA's
        noise, whose strength is shared by all units, still reaches them)."""
        name = f"synthesis.{self.layer(layer).name}"
        units = list(units)
        state = self.state_dict()
        w = state[f"{name}.weight"].clone()
        w[units] = 0
        b = state[f"{name}.bias"].clone()
        b[units] = 0
        return {f"{name}.weight": w, f"{name}.bias": b}

    def checkpoint(self) -> dict[str, Any]:
        """``{config_key: dict, 'G_ema': state_dict}`` (a tensors-only file; NVIDIA's pickle
        format is written by :meth:`save` to a ``.pkl`` path)."""
        return {
            self.config_key: self.config.to_dict(),
            "G_ema": {k: v.detach().cpu().clone() for k, v in self.state_dict().items()},
        }

    def nvidia_pickle(self) -> bytes:
        """The source snapshot (as read) with ``G_ema``'s tensors replaced by this model's and
        ``G``'s moved by the same difference (:func:`training_copy_delta`), in NVIDIA's pickle
        layout (its metadata and source text reused, never executed)."""
        if not isinstance(self.source, Mapping) or "G_ema" not in self.source:
            raise CheckpointError(
                "this model was not loaded from an NVIDIA .pkl, so there is "
                "no network pickle to write back; save a .pt instead"
            )
        snap = dict(self.source)
        state = {k: v.detach().cpu() for k, v in self.state_dict().items()}
        G_training = training_copy_delta(snap, state)
        snap["G_ema"] = replace_tensors(snap["G_ema"], state)
        if G_training is not None:
            snap["G"] = G_training
        return dumps_nvidia_pickle(snap)

    def save(self, path) -> None:
        """A ``.pkl`` path writes NVIDIA's format (:meth:`nvidia_pickle`); others the
        tensors-only :meth:`checkpoint`."""
        self.check_weight_only()
        if str(path).endswith(".pkl"):
            data = self.nvidia_pickle()
            with atomic_path(path) as tmp, open(tmp, "wb") as f:
                f.write(data)
            return
        super().save(path)

    @property
    def checkpoint_suffix(self) -> str:
        """``.pkl`` (NVIDIA's network pickle) when loaded from one, else ``.pt``."""
        return ".pkl" if isinstance(self.source, Mapping) and "G_ema" in self.source else ".pt"

    @classmethod
    def check_config(cls, config: Any) -> None:
        """What the family's own code derives from other numbers must agree with them
        (run after :func:`check_declared_sizes`); :class:`CheckpointError` otherwise."""

    @classmethod
    def claims(cls, obj: Any) -> bool:
        if not isinstance(obj, Mapping):
            return False
        if cls.config_key in obj:
            return True
        return cls.is_family(obj.get("G_ema"))

    @classmethod
    def from_checkpoint(cls, obj: Mapping[str, Any], latent_seed: int = 1):
        """From an NVIDIA snapshot dict read by :mod:`.nvidia_pickle` (uses ``G_ema``), a bare
        ``G_ema`` persistent object, or what :meth:`checkpoint` saved."""
        if isinstance(obj, PersistentObject):
            obj = {"G_ema": obj}
        if not isinstance(obj, Mapping):
            raise CheckpointError(f"expected a dict, found a {type(obj).__name__}")
        if cls.config_key in obj:
            try:
                config = cls.config_class.from_dict(obj[cls.config_key])
            except (TypeError, ValueError, KeyError, OverflowError) as e:
                raise CheckpointError(
                    f"the {cls.family} config in the file is unreadable ({type(e).__name__}: {e})"
                ) from None
            state, source = obj.get("G_ema"), None
        else:
            G_ema = obj.get("G_ema")
            if not (isinstance(G_ema, PersistentObject) and cls.is_family(G_ema)):
                found = (
                    type(G_ema).__name__
                    if not isinstance(G_ema, PersistentObject)
                    else f"a persisted {G_ema.class_name}"
                )
                raise CheckpointError(
                    f"not an NVIDIA {cls.family} network pickle: 'G_ema' is "
                    f"{found}, expected {cls.expected}"
                )
            config = cls.pickle_config(G_ema)
            state, source = G_ema.state_dict(), obj
        if not isinstance(state, Mapping):
            raise CheckpointError("'G_ema' must hold the generator's tensors")
        # Nothing is allocated from declared numbers until they are bounded, each tensor
        # is backed by the file's bytes, and the model they describe, built on the meta
        # device (shapes only), has exactly the file's tensors.
        check_declared_sizes(config, cls.family)
        cls.check_config(config)
        check_tensor_storage(state)
        try:
            with torch.device("meta"):
                shapes = {
                    k: tuple(t.shape)
                    for k, t in cls(config, latent_seed=latent_seed).state_dict().items()
                }
        except (ValueError, RuntimeError, ZeroDivisionError, IndexError) as e:
            raise CheckpointError(
                f"the {cls.family} network's declared sizes do not make a "
                f"generator ({type(e).__name__}: {e})"
            ) from None
        problems = key_problems(state, shapes)
        problems += shape_problems(state, shapes)
        if problems:
            raise CheckpointError(
                f"checkpoint does not fit the {cls.family} layout: " + "; ".join(problems)
            )
        G = cls(config, latent_seed=latent_seed)
        expected = G.state_dict()
        with torch.no_grad():
            for k, t in expected.items():
                t.copy_(state[k].to(torch.float32))
        G.source = source
        return G.eval()
