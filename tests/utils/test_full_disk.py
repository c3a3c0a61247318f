"""Issue 24 item 3: a full disk is a clear error, whatever the writer raises; no partial
file is left and an older file at the path is kept."""

import collections

import pytest

from rewrite.utils import fileio
from rewrite.utils.errors import OutputPathError, RewriteError

Usage = collections.namedtuple("Usage", "total used free")


def _writer_that_fails(tmp, error):
    tmp.write_bytes(b"partial")
    raise error


@pytest.mark.parametrize("error", [RuntimeError("[enforce fail at inline_container.cc] "
                                                "unexpected pos 2624 vs 2518"),
                                   ValueError("I/O error while writing")])
def test_a_writer_error_on_a_full_disk_is_a_disk_full_error(tmp_path, monkeypatch, error):
    target = tmp_path / "model.pt"
    target.write_bytes(b"older")
    monkeypatch.setattr(fileio.shutil, "disk_usage", lambda p: Usage(10 << 20, 10 << 20, 4096))
    with pytest.raises(OutputPathError, match="disk full while writing .*model.pt"):
        with fileio.atomic_path(target) as tmp:
            _writer_that_fails(tmp, error)
    assert target.read_bytes() == b"older"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_a_writer_error_with_room_on_the_disk_is_not_called_a_full_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(fileio.shutil, "disk_usage", lambda p: Usage(10 << 30, 0, 10 << 30))
    with pytest.raises(RuntimeError, match="a bug"):
        with fileio.atomic_path(tmp_path / "x.pt") as tmp:
            _writer_that_fails(tmp, RuntimeError("a bug"))
    assert list(tmp_path.iterdir()) == []


def test_a_rewrite_error_inside_the_block_stays_itself_on_a_full_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(fileio.shutil, "disk_usage", lambda p: Usage(10 << 20, 10 << 20, 0))
    with pytest.raises(RewriteError, match="the spec says no"):
        with fileio.atomic_path(tmp_path / "x.json") as tmp:
            _writer_that_fails(tmp, RewriteError("the spec says no"))
    assert list(tmp_path.iterdir()) == []
