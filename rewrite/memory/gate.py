"""A gate on the layer's keys: where a gated edit applies (Perfusion-style locality).

A gated edit leaves the weight alone and changes the layer's values only where the gate is
open::

    at "values":  values = v0 + g(k) · (f(k, W + s·ΔW) − f(k, W))
    at "keys":    values = v0 + tail(lin(k, W) + lin(g(k)·k, s·ΔW)) − f(k, W)

with ``g(k) = sigmoid((u·k − b) / τ)`` per key cell. At "values" the gate is
nearest-upsampled to the value grid (each value cell takes the gate of the key cell it lies
over: sharp block edges); at "keys" the change reads the gated keys, so each key cell's
change spreads over its kernel's footprint as the layer's own output does (smooth edges).
Either way an edit whose keys never pass the threshold leaves the image as it was, whatever
``ΔW`` does elsewhere: locality comes from the gate, and ``ΔW`` may use the layer's whole
capacity.

:func:`fit_gate` learns ``u`` by linear discriminant analysis: key cells where the rule
should hold (positives) against cells where it should not (negatives).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .layer import LayerFunction

#: Where a gate may act (:class:`Gate`'s ``at``).
GATE_PLACES = ("values", "keys")


@dataclasses.dataclass
class Gate:
    """``g(k) = sigmoid((u·k − b) / τ)`` per key cell.

    Attributes:
        u: the read-out direction [C_in] (unit length).
        b: the threshold on ``u·k``.
        tau: the softness (> 0): the width of the sigmoid's ramp in units of ``u·k``.
        at: ``"values"`` (the change's output is gated) or ``"keys"`` (the change reads
            gated keys); see the module docstring.
    """

    u: torch.Tensor
    b: float
    tau: float
    at: str = "values"

    def open(self, keys: torch.Tensor) -> torch.Tensor:
        """How open the gate is at each key cell: [N, 1, h, w] in (0, 1) for keys
        [N, C_in, h, w]."""
        read = torch.einsum("c,nchw->nhw", self.u.to(keys), keys)
        return torch.sigmoid((read - self.b) / self.tau)[:, None]

    def map(self, keys: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """The gate on the value grid: [N, 1, *size], each value cell taking the gate of the
        key cell it lies over (nearest)."""
        return F.interpolate(self.open(keys), size=tuple(size), mode="nearest")

    def problem(self, in_channels: int) -> str | None:
        """Why this gate cannot read keys of ``in_channels`` channels, or None."""
        u = self.u
        if not isinstance(u, torch.Tensor) or not u.is_floating_point() or u.ndim != 1:
            return f"the gate direction must be a 1-axis float tensor, got {getattr(u, 'shape', u)}"
        if u.shape[0] != in_channels:
            return f"the gate reads {u.shape[0]} key channels but the layer has {in_channels}"
        for name, v in (("threshold", self.b), ("softness", self.tau)):
            if (
                isinstance(v, bool)
                or not isinstance(v, (int, float))
                or v != v
                or abs(v) == float("inf")
            ):
                return f"the gate's {name} must be a finite number, got {v!r}"
        if self.tau <= 0:
            return f"the gate's softness must be above 0, got {self.tau!r}"
        if self.at not in GATE_PLACES:
            return f"the gate acts at {self.at!r}; it must be one of {list(GATE_PLACES)}"
        return None


def gated_values(
    f: LayerFunction,
    keys: torch.Tensor,
    values: torch.Tensor,
    change: torch.Tensor,
    gate: Gate,
) -> torch.Tensor:
    """The layer's values under a gated weight change.

    Args:
        f: the layer (its ``weight`` is the current weight W).
        keys: [N, C_in, h, w]; values: the layer's values now, [N, C_out, H, W].
        change: the (already scaled) weight change, shaped like ``f.weight``.
        gate: where the change applies.
    Returns:
        the values of the module docstring for ``gate.at``, shaped like ``values``; a zero
        change returns ``values`` exactly.
    """
    return gated_change(f, keys, values, gate)(change)


def gated_change(
    f: LayerFunction, keys: torch.Tensor, values: torch.Tensor, gate: Gate
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``change -> gated_values(f, keys, values, change, gate)``, with every term that does
    not depend on the change (the layer's own output, the gate, the gated keys) computed
    once: what a fit that renders many changes on the same keys calls (the same numbers)."""
    if gate.at == "keys":
        if f.exact is not None:
            raise ValueError(
                f"a gate at the keys needs a layer of the form tail(linear(...)) ({f.name})"
            )
        base, gated_keys, now = f.linear(keys, f.weight), gate.open(keys) * keys, f.forward(keys)

        def at_keys(change: torch.Tensor) -> torch.Tensor:
            pre = base + f.linear(gated_keys, change.to(f.weight))
            return values + (f.tail(pre) - now)

        return at_keys
    now = f.forward(keys)
    opening = gate.map(keys, (int(values.shape[-2]), int(values.shape[-1])))

    def at_values(change: torch.Tensor) -> torch.Tensor:
        moved = f.forward(keys, f.weight + change.to(f.weight)) - now
        return values + opening * moved

    return at_values


def fit_gate(
    positives: torch.Tensor,
    negatives: torch.Tensor,
    quantile: float = 0.5,
    softness: float = 0.25,
    shrink: float = 0.1,
    at: str = "values",
) -> tuple[Gate, float, float]:
    """A gate separating key cells ``positives`` [P, C] from ``negatives`` [M, C] (LDA).

    ``u`` is the shrunk-covariance LDA direction (mean difference through the pooled
    covariance plus ``shrink`` × its mean variance on the diagonal); ``b`` leaves the gate
    shut on ``quantile`` of the positives (higher: more selective, covers less); ``τ`` is
    ``softness`` × the spread of ``u·k`` over all cells.

    Returns:
        (gate, cover, leak): the share of positives and of negatives above ``b``.
    """
    if positives.shape[0] < 2 or negatives.shape[0] < 2:
        raise ValueError(
            f"a gate needs at least 2 positive and 2 negative key cells, got "
            f"{positives.shape[0]} and {negatives.shape[0]}"
        )
    pos, neg = positives.double(), negatives.double()
    c = pos.shape[1]
    cov = 0.5 * (torch.cov(pos.T) + torch.cov(neg.T))
    cov = cov + shrink * torch.eye(c, dtype=cov.dtype) * cov.diagonal().mean().clamp_min(1e-12)
    u = torch.linalg.solve(cov, pos.mean(0) - neg.mean(0))
    u = u / u.norm().clamp_min(1e-30)
    sp, sn = pos @ u, neg @ u
    b = float(torch.quantile(sp, quantile))
    tau = float(softness * torch.cat([sp, sn]).std().clamp_min(1e-12))
    cover = float((sp > b).double().mean())
    leak = float((sn > b).double().mean())
    return Gate(u.float(), b, tau, at), cover, leak
