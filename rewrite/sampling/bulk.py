"""Bulk sampling to a folder of PNGs or one ``.npz``, resumable and shardable over ranks.

* folder: ``<dir>/<sample:06d>.png`` per sample plus ``manifest.json``; a re-run
  skips every batch whose files are all there;
* ``.npz``: arrays ``images`` (uint8 [N, H, W, 3]) and ``seeds`` (int64 [N]),
  written without timestamps so the same samples give the same bytes; batches
  are kept in ``<file>.parts/`` until the file is assembled, so a re-run resumes.

Under ``torchrun`` each rank renders and writes its own batches (every
``world``-th batch of the single-process split, so each batch is computed as a
single process would) and rank 0 writes the manifest or assembles the file.

Usage::

    bulk_sample(G, range(50_000), out_dir="samples/")
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from ..models.base import Generator
from ..utils.cache import model_key
from ..utils.distributed import DistContext
from ..utils.errors import OutputPathError
from ..utils.fileio import atomic_path
from .generate import batches, generate


def save_npz_deterministic(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` as an uncompressed ``.npz`` with fixed timestamps (atomically)."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            zf.writestr(
                zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buf.getvalue()
            )
    return Path(path)


def _png_path(out_dir: Path, seed: int) -> Path:
    return out_dir / f"{seed:06d}.png"


#: The file in a ``.npz``'s parts folder that says which model and batching they are of
#: (a PNG folder's ``manifest.json`` says it for the folder).
STAMP = ".rewrite-samples.json"


def _check_resume(target: Path, stamp: dict) -> None:
    """Refuse to resume into ``target`` if what is there was rendered by another model (or,
    for ``.npz`` parts, with another batch size): mixing them would label one model's
    images with another's name."""
    found = None
    if (target / STAMP).is_file():
        found = json.loads((target / STAMP).read_text())
    elif (target / "manifest.json").is_file():
        manifest = json.loads((target / "manifest.json").read_text())
        found = {k: manifest.get(k) for k in stamp}
    if found is None:
        return
    for key, want in stamp.items():
        if found.get(key) != want:
            raise OutputPathError(
                f"{target} already holds samples made with {key} {found.get(key)!r}, not "
                f"{want!r}; resuming would mix them. Choose a new folder or delete that one"
            )


def bulk_sample(
    G: Generator,
    seeds: Sequence[int],
    out_dir: str | Path | None = None,
    npz: str | Path | None = None,
    batch_size: int = 32,
    dist: DistContext | None = None,
    progress: bool | None = None,
    model_name: str = "",
) -> dict:
    """Render ``seeds`` into ``out_dir`` (PNGs) or ``npz``; returns a summary dict.

    Exactly one of ``out_dir`` and ``npz`` must be given.
    """
    if (out_dir is None) == (npz is None):
        raise ValueError("give exactly one of out_dir and npz")
    dist = dist or DistContext()
    seeds = list(seeds)
    all_batches = batches(seeds, batch_size)
    mine = list(range(dist.rank, len(all_batches), dist.world))
    if out_dir is not None:
        target = Path(out_dir)
        done = lambda b: all(_png_path(target, s).is_file() for s in all_batches[b])  # noqa: E731
    else:
        target = Path(str(npz) + ".parts")
        done = lambda b: (target / f"batch-{b:06d}.npy").is_file()  # noqa: E731
    if target.is_symlink():
        raise OutputPathError(
            f"{target} is a symbolic link; refusing to write through it. "
            "Remove it or choose another output"
        )
    stamp = {"fingerprint": model_key(G), "resolution": G.resolution}
    if npz is not None:
        stamp["batch_size"] = batch_size  # the parts follow the batch boundaries
    _check_resume(target, stamp)
    target.mkdir(parents=True, exist_ok=True)
    if dist.is_main:
        # Say at once whose samples these are, so an interrupted run is recognised too:
        # a folder's manifest (rewritten at the end), the parts' stamp (removed with them).
        name = "manifest.json" if out_dir is not None else STAMP
        with atomic_path(target / name) as tmp:
            tmp.write_text(
                json.dumps({"model": model_name, **stamp, "seeds": seeds}, indent=1) + "\n"
            )
    dist.barrier()
    todo = [b for b in mine if not done(b)]
    skipped = len(mine) - len(todo)
    show = (len(todo) > 1 if progress is None else progress) and dist.is_main
    with tqdm(
        total=sum(len(all_batches[b]) for b in todo),
        unit="img",
        disable=not show,
        desc="sampling" + (f" (rank 0 of {dist.world})" if dist.enabled else ""),
    ) as bar:
        for b in todo:
            images = generate(G, all_batches[b], batch_size=batch_size, progress=False)
            if out_dir is not None:
                for seed, img in zip(all_batches[b], images, strict=True):
                    with atomic_path(_png_path(target, seed)) as tmp:
                        Image.fromarray(img).save(tmp, format="PNG")
            else:
                with atomic_path(target / f"batch-{b:06d}.npy") as tmp, open(tmp, "wb") as f:
                    np.save(f, images)
            bar.update(len(all_batches[b]))
    skipped = int(dist.all_reduce_sum(torch.tensor([float(skipped)], dtype=torch.float64))[0])
    dist.barrier()
    summary = {
        "model": model_name,
        "fingerprint": model_key(G),
        "samples": len(seeds),
        "first": seeds[0] if seeds else None,
        "last": seeds[-1] if seeds else None,
        "resolution": G.resolution,
        "batch_size": batch_size,
        "resumed_batches": skipped,
    }
    if dist.is_main:
        if out_dir is not None:
            manifest = {k: v for k, v in summary.items() if k != "resumed_batches"}
            manifest["seeds"] = seeds
            with atomic_path(target / "manifest.json") as tmp:
                tmp.write_text(json.dumps(manifest, indent=1) + "\n")
        else:
            assert npz is not None  # exactly one of out_dir and npz is given
            parts = [np.load(target / f"batch-{b:06d}.npy") for b in range(len(all_batches))]
            images = (
                np.concatenate(parts)
                if parts
                else np.zeros((0, G.resolution, G.resolution, 3), np.uint8)
            )
            save_npz_deterministic(npz, {"images": images, "seeds": np.asarray(seeds, np.int64)})
            shutil.rmtree(target)
    dist.barrier()
    return summary
