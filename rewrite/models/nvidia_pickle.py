"""Read NVIDIA's StyleGAN network pickles (stylegan2-ada-pytorch, stylegan3) without
running code from them.

NVIDIA's ``legacy.load_network_pkl`` unpickles with the default unpickler, which
``exec``s the Python source stored in the file (``module_src``) to rebuild every
network module. This reader is a :class:`pickle.Unpickler` whose ``find_class``
allows only a fixed list of globals that such a file legitimately names:

* tensor rebuilding (``torch._utils._rebuild_tensor_v2``, ``_rebuild_parameter``,
  ``_rebuild_parameter_with_state``) and ``torch.storage._load_from_bytes``, the
  latter replaced by a ``torch.load(..., weights_only=True)`` of the payload;
* ``collections.OrderedDict``, ``builtins.set`` / ``frozenset`` / ``dict`` / ``list``,
  ``_codecs.encode`` (protocol-2 bytes; latin-1 only) and ``copyreg._reconstructor``
  for dicts only;
* numpy scalars, arrays and dtypes under both ``numpy.core.*`` (numpy 1.x) and
  ``numpy._core.*`` (numpy 2.x), object dtypes refused;
* ``dnnlib.util.EasyDict`` (a local dict subclass here);
* ``torch_utils.persistence._reconstruct_persistent_obj``, replaced by a function
  that returns a :class:`PersistentObject` holding the persisted metadata (class
  name, state, source text) and executes nothing.

Anything else is refused with a :class:`~rewrite.utils.errors.CheckpointError`
naming the global. Python-2 module names (``__builtin__``, ``copy_reg``) of
protocol-2 pickles are translated first.

Usage::

    snap = read_nvidia_pickle("network-snapshot-000100.pkl")   # dict
    G = snap["G_ema"]                                          # PersistentObject
    G.class_name, G.init_kwargs, G.module("synthesis.b8.conv0").tensors()
"""

from __future__ import annotations

import _compat_pickle
import collections
import dataclasses
import importlib
import io
import os
import pickle
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ..utils.errors import CheckpointError

#: Real generators nest modules 4-5 deep (Generator.synthesis.b64.conv0.affine).
MAX_MODULE_DEPTH = 64

#: The callable NVIDIA's pickles reduce every network module to.
PERSISTENT_GLOBAL = ("torch_utils.persistence", "_reconstruct_persistent_obj")


class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict``: a dict with attribute access."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        del self[name]


@dataclasses.dataclass(eq=False)
class PersistentObject:
    """An object NVIDIA's ``persistence`` module saved: its metadata, never its code.

    Attributes:
        class_name: e.g. ``"Generator"``, ``"SynthesisLayer"``.
        state: the module's ``__dict__`` as saved (``_parameters``, ``_buffers``,
            ``_modules``, plain attributes, ``_init_args``, ``_init_kwargs``).
        module_src: the source text of the defining file (kept to write the file back;
            never executed).
        version: the persistence format version (6 in current NVIDIA code).
        meta: the whole metadata dict as read.
    """

    class_name: str
    state: dict
    module_src: str
    version: int
    meta: dict

    @property
    def init_kwargs(self) -> dict:
        return dict(self.state.get("_init_kwargs") or {})

    def children(self) -> dict[str, PersistentObject | None]:
        """Submodules in registration order (``_modules``)."""
        return dict(self._group("_modules"))

    def module(self, path: str) -> PersistentObject:
        """The submodule at dotted ``path`` (``""`` is this object)."""
        obj = self
        for part in filter(None, path.split(".")):
            child = obj.children().get(part)
            if not isinstance(child, PersistentObject):
                raise CheckpointError(f"{self.class_name} has no submodule {path!r}")
            obj = child
        return obj

    def get(self, name: str, default: Any = None) -> Any:
        """A plain attribute of the saved module (numpy scalars become Python numbers)."""
        v = self.state.get(name, default)
        if isinstance(v, np.generic):
            return v.item()
        return v

    def tensors(self) -> dict[str, torch.Tensor]:
        """This module's own parameters and buffers (no submodules; None entries left out)."""
        out = {}
        for group in ("_parameters", "_buffers"):
            for k, v in self._group(group).items():
                if v is not None:
                    out[k] = v
        return out

    def _group(self, group: str) -> dict:
        """The saved ``_modules`` / ``_parameters`` / ``_buffers`` dict (empty when absent);
        :class:`CheckpointError` when it is not a dict keyed by names."""
        value = self.state.get(group) or {}
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise CheckpointError(
                f"a persisted {self.class_name}'s {group} is not a dict of "
                "names; the file is damaged or crafted"
            )
        return value

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, PersistentObject]]:
        """This module and every submodule, depth first in registration order, as
        ``(dotted path, module)``. A module graph that contains a cycle, or nests deeper
        than :data:`MAX_MODULE_DEPTH`, is a :class:`CheckpointError` (a real network is a
        shallow tree)."""
        stack: list[tuple[str, PersistentObject, tuple[PersistentObject, ...]]] = [
            (prefix, self, ())
        ]
        while stack:
            path, mod, above = stack.pop()
            if any(mod is a for a in above):
                raise CheckpointError(
                    f"the network's modules form a cycle at {path!r}; "
                    "the file is damaged or crafted"
                )
            if len(above) > MAX_MODULE_DEPTH:
                raise CheckpointError(
                    f"the network's modules nest more than "
                    f"{MAX_MODULE_DEPTH} deep; the file is damaged or crafted"
                )
            yield path, mod
            below = (*above, mod)
            for name, child in reversed(list(mod.children().items())):
                if isinstance(child, PersistentObject):
                    stack.append((f"{path}.{name}" if path else name, child, below))

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Every parameter and buffer, named as ``nn.Module.state_dict`` would."""
        out = {}
        for path, mod in self.named_modules():
            for k, v in mod.tensors().items():
                out[f"{path}.{k}" if path else k] = v
        return out

    def __repr__(self) -> str:
        return f"PersistentObject({self.class_name})"


def _reconstruct_persistent_obj(meta: Any) -> PersistentObject:
    """What NVIDIA's loader would rebuild, as data: checks the layout, executes nothing."""
    if not isinstance(meta, dict):
        raise CheckpointError(
            f"a persistent object's metadata is a {type(meta).__name__}, expected a dict"
        )
    if meta.get("type") != "class":
        raise CheckpointError(f"unsupported persistent object type {meta.get('type')!r}")
    name, state, src = meta.get("class_name"), meta.get("state"), meta.get("module_src")
    if not isinstance(name, str) or not isinstance(state, dict):
        raise CheckpointError(
            f"a persistent object (class {name!r}) carries no saved state, only source code; "
            "rewrite reads weights and never runs code stored in a file"
        )
    return PersistentObject(
        class_name=name,
        state=state,
        module_src=src if isinstance(src, str) else "",
        version=int(meta.get("version") or 0),
        meta=meta,
    )


def _load_storage_from_bytes(b: bytes):
    """``torch.storage._load_from_bytes`` with ``weights_only=True``: tensors only."""
    if not isinstance(b, (bytes, bytearray)):
        raise CheckpointError("a tensor storage payload is not bytes")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore")
            return torch.load(io.BytesIO(b), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure is a bad file
        raise CheckpointError(f"a tensor storage inside the pickle is unreadable ({e})") from None


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state=None):
    """A Parameter; the extra Python attributes in ``state`` are dropped."""
    return torch._utils._rebuild_parameter(data, requires_grad, backward_hooks)


def _codecs_encode(obj, encoding="utf-8", errors="strict"):
    """Protocol 2 stores bytes as ``_codecs.encode(str, 'latin1')``; only that is allowed."""
    if not isinstance(obj, str) or str(encoding).lower().replace("-", "") not in ("latin1", "utf8"):
        raise CheckpointError(f"refusing _codecs.encode with encoding {encoding!r}")
    return obj.encode(encoding, errors)


def _copyreg_reconstructor(cls, base, state):
    """``copyreg._reconstructor`` for the allowed dict classes only."""
    if cls not in (dict, EasyDict, collections.OrderedDict) or (
        base is not object and base is not dict
    ):
        raise CheckpointError(f"refusing copyreg._reconstructor for {cls!r}")
    obj = cls.__new__(cls)
    if state is not None:
        obj.update(state)
    return obj


def _numpy_core():
    try:
        return importlib.import_module("numpy._core.multiarray")
    except ImportError:  # numpy 1.x
        return importlib.import_module("numpy.core.multiarray")


def _np_dtype(obj, align=False, copy=False):
    dt = np.dtype(obj, align, copy)
    if dt.hasobject:
        raise CheckpointError("refusing a numpy object dtype in the pickle")
    return dt


def _np_scalar(dtype, obj=None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise CheckpointError("refusing a numpy scalar of object dtype")
    return _numpy_core().scalar(dtype, obj) if obj is not None else _numpy_core().scalar(dtype)


def _np_reconstruct(subtype, shape, dtype):
    """numpy's array placeholder. numpy always pickles an empty one (shape ``(0,)``) and
    gives the real shape with the data, which must then match it; a placeholder declaring
    elements would be allocated here, before any data is read, so it is refused."""
    if subtype is not np.ndarray:
        raise CheckpointError(f"refusing a numpy array of type {subtype!r}")
    if not (
        isinstance(shape, tuple)
        and all(isinstance(n, int) and n >= 0 for n in shape)
        and 0 in shape
    ):
        raise CheckpointError(
            f"a numpy array placeholder declares shape {_brief(shape)}; "
            "numpy writes an empty one, so the file is damaged or crafted"
        )
    return _numpy_core()._reconstruct(subtype, shape, dtype)


def _brief(obj: Any) -> str:
    text = repr(obj)
    return text if len(text) <= 80 else text[:77] + "..."


def _allowed() -> dict[tuple[str, str], Any]:
    table: dict[tuple[str, str], Any] = {
        PERSISTENT_GLOBAL: _reconstruct_persistent_obj,
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
        ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("builtins", "dict"): dict,
        ("builtins", "list"): list,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "tuple"): tuple,
        ("_codecs", "encode"): _codecs_encode,
        ("copyreg", "_reconstructor"): _copyreg_reconstructor,
        ("builtins", "object"): object,
        ("dnnlib.util", "EasyDict"): EasyDict,
        ("dnnlib", "EasyDict"): EasyDict,
        ("numpy", "dtype"): _np_dtype,
        ("numpy", "ndarray"): np.ndarray,
    }
    for core in ("numpy.core", "numpy._core"):
        table[(f"{core}.multiarray", "scalar")] = _np_scalar
        table[(f"{core}.multiarray", "_reconstruct")] = _np_reconstruct
    return table


_ALLOWED = _allowed()


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles only the globals of :data:`_ALLOWED`; see the module docstring."""

    def find_class(self, module: str, name: str) -> Any:
        # Python-2 names (protocol <= 2 pickles): only ever mapped onto the allow-list.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        found = _ALLOWED.get((module, name))
        if found is None:
            raise CheckpointError(
                f"refusing to load: the pickle references the Python global {module}.{name}, "
                "which is not part of an NVIDIA StyleGAN network pickle; loading it could "
                "run code stored in the file"
            )
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise CheckpointError(
            "refusing to load: the pickle uses persistent ids, which NVIDIA network pickles do not"
        )


def looks_like_nvidia_pickle(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a plain pickle (not a torch zip archive / legacy torch file)
    that names ``torch_utils.persistence`` near its start."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 20)
    except OSError:
        return False
    return (
        head[:1] == b"\x80"
        and b"_reconstruct_persistent_obj" in head
        and b"torch_utils.persistence" in head
    )


def loads_nvidia_pickle(data: bytes) -> Any:
    """Unpickle ``data`` with the :class:`RestrictedUnpickler`."""
    try:
        return RestrictedUnpickler(io.BytesIO(data)).load()
    except CheckpointError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        AttributeError,
        ImportError,
        IndexError,
        KeyError,
        TypeError,
        ValueError,
        RuntimeError,
        OverflowError,
        MemoryError,
        RecursionError,
    ) as e:
        raise CheckpointError(
            f"not a readable NVIDIA network pickle ({type(e).__name__}: "
            f"{e}); the file may be truncated or corrupt"
        ) from None


def read_nvidia_pickle(path: str | os.PathLike) -> Any:
    """Read an NVIDIA network pickle file safely; usually a dict with ``G_ema``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    try:
        return loads_nvidia_pickle(path.read_bytes())
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None


# -- writing -------------------------------------------------------------------------------


class GlobalRef:
    """A global name to write into a pickle (``module.name``) without importing it: NVIDIA's
    ``torch_utils`` / ``dnnlib`` need not exist here. Never called."""

    module: str
    name: str
    _made: ClassVar[dict[tuple[str, str], GlobalRef]] = {}

    def __new__(cls, module: str, name: str) -> GlobalRef:
        key = (module, name)
        if key not in cls._made:
            ref = super().__new__(cls)
            ref.module, ref.name = module, name
            cls._made[key] = ref
        return cls._made[key]

    def __call__(self, *args, **kwargs):  # callable, so REDUCE accepts it
        raise TypeError(f"{self.module}.{self.name} is a name to write, not a function")

    def __repr__(self) -> str:
        return f"GlobalRef({self.module}.{self.name})"


class _Writer(pickle._Pickler):
    """Pure-Python pickler that writes :class:`PersistentObject` as NVIDIA's persistence
    reduce, :class:`EasyDict` as ``dnnlib.util.EasyDict`` and numpy objects under the
    numpy-1.x names (``numpy.core.multiarray``), which numpy 2 also reads."""

    dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)
    # What the pure-Python pickler provides and typeshed's stub of it leaves out.
    proto: int
    save: Callable[[Any], None]
    write: Callable[[bytes], Any]
    memoize: Callable[[Any], None]

    def save_global_ref(self, ref: GlobalRef) -> None:
        if self.proto >= 4:
            self.save(ref.module)
            self.save(ref.name)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"{ref.module}\n{ref.name}\n".encode())
        self.memoize(ref)

    dispatch[GlobalRef] = save_global_ref

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, PersistentObject):
            meta = dict(obj.meta)
            meta["state"] = obj.state
            return GlobalRef(*PERSISTENT_GLOBAL), (meta,)
        if type(obj) is EasyDict:
            return GlobalRef("dnnlib.util", "EasyDict"), (), None, None, iter(obj.items())
        if isinstance(obj, (np.generic, np.ndarray)):
            rv = obj.__reduce__()
            name = getattr(rv[0], "__name__", "")
            if name in ("scalar", "_reconstruct"):
                return (GlobalRef("numpy.core.multiarray", name), *rv[1:])
            return rv
        return NotImplemented


def dumps_nvidia_pickle(obj: Any, protocol: int = 4) -> bytes:
    """Pickle an object tree read by :func:`read_nvidia_pickle` (possibly with tensors
    replaced) in NVIDIA's layout, so that ``legacy.load_network_pkl`` loads it."""
    f = io.BytesIO()
    try:
        _Writer(f, protocol=protocol).dump(obj)
    except RecursionError:
        raise CheckpointError(
            "this network pickle nests its objects too deeply to be written "
            "back (deeper than Python's recursion limit); nothing was written. "
            "Save the edit as a delta file (--delta) or to a .pt path "
            "instead"
        ) from None
    return f.getvalue()


def replace_tensors(obj: PersistentObject, tensors: dict[str, torch.Tensor]) -> PersistentObject:
    """A copy of ``obj`` whose parameters / buffers named in ``tensors`` (state-dict names,
    e.g. ``synthesis.b8.conv0.weight``) hold the new values; everything else is shared."""
    own: dict[str, torch.Tensor] = {}
    sub: dict[str, dict[str, torch.Tensor]] = {}
    for name, t in tensors.items():
        head, _, rest = name.partition(".")
        if rest and head in obj.children():
            sub.setdefault(head, {})[rest] = t
        else:
            own[name] = t
    state = dict(obj.state)
    for group in ("_parameters", "_buffers"):
        entries = state.get(group)
        if not entries:
            continue
        new = type(entries)(entries)
        for k in list(new):
            if k in own and new[k] is not None:
                old = new[k]
                value = own.pop(k).detach().to("cpu", old.dtype).clone().contiguous()
                new[k] = nn_parameter(value, old) if isinstance(old, torch.nn.Parameter) else value
        state[group] = new
    if own:
        raise CheckpointError(f"{obj.class_name} has no tensors {sorted(own)}")
    if sub:
        modules = type(state["_modules"])(state["_modules"])
        for head, part in sub.items():
            modules[head] = replace_tensors(modules[head], part)
        state["_modules"] = modules
    return dataclasses.replace(obj, state=state)


def nn_parameter(value: torch.Tensor, like: torch.nn.Parameter) -> torch.nn.Parameter:
    return torch.nn.Parameter(value, requires_grad=like.requires_grad)
