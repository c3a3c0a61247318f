"""A computed edit, kept apart from the model: low-rank factors or dense changes.

``Delta.changes(G)`` gives the additive change of each parameter it touches;
:func:`save_deltas` / :func:`load_deltas` store a sequence of deltas as one
safetensors file (``Λ`` and ``D`` per constrained edit, dense tensors for the
baselines, the gate of a gated edit, the spec and figures as JSON metadata) that
re-applies to the original model.

A gated edit (``gate`` set) is not a weight change: its ``dense`` change applies only where
the gate on the layer's keys is open (:mod:`rewrite.memory.gate`), so it is applied by
wrapping the layer's values (:meth:`rewrite.models.base.Generator.wrap_values`), saved in
delta files, and refused by the families' checkpoint formats.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..memory.gate import Gate
from ..memory.update import low_rank_delta
from ..utils.errors import DeltaFileError
from ..utils.fileio import atomic_path
from .limits import MAX_STRENGTH

DELTA_FORMAT = "rewrite.delta"
DELTA_VERSION = 1


@dataclasses.dataclass
class LowRank:
    """``ΔW = Λ D`` on parameter ``param`` (see :mod:`rewrite.memory.update`)."""

    param: str
    lam: torch.Tensor  # [out, rest..., r]
    D: torch.Tensor  # [r, in]
    in_axis: int
    out_axis: int


@dataclasses.dataclass
class Delta:
    """One edit's change to a model, with how it was obtained.

    Attributes:
        layer: the edited layer.
        method: the solver or baseline that produced it.
        low_rank: the factors of a constrained edit, else None.
        dense: additive changes by parameter name (baselines), else empty.
        loss_before, loss: the goal loss before and after (``loss_kind`` says which loss).
        seconds: time spent computing it.
        collateral: predicted collateral ``tr(ΔW C ΔWᵀ)/tr(W0 C W0ᵀ)`` of the layer change
            (nan when unknown, e.g. for whole-model baselines).
        visible_collateral: the image change outside the rule's band at strength 1, mean
            |Δpixel| on a 0-1 scale over fixed pool samples
            (:func:`rewrite.metrics.visible.visible_collateral`; nan when not measured).
        kept_share: for an image-space fit, the share of the fitted change the delta holds
            (fixed, or chosen by the silent-change budget: :mod:`rewrite.edit.calibrate`);
            nan otherwise.
        silent_change: the silent change the share was chosen by (mean |Δpixel|, 0-1, on
            the calibration samples where the rule is silent, at strength 1); nan when not
            measured.
        spec: the edit specification as JSON (None for a hand-made delta).
        units: erased units, for erase edits.
        strength: the factor ``s`` on the change: the model gets ``W0 + s·ΔW`` (it scales
            the weight change, not the image). Set it after solving; 0 gives W0 exactly.
        gate: for a gated edit, where on the layer's keys the change applies (then
            ``dense`` holds the layer weight's change ``ΔW``, applied through the gate, not
            added to the weight); None for a weight change.
        companion: for a gated edit spread over two layers (``gated-pair``), the gated
            change of the other layer, applied with this one at this delta's strength (its
            own strength is not used); None otherwise.
    """

    layer: str
    method: str
    low_rank: LowRank | None = None
    dense: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)
    loss_before: float = float("nan")
    loss: float = float("nan")
    loss_kind: str = "layer-L1"
    seconds: float = 0.0
    steps: int = 0
    collateral: float = float("nan")
    visible_collateral: float = float("nan")
    kept_share: float = float("nan")
    silent_change: float = float("nan")
    spec: dict | None = None
    units: list[int] | None = None
    strength: float = 1.0
    gate: Gate | None = None
    companion: Delta | None = None

    def changes(self, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
        """Additive change ``s·ΔW`` of each touched parameter, ``{state-dict name: tensor}``."""
        out = self.unscaled_changes(dtype)
        if self.strength != 1.0:
            out = {n: t * self.strength for n, t in out.items()}
        return out

    def unscaled_changes(self, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
        """The solved change ``ΔW`` of each touched parameter (strength 1)."""
        out = dict(self.dense)
        if self.low_rank is not None:
            lr = self.low_rank
            # Λ D summed in float64 over contiguous copies, then rounded: the same change
            # bit for bit whether Λ came from a solver or from a delta file.
            d = low_rank_delta(
                lr.lam.to(torch.float64).contiguous(),
                lr.D.to(torch.float64).contiguous(),
                lr.in_axis,
                lr.out_axis,
            ).to(dtype)
            out[lr.param] = out[lr.param] + d if lr.param in out else d
        return out

    def figures(self) -> dict[str, Any]:
        """Method, losses and time, for tables and metadata."""
        return {
            "layer": self.layer,
            "method": self.method,
            "loss_before": self.loss_before,
            "loss": self.loss,
            "loss_kind": self.loss_kind,
            "seconds": self.seconds,
            "steps": self.steps,
            "units": self.units,
            "collateral": self.collateral,
            "visible_collateral": self.visible_collateral,
            "kept_share": self.kept_share,
            "silent_change": self.silent_change,
            "strength": self.strength,
            "rank": None if self.low_rank is None else int(self.low_rank.D.shape[0]),
            "gated": self.gate is not None,
            "companion_layer": None if self.companion is None else self.companion.layer,
        }


def _entry(d: Delta, prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The metadata entry of ``d``; its tensors go into ``tensors`` under ``prefix``."""
    entry: dict[str, Any] = {"figures": d.figures(), "spec": d.spec, "dense": sorted(d.dense)}
    if d.low_rank is not None:
        lr = d.low_rank
        tensors[f"{prefix}lambda"] = lr.lam.detach().cpu().contiguous()
        tensors[f"{prefix}D"] = lr.D.detach().cpu().contiguous()
        entry["low_rank"] = {"param": lr.param, "in_axis": lr.in_axis, "out_axis": lr.out_axis}
    for name, t in d.dense.items():
        tensors[f"{prefix}dense.{name}"] = t.detach().cpu().contiguous()
    if d.gate is not None:
        tensors[f"{prefix}gate.u"] = d.gate.u.detach().cpu().float().contiguous()
        entry["gate"] = {"b": float(d.gate.b), "tau": float(d.gate.tau), "at": d.gate.at}
        if d.gate.A is not None:
            tensors[f"{prefix}gate.A"] = d.gate.A.detach().cpu().float().contiguous()
            entry["gate"]["quadratic"] = True
        if d.gate.face_D is not None and d.gate.face_cells is not None:
            tensors[f"{prefix}gate.face_D"] = d.gate.face_D.detach().cpu().float().contiguous()
            tensors[f"{prefix}gate.face_cells"] = d.gate.face_cells.detach().cpu().contiguous()
            entry["gate"]["face"] = {"b": float(d.gate.face_b), "tau": float(d.gate.face_tau)}
        if d.gate.spread:
            entry["gate"]["spread"] = d.gate.spread
    if d.companion is not None:
        entry["companion"] = _entry(d.companion, f"{prefix}companion.", tensors)
    return entry


def save_deltas(deltas: list[Delta], path: str | Path, base_fingerprint: str) -> Path:
    """Write ``deltas`` (in the order applied) to a safetensors file, atomically."""
    tensors: dict[str, torch.Tensor] = {}
    entries = []
    for i, d in enumerate(deltas):
        entries.append(_entry(d, f"edit.{i}.", tensors))
    meta = {
        "format": DELTA_FORMAT,
        "version": str(DELTA_VERSION),
        "base_fingerprint": base_fingerprint,
        "edits": json.dumps(entries),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return Path(path)


def low_rank_problem(
    lam: torch.Tensor,
    D: torch.Tensor,
    in_axis,
    out_axis,
    weight_shape: tuple[int, ...] | None = None,
) -> str | None:
    """Why the factors ``Λ`` [out, rest..., r], ``D`` [r, in] with these axes cannot make a
    change (of a weight of ``weight_shape``, when given), or None when they can.

    The weight has as many axes as ``Λ``; both axes must be distinct whole numbers
    from 0 to that count minus one.
    """
    for name, t in (("lambda", lam), ("D", D)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            return f"{name} must be a floating-point tensor, got {getattr(t, 'dtype', type(t))}"
    if D.ndim != 2:
        return f"D must have 2 axes [rank, in], got shape {tuple(D.shape)}"
    if lam.ndim < 2:
        return f"lambda must have at least 2 axes [out, ..., rank], got shape {tuple(lam.shape)}"
    if lam.shape[-1] != D.shape[0]:
        return (
            f"lambda {tuple(lam.shape)} has rank {lam.shape[-1]} in its last axis but D "
            f"{tuple(D.shape)} has {D.shape[0]} rows; they must agree"
        )
    ndim = lam.ndim
    for name, axis in (("in_axis", in_axis), ("out_axis", out_axis)):
        if isinstance(axis, bool) or not isinstance(axis, int) or not 0 <= axis < ndim:
            return (
                f"{name} is {axis!r}; for a {ndim}-axis weight it must be a whole number "
                f"from 0 to {ndim - 1}"
            )
    if in_axis == out_axis:
        return f"in_axis and out_axis are both {in_axis}; they must be different axes"
    if weight_shape is not None:
        shape = tuple(int(n) for n in weight_shape)
        if len(shape) != ndim:
            return (
                f"the factors make a {ndim}-axis change but the weight {shape} has "
                f"{len(shape)} axes"
            )
        rest = [n for a, n in enumerate(shape) if a not in (in_axis, out_axis)]
        want = (shape[out_axis], *rest, D.shape[0])
        if tuple(lam.shape) != want or D.shape[1] != shape[in_axis]:
            return (
                f"lambda {tuple(lam.shape)} and D {tuple(D.shape)} do not fit the weight "
                f"{shape} (in_axis {in_axis}, out_axis {out_axis}): expected lambda {want} "
                f"and D ({D.shape[0]}, {shape[in_axis]})"
            )
    return None


def _strength(value, path, i: int) -> float:

    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 <= value <= MAX_STRENGTH
    ):
        raise DeltaFileError(
            f"{path}: edit {i} has strength {value!r}; it must be a number "
            f"from 0 to {MAX_STRENGTH:g}"
        )
    return float(value)


def _finite_or_nan(value) -> float:
    """A recorded figure as a float (nan when absent, not a number, or beyond a float)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return float("nan")
    try:
        return float(value)
    except OverflowError:  # an integer wider than any float
        return float("nan")


def _name(fig: dict, key: str, path, i: int) -> str:
    value = fig[key]
    if not isinstance(value, str):
        raise DeltaFileError(
            f"{path}: edit {i} has {key} {value!r:.80}; it must be a name (the file is damaged)"
        )
    return value


def _delta(e: dict, i: int, tensors: dict, path, prefix: str | None = None) -> Delta:
    """Edit ``i`` of a delta file from its metadata entry ``e`` and the file's tensors (under
    ``prefix``, default ``edit.{i}.``; a gated edit's companion under ``…companion.``).
    Names must be strings; a recorded figure that is not a number reads as unknown (nan,
    no steps, no units), as it is only shown, never used."""
    prefix = f"edit.{i}." if prefix is None else prefix
    fig = e["figures"]
    low = None
    if "low_rank" in e:
        lr = e["low_rank"]
        if not isinstance(lr.get("param"), str):
            raise DeltaFileError(
                f"{path}: edit {i} names parameter {lr.get('param')!r}; it must be a name"
            )
        low = LowRank(
            lr["param"],
            tensors[f"{prefix}lambda"],
            tensors[f"{prefix}D"],
            lr["in_axis"],
            lr["out_axis"],
        )
        why = low_rank_problem(low.lam, low.D, low.in_axis, low.out_axis)
        if why:
            raise DeltaFileError(
                f"{path}: edit {i} ({low.param}) is damaged: {why}; refusing to apply it"
            )
    dense = {n: tensors[f"{prefix}dense.{n}"] for n in e["dense"]}
    gate = None
    if "gate" in e:
        g = e["gate"]
        quad = tensors.get(f"{prefix}gate.A") if g.get("quadratic") else None
        face = g.get("face")
        face = face if isinstance(face, dict) else ({} if face is None else {"b": None})
        gate = Gate(
            tensors[f"{prefix}gate.u"],
            g["b"],
            g["tau"],
            g.get("at", "values"),
            quad,
            face_D=tensors.get(f"{prefix}gate.face_D") if face else None,
            face_cells=tensors.get(f"{prefix}gate.face_cells") if face else None,
            face_b=face.get("b", 0.0) if face else 0.0,
            face_tau=face.get("tau", 1.0) if face else 1.0,
            spread=g.get("spread", 0),
        )
        u = gate.u
        why = gate.problem(int(u.shape[0]) if isinstance(u, torch.Tensor) and u.ndim == 1 else -1)
        if why is None and g.get("quadratic") and quad is None:
            why = "its quadratic part is missing"
        if why is None and face and gate.face_D is None:
            why = "its gate per image is missing"
        if why is None and len(dense) != 1:
            why = f"a gated edit changes one weight, this one names {len(dense)}"
        if why:
            raise DeltaFileError(
                f"{path}: edit {i} has a damaged gate: {why}; refusing to apply it"
            )
    companion = None
    if "companion" in e:
        if gate is None or "companion" in e["companion"]:
            raise DeltaFileError(
                f"{path}: edit {i} has a companion but is not a gated edit of two layers; "
                "the file is damaged"
            )
        companion = _delta(e["companion"], i, tensors, path, f"{prefix}companion.")
        if companion.gate is None:
            raise DeltaFileError(
                f"{path}: edit {i}'s companion on {companion.layer} has no gate; the file is "
                "damaged"
            )
    steps, units, spec = fig.get("steps", 0), fig.get("units"), e.get("spec")
    loss_kind = fig.get("loss_kind", "layer-L1")
    return Delta(
        layer=_name(fig, "layer", path, i),
        method=_name(fig, "method", path, i),
        low_rank=low,
        dense=dense,
        loss_before=_finite_or_nan(fig["loss_before"]),
        loss=_finite_or_nan(fig["loss"]),
        loss_kind=loss_kind if isinstance(loss_kind, str) else "layer-L1",
        seconds=_finite_or_nan(fig["seconds"]),
        steps=steps if type(steps) is int and steps >= 0 else 0,
        collateral=_finite_or_nan(fig.get("collateral")),
        visible_collateral=_finite_or_nan(fig.get("visible_collateral")),
        kept_share=_finite_or_nan(fig.get("kept_share")),
        silent_change=_finite_or_nan(fig.get("silent_change")),
        spec=spec if isinstance(spec, dict) else None,
        units=(units if isinstance(units, list) and all(type(u) is int for u in units) else None),
        strength=_strength(fig.get("strength", 1.0), path, i),
        gate=gate,
        companion=companion,
    )


def load_deltas(path: str | Path) -> tuple[list[Delta], str]:
    """Read a delta file; returns ``(deltas, base_fingerprint)``.

    Recorded figures (losses, time, collateral) that are not numbers read as nan.

    Raises:
        DeltaFileError: unreadable file, wrong format or version, missing tensors,
            non-finite numbers, a damaged edit list (a layer or method that is not a name,
            nesting too deep), or low-rank factors whose axes or shapes do not fit
            together (:func:`low_rank_problem`).
    """
    path = Path(path)
    if not path.is_file():
        raise DeltaFileError(f"delta file not found: {path}")
    try:
        with safe_open(str(path), "pt") as fh:
            meta = fh.metadata() or {}
            # safe_open has keys() but cannot be iterated itself
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as e:
        raise DeltaFileError(f"{path} is not a readable delta file ({e})") from None
    if meta.get("format") != DELTA_FORMAT:
        raise DeltaFileError(
            f"{path} is not a rewrite delta file (format "
            f"{meta.get('format')!r}); make one with `rewrite edit --delta`"
        )
    if meta.get("version") != str(DELTA_VERSION):
        raise DeltaFileError(
            f"{path} has delta version {meta.get('version')!r}; this rewrite "
            f"reads version {DELTA_VERSION}"
        )
    for name, t in tensors.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise DeltaFileError(
                f"{path}: tensor {name} holds NaN or infinite values; "
                "the file is corrupt, refusing to apply it"
            )
    try:
        entries = json.loads(meta["edits"])
        deltas = [_delta(e, i, tensors, path) for i, e in enumerate(entries)]
    except RecursionError:
        raise DeltaFileError(
            f"{path}: the edit list in the metadata is nested too deeply to "
            "be one; the file is damaged"
        ) from None
    except (KeyError, TypeError, ValueError, AttributeError, json.JSONDecodeError) as e:
        raise DeltaFileError(f"{path}: damaged edit list in the metadata ({e!r})") from None
    return deltas, meta.get("base_fingerprint", "")
