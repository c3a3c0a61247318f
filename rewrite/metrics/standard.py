"""The standard metrics' networks (FID-Inception, LPIPS) loaded from the user's files.

Sits above :mod:`.weightfiles` (where the files are found and checked) and the networks
(:mod:`.inception`, :mod:`.lpips`), so that neither imports the other.
"""

from __future__ import annotations

import os

import torch

from .inception import FIDInception
from .lpips import LPIPS
from .weightfiles import (
    ENABLE_HINT,
    INCEPTION_ENV,
    INCEPTION_FILE,
    INCEPTION_URL,
    LPIPS_ENV,
    VGG16_FILE,
    VGG16_URL,
    file_id,
    hash_mismatch,
    resolve,
)


def load_standard_nets(
    inception: str | os.PathLike | None,
    lpips: str | os.PathLike | None,
    device: torch.device | str = "cpu",
):
    """The networks of the standard metrics from the named files (or the environment):
    ``(inception_net, inception_id, lpips_net, notes)``; a network is None where no file
    is named, and ``notes`` are lines to show the user (how to enable what is missing,
    hash mismatches)."""
    ipath, lpath = resolve(inception, INCEPTION_ENV), resolve(lpips, LPIPS_ENV)
    notes = []
    if ipath is None and lpath is None:
        notes.append(ENABLE_HINT)
    elif ipath is None:
        notes.append(
            f"FID/KID not computed: pass --inception-weights {INCEPTION_FILE} "
            f"(or set ${INCEPTION_ENV}); file from {INCEPTION_URL}"
        )
    elif lpath is None:
        notes.append(
            f"LPIPS not computed: pass --lpips-weights {VGG16_FILE} "
            f"(or set ${LPIPS_ENV}); file from {VGG16_URL}"
        )
    inet = iid = lnet = None
    if ipath is not None:
        inet, iid = FIDInception.from_file(ipath).to(device), file_id(ipath)
        notes += [w for w in [hash_mismatch(ipath)] if w]
    if lpath is not None:
        lnet = LPIPS.from_files(lpath).to(device)
        notes += [w for w in [hash_mismatch(lpath)] if w]
    return inet, iid, lnet, notes
