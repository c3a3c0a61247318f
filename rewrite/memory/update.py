"""The constrained update ``W1 = W0 + Λ Dᵀ`` along the weight's input-channel axis.

A weight of any layout is viewed as a matrix ``[out, rest..., in]`` (output
axis first, input axis last). ``D`` [r, in] has orthonormal rows and ``Λ`` has
the shape ``[out, rest..., r]``; the change is ``ΔW = Λ D`` in that view. For a
ConvTranspose2d weight [in, out, kh, kw] this is the einsum
``'oyxr, ri -> ioyx'``; for a Conv2d weight [out, in, kh, kw], ``'oyxr, ri -> oiyx'``.
"""

from __future__ import annotations

import torch


def as_matrix(weight: torch.Tensor, in_axis: int, out_axis: int) -> torch.Tensor:
    """View ``weight`` as [out, rest..., in] (output axis first, input axis last)."""
    assert in_axis != out_axis
    return weight.movedim((out_axis, in_axis), (0, -1))


def from_matrix(mat: torch.Tensor, in_axis: int, out_axis: int) -> torch.Tensor:
    """Inverse of :func:`as_matrix`."""
    return mat.movedim((0, -1), (out_axis, in_axis))


def lambda_shape(weight: torch.Tensor, in_axis: int, out_axis: int, rank: int) -> tuple[int, ...]:
    """Shape of ``Λ`` for ``weight``: [out, rest..., rank]."""
    return (*as_matrix(weight, in_axis, out_axis).shape[:-1], rank)


def low_rank_delta(lam: torch.Tensor, D: torch.Tensor, in_axis: int, out_axis: int) -> torch.Tensor:
    """``ΔW`` in the weight's own layout from ``Λ`` [out, rest..., r] and ``D`` [r, in]."""
    assert lam.shape[-1] == D.shape[0], (tuple(lam.shape), tuple(D.shape))
    return from_matrix(lam @ D.to(lam.dtype), in_axis, out_axis)


def project_onto_span(
    weight: torch.Tensor, weight0: torch.Tensor, D: torch.Tensor, in_axis: int, out_axis: int
) -> torch.Tensor:
    """``W0 + P_D (W - W0)``: keep only the change that lies in span(D) along the input axis."""
    change = as_matrix(weight - weight0, in_axis, out_axis)  # [out, rest..., in]
    d = D.to(change.dtype)
    return weight0 + from_matrix((change @ d.T) @ d, in_axis, out_axis)


def lambda_of(
    weight: torch.Tensor, weight0: torch.Tensor, D: torch.Tensor, in_axis: int, out_axis: int
) -> torch.Tensor:
    """The ``Λ`` [out, rest..., r] of ``W - W0`` (exact when the change lies in span(D))."""
    return as_matrix(weight - weight0, in_axis, out_axis) @ D.to(weight.dtype).T
