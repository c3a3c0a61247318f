"""Fuzz of the statistics cache reader (``LayerStats.load`` and ``layer_stats``, which
reads ``<cache>/stats/...safetensors``): damaged metadata, replaced tensors (with their
checksum rewritten to match, so the checks behind it run), safetensors header fields and
raw bytes give a CacheError or well-formed statistics; ``layer_stats`` never fails on a
damaged entry: it refuses it and computes the statistics again. Also the rendered-samples
cache (``cached_generate``, ``.npy`` files)."""

import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import event, example, given, strategies as st
from safetensors.torch import load, save_file

from rewrite.edit.layer_stats import LayerStats, _digest, accumulate_layer_stats, layer_stats, \
    stats_cache_path
from rewrite.sampling.cache import cached_generate
from rewrite.utils.cache import cache_dir, layer_key, model_key, read_cached_array
from rewrite.utils.errors import CacheError

from ..conftest import make_tiny_dcgan
from ._contract import (digest, fuzz, header_mutation, json_values, mutated_bytes, reader_contract,
                        split_safetensors, join_safetensors, write_input)

G = make_tiny_dcgan()
LAYER, N = "main.3", 12                   # 16 key channels, 8 units
FP = layer_key(G, LAYER)
FRESH = accumulate_layer_stats(G, LAYER, range(N), 0, fingerprint=FP)


def _file_of(stats: LayerStats) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stats.safetensors"
        stats.save(path)
        return path.read_bytes()


BASE = _file_of(FRESH)
HEADER, BODY = split_safetensors(BASE)
META = HEADER["__metadata__"]
TENSORS = load(BASE)


def _same(a: LayerStats, b: LayerStats) -> bool:
    sa, sb = (dict(**{f"k.{k}": v for k, v in s.keys.state_dict().items()},
                   **{f"v.{k}": v for k, v in s.values.state_dict().items()}) for s in (a, b))
    return ((a.layer, a.n_samples, a.seed, a.fingerprint)
            == (b.layer, b.n_samples, b.seed, b.fingerprint)
            and sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa))


def _well_formed(s: LayerStats) -> None:
    """What the solvers rely on in statistics that loaded."""
    assert isinstance(s.layer, str) and isinstance(s.fingerprint, str)
    assert type(s.n_samples) is int and type(s.seed) is int
    d, c = s.keys.dim, s.values.channels
    assert s.keys.sum.shape == (d,) and s.keys.sum_outer.shape == (d, d)
    assert s.values.sum.shape == (c,) and s.values.sum_sq.shape == (c,)
    for t in (s.keys.sum, s.keys.sum_outer, s.values.sum, s.values.sum_sq):
        assert t.dtype == torch.float64
    assert type(s.keys.count) is int and type(s.values.count) is int


def _check(path: Path) -> None:
    stats = reader_contract(LayerStats.load, path)
    if stats is None:
        return
    _well_formed(stats)
    why = stats.problems(LAYER, N, 0, FP, 16, 8)      # never raises; empty = trusted
    event(f"problems: {'refused' if why else 'trusted'}")
    if not why:
        assert stats.keys.count >= 1 and stats.values.count >= 1
        stats.keys.moment(), stats.values.rms()


def _with_checksum(tensors: dict, meta: dict | None = None) -> bytes:
    """A stats file of ``tensors`` whose checksum matches them (the damage is then one that
    only the checks behind the checksum can see)."""
    meta = dict(META if meta is None else meta)
    if "sha256" in meta:
        meta["sha256"] = _digest({k: v.contiguous() for k, v in tensors.items()})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.safetensors"
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=meta)
        return path.read_bytes()


def test_the_base_file_is_trusted(tmp_path):
    path = tmp_path / "s.safetensors"
    path.write_bytes(BASE)
    stats = LayerStats.load(path)
    assert _same(stats, FRESH) and not stats.problems(LAYER, N, 0, FP, 16, 8)


_meta_values = st.one_of(
    st.sampled_from(["", "0", "-1", "12", "1e3", "12.0", " 12", "NaN", "9" * 5000, "main.3",
                     "rewrite.layer_stats.v2", "\ud800"]),
    st.text(max_size=10), json_values.map(json.dumps))


@fuzz(80)
@given(key=st.sampled_from(["layer", "n_samples", "seed", "fingerprint", "format", "sha256",
                            "extra"]), value=st.one_of(st.none(), _meta_values))
@example(key="n_samples", value="9" * 5000)
def test_mutated_metadata(key, value, tmp_path_factory):
    meta = dict(META)
    if value is None:
        meta.pop(key, None)
    else:
        meta[key] = value
    _check(write_input(tmp_path_factory, join_safetensors({**HEADER, "__metadata__": meta},
                                                          BODY)))


@st.composite
def _tensor(draw):
    shape = draw(st.lists(st.sampled_from([0, 1, 2, 8, 16, 17]), max_size=3))
    dtype = draw(st.sampled_from([torch.float64, torch.float32, torch.float16, torch.int64,
                                  torch.int32, torch.uint8, torch.bool]))
    fill = draw(st.sampled_from([0, 1, -1, 1e300, float("nan"), float("inf"), 2 ** 62]))
    return torch.full(shape, fill, dtype=torch.float64).to(dtype) if dtype.is_floating_point \
        else torch.full(shape, int(fill) if abs(fill) < 2 ** 63 and fill == fill else 0,
                        dtype=torch.int64).to(dtype)


@fuzz(120)
@given(changes=st.dictionaries(st.sampled_from(sorted(TENSORS) + ["keys.extra", "values"]),
                               st.one_of(st.none(), _tensor()), min_size=1, max_size=3),
       checksum=st.booleans())
@example(changes={"keys.count": torch.tensor(0)}, checksum=True)
@example(changes={"values.sum_sq": torch.full((8,), -1.0, dtype=torch.float64)}, checksum=True)
@example(changes={"keys.sum_outer": torch.zeros(16, 17, dtype=torch.float64)}, checksum=True)
def test_replaced_tensors(changes, checksum, tmp_path_factory):
    tensors = dict(TENSORS)
    for name, t in changes.items():
        if t is None:
            tensors.pop(name, None)
        else:
            tensors[name] = t
    meta = dict(META) if checksum else {k: v for k, v in META.items() if k != "sha256"}
    _check(write_input(tmp_path_factory, _with_checksum(tensors, meta)))


@fuzz(80)
@given(header=header_mutation(HEADER))
def test_mutated_header_fields(header, tmp_path_factory):
    _check(write_input(tmp_path_factory, join_safetensors(header, BODY)))


@fuzz(80)
@given(data=mutated_bytes(BASE))
def test_damaged_bytes(data, tmp_path_factory):
    _check(write_input(tmp_path_factory, data))


# -- through layer_stats: a damaged entry is refused and computed again -------------------

@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REWRITE_CACHE", str(folder))
        yield folder


@fuzz(40)
@given(data=st.one_of(mutated_bytes(BASE), header_mutation(HEADER).map(
    lambda h: join_safetensors(h, BODY))))
def test_layer_stats_recomputes_a_damaged_entry(cache, data, capsys):
    path = stats_cache_path(FP, LAYER, N, 0)
    assert cache_dir() == cache
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    got = layer_stats(G, LAYER, n=N, progress=False)
    _well_formed(got)
    event(got.source.split(":")[0])
    if got.source != "read from cache":
        assert _same(got, FRESH) and "were refused" in capsys.readouterr().err
    assert _same(LayerStats.load(path), got)                # the entry is good again


# -- the rendered-samples cache -----------------------------------------------------------

SEEDS = [0, 1]
IMAGES = cached_generate(G, SEEDS, cache=False)


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _npy_object(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _npy_declaring(shape, dtype="|u1") -> bytes:
    """An .npy header declaring ``shape`` (e.g. 12 GB), followed by a few bytes."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False,
                                               "shape": shape})
    return buf.getvalue() + bytes(64)


@fuzz(30)
@given(data=st.one_of(
    mutated_bytes(_npy(IMAGES)),
    st.sampled_from([IMAGES.astype(np.float32), IMAGES[:, :8], IMAGES[:1], IMAGES.T.copy(),
                     np.zeros(0, np.uint8), np.array("x"), IMAGES.view(np.int8)]).map(_npy),
    st.sampled_from([b"", b"\x93NUMPY", _npy_declaring((2, 32, 32, 3 * 10 ** 9)),
                     _npy_declaring((2 ** 62, 2)), _npy_declaring((2, 32, 32, 3), "|O"),
                     _npy_declaring((2, 32, 32, 3), "<U100000000")])))
@example(data=b"")
def test_cached_samples_are_rendered_again_when_damaged(cache, data, capsys):
    path = cache_dir() / "samples" / model_key(G)
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.npy"):
        old.unlink()
    cached_generate(G, SEEDS, progress=False)            # writes the entry
    (entry,) = path.glob("*.npy")
    entry.write_bytes(data)
    got = cached_generate(G, SEEDS, progress=False)
    assert got.dtype == np.uint8 and got.shape == IMAGES.shape
    if "were refused" in capsys.readouterr().err:
        event("samples: refused")
        assert np.array_equal(got, IMAGES)
    else:      # accepted: damage inside the pixels of an entry of the right type and size
        event("samples: read")            # is not detected (the .npy holds no checksum)
        assert data[:128] == _npy(IMAGES)[:128]


# -- what the fuzz found ------------------------------------------------------------------

@pytest.mark.parametrize("data, needle", [
    (b"not a safetensors file", "not a readable safetensors file"),
    (_with_checksum({**TENSORS, "keys.sum_outer": torch.zeros(16, 17, dtype=torch.float64)}),
     "its sizes do not agree: keys.sum 16, keys.sum_outer (16, 17)"),
    (_with_checksum({**TENSORS, "keys.count": torch.zeros(3)}),
     "its tensor keys.count is torch.float32 (3,), not 0-axis torch.int64"),
    (join_safetensors({**HEADER, "__metadata__": {**META, "n_samples": "9" * 5000}}, BODY),
     "its metadata 'n_samples' is '9999"),
    (join_safetensors({**HEADER, "__metadata__": {**META, "format": "rewrite.layer_stats.v2"}},
                      BODY), "its format is 'rewrite.layer_stats.v2'"),
])
def test_a_damaged_statistics_file_is_a_cache_error(tmp_path, data, needle):
    """LayerStats.load raised ValueError, SafetensorError or IndexError, or (a sum_outer of
    another size, with a checksum to match) returned statistics the solvers cannot use."""
    path = tmp_path / "s.safetensors"
    path.write_bytes(data)
    with pytest.raises(CacheError, match="cannot be used") as e:
        LayerStats.load(path)
    assert needle in str(e.value) and "Delete it" in str(e.value)


@pytest.mark.parametrize("changes, needle", [
    ({"keys.count": torch.tensor(0)}, "it counts 0 key and 768 value positions"),
    ({"values.sum_sq": torch.full((8,), -1.0, dtype=torch.float64)}, "negative sums of squares"),
])
def test_empty_or_negative_statistics_are_refused(tmp_path, changes, needle):
    """Were trusted: a count of 0 made moment() raise ValueError in the solver."""
    path = tmp_path / "s.safetensors"
    path.write_bytes(_with_checksum({**TENSORS, **changes}))
    assert needle in "; ".join(LayerStats.load(path).problems(LAYER, N, 0, FP, 16, 8))


# -- the Inception features cache (same reader as the samples: read_cached_array) ----------

FEATURES = np.random.default_rng(0).normal(size=(3, 2048))


@fuzz(60)
@given(data=st.one_of(
    mutated_bytes(_npy(FEATURES)),
    st.sampled_from([FEATURES.astype(np.float32), FEATURES[:, :64], FEATURES.T.copy(),
                     np.full_like(FEATURES, np.nan), np.array([FEATURES], dtype=object)
                     ]).map(lambda a: _npy(a) if a.dtype != object else _npy_object(a)),
    st.sampled_from([b"", _npy_declaring((3, 2 ** 60), "<f8"), _npy_declaring((3, 2048), "<f8")])))
def test_cached_features_reader(data, tmp_path_factory):
    path = write_input(tmp_path_factory, data, "features.npy")
    before = digest(path)
    try:
        got = read_cached_array(path, np.float64, FEATURES.shape)
    except ValueError as e:                     # the callers refuse the entry, recompute
        assert str(e)
        event("features: refused")
    else:
        event("features: read")
        assert got.dtype == np.float64 and got.shape == FEATURES.shape
        assert np.isfinite(got).all()
    assert digest(path) == before


def test_a_damaged_features_entry_is_computed_again(cache, monkeypatch, capsys):
    """Was read as found by np.load: an empty file was an EOFError traceback, a file of
    NaN or of another size went into the FID."""
    import rewrite.metrics.inception as inception
    from rewrite.metrics.evaluate import _feature_cache_path, cached_inception_features

    monkeypatch.setattr(inception, "inception_features", lambda net, images, **kw: FEATURES)
    images = IMAGES[:1].repeat(3, 0)
    path = _feature_cache_path("inception", "w0", images)
    for data in (b"", _npy(np.full_like(FEATURES, np.nan)), _npy(FEATURES[:2])):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        assert np.array_equal(cached_inception_features(None, images, "w0"), FEATURES)
        assert "were refused" in capsys.readouterr().err
    assert np.array_equal(cached_inception_features(None, images, "w0"), FEATURES)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("data", [b"", _npy_declaring((2, 32, 32, 3 * 10 ** 9))])
def test_an_empty_or_huge_samples_entry_is_rendered_again(cache, data, capsys):
    """Were an EOFError traceback and a 5.6 TiB allocation (MemoryError)."""
    path = cache_dir() / "samples" / model_key(G)
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.npy"):
        old.unlink()
    cached_generate(G, SEEDS, progress=False)
    (entry,) = path.glob("*.npy")
    entry.write_bytes(data)
    assert np.array_equal(cached_generate(G, SEEDS, progress=False), IMAGES)
    assert "were refused" in capsys.readouterr().err
