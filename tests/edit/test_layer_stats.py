"""Layer statistics: correctness against a direct computation, caching, invalidation."""

import pytest
import torch

import rewrite.edit.layer_stats as statistics
from rewrite.edit.layer_stats import LayerStats, layer_stats, stats_cache_path
from rewrite.utils.cache import layer_key

from ..conftest import make_tiny_dcgan


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REWRITE_CACHE", str(tmp_path))
    return tmp_path


def test_stats_match_a_direct_computation(cache):
    G = make_tiny_dcgan()
    s = layer_stats(G, "main.3", n=10, seed=4, batch_size=3, progress=False)
    with torch.no_grad():
        split = G.split(G.latents(range(10), seed=4), "main.3")
    k = split.keys.permute(0, 2, 3, 1).reshape(-1, split.keys.shape[1]).double()
    assert s.keys.count == k.shape[0] and s.n_samples == 10
    assert torch.allclose(s.keys.moment(), k.T @ k / len(k), rtol=1e-5, atol=1e-7)
    assert torch.allclose(s.values.rms(), split.values.double().pow(2).mean((0, 2, 3)).sqrt(),
                          rtol=1e-5)


def test_second_run_reads_the_cache(cache, monkeypatch):
    G = make_tiny_dcgan()
    first = layer_stats(G, "main.6", n=8, progress=False)
    path = stats_cache_path(layer_key(G, "main.6"), "main.6", 8, 0)
    assert path.is_file()

    def boom(*a, **k):
        raise AssertionError("recomputed instead of reading the cache")

    monkeypatch.setattr(statistics, "accumulate_layer_stats", boom)
    again = layer_stats(G, "main.6", n=8, progress=False)
    assert torch.equal(again.keys.moment(), first.keys.moment())
    # A different N, seed or layer is a different entry.
    with pytest.raises(AssertionError, match="recomputed"):
        layer_stats(G, "main.6", n=9, progress=False)


def test_changed_model_never_reuses_stale_stats(cache):
    G = make_tiny_dcgan()
    first = layer_stats(G, "main.6", n=8, progress=False)
    with torch.no_grad():
        G.main[0].weight.mul_(1.5)                       # upstream change: keys differ
    second = layer_stats(G, "main.6", n=8, progress=False)
    assert second.fingerprint != first.fingerprint
    assert not torch.allclose(second.keys.moment(), first.keys.moment())


def test_damaged_cache_entry_is_recomputed(cache):
    G = make_tiny_dcgan()
    first = layer_stats(G, "main.3", n=5, progress=False)
    path = stats_cache_path(layer_key(G, "main.3"), "main.3", 5, 0)
    path.write_bytes(b"garbage")
    again = layer_stats(G, "main.3", n=5, progress=False)
    assert torch.equal(again.keys.moment(), first.keys.moment())
    assert isinstance(LayerStats.load(path), LayerStats)


def test_merging_shards_equals_one_pass(cache):
    G = make_tiny_dcgan()
    whole = statistics.accumulate_layer_stats(G, "main.3", range(12), progress=False)
    a = statistics.accumulate_layer_stats(G, "main.3", range(0, 5), progress=False)
    b = statistics.accumulate_layer_stats(G, "main.3", range(5, 12), progress=False)
    a.merge(b)
    assert a.n_samples == 12
    # Batches differ between the two runs, and each batch's sums are float32.
    assert torch.allclose(a.keys.moment(), whole.keys.moment(), rtol=1e-6, atol=1e-9)
    assert torch.allclose(a.values.rms(), whole.values.rms(), rtol=1e-6)


def test_statistics_survive_edits_of_the_same_and_later_layers(cache, monkeypatch):
    """The keys of a layer depend only on the weights before it: an edit of the layer
    itself or of a later one reuses the cached entry, an edit of an earlier one does not."""
    G = make_tiny_dcgan()
    first = layer_stats(G, "main.6", n=8, progress=False)
    calls = []
    real = statistics.accumulate_layer_stats
    monkeypatch.setattr(statistics, "accumulate_layer_stats",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    with torch.no_grad():
        G.main[6].weight.add_(0.01)                      # the layer itself
        G.main[9].weight.mul_(0.5)                       # a later layer
    again = layer_stats(G, "main.6", n=8, progress=False)
    assert calls == [] and again.source == "read from cache"
    assert torch.equal(again.keys.moment(), first.keys.moment())
    with torch.no_grad():
        G.main[3].weight.add_(0.01)                      # an earlier layer: keys change
    changed = layer_stats(G, "main.6", n=8, progress=False)
    assert calls == [1] and changed.source == "computed"
    assert not torch.allclose(changed.keys.moment(), first.keys.moment())


def test_upstream_is_what_the_keys_depend_on(face_model):
    """Found by autograd: everything before the layer, never the layer's own weight."""
    up = face_model.upstream("main.6")
    assert "main.3.weight" in up and "main.4.running_var" in up
    assert not any(n.startswith(("main.6.", "main.7.", "main.9.")) for n in up)
    assert face_model.upstream("main.0") == ()


def test_fingerprint_is_rehashed_after_an_in_place_change():
    G = make_tiny_dcgan()
    before, key = G.fingerprint(), G.key_fingerprint("main.6")
    assert G.fingerprint() == before                     # memoised, same answer
    saved = G.main[6].weight.detach().clone()
    with torch.no_grad():
        G.main[6].weight[0, 0, 0, 0] += 1.0
    assert G.fingerprint() != before and G.key_fingerprint("main.6") == key
    with torch.no_grad():
        G.main[6].weight.copy_(saved)
    assert G.fingerprint() == before


def test_callback_reports_progress_and_can_stop_the_work(cache):
    """``callback(done, total)`` after each batch; what it raises stops the work and
    nothing is cached; without it the result is the same."""
    G = make_tiny_dcgan()
    seen = []
    stats = layer_stats(G, "main.6", n=25, batch_size=10, progress=False,
                        callback=lambda done, total: seen.append((done, total)))
    assert seen == [(10, 25), (20, 25), (25, 25)]
    plain = statistics.accumulate_layer_stats(G, "main.6", range(25), batch_size=10,
                                              progress=False)
    assert torch.equal(stats.keys.moment(), plain.keys.moment())

    class Stop(Exception):
        pass

    def stop(done, total):
        if done >= 10:
            raise Stop

    with pytest.raises(Stop):
        layer_stats(G, "main.6", n=30, batch_size=10, progress=False, callback=stop)
    assert not stats_cache_path(layer_key(G, "main.6"), "main.6", 30, 0).exists()
    assert layer_stats(G, "main.6", n=25, batch_size=10, progress=False,
                       callback=lambda *a: seen.append(a)).source == "read from cache"
    assert len(seen) == 3                       # not called on a cache hit
