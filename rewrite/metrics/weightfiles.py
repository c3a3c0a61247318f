"""The network weight files that the standard metrics need, supplied by the user.

FID/KID need pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``; LPIPS needs
torchvision's ``vgg16-397923af.pth`` (only its ``features.*`` tensors are used). Neither
can be downloaded here, so they are named on the command line (``--inception-weights``,
``--lpips-weights``) or in the environment (``REWRITE_INCEPTION_WEIGHTS``,
``REWRITE_LPIPS_WEIGHTS``).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import torch

from ..utils.errors import CheckpointError

INCEPTION_ENV = "REWRITE_INCEPTION_WEIGHTS"
LPIPS_ENV = "REWRITE_LPIPS_WEIGHTS"
INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
VGG16_FILE = "vgg16-397923af.pth"
INCEPTION_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + INCEPTION_FILE
)
VGG16_URL = "https://download.pytorch.org/models/" + VGG16_FILE


def resolve(option: str | os.PathLike | None, env: str) -> Path | None:
    """The weight file named by ``option``, else by the environment variable ``env``,
    else None. A name that is given but is not a file is an error."""
    value = option if option not in (None, "") else os.environ.get(env) or None
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        raise CheckpointError(
            f"weight file not found: {path}"
            + ("" if option not in (None, "") else f" (from ${env})")
        )
    return path


def load_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from a ``torch.save`` file (zip or legacy), read safely
    (``weights_only``) onto the CPU."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"weight file not found: {path}") from None
    except Exception as e:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise CheckpointError(f"cannot read weight file {path}: {e}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if (
        not isinstance(state, dict)
        or not all(isinstance(k, str) for k in state)
        or not all(isinstance(v, torch.Tensor) for v in state.values())
    ):
        raise CheckpointError(f"{path} is not a state dict of tensors (names to tensors)")
    odd = [
        k
        for k, v in state.items()
        if v.layout != torch.strided or v.is_complex() or v.is_quantized or v.is_meta
    ]
    if odd:
        raise CheckpointError(
            f"{path}: {odd[0]} is a {state[odd[0]].dtype} "
            f"{str(state[odd[0]].layout).removeprefix('torch.')} tensor, not "
            "plain real numbers; the file is not a network's weights"
        )
    broken = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if broken:
        raise CheckpointError(
            f"{path} holds NaN or infinite values in {len(broken)} tensor(s) "
            f"({', '.join(map(str, broken[:3]))}{', ...' if len(broken) > 3 else ''}); "
            "the file is damaged: download it again"
        )
    return dict(state)


def hash_mismatch(path: str | os.PathLike) -> str | None:
    """For a file named like torch.hub names them (``name-<8 hex>.pth``): a warning if the
    first 8 hex digits of its sha256 differ from the name's, else None."""
    path = Path(path)
    m = re.search(r"-([0-9a-f]{8})\.pth?$", path.name)
    if not m:
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    if h.hexdigest()[:8] != m.group(1):
        return (
            f"{path.name}: sha256 starts {h.hexdigest()[:8]}, not {m.group(1)} as its name "
            "says; numbers from it will not be comparable with published ones"
        )
    return None


def file_id(path: str | os.PathLike) -> str:
    """The first 16 hex digits of the file's sha256 (names its cached features)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


ENABLE_HINT = (
    f"FID/KID and LPIPS not computed: pass --inception-weights {INCEPTION_FILE} "
    f"and --lpips-weights {VGG16_FILE} (or set ${INCEPTION_ENV} / ${LPIPS_ENV}); "
    f"files from {INCEPTION_URL} and {VGG16_URL}"
)
