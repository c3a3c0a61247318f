"""Issue 24 item 1: NVIDIA network pickles whose declared sizes are hostile. Each one is the
real fixture with one field changed, written in NVIDIA's layout; reading it (what `layers`,
`sample` and `edit` do first) must end in a CheckpointError naming the field, before
anything is allocated from the declared number. The fuzz at the end changes random fields
to random values and holds the reader to the contract: a CheckpointError, or a model that
renders finite images, never another exception, never a changed file."""

import hashlib

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewrite.models import load_model
from rewrite.models.nvidia_pickle import (dumps_nvidia_pickle, loads_nvidia_pickle,
                                          read_nvidia_pickle)
from rewrite.utils.errors import CheckpointError, RewriteError

SG2, SG3 = "stylegan2ada_tiny64.pkl", "stylegan3t_tiny64.pkl"


@pytest.fixture(scope="module")
def read(fixtures_dir):
    """A fresh snapshot of a fixture pickle on each call (the tests change them)."""
    data = {}

    def fresh(name):
        if name not in data:
            path = fixtures_dir / name
            if not path.is_file():
                pytest.skip(f"{path} not found")
            data[name] = path.read_bytes()
        return loads_nvidia_pickle(data[name])
    return fresh


def _set(snap, module, field, value):
    obj = snap["G_ema"].module(module)
    obj.state[field] = value
    return snap


def _stride0(snap):
    """A conv weight with the right shape whose storage holds one number (a stride-0 view)."""
    conv = snap["G_ema"].module("synthesis.b64.conv1")
    w = conv.state["_parameters"]["weight"]
    conv.state["_parameters"]["weight"] = torch.as_strided(w.flatten()[:1].clone(), w.shape,
                                                           (0,) * w.dim())
    return snap


def _cycle(snap):
    mapping = snap["G_ema"].module("mapping")
    mapping.state["_modules"]["again"] = snap["G_ema"]
    return snap


HOSTILE = [
    (SG2, lambda s: _set(s, "", "z_dim", 10 ** 10), "z_dim = 10000000000, outside 1..16384"),
    (SG2, lambda s: _set(s, "", "z_dim", 10 ** 30), "z_dim = a 31-digit number"),
    (SG2, lambda s: _set(s, "", "z_dim", 0), "z_dim = 0, outside"),
    (SG2, lambda s: _set(s, "", "img_channels", -3), "img_channels = -3"),
    (SG2, lambda s: _set(s, "", "img_resolution", 2 * 10 ** 17), "img_resolution"),
    (SG2, lambda s: _set(s, "synthesis", "block_resolutions",
                         [4 * 2 ** i for i in range(56)]), "no submodule 'b128'"),
    (SG2, _stride0, "synthesis.b64.conv1.weight declares shape"),
    (SG2, _cycle, "modules form a cycle at 'mapping.again'"),
    (SG3, lambda s: _set(s, "synthesis.L0_36_8", "in_channels", -5), "in_channels = -5"),
    (SG3, lambda s: _set(s, "synthesis.L0_36_8", "conv_kernel", -3), "conv_kernel = -3"),
    (SG3, lambda s: _set(s, "synthesis.input", "channels", 10 ** 6), "input_channels = 1000000"),
    (SG3, lambda s: _set(s, "synthesis.input", "size", np.array([100000, 100000])),
     "input_size = 100000"),
    (SG3, lambda s: _set(s, "synthesis.L0_36_8", "padding", np.array([10 ** 6] * 4)),
     "padding = 1000000"),
    (SG3, lambda s: _set(s, "synthesis.L0_36_8", "padding", np.array([9, 8, 9, 200])),
     "padding .* is not the"),
    (SG3, lambda s: _set(s, "synthesis.input", "sampling_rate", float("nan")),
     "input_sampling_rate = nan"),
    (SG3, lambda s: _set(s, "synthesis.L4_52_8", "in_size", np.array([40, 40])),
     "L4_52_8 reads 40x40 maps but is given 36x36"),
    (SG3, lambda s: _set(s, "", "z_dim", 0), "z_dim = 0"),
]


@pytest.mark.parametrize("fixture,damage,message", HOSTILE,
                         ids=[f"{f[:5]}-{m[:28]}" for f, _, m in HOSTILE])
def test_hostile_declared_sizes_are_refused_before_allocating(read, tmp_path, fixture, damage,
                                                              message):
    path = tmp_path / "hostile.pkl"
    path.write_bytes(dumps_nvidia_pickle(damage(read(fixture))))
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match=message):
        load_model(str(path))
    assert path.read_bytes() == before


def test_an_array_placeholder_declaring_terabytes_is_refused():
    """numpy pickles an empty placeholder and gives the shape with the data; one that
    declares 10^12 elements is refused before numpy allocates it (was a MemoryError)."""
    class Placeholder:
        def __reduce__(self):
            from numpy._core.multiarray import _reconstruct
            return (_reconstruct, (np.ndarray, (10 ** 12, 2), b"b"), None)
    import pickle
    with pytest.raises(CheckpointError, match="placeholder declares shape"):
        loads_nvidia_pickle(pickle.dumps(Placeholder(), protocol=4))
    assert loads_nvidia_pickle(pickle.dumps(np.arange(6).reshape(2, 3), protocol=4)).shape \
        == (2, 3)


def test_the_fixtures_still_load_and_render(read, tmp_path):
    """The checks refuse nothing real: the three NVIDIA fixtures load and render."""
    for name in (SG2, SG3, "stylegan3r_tiny64.pkl"):
        path = tmp_path / name
        path.write_bytes(dumps_nvidia_pickle(read(name)))
        G = load_model(str(path))
        with torch.no_grad():
            assert torch.isfinite(G(G.latents([0]))).all()


# -- the fuzz: random fields of the real pickle set to random values ---------------------

def _fields(snap):
    """(module path, field) of every plain attribute of every module of G_ema."""
    out = []
    for path, mod in snap["G_ema"].named_modules():
        for k in sorted(mod.state):
            if not k.startswith("_"):
                out.append((path, k))
    return out


HOSTILE_VALUES = st.one_of(
    st.integers(min_value=-2, max_value=70),
    st.sampled_from([0, -1, 10 ** 6, 2 ** 31, 2 ** 63, 10 ** 30, -10 ** 9]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(), st.booleans(), st.text(max_size=8),
    st.lists(st.integers(min_value=-10, max_value=10 ** 6), max_size=5),
    st.builds(lambda v, n: np.full(n, v), st.integers(-5, 10 ** 6), st.integers(0, 4)),
)


@pytest.mark.parametrize("fixture", [SG2, SG3])
def test_fuzz_random_fields_give_a_clear_error_or_a_working_model(read, tmp_path, fixture):
    fields = _fields(read(fixture))
    path = tmp_path / "fuzz.pkl"

    @settings(max_examples=40, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(st.sampled_from(fields), HOSTILE_VALUES), min_size=1, max_size=2))
    def run(changes):
        snap = read(fixture)
        for (module, field), value in changes:
            snap["G_ema"].module(module).state[field] = value
        path.write_bytes(dumps_nvidia_pickle(snap))
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        try:
            G = load_model(str(path))
        except RewriteError as e:
            assert str(e)
        else:
            with torch.no_grad():
                img = G(G.latents([0]))
            assert img.shape[-1] == G.resolution
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    run()
