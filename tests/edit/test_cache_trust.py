"""Cache entries are verified before use (layer, sizes, finiteness, checksum); what is
refused is said and recomputed."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from rewrite.edit.layer_stats import layer_stats, stats_cache_path
from rewrite.sampling.cache import cached_generate
from rewrite.utils.cache import layer_key

from ..conftest import make_tiny_dcgan


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REWRITE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_statistics_of_another_layer_are_refused(cache, capsys):
    G = make_tiny_dcgan()
    a, b = [L.name for L in G.layers()][1:3]
    first = layer_stats(G, a, n=20, progress=False)
    assert first.source == "computed"
    assert layer_stats(G, a, n=20, progress=False).source == "read from cache"
    other = layer_stats(G, b, n=20, progress=False)
    # Copy the other layer's file over this layer's entry.
    stats_cache_path(layer_key(G, a), a, 20, 0).write_bytes(
        stats_cache_path(layer_key(G, b), b, 20, 0).read_bytes())
    again = layer_stats(G, a, n=20, progress=False)
    assert again.source.startswith("recomputed") and f"it holds {b}" in again.source
    assert "were refused" in capsys.readouterr().err
    assert torch.equal(again.keys.moment(), first.keys.moment())
    assert other.layer == b


def test_damaged_bytes_are_caught_by_the_checksum(cache):
    G = make_tiny_dcgan()
    layer = G.layers()[1].name
    layer_stats(G, layer, n=20, progress=False)
    path = stats_cache_path(layer_key(G, layer), layer, 20, 0)
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0xFF                            # flip bits inside the last tensor
    path.write_bytes(bytes(raw))
    again = layer_stats(G, layer, n=20, progress=False)
    assert again.source.startswith("recomputed") and "checksum" in again.source


def test_cached_samples_of_the_wrong_size_or_type_are_rendered_again(cache, capsys):
    G = make_tiny_dcgan()
    first = cached_generate(G, range(4), progress=False)
    entries = list((cache / "samples").rglob("*.npy"))
    assert len(entries) == 1
    np.save(entries[0], first.astype(np.float32))
    again = cached_generate(G, range(4), progress=False)
    assert again.dtype == np.uint8 and np.array_equal(again, first)
    np.save(entries[0], first[:, :8])
    assert np.array_equal(cached_generate(G, range(4), progress=False), first)
    assert capsys.readouterr().err.count("were refused") == 2


def test_stats_command_says_what_it_recomputed(cache, tmp_path):
    from rewrite.cli import main
    G = make_tiny_dcgan()
    G.save(tmp_path / "tiny.pt")
    layer = G.layers()[1].name
    runner = CliRunner()
    args = ["stats", str(tmp_path / "tiny.pt"), "--layer", layer, "-n", "30"]
    assert "computed in" in runner.invoke(main, args).output
    assert "read from cache" in runner.invoke(main, args).output
    path = next((cache / "stats").rglob(f"{layer}-n30-seed0.safetensors"))
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0xFF
    path.write_bytes(bytes(raw))
    out = runner.invoke(main, args).output
    assert "recomputed" in out and "read from cache" not in out
