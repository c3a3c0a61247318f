"""Outputs never replace inputs, are checked before any work, and fail with a clear message
(in-process through click's runner)."""

import errno
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from rewrite.cli import main
from rewrite.utils.errors import OutputPathError
from rewrite.utils.fileio import atomic_path, check_outputs

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "examples" / "add-sunglasses.json"


def invoke(*args, cwd: Path):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, list(args))
    finally:
        os.chdir(old)


@pytest.fixture
def work(tmp_path):
    shutil.copy(SPEC, tmp_path / "s.json")
    (tmp_path / "old.json").write_text('{"object": []}')
    (tmp_path / "m.tar").write_bytes(b"weights")
    os.symlink(tmp_path / "s.json", tmp_path / "link.json")
    (tmp_path / "afile").write_text("x")
    return tmp_path


@pytest.mark.parametrize("args, message", [
    (["edit", "s.json", "--out", "s.json"], "--out s.json is also the input SPEC.json"),
    (["edit", "s.json", "--out", "link.json"], "--out link.json is also the input SPEC.json"),
    (["edit", "s.json", "--out", "x.pt", "--delta", "x.pt"], "name the same file"),
    (["edit", "s.json", "--weights", "m.tar", "--out", "m.tar"], "is also the input --weights"),
    (["import-edit", "old.json", "--layer", "main.6", "--out", "old.json"],
     "is also the input OLD.json"),
    (["apply", "dcgan-digiface64", "s.json", "--out", "s.json"], "is also the input DELTA"),
    (["edit", "s.json", "--out", "afile/x.pt"], "afile is a file, not a folder"),
    (["compare", "dcgan-digiface64", "s.json", "--out", "afile/c.png"], "not a folder"),
    pytest.param(["eval", "s.json", "--out", "afile/e"], "not a folder",
                 marks=pytest.mark.slow),                   # loads the real model first
])
def test_outputs_that_would_lose_data_are_refused_before_work(work, args, message):
    before = {p.name: p.read_bytes() for p in work.iterdir() if p.is_file()}
    res = invoke(*args, cwd=work)
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output
    assert {p.name: p.read_bytes() for p in work.iterdir() if p.is_file()} == before


def test_check_outputs_resolves_paths(tmp_path):
    (tmp_path / "a").mkdir()
    check_outputs({"--out": tmp_path / "a" / "x.pt"}, {"SPEC": tmp_path / "s.json"})
    with pytest.raises(OutputPathError, match="is also the input SPEC"):
        check_outputs({"--out": tmp_path / "a" / ".." / "s.json"}, {"SPEC": tmp_path / "s.json"})
    with pytest.raises(OutputPathError, match="is a folder"):
        check_outputs({"--out": tmp_path / "a"})
    check_outputs({"--out": tmp_path / "a"}, folders=("--out",))      # a folder output is fine


def test_a_full_disk_is_named_and_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "x.bin"

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OutputPathError, match="disk full while writing"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"data")
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_cache_warns_and_keeps_the_result(tmp_path, monkeypatch, tiny_dcgan, capsys):
    from rewrite.edit.layer_stats import layer_stats
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("x")
    monkeypatch.setenv("REWRITE_CACHE", str(blocker))
    layer = tiny_dcgan.layers()[1].name
    stats = layer_stats(tiny_dcgan, layer, n=20, progress=False)
    assert stats.n_samples == 20
    assert "cannot be written" in capsys.readouterr().err and blocker.read_text() == "x"


@pytest.mark.parametrize("below", ["", "sub/dir"])
def test_a_cache_that_is_a_file_is_named_with_the_fix_when_a_model_must_be_fetched(
        tmp_path, monkeypatch, below):
    """REWRITE_CACHE naming a regular file (or a path below one) made fetching the zoo model
    end in a NotADirectoryError traceback; it is a CacheError naming the variable."""
    import subprocess

    from rewrite.models import DEFAULT_MODEL, ZOO, fetch
    from rewrite.utils.errors import CacheError

    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("x")
    monkeypatch.setenv("REWRITE_CACHE", str(blocker / below) if below else str(blocker))
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("nothing is downloaded"))
    with pytest.raises(CacheError) as e:
        fetch(ZOO[DEFAULT_MODEL], quiet=True)
    text = str(e.value)
    assert f"{blocker} is a file, not a folder" in text
    assert "REWRITE_CACHE is set to" in text and "point it at a writable folder" in text
    assert "--weights" in text
    assert blocker.read_text() == "x"


def test_a_cache_that_is_a_file_is_a_clean_cli_error(tmp_path, monkeypatch):
    import subprocess

    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("x")
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("nothing is downloaded"))
    res = CliRunner().invoke(main, ["sample", "--out", str(tmp_path / "g.png")],
                             env={"REWRITE_CACHE": str(blocker)})
    assert res.exit_code == 2, res.output
    assert "REWRITE_CACHE is set to" in res.output and "Traceback" not in res.output
    wheel = tmp_path / "gan_face_generate-1.1.1-py3-none-any.whl"      # --weights WHEEL unpacks
    wheel.write_bytes(b"PK")                                            # into the cache too
    res = CliRunner().invoke(main, ["layers", "--weights", str(wheel)],
                             env={"REWRITE_CACHE": str(blocker)})
    assert res.exit_code == 2 and "REWRITE_CACHE is set to" in res.output, res.output
    assert blocker.read_text() == "x" and not (tmp_path / "g.png").exists()
