"""FID Inception: pytorch-fid's ``InceptionV3([3])`` without torchvision.

A re-implementation of the network behind the standard FID numbers (pytorch-fid's
``fid_inception_v3`` with weights ``pt_inception-2015-12-05-6726825d.pth``, ported from
the TensorFlow FID graph), numerically identical to pytorch-fid (verified against its own
outputs in ``tests/metrics/test_inception.py``):

* input [0, 1] RGB, resized to 299x299 (bilinear, align_corners False, no antialiasing,
  aspect ratio not kept), then scaled to ``2x - 1``;
* BasicConv2d = conv without bias, BatchNorm (eval, eps 0.001), ReLU;
* Mixed_5b-5d (FIDInceptionA), 6b-6e (FIDInceptionC) and 7b (FIDInceptionE_1) average-pool
  their pool branch with ``count_include_pad=False``; Mixed_7c (FIDInceptionE_2) max-pools it;
* pool3 = the mean of the final 8x8 map: 2048-d features.

:func:`inception_features` turns uint8 images into pool3 features; :func:`fid_kid` gives
FID (as pytorch-fid) and KID (as torch-fidelity, one subset of all samples) from them,
with the maths of :mod:`rewrite.metrics.distributions`.

Usage::

    net = FIDInception.from_file("pt_inception-2015-12-05-6726825d.pth")
    f1, f2 = inception_features(net, images1), inception_features(net, images2)
    print(fid_kid(f1, f2))
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..utils.errors import CheckpointError
from .distributions import fid, kid
from .weightfiles import load_state

BN_EPS = 0.001
FEATURE_DIMS = {64: 0, 192: 1, 768: 2, 2048: 3}


class BasicConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _avg_pool(x):
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """pytorch-fid's FIDInceptionA (Mixed_5b/5c/5d)."""

    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg_pool(x))
        return torch.cat([b1, b5, bd, bp], 1)


class InceptionB(nn.Module):
    """torchvision's InceptionB (Mixed_6a)."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b3, bd, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    """pytorch-fid's FIDInceptionC (Mixed_6b-6e)."""

    def __init__(self, cin: int, c7: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for i in range(1, 6):
            bd = getattr(self, f"branch7x7dbl_{i}")(bd)
        bp = self.branch_pool(_avg_pool(x))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):
    """torchvision's InceptionD (Mixed_7a)."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = x
        for i in range(1, 5):
            b7 = getattr(self, f"branch7x7x3_{i}")(b7)
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    """pytorch-fid's FIDInceptionE_1 (Mixed_7b, average pool without padding counted) or
    FIDInceptionE_2 (Mixed_7c, ``max_pool=True``)."""

    def __init__(self, cin: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg_pool(x)
        return torch.cat([b1, b3, bd, self.branch_pool(pooled)], 1)


class FIDInception(nn.Module):
    """pytorch-fid's ``InceptionV3`` (resize_input, normalize_input, use_fid_inception all
    True), with torchvision's Inception3 module names so pytorch-fid's weight file loads
    as is. Always in eval mode; gradients off."""

    #: pytorch-fid's blocks 0-3: the modules (and max pools) that each one runs.
    BLOCKS = (
        ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1"),
        ("Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2"),
        (
            "Mixed_5b",
            "Mixed_5c",
            "Mixed_5d",
            "Mixed_6a",
            "Mixed_6b",
            "Mixed_6c",
            "Mixed_6d",
            "Mixed_6e",
        ),
        ("Mixed_7a", "Mixed_7b", "Mixed_7c"),
    )

    def __init__(self, state: dict | None = None, source: str = "Inception state dict"):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.maxpool1 = nn.MaxPool2d(3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.maxpool2 = nn.MaxPool2d(3, stride=2)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        if state is not None:
            self.load(state, source)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> FIDInception:
        """From ``pt_inception-2015-12-05-6726825d.pth`` (with or without the
        ``num_batches_tracked`` entries; ``fc.*`` is accepted and unused)."""
        return cls(load_state(path), source=str(path))

    def load(self, state: dict, source: str = "Inception state dict") -> None:
        own = {k: v for k, v in self.state_dict().items() if not k.endswith("num_batches_tracked")}
        given = {
            k: v
            for k, v in state.items()
            if not k.endswith("num_batches_tracked") and not k.startswith("fc.")
        }
        missing = [k for k in own if k not in given]
        extra = [k for k in given if k not in own]
        if missing or extra:
            raise CheckpointError(
                f"{source} is not pytorch-fid's FID Inception state dict"
                + (
                    f"; missing {', '.join(missing[:3])}" + (" ..." if len(missing) > 3 else "")
                    if missing
                    else ""
                )
                + (
                    f"; unexpected {', '.join(extra[:3])}" + (" ..." if len(extra) > 3 else "")
                    if extra
                    else ""
                )
            )
        for k, t in own.items():
            if tuple(given[k].shape) != tuple(t.shape):
                raise CheckpointError(
                    f"{source}: {k} has shape {tuple(given[k].shape)}, "
                    f"the FID Inception needs {tuple(t.shape)}"
                )
        self.load_state_dict({k: given[k].float() for k in own}, strict=False)

    def train(self, mode: bool = True):
        return super().train(False)

    @staticmethod
    def preprocess(x: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] on [0, 1] -> the network's 299x299 input on [-1, 1]."""
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return 2 * x - 1

    @torch.no_grad()
    def forward(
        self, x: torch.Tensor, blocks=(3,), hooks: dict | None = None
    ) -> list[torch.Tensor]:
        """pytorch-fid's ``InceptionV3(blocks)`` forward on [0, 1] images [N, 3, H, W]:
        the outputs of the requested blocks (block 3 pooled to [N, 2048, 1, 1]).
        ``hooks``: a dict that receives every module's output by name."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"images must be [N, 3, H, W], got {tuple(x.shape)}")
        x = self.preprocess(x.float())
        out, last = [], max(blocks)
        for i, names in enumerate(self.BLOCKS):
            for name in names:
                x = getattr(self, name)(x)
                if hooks is not None:
                    hooks[name] = x
            if i == 3:
                x = x.mean((2, 3), keepdim=True)
            if i in blocks:
                out.append(x)
            if i == last:
                break
        return out


def uint8_to_unit(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> float32 [N, 3, H, W] on [0, 1] (``ToTensor``: x / 255)."""
    x = torch.from_numpy(np.ascontiguousarray(np.asarray(images, np.uint8)))
    return x.permute(0, 3, 1, 2).float().div(255)


def inception_features(
    net: FIDInception, images: np.ndarray, dims: int = 2048, batch_size: int = 50, progress=None
) -> np.ndarray:
    """pytorch-fid's ``get_activations``: features [N, dims] (float32 values in a float64
    array) of uint8 images [N, H, W, 3]; dims 2048 = pool3, 64/192/768 = the spatial mean
    of blocks 0/1/2. ``progress``: optional callable(done, total)."""
    if dims not in FEATURE_DIMS:
        raise ValueError(f"dims must be one of {sorted(FEATURE_DIMS)}")
    block = FEATURE_DIMS[dims]
    images = np.asarray(images)
    out = np.empty((len(images), dims))
    for start in range(0, len(images), batch_size):
        x = uint8_to_unit(images[start : start + batch_size]).to(
            net.Conv2d_1a_3x3.conv.weight.device
        )
        pred = net(x, blocks=(block,))[0]
        if pred.shape[2] != 1 or pred.shape[3] != 1:
            pred = F.adaptive_avg_pool2d(pred, (1, 1))
        out[start : start + len(pred)] = pred[:, :, 0, 0].cpu().numpy()
        if progress is not None:
            progress(min(start + batch_size, len(images)), len(images))
    return out


def fid_few(features1: np.ndarray, features2: np.ndarray) -> float:
    """FID for fewer samples than dimensions, exactly and fast: with centred features
    X1, X2, ``tr sqrtm(S1 S2)`` is the nuclear norm of ``X1 X2ᵀ / sqrt((n1-1)(n2-1))``
    (the singular values of that small matrix are the square roots of the eigenvalues of
    S1 S2), so no d x d matrix square root is needed."""
    f1, f2 = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    n1, n2 = len(f1), len(f2)
    mu1, mu2 = f1.mean(0), f2.mean(0)
    x1, x2 = f1 - mu1, f2 - mu2
    tr1, tr2 = (x1**2).sum() / (n1 - 1), (x2**2).sum() / (n2 - 1)
    tr_sqrt = np.linalg.svd(x1 @ x2.T, compute_uv=False).sum() / np.sqrt((n1 - 1) * (n2 - 1))
    return float(((mu1 - mu2) ** 2).sum() + tr1 + tr2 - 2 * tr_sqrt)


def fid_kid(features1: np.ndarray, features2: np.ndarray) -> dict[str, float]:
    """FID (pytorch-fid's Gaussian fit: mean, ``np.cov`` with ddof 1) and KID
    (torch-fidelity's unbiased MMD² with the kernel ``(xᵀy/d + 1)³``, one subset of all
    samples) between two feature sets [N, d]. With fewer samples than dimensions in
    either set, FID is computed by :func:`fid_few` (the same number, exact and faster)."""
    d = np.shape(features1)[1]
    few = min(len(features1), len(features2)) <= d
    return {
        "FID": fid_few(features1, features2) if few else fid(features1, features2),
        "KID": kid(features1, features2),
    }
