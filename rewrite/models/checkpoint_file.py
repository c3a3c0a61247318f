"""Safe reading and atomic writing of checkpoint files.

Files are read with ``torch.load(..., weights_only=True)`` (tensors and plain
containers only) or with safetensors; anything that would need full
unpickling, and so could run code from the file, is refused.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..utils.errors import CheckpointError
from ..utils.fileio import atomic_path


def is_safetensors(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a safetensors file, whatever its name: an 8-byte little-endian
    header length that fits the file, then a JSON object."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return False
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return 0 < n <= size - 8 and head[8:9] == b"{"


def load_checkpoint_file(path: str | os.PathLike) -> Any:
    """Read a checkpoint without executing code from it.

    Args:
        path: a PyTorch file (``.pt``, ``.pth``, ``.tar``, ...) or a safetensors file
            (recognised by its content, whatever its name).

    Returns:
        Whatever the file holds (usually a dict of tensors or of state dicts),
        with tensors on the CPU.

    Raises:
        CheckpointError: the file is missing, truncated or corrupt, or needs
            full unpickling.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    if is_safetensors(path):  # by content: a renamed file loads as what it is
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(
                f"{path} is not a readable safetensors file ({e}); "
                "the file may be truncated or corrupt"
            ) from None
    from .nvidia_pickle import looks_like_nvidia_pickle, read_nvidia_pickle

    if looks_like_nvidia_pickle(path):  # by content: NVIDIA StyleGAN .pkl, read restricted
        return read_nvidia_pickle(path)
    try:
        with warnings.catch_warnings():
            # Protocol-4 pickles of plain tensors load fine; the notice only confuses users.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            # A file object, not the path: torch.load would pick its reader by the name
            # (a PyTorch file named .safetensors); the content decides here.
            with open(path, "rb") as f:
                return torch.load(f, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        msg = str(e)
        if "Weights only load failed" in msg:
            found = re.search(r"GLOBAL ([\w.]+)", msg)
            what = f" (it references the Python object {found.group(1)})" if found else ""
            raise CheckpointError(
                f"refusing to load {path}: it needs full unpickling{what}, which can run "
                "code stored in the file. rewrite loads tensors only: PyTorch-tutorial DCGAN "
                "checkpoints, rosinality StyleGAN2 .pt files ({'g_ema', 'latent_avg'}) and "
                "GAN-Dissection ProGAN .pth state dicts. Convert the file where you trust its "
                "source: for an NVIDIA StyleGAN2 .pkl, rosinality's convert_weight.py writes the "
                ".pt layout; otherwise load it there and save just the weights, e.g. "
                "torch.save(model.state_dict(), 'weights.pt'), or safetensors.torch.save_file."
            ) from None
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint ({msg}); "
            "the file may be truncated or corrupt"
        ) from None
    except (RuntimeError, EOFError, KeyError, IndexError, ValueError, OSError) as e:
        detail = str(e).split(". ")[0] or type(e).__name__
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint ({detail}); "
            "the file may be truncated or corrupt: download or export it "
            "again"
        ) from None


def save_checkpoint_file(obj: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write ``obj`` with ``torch.save`` atomically (temporary file, then rename).

    Returns the final path.
    """
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        # A file object (not a path) keeps the archive's inner folder name fixed, so
        # the same weights always give the same bytes.
        torch.save(dict(obj), f)
    return path
