"""Bulk sampling resumes only what the same model rendered; no writing through links; a
SIGTERM leaves no temporary file."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rewrite.sampling.bulk import bulk_sample
from rewrite.utils.errors import OutputPathError

from ..conftest import ROOT, make_tiny_dcgan


def test_a_folder_of_another_models_samples_is_not_resumed(tmp_path):
    first, second = make_tiny_dcgan(seed=0), make_tiny_dcgan(seed=1)
    out = tmp_path / "s"
    bulk_sample(first, range(4), out_dir=out, batch_size=2, progress=False)
    assert json.loads((out / "manifest.json").read_text())["fingerprint"].startswith(
        first.fingerprint())
    with pytest.raises(OutputPathError, match="already holds samples made with fingerprint"):
        bulk_sample(second, range(8), out_dir=out, batch_size=2, progress=False)
    again = bulk_sample(first, range(8), out_dir=out, batch_size=2, progress=False)
    assert again["resumed_batches"] == 2


def test_npz_parts_of_another_batching_are_not_resumed(tmp_path):
    G = make_tiny_dcgan()
    parts = Path(str(tmp_path / "x.npz") + ".parts")
    parts.mkdir()
    (parts / ".rewrite-samples.json").write_text(json.dumps(
        {"fingerprint": G.fingerprint(), "resolution": G.resolution, "batch_size": 3}))
    with pytest.raises(OutputPathError, match="batch_size 3"):
        bulk_sample(G, range(4), npz=tmp_path / "x.npz", batch_size=2, progress=False)


def test_no_writing_through_a_parts_link(tmp_path):
    G = make_tiny_dcgan()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, str(tmp_path / "x.npz") + ".parts")
    with pytest.raises(OutputPathError, match="symbolic link"):
        bulk_sample(G, range(4), npz=tmp_path / "x.npz", batch_size=2, progress=False)
    assert list(elsewhere.iterdir()) == []


@pytest.mark.slow
def test_sigterm_leaves_no_temporary_file(tmp_path):
    """A long bulk run stopped with SIGTERM exits non-zero and leaves no ``.tmp`` file."""
    G = make_tiny_dcgan()
    G.save(tmp_path / "tiny.pt")
    out = tmp_path / "s"
    proc = subprocess.Popen([sys.executable, "-m", "rewrite", "sample", str(tmp_path / "tiny.pt"),
                             "--seeds", "0-199999", "--batch-size", "4", "--out-dir", str(out)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(out.glob("*.png"))) < 20:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    # 143 = 128 + SIGTERM: the handler turned the signal into a normal exit, which runs the
    # clean-up of every open atomic write (a bare SIGTERM would end with -15, no clean-up).
    assert proc.returncode == 143, proc.stderr.read()
    assert list(out.glob(".*.tmp")) == [] and len(list(out.glob("*.png"))) >= 20
