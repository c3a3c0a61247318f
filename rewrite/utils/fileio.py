"""Atomic file writes, and the checks every command makes on its outputs before working.

* :func:`atomic_path`: a file appears complete under its name or not at all; a full
  disk or a folder without write permission is reported as such, naming the file;
* :func:`check_outputs`: before any work, refuse an output that is one of the inputs
  (paths resolved, symlinks followed) or is named twice, and one whose folder cannot
  be created or written.

Usage::

    check_outputs({"--out": out, "--delta": delta}, {"SPEC.json": spec_path, "--weights": w})
    with atomic_path(out) as tmp:
        torch.save(obj, tmp)
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

from .errors import OutputPathError, RewriteError

PathLike = str | os.PathLike


def _resolved(path: PathLike) -> Path:
    return Path(path).expanduser().resolve()


def _writable_folder(folder: Path) -> str | None:
    """Why ``folder`` (which may not exist yet) cannot receive files, or None."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            return f"{folder} cannot be created"
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    return None


def check_outputs(
    outputs: Mapping[str, PathLike | None],
    inputs: Mapping[str, PathLike | None] | None = None,
    folders: tuple[str, ...] = (),
) -> None:
    """Refuse outputs that would lose data or cannot be written, before any work is done.

    Args:
        outputs: option name -> output path (None: not asked for). Names in ``folders``
            are output folders; the others are files.
        inputs: option name -> input path (None: not given).

    Raises:
        OutputPathError: naming the option and the path, for an output that is also an
            input (after resolving symlinks), an output named twice, an output file that
            is an existing folder, or a folder that cannot be created or written.
    """
    ins = {name: _resolved(p) for name, p in (inputs or {}).items() if p is not None}
    seen: dict[Path, str] = {}
    for name, raw in outputs.items():
        if raw is None:
            continue
        path = _resolved(raw)
        for in_name, in_path in ins.items():
            if path == in_path:
                raise OutputPathError(
                    f"{name} {raw} is also the input {in_name}; writing it "
                    "would replace that input. Choose another output path"
                )
        if path in seen:
            raise OutputPathError(
                f"{name} and {seen[path]} name the same file {raw}; one would "
                "overwrite the other. Give them different paths"
            )
        seen[path] = name
        if name not in folders and path.is_dir():
            raise OutputPathError(f"{name} {raw} is a folder; give a file name")
        reason = _writable_folder(path if name in folders else path.parent)
        if reason:
            raise OutputPathError(f"cannot write {name} {raw}: {reason}")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Free space below which a failed write is reported as a full disk.
NEARLY_FULL_BYTES = 1 << 20


def _disk_full(path: Path) -> OutputPathError:
    """The error for a write to ``path`` that ran out of space."""
    return OutputPathError(
        f"disk full while writing {path}; nothing was written. Free some space and run again"
    )


def _nearly_full(folder: Path) -> bool:
    """Whether the file system of ``folder`` has less than :data:`NEARLY_FULL_BYTES` free."""
    try:
        return shutil.disk_usage(folder).free < NEARLY_FULL_BYTES
    except OSError:
        return False


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary path next to ``path``; rename it onto ``path`` on success.

    If the body raises, the temporary file is removed and ``path`` is untouched.
    Parent folders are created.
    """
    path = Path(path)
    reason = _writable_folder(path.parent)
    if reason:
        raise OutputPathError(f"cannot write {path}: {reason}")
    path.parent.mkdir(parents=True, exist_ok=True)
    # The writer creates the file itself, so it gets the usual permissions (umask).
    tmp_path = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        yield tmp_path
        # Some writers create files readable by the owner only; use the usual mode.
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except OSError as e:
        tmp_path.unlink(missing_ok=True)
        if e.errno == errno.ENOSPC:
            raise _disk_full(path) from None
        if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise OutputPathError(f"cannot write {path}: {e.strerror}") from None
        raise
    except RewriteError:
        tmp_path.unlink(missing_ok=True)
        raise
    except Exception:
        # Some writers report a full disk as their own error (torch's zip writer: "unexpected
        # pos ..."; safetensors: an I/O error of its own). Look at the disk before the partial
        # file is removed and its space comes back.
        full = _nearly_full(tmp_path.parent)
        tmp_path.unlink(missing_ok=True)
        if full:
            raise _disk_full(path) from None
        raise
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
