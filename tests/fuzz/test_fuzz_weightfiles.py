"""Fuzz of the metric weight-file readers (``load_state``, ``load_lin``,
``FIDInception.from_file``, ``LPIPS.from_files`` behind ``--inception-weights`` /
``--lpips-weights``): byte damage of real ``torch.save`` files (legacy and zip formats)
and hostile content after unpickling (other types, keys that are not names, tensors of
another shape, dtype or kind, NaN) give a CheckpointError or networks whose weights are
the file's; never another exception, never a changed file."""

import io
import math

import pytest
import torch
from hypothesis import event, example, given, strategies as st

import rewrite.metrics.weightfiles as weightfiles
from rewrite.metrics.inception import FIDInception
from rewrite.metrics.lpips import CHANNELS, LIN_FILE, LPIPS, VGG16Features, load_lin
from rewrite.utils.errors import CheckpointError

from ._contract import fuzz, json_values, mutated_bytes, reader_contract, write_input

LIN_LEGACY = LIN_FILE.read_bytes()                      # the shipped file: legacy format
LIN_STATE = torch.load(io.BytesIO(LIN_LEGACY), map_location="cpu", weights_only=True)


def _saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


LIN_ZIP = _saved(LIN_STATE)


def _check_lin(lin) -> None:
    assert [tuple(w.shape) for w in lin] == [(1, c, 1, 1) for c in CHANNELS]
    assert all(w.dtype == torch.float32 and torch.isfinite(w).all() for w in lin)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")   # torch's, on a damaged file
@fuzz(120)
@given(data=st.one_of(mutated_bytes(LIN_LEGACY), mutated_bytes(LIN_ZIP)))
def test_damaged_lin_files(data, tmp_path_factory):
    lin = reader_contract(load_lin, write_input(tmp_path_factory, data, "lin.pth"))
    if lin is not None:
        _check_lin(lin)


# -- hostile content: what a file could unpickle to ---------------------------------------

def _weird_tensor(draw) -> torch.Tensor:
    kind = draw(st.sampled_from(["nan", "int", "bool", "complex", "half", "scalar", "empty",
                                 "sparse", "strided", "shape"]))
    if kind == "nan":
        return torch.full((1, 64, 1, 1), math.nan)
    if kind == "int":
        return torch.ones(1, 64, 1, 1, dtype=torch.int64)
    if kind == "bool":
        return torch.ones(1, 64, 1, 1, dtype=torch.bool)
    if kind == "complex":
        return torch.ones(1, 64, 1, 1, dtype=torch.complex64)
    if kind == "half":
        return torch.ones(1, 64, 1, 1, dtype=torch.float16)
    if kind == "scalar":
        return torch.tensor(1.0)
    if kind == "empty":
        return torch.zeros(0)
    if kind == "sparse":
        return torch.zeros(1, 64, 1, 1).to_sparse()
    if kind == "strided":
        return torch.zeros(1, 128, 1, 1)[:, ::2]
    return torch.zeros(draw(st.lists(st.integers(0, 3), max_size=4)))


@st.composite
def hostile_state(draw, base: dict):
    """``base`` (a state dict) as a hostile file could unpickle it: another type, wrapped,
    or with one entry's key or value replaced, one entry dropped or one added."""
    state = dict(base)
    names = sorted(state)
    action = draw(st.sampled_from(["value", "value", "key", "drop", "add", "wrap", "whole"]))
    name = draw(st.sampled_from(names))
    if action == "value":
        state[name] = draw(st.one_of(st.builds(lambda: None), json_values,
                                     st.composite(lambda d: _weird_tensor(d))()))
    elif action == "key":
        state[draw(st.sampled_from([0, -1, (name,), name.encode(), 1.5, None, ""]))] \
            = state.pop(name)
    elif action == "drop":
        state.pop(name)
    elif action == "add":
        state[draw(st.sampled_from(["fc.weight", "extra", "a.num_batches_tracked", 7,
                                    "features.99.weight"]))] = torch.zeros(2)
    elif action == "wrap":
        state = {"state_dict": state, "epoch": 3} if draw(st.booleans()) else {
            "state_dict": list(state.values())}
    else:
        state = draw(st.sampled_from([None, [], (), "weights", 3, torch.zeros(3),
                                      [torch.zeros(3)], {}]))
    return state


def _serving(monkeypatch, obj, path):
    """Make ``torch.load`` of ``path`` give ``obj`` (what a hostile file could unpickle
    to, without writing a 100 MB file per example); other files load as usual."""
    real = torch.load

    def fake(f, *args, **kwargs):
        return obj if str(f) == str(path) else real(f, *args, **kwargs)
    monkeypatch.setattr(weightfiles.torch, "load", fake)


@fuzz(60)
@given(state=hostile_state(LIN_STATE))
@example(state={0: LIN_STATE["lin0.model.1.weight"]})
def test_hostile_lin_content(state, tmp_path_factory):
    path = write_input(tmp_path_factory, b"stand-in", "lin.pth")
    with pytest.MonkeyPatch.context() as mp:
        _serving(mp, state, path)
        lin = reader_contract(load_lin, path)
    if lin is not None:
        _check_lin(lin)


INCEPTION = FIDInception()
INCEPTION_STATE = {k: torch.zeros_like(v) for k, v in INCEPTION.state_dict().items()}
VGG_STATE = {f"features.{k}": torch.zeros_like(v) for k, v in
             VGG16Features().state_dict().items()}


def _check_net(net, state) -> None:
    """A network that loaded holds the file's weights (as float32)."""
    own = net.state_dict()
    given_ = state["state_dict"] if isinstance(state.get("state_dict"), dict) else state
    for k, v in own.items():
        if k.endswith("num_batches_tracked"):
            continue
        src = given_[k if k in given_ else f"features.{k.removeprefix('net.')}"]
        assert v.dtype == torch.float32 and torch.equal(v, src.float()), k


# A few examples only: every one that gets past the structure checks costs about a second
# (the finiteness check of 24 M weights, then the copy into the network).
@fuzz(10)
@given(state=hostile_state(INCEPTION_STATE))
@example(state={**INCEPTION_STATE, 3: torch.zeros(2)})
def test_hostile_inception_content(state, tmp_path_factory):
    path = write_input(tmp_path_factory, b"stand-in", "inception.pth")
    with pytest.MonkeyPatch.context() as mp:
        _serving(mp, state, path)
        net = reader_contract(FIDInception.from_file, path)
    event(f"inception: {'loaded' if net is not None else 'refused'}")
    if net is not None:
        _check_net(net, state)


@fuzz(10)
@given(state=hostile_state(VGG_STATE))
@example(state={**VGG_STATE, 3: torch.zeros(2)})
def test_hostile_vgg_content(state, tmp_path_factory):
    path = write_input(tmp_path_factory, b"stand-in", "vgg16.pth")
    with pytest.MonkeyPatch.context() as mp:
        _serving(mp, state, path)
        net = reader_contract(LPIPS.from_files, path)
    event(f"lpips: {'loaded' if net is not None else 'refused'}")
    if net is not None:
        _check_net(net.net, state)


# -- what the fuzz found ------------------------------------------------------------------

@pytest.mark.parametrize("state, needle", [
    ({**LIN_STATE, 3: torch.zeros(2)}, "is not a state dict of tensors (names to tensors)"),
    ({**LIN_STATE, "lin0.model.1.weight": torch.ones(1, 64, 1, 1, dtype=torch.complex64)},
     "lin0.model.1.weight is a torch.complex64 strided tensor, not plain real numbers"),
    ({**LIN_STATE, "lin1.model.1.weight": torch.ones(1, 128, 1, 1).to_sparse()},
     "lin1.model.1.weight is a torch.float32 sparse_coo tensor"),
])
def test_odd_keys_and_tensors_are_a_checkpoint_error(tmp_path, state, needle):
    """A key that is not a name was an AttributeError traceback in the Inception and VGG
    readers ('int' object has no attribute 'endswith'); a complex lin weight lost its
    imaginary part with a warning, a sparse one failed later, in the network."""
    path = tmp_path / "weights.pth"
    path.write_bytes(_saved(state))
    with pytest.raises(CheckpointError) as e:
        load_lin(path)
    assert needle in str(e.value)
    with pytest.MonkeyPatch.context() as mp:
        _serving(mp, {**INCEPTION_STATE, 3: torch.zeros(2)}, path)
        with pytest.raises(CheckpointError, match="names to tensors"):
            FIDInception.from_file(path)
