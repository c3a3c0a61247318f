"""Generator families behind one protocol, and how to load them by name or file.

Usage::

    from . import load_model
    G = load_model("dcgan-digiface64")            # zoo name: fetched and cached
    G = load_model("my_dcgan.pt")                 # a checkpoint file, family detected
    G = load_model("dcgan-digiface64", weights="weights.tar")   # a local copy
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..utils.cache import writable_cache_folder
from ..utils.errors import CheckpointError, ModelNotFoundError
from .base import Generator, LayerInfo, Split
from .checkpoint_file import load_checkpoint_file
from .dcgan import DCGANGenerator
from .proggan import ProGANGenerator
from .stylegan2 import StyleGAN2Generator
from .stylegan2ada import StyleGAN2ADAGenerator
from .stylegan3 import StyleGAN3Generator
from .zoo import DEFAULT_MODEL, ZOO, ZooEntry, cached_path, extract_from_wheel, fetch

#: Family name -> generator class. A new family is a new module plus one entry here.
FAMILIES: dict[str, type[Generator]] = {
    cls.family: cls
    for cls in (
        DCGANGenerator,
        StyleGAN2Generator,
        ProGANGenerator,
        StyleGAN2ADAGenerator,
        StyleGAN3Generator,
    )
}

__all__ = [
    "DEFAULT_MODEL",
    "FAMILIES",
    "ZOO",
    "Generator",
    "LayerInfo",
    "Split",
    "ZooEntry",
    "cached_path",
    "detect_family",
    "fetch",
    "load_model",
    "resolve_weights",
    "weights_family",
]


def _family_class(arch: str) -> type[Generator]:
    if arch not in FAMILIES:
        raise CheckpointError(f"unknown architecture {arch!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[arch]


def resolve_weights(
    model: str, weights: str | os.PathLike | None = None
) -> tuple[Path, str | None]:
    """Find the checkpoint file for ``model`` and the family it should load as.

    Args:
        model: a zoo name or a checkpoint path.
        weights: a local file to use instead of downloading the zoo entry (a
            checkpoint, or the zoo entry's wheel).

    Returns:
        ``(path, family)``; family is None when it must be detected from the file.
    """
    entry = ZOO.get(model)
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise CheckpointError(f"--weights file not found: {path}")
        if entry is not None and path.suffix == ".whl":
            dest = cached_path(entry)
            writable_cache_folder(
                dest.parent,
                f"unpack {path.name}",
                f". Or pass the {dest.name} inside the wheel with --weights",
            )
            path = extract_from_wheel(path, entry, dest)
        return path, entry.family if entry else None
    if entry is not None:
        return fetch(entry), entry.family
    if Path(model).is_file():
        return Path(model), None
    raise ModelNotFoundError(
        f"unknown model {model!r}: not a file, and not one of the known models "
        f"({', '.join(ZOO)}). Give a zoo name or the path to a checkpoint."
    )


def detect_family(obj: Any) -> str:
    """The family whose keys a loaded checkpoint has; a clear error if none or several."""
    found = [name for name, cls in FAMILIES.items() if cls.claims(obj)]
    if len(found) == 1:
        return found[0]
    if not found:
        keys = list(obj)[:6] if isinstance(obj, dict) else []
        hints = "; ".join(f"{n}: {c.signature_key}" for n, c in FAMILIES.items())
        raise CheckpointError(
            f"the checkpoint fits no known family (its first keys: "
            f"{', '.join(map(str, keys)) or 'none'}). Expected keys like {hints}"
        )
    raise CheckpointError(
        f"the checkpoint has keys of several families ({', '.join(found)}); name one with --arch"
    )


def weights_family(obj: Any, zoo_family: str | None) -> str | None:
    """The family of a ``--weights`` file, from its content: a ``--weights`` file is whatever
    the user has, so a StyleGAN pickle given with the default model name (``rewrite sample
    --weights ffhq.pkl``) loads as StyleGAN. ``zoo_family`` (the named zoo entry's, or None)
    decides only when the content fits no family or several (None: let
    :func:`detect_family` say why)."""
    found = [name for name, cls in FAMILIES.items() if cls.claims(obj)]
    if len(found) == 1:
        return found[0]
    if zoo_family is not None and (not found or zoo_family in found):
        return zoo_family
    return None


#: Largest image side a loaded generator may produce.
MAX_RESOLUTION = 4096


def weight_problems(G: Generator, limit: int = 5) -> list[str]:
    """What makes ``G``'s weights unusable: an implausible image size, empty tensors,
    non-finite values (NaN, inf), negative BatchNorm running variances. At most ``limit``
    tensors are named."""
    problems = []
    if not 8 <= G.resolution <= MAX_RESOLUTION:
        problems.append(
            f"the layers make {G.resolution}x{G.resolution} images; a plausible "
            f"generator makes 8 to {MAX_RESOLUTION} pixels"
        )
    for name, t in list(G.named_parameters()) + list(G.named_buffers()):
        if t.numel() == 0:
            problems.append(f"{name} has no elements (shape {tuple(t.shape)})")
            continue
        if not t.is_floating_point():
            continue
        # A NaN or inf makes the sum non-finite (so a finite sum clears the tensor at the
        # cost of one reduction); count only then (the sum may also overflow).
        bad = 0 if torch.isfinite(t.sum()) else int((~torch.isfinite(t)).sum())
        if bad:
            problems.append(f"{name} has {bad} non-finite value(s) (NaN or inf)")
        elif name.endswith("running_var") and bool((t < 0).any()):
            problems.append(f"{name} has negative variances")
    if len(problems) > limit:
        problems = [*problems[:limit], f"... and {len(problems) - limit} more tensors"]
    return problems


def model_from_checkpoint(obj: Any, arch: str | None = None) -> Generator:
    """Build a generator from a loaded checkpoint object; ``arch`` None detects the family.

    Raises:
        CheckpointError: the file fits no family, or its weights are unusable
            (:func:`weight_problems`), so nothing renders NaN or garbage silently.
    """
    G = _family_class(arch or detect_family(obj)).from_checkpoint(obj)
    problems = weight_problems(G)
    if problems:
        raise CheckpointError(
            "the weights are damaged: "
            + "; ".join(problems)
            + ". Use an intact copy of the checkpoint"
        )
    return G


def load_model(
    model: str = DEFAULT_MODEL,
    weights: str | os.PathLike | None = None,
    arch: str | None = None,
    device: str | torch.device = "cpu",
) -> Generator:
    """Load a generator by zoo name or file, in eval mode on ``device``.

    Args:
        model: zoo name (see ``ZOO``) or path to a checkpoint.
        weights: optional local file replacing the zoo download; its family is detected
            from its content (:func:`weights_family`), whatever ``model`` names.
        arch: family name to force, a key of ``FAMILIES`` (``dcgan``, ``stylegan2``,
            ``proggan``, ``stylegan2-ada``, ``stylegan3``); default: detected from the
            file's content (for a zoo name without ``weights``, the entry's family).
        device: where to put the model.
    """
    path, family = resolve_weights(model, weights)
    obj = load_checkpoint_file(path)
    if arch is None and weights is not None:
        family = weights_family(obj, family)
    try:
        G = model_from_checkpoint(obj, arch or family)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    return G.to(device).eval()
