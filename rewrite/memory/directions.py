"""Context directions: which keys an edit should affect.

Given key vectors ``K`` [M, C] taken from the context regions and the layer's
second moment ``C`` [C, C], the directions ``D`` [r, C] (orthonormal rows) span
the part of key space the update may change. Keys far from ``D`` under the
metric ``C⁻¹`` barely move.

* ``mean`` (rank 1): ``d = (C + λI)⁻¹ k̄``, normalised.
* ``zca`` (rank r): whiten the keys (``K C^{-1/2}``), take the top-r right
  singular vectors, map back with ``C^{-1/2}``, orthonormalise (QR) and flip
  each row to agree with the mean key.

All maths in float64; ``C`` is regularised with ``λ = ridge · trace(C) / C``
and only ever solved against or eigendecomposed, never inverted explicitly.
"""

from __future__ import annotations

import torch

from ..utils.errors import EditError

#: Default relative ridge added to the second moment.
DEFAULT_RIDGE = 1e-3


def regularised(moment: torch.Tensor, ridge: float = DEFAULT_RIDGE) -> torch.Tensor:
    """``C + λI`` with ``λ = ridge · trace(C) / dim``, float64 [C, C]."""
    assert moment.ndim == 2 and moment.shape[0] == moment.shape[1], tuple(moment.shape)
    c = moment.to(torch.float64)
    lam = ridge * torch.diagonal(c).sum() / c.shape[0]
    return c + lam * torch.eye(c.shape[0], dtype=torch.float64, device=c.device)


def inverse_sqrt(moment: torch.Tensor, ridge: float = DEFAULT_RIDGE) -> torch.Tensor:
    """``(C + λI)^{-1/2}`` via a symmetric eigendecomposition, float64 [C, C]."""
    evals, evecs = torch.linalg.eigh(regularised(moment, ridge))
    return (evecs * evals.clamp_min(torch.finfo(torch.float64).tiny).rsqrt()) @ evecs.T


def count_distinct(keys: torch.Tensor) -> int:
    """Number of distinct rows of ``keys`` [M, C]."""
    return int(torch.unique(keys, dim=0).shape[0])


def mean_direction(
    keys: torch.Tensor, moment: torch.Tensor, ridge: float = DEFAULT_RIDGE
) -> torch.Tensor:
    """Rank-1 direction ``(C + λI)⁻¹ k̄`` normalised to unit length: float64 [1, C]."""
    k_mean = keys.to(torch.float64).mean(0)  # [C]
    chol = torch.linalg.cholesky(regularised(moment, ridge))
    d = torch.cholesky_solve(k_mean[:, None], chol)[:, 0]
    return (d / d.norm())[None]


def zca_directions(
    keys: torch.Tensor, moment: torch.Tensor, rank: int, ridge: float = DEFAULT_RIDGE
) -> torch.Tensor:
    """Rank-r whitened-SVD directions, orthonormal and sign-aligned: float64 [r, C]."""
    k = keys.to(torch.float64)  # [M, C]
    w = inverse_sqrt(moment, ridge)  # [C, C], symmetric
    _, _, vh = torch.linalg.svd(k @ w, full_matrices=False)  # vh [min(M,C), C]
    raw = vh[:rank] @ w  # rows C^{-1/2} v
    q, _ = torch.linalg.qr(raw.T)  # [C, r]
    d = q.T.contiguous()
    signs = torch.sign(d @ k.mean(0))
    signs[signs == 0] = 1
    return d * signs[:, None]


#: Direction methods by name; the CLI's choices come from here.
DIRECTION_METHODS = ("mean", "zca")


def context_directions(
    keys: torch.Tensor,
    moment: torch.Tensor,
    rank: int = 1,
    method: str = "mean",
    ridge: float = DEFAULT_RIDGE,
) -> torch.Tensor:
    """Directions ``D`` (orthonormal rows, float64 [rank, C]) from context keys.

    Args:
        keys: context key vectors [M, C].
        moment: the layer's key second moment ``E[k kᵀ]`` [C, C].
        rank: number of directions r.
        method: ``mean`` (rank 1 only) or ``zca``.
        ridge: relative ridge on ``C``.

    Raises:
        EditError: unknown method, rank out of range, too few distinct keys, non-finite
            keys, or all-zero keys or second moment (nothing to factorise).
    """
    assert keys.ndim == 2 and moment.shape == (keys.shape[1], keys.shape[1]), (
        tuple(keys.shape),
        tuple(moment.shape),
    )
    if method not in DIRECTION_METHODS:
        raise EditError(f"unknown direction method {method!r}; use one of {DIRECTION_METHODS}")
    if rank < 1:
        raise EditError(f"rank must be at least 1, got {rank}")
    if keys.shape[0] == 0:
        raise EditError("no context keys: every context mask is empty at this layer")
    if not (bool(torch.isfinite(keys).all()) and bool(torch.isfinite(moment).all())):
        raise EditError(
            "the layer's keys hold NaN or infinite values; the model's weights "
            "before this layer are damaged, so no directions can be found"
        )
    if not float(torch.diagonal(moment.to(torch.float64)).sum()) > 0:
        raise EditError(
            "every key of this layer is zero over the statistics samples (its "
            "second moment is zero), so an edit cannot act through it; choose "
            "another layer (see `rewrite layers`)"
        )
    if not bool(keys.any()):
        raise EditError(
            "the context keys are all zero at this layer, so they point in no "
            "direction; mark context regions where the layer responds, or choose "
            "another layer"
        )
    distinct = count_distinct(keys)
    if rank > distinct:
        raise EditError(
            f"rank {rank} is larger than the number of distinct context keys "
            f"({distinct}); mark larger or more context regions, or lower the rank"
        )
    if rank > keys.shape[1]:
        raise EditError(f"rank {rank} exceeds the key length {keys.shape[1]}")
    if method == "mean":
        if rank != 1:
            raise EditError(f"the 'mean' direction has rank 1; use method 'zca' for rank {rank}")
        return mean_direction(keys, moment, ridge)
    return zca_directions(keys, moment, rank, ridge)


def response_map(D: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """How strongly the keys [N, C_in, h, w] point along the directions ``D`` [r, C_in]:
    ``|D k|`` per key cell, [N, h, w] (unsigned at every rank; the firing map's rank-1
    response is the signed ``d·k``, :func:`rewrite.metrics.firing.key_response`)."""
    return torch.einsum("rc,nchw->nrhw", D.to(keys), keys).norm(dim=1)
