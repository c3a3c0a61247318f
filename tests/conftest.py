"""Shared test fixtures: the reference files, the real face model, a tiny random DCGAN,
and two ways to run the command line (in this process, or as a real subprocess)."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import traceback
from pathlib import Path

import pytest
import torch

from rewrite.models import load_model
from rewrite.models.dcgan import DCGANConfig, DCGANGenerator

ROOT = Path(__file__).resolve().parents[1]

if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    # Under pytest-xdist (`make test`) each worker takes its share of the cores, at least one
    # thread: torch's default of one thread per core in every worker oversubscribes them, and
    # small tensor work then slows down many times over.
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch.set_num_threads(max(1, (_cores or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))


#: The two longest test modules (about a minute each), run first: `make test` hands whole
#: files to its pytest-xdist workers (``--dist loadfile --no-loadscope-reorder``, so a module
#: fixture is computed once and this order holds), and starting these two at once, on two
#: workers, keeps either from being the last one running.
RUN_FIRST = ["tests/utils/test_distributed.py", "tests/metrics/test_evaluate.py"]


def pytest_collection_modifyitems(config, items):
    """The fast lane (``pytest -m "not slow"``) runs without the real pretrained model:
    every test that uses the ``face_model`` fixture is marked slow here. Tests that load
    the model another way (a module fixture, a zoo name on the command line) carry
    ``@pytest.mark.slow`` themselves, as do the ones that take more than about 2 s.
    Whole modules of RUN_FIRST move to the front (each module's tests keep their order)."""
    for item in items:
        if "face_model" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
    first = {name: i for i, name in enumerate(RUN_FIRST)}
    items.sort(key=lambda item: first.get(item.nodeid.split("::", 1)[0], len(first)))


def _fixture_candidates() -> list[Path]:
    """Where the shared reference fixtures may be: $REWRITE_FIXTURES, ../shared/fixtures
    next to this checkout, or next to the checkout this one was cloned from."""
    found = []
    if os.environ.get("REWRITE_FIXTURES"):
        found.append(Path(os.environ["REWRITE_FIXTURES"]))
    found.append(ROOT.parent / "shared" / "fixtures")
    try:
        origin = subprocess.run(["git", "-C", str(ROOT), "config", "remote.origin.url"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        origin = ""
    if origin and Path(origin).is_dir():
        found.append(Path(origin).resolve().parent / "shared" / "fixtures")
    return found


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The folder holding the shared ``*_reference.npz`` files."""
    for cand in _fixture_candidates():
        if (cand / "dcgan_digiface64_reference.npz").is_file():
            return cand
    pytest.fail("reference fixtures not found; looked in "
                + ", ".join(map(str, _fixture_candidates()))
                + ". Set REWRITE_FIXTURES to the shared/fixtures folder.")


@pytest.fixture(scope="session")
def face_model():
    """The real pretrained dcgan-digiface64 (downloaded and cached by the project's own code)."""
    return load_model("dcgan-digiface64")


def rewrite_delta_file(good: Path, change, out: Path) -> Path:
    """The delta file ``good`` (written by rewrite) re-written to ``out`` with safetensors
    itself after ``change(entries, tensors)`` edited its edit list (the decoded ``edits``
    header) and its tensors in place: a damaged file rewrite must refuse. Returns ``out``."""
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(good), "pt") as fh:
        meta = fh.metadata()
    tensors = load_file(str(good))
    entries = json.loads(meta["edits"])
    change(entries, tensors)
    meta["edits"] = json.dumps(entries)
    save_file(tensors, str(out), metadata=meta)
    return out


def make_tiny_dcgan(seed: int = 0, nz: int = 8, channels=(16, 8, 4, 3)) -> DCGANGenerator:
    """A small DCGAN with random weights and random BatchNorm statistics (32x32 output)."""
    gen = torch.Generator().manual_seed(seed)
    G = DCGANGenerator(DCGANConfig(nz=nz, channels=tuple(channels)))
    with torch.no_grad():
        for name, t in G.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=gen) * 0.2)
    return G.eval()


@pytest.fixture
def tiny_dcgan() -> DCGANGenerator:
    return make_tiny_dcgan()


@dataclasses.dataclass
class CliResult:
    """What a finished ``rewrite`` command left: the fields of ``subprocess.CompletedProcess``
    that the tests read."""

    returncode: int
    stdout: str
    stderr: str


def invoke(*args: str, env: dict | None = None) -> CliResult:
    """Run ``rewrite ARGS`` in this process through click's runner, as :func:`run_cli`
    would in a subprocess (without the seconds of interpreter and torch start-up).

    Like the subprocess: the working directory is ROOT, ``env`` is laid over
    ``os.environ`` for the call, ``OMP_NUM_THREADS`` in ``env`` sets torch's thread count
    for the call, and an uncaught exception is printed as a traceback on stderr with exit
    status 1 (a ``sys.exit(n)`` gives ``n``). The SIGTERM handler the command installs for
    its own process is put back afterwards.
    """
    from click.testing import CliRunner

    from rewrite.cli import main

    env = dict(env or {})
    cwd, threads, on_term = os.getcwd(), torch.get_num_threads(), signal.getsignal(signal.SIGTERM)
    os.chdir(ROOT)
    if env.get("OMP_NUM_THREADS"):
        torch.set_num_threads(int(env["OMP_NUM_THREADS"]))
    try:
        res = CliRunner().invoke(main, list(args), env=env, prog_name="rewrite")
    finally:
        os.chdir(cwd)
        torch.set_num_threads(threads)
        if on_term is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, on_term)
    stderr, code = res.stderr, res.exit_code
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        stderr += "".join(traceback.format_exception(*res.exc_info))
        code = 1
    return CliResult(code, res.stdout, stderr)


def run_cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m rewrite ARGS`` in a subprocess; returns the completed process.
    Seconds slower than :func:`invoke` (a fresh interpreter imports torch): only for
    what needs a real process."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "rewrite", *args], capture_output=True,
                          text=True, env=full_env, timeout=timeout, cwd=ROOT)
