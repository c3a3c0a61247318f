"""Distances between sets of feature vectors: FID and KID.

Pure maths on feature arrays [N, F] (float64). With Inception features these
are the standard FID and KID; the feature network is not part of this module.

* ``frechet_distance(mu1, cov1, mu2, cov2) = |mu1 - mu2|² + tr(C1 + C2 - 2 (C1 C2)^{1/2})``,
  with the matrix square root taken through a symmetric eigendecomposition
  (``(C1 C2)^{1/2}`` has the eigenvalues of ``C1^{1/2} C2 C1^{1/2}``).
* ``kid``: the unbiased MMD² with the cubic polynomial kernel
  ``k(x, y) = (xᵀy / F + 1)³``.
"""

from __future__ import annotations

import numpy as np


def _sqrtm_psd(c: np.ndarray) -> np.ndarray:
    evals, evecs = np.linalg.eigh((c + c.T) / 2)
    return (evecs * np.sqrt(np.clip(evals, 0, None))) @ evecs.T


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """Fréchet distance between Gaussians N(mu1, cov1) and N(mu2, cov2)."""
    assert mu1.shape == mu2.shape and cov1.shape == cov2.shape == (mu1.size, mu1.size)
    s1 = _sqrtm_psd(cov1)
    middle = _sqrtm_psd(s1 @ cov2 @ s1)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(middle))


def fid(features1: np.ndarray, features2: np.ndarray) -> float:
    """FID between two feature sets [N, F] (Gaussian fit: mean and sample covariance)."""
    f1, f2 = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    return frechet_distance(
        f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0), np.cov(f2, rowvar=False)
    )


def kid(features1: np.ndarray, features2: np.ndarray) -> float:
    """Unbiased KID (MMD² with the kernel ``(xᵀy / F + 1)³``) between two feature sets."""
    x, y = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    d = x.shape[1]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    m, n = len(x), len(y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        - 2 * kxy.mean()
    )
