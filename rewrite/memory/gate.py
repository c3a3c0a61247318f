"""A gate on the layer's keys: where a gated edit applies (Perfusion-style locality).

A gated edit leaves the weight alone and changes the layer's values only where the gate is
open::

    at "values":  values = v0 + g(k) · (f(k, W + s·ΔW) − f(k, W))
    at "keys":    values = v0 + tail(lin(k, W) + lin(g(k)·k, s·ΔW)) − f(k, W)

with ``g(k) = sigmoid((u·k + kᵀAk − b) / τ)`` per key cell (``A`` = 0 for a linear
gate), times a gate per image when it has one (:class:`Gate`). At "values" the gate is
nearest-upsampled to the value grid (each value cell takes the gate of the key cell it lies
over: sharp block edges); at "keys" the change reads the gated keys, so each key cell's
change spreads over its kernel's footprint as the layer's own output does (smooth edges).
Either way an edit whose keys never pass the threshold leaves the image as it was, whatever
``ΔW`` does elsewhere: locality comes from the gate, and ``ΔW`` may use the layer's whole
capacity.

:func:`fit_gate` learns the read-out from key cells where the rule should hold (positives)
against cells where it should not (negatives): by linear discriminant analysis (``u``), or
by the Gaussian log-likelihood ratio of the two (``u`` and a quadratic part ``A``: the
positives may spread along several directions that the negatives do not, which one
direction cannot follow).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .layer import LayerFunction

#: Where a gate may act (:class:`Gate`'s ``at``).
GATE_PLACES = ("values", "keys")

#: Largest :attr:`Gate.spread` (key cells) a gate may have.
MAX_SPREAD = 8


@dataclasses.dataclass
class Gate:
    """``g(k) = sigmoid((u·k + kᵀAk − b) / τ)`` per key cell.

    Attributes:
        u: the linear read-out [C_in] (unit length for a linear gate).
        b: the threshold on the read-out.
        tau: the softness (> 0): the width of the sigmoid's ramp in units of the read-out.
        at: ``"values"`` (the change's output is gated) or ``"keys"`` (the change reads
            gated keys); see the module docstring.
        A: the quadratic read-out [C_in, C_in] (symmetric), or None for a linear gate.
        face_D: with ``face_cells``, a gate per image on top of the one per cell: the rule's
            directions [r, C_in]; the image's response is the largest ``|face_D k|`` (``d·k``
            at r = 1) over the key cells ``face_cells`` (bool [h, w]), and the image's gate
            ``sigmoid((response − face_b) / face_tau)`` multiplies every cell's. None: no
            gate per image.
        spread: each cell takes the most open gate within this many cells of it (a max-pool
            of side ``2·spread + 1``; 0: each cell its own): a cell whose key does not pass
            the threshold opens beside one that does, so the parts of an object open together
            where any part is recognised.
    """

    u: torch.Tensor
    b: float
    tau: float
    at: str = "values"
    A: torch.Tensor | None = None
    face_D: torch.Tensor | None = None
    face_cells: torch.Tensor | None = None
    face_b: float = 0.0
    face_tau: float = 1.0
    spread: int = 0

    def read(self, keys: torch.Tensor) -> torch.Tensor:
        """The read-out ``u·k + kᵀAk`` at each key cell: [N, h, w] for keys [N, C_in, h, w]."""
        read = torch.einsum("c,nchw->nhw", self.u.to(keys), keys)
        if self.A is not None:
            read = read + torch.einsum(
                "nchw,nchw->nhw", keys, torch.einsum("dc,nchw->ndhw", self.A.to(keys), keys)
            )
        return read

    def face_open(self, keys: torch.Tensor) -> torch.Tensor | None:
        """How open the gate per image is for keys [N, C_in, h, w]: [N] in (0, 1), or None
        without one."""
        if self.face_D is None or self.face_cells is None:
            return None
        return torch.sigmoid((self.face_response(keys) - self.face_b) / self.face_tau)

    def face_response(self, keys: torch.Tensor) -> torch.Tensor:
        """What the gate per image reads from keys [N, C_in, h, w]: [N], the largest
        ``|face_D k|`` (``d·k`` at rank 1) over ``face_cells``."""
        assert self.face_D is not None and self.face_cells is not None, "no gate per image"
        proj = torch.einsum("rc,nchw->nrhw", self.face_D.to(keys), keys)
        response = proj[:, 0] if self.face_D.shape[0] == 1 else proj.norm(dim=1)
        return response[:, self.face_cells.to(keys.device)].amax(1)

    def open(self, keys: torch.Tensor) -> torch.Tensor:
        """How open the gate is at each key cell: [N, 1, h, w] in (0, 1) for keys
        [N, C_in, h, w]."""
        opened = torch.sigmoid((self.read(keys) - self.b) / self.tau)[:, None]
        if self.spread > 0:
            opened = F.max_pool2d(opened, 2 * self.spread + 1, 1, self.spread)
        face = self.face_open(keys)
        return opened if face is None else opened * face[:, None, None, None]

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
        if not bool(torch.isfinite(u).all()):
            return "the gate direction holds values that are not finite"
        A = self.A
        if A is not None:
            if not isinstance(A, torch.Tensor) or not A.is_floating_point():
                return "the gate's quadratic part must be a float tensor"
            if tuple(A.shape) != (in_channels, in_channels):
                return (
                    f"the gate's quadratic part must be {in_channels}x{in_channels}, got "
                    f"{tuple(A.shape)}"
                )
            if not bool(torch.isfinite(A).all()):
                return "the gate's quadratic part holds values that are not finite"
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
        if type(self.spread) is not int or not 0 <= self.spread <= MAX_SPREAD:
            return (
                f"the gate's spread must be a whole number of cells 0-{MAX_SPREAD}, got "
                f"{self.spread!r}"
            )
        return self._face_problem(in_channels)

    def _face_problem(self, in_channels: int) -> str | None:
        """Why the gate per image is damaged, or None (also None without one)."""
        D, cells = self.face_D, self.face_cells
        if D is None and cells is None:
            return None
        if D is None or cells is None:
            return "the gate per image needs both its directions and its cells"
        if not isinstance(D, torch.Tensor) or not D.is_floating_point() or D.ndim != 2:
            return "the gate per image's directions must be a 2-axis float tensor"
        if D.shape[1] != in_channels or D.shape[0] < 1:
            return (
                f"the gate per image's directions must be [r, {in_channels}], got {tuple(D.shape)}"
            )
        if not bool(torch.isfinite(D).all()):
            return "the gate per image's directions hold values that are not finite"
        if not isinstance(cells, torch.Tensor) or cells.dtype != torch.bool or cells.ndim != 2:
            return "the gate per image's cells must be a 2-axis bool tensor"
        if not bool(cells.any()):
            return "the gate per image reads no cell"
        for name, v in (("threshold", self.face_b), ("softness", self.face_tau)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                return f"the gate per image's {name} must be a finite number, got {v!r}"
        if self.face_tau <= 0:
            return f"the gate per image's softness must be above 0, got {self.face_tau!r}"
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
    quadratic: bool = False,
    leak: float = 0.0,
) -> tuple[Gate, float, float]:
    """A gate separating key cells ``positives`` [P, C] from ``negatives`` [M, C].

    Linear (the default): ``u`` is the shrunk-covariance LDA direction (mean difference
    through the pooled covariance plus ``shrink`` × its mean variance on the diagonal), and
    ``τ`` is ``softness`` × the spread of ``u·k`` over all cells. ``quadratic``: the
    read-out is the log-likelihood ratio of two Gaussians fitted to the positives and to the
    negatives, each covariance shrunk the same way (``u`` and ``A``; the constant goes into
    ``b``), and ``τ`` is ``softness`` × the spread of the positives' read-out (the negatives'
    reaches far below the threshold and says nothing about the ramp).

    The threshold ``b`` leaves the gate shut on ``quantile`` of the positives (higher: more
    selective, covers less); with ``leak`` above 0 it lets that share of the negatives
    through instead (a margin set by what must stay shut; the cover is what the read-out
    separates).

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
    eye = torch.eye(c, dtype=pos.dtype)

    def shrunk(cov: torch.Tensor) -> torch.Tensor:
        return cov + shrink * eye * cov.diagonal().mean().clamp_min(1e-12)

    A = None
    if quadratic:
        inv_p = torch.linalg.inv(shrunk(torch.cov(pos.T)))
        inv_n = torch.linalg.inv(shrunk(torch.cov(neg.T)))
        inv_p, inv_n = 0.5 * (inv_p + inv_p.T), 0.5 * (inv_n + inv_n.T)
        A = 0.5 * (inv_n - inv_p)
        u = inv_p @ pos.mean(0) - inv_n @ neg.mean(0)
        sp = ((pos @ A) * pos).sum(1) + pos @ u
        sn = ((neg @ A) * neg).sum(1) + neg @ u
        spread = sp.std()
    else:
        cov = shrunk(0.5 * (torch.cov(pos.T) + torch.cov(neg.T)))
        u = torch.linalg.solve(cov, pos.mean(0) - neg.mean(0))
        u = u / u.norm().clamp_min(1e-30)
        sp, sn = pos @ u, neg @ u
        spread = torch.cat([sp, sn]).std()
    b = float(torch.quantile(sn, 1.0 - leak) if leak > 0 else torch.quantile(sp, quantile))
    tau = float(softness * spread.clamp_min(1e-12))
    cover = float((sp > b).double().mean())
    passed = float((sn > b).double().mean())
    gate = Gate(u.float(), b, tau, at, None if A is None else A.float())
    return gate, cover, passed
