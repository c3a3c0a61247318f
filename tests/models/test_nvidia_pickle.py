"""The restricted reader of NVIDIA network pickles: reads the fixture, re-reads it written
with older global names and protocols, refuses anything that would run code."""

import collections
import io
import os
import pickletools

import numpy as np
import pytest
import torch

from rewrite.models import load_model
from rewrite.models.nvidia_pickle import (EasyDict, GlobalRef, PersistentObject, _Writer,
                                          dumps_nvidia_pickle, loads_nvidia_pickle,
                                          read_nvidia_pickle)
from rewrite.utils.errors import CheckpointError


@pytest.fixture(scope="module")
def pkl(fixtures_dir):
    path = fixtures_dir / "stylegan2ada_tiny64.pkl"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="module")
def snapshot(pkl):
    return read_nvidia_pickle(pkl)


def _globals(data: bytes) -> collections.Counter:
    """GLOBAL / STACK_GLOBAL names in a pickle (STACK_GLOBAL: the two strings pushed before)."""
    found, strings, memo = collections.Counter(), [], {}
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        elif op.name == "MEMOIZE" and strings:
            memo[len(memo)] = strings[-1]
        elif op.name in ("BINGET", "LONG_BINGET"):
            strings.append(memo.get(arg))
        if op.name == "GLOBAL":
            found[arg.replace(" ", ".")] += 1
        elif op.name == "STACK_GLOBAL":
            found[f"{strings[-2]}.{strings[-1]}"] += 1
    return found


def test_reads_the_fixture_without_its_code(snapshot):
    assert list(snapshot) == ["training_set_kwargs", "G", "D", "G_ema", "augment_pipe"]
    G = snapshot["G_ema"]
    assert isinstance(G, PersistentObject) and G.class_name == "Generator"
    assert "class Generator" in G.module_src          # kept as text, never executed
    kw = G.init_kwargs
    assert kw["z_dim"] == 32 and isinstance(kw["synthesis_kwargs"], EasyDict)
    assert kw["synthesis_kwargs"].conv_clamp == 256
    sd = G.state_dict()
    assert len(sd) == 94 and all(t.dtype == torch.float32 for t in sd.values())
    assert tuple(sd["synthesis.b8.conv0.weight"].shape) == (64, 64, 3, 3)
    assert isinstance(G.module("synthesis.b8.conv0").state["_parameters"]["weight"],
                      torch.nn.Parameter)
    assert G.module("synthesis.b4.conv1.affine").get("weight_gain") == pytest.approx(32 ** -0.5)
    assert G.module("synthesis").get("block_resolutions") == [4, 8, 16, 32, 64]


def _write(obj, protocol=4) -> bytes:
    f = io.BytesIO()
    _Writer(f, protocol=protocol).dump(obj)
    return f.getvalue()


class _RunsCommand:
    """A G_ema whose unpickling would run a shell command."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_refuses_a_reduce_that_runs_code(snapshot, tmp_path):
    marker = tmp_path / "ran"
    dressed = {"G": snapshot["G_ema"], "G_ema": _RunsCommand(marker)}
    path = tmp_path / "network-snapshot-000000.pkl"
    path.write_bytes(_write(dressed))
    with pytest.raises(CheckpointError, match=r"global (posix|os|nt)\.system"):
        read_nvidia_pickle(path)
    with pytest.raises(CheckpointError, match=r"(posix|os|nt)\.system"):
        load_model(str(path))
    assert not marker.exists()


def test_refuses_an_object_with_only_source_code(tmp_path):
    marker = tmp_path / "ran"
    src = f"import pathlib\npathlib.Path({str(marker)!r}).touch()\nclass Generator: pass\n"
    meta = {"type": "class", "version": 6, "module_src": src, "class_name": "Generator"}
    data = _write({"G_ema": _Reduce(GlobalRef("torch_utils.persistence",
                                              "_reconstruct_persistent_obj"), (meta,))})
    with pytest.raises(CheckpointError, match="only source code"):
        loads_nvidia_pickle(data)
    path = tmp_path / "x.pkl"
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match="only source code"):
        load_model(str(path))
    assert not marker.exists()


class _Reduce:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("module,name", [("builtins", "eval"), ("__builtin__", "eval"),
                                         ("subprocess", "Popen"), ("torch", "load"),
                                         ("dnnlib.util", "call_func_by_name"),
                                         ("torch_utils.persistence", "_src_to_module")])
def test_refuses_any_other_global_by_name(module, name):
    data = _write({"G_ema": _Reduce(GlobalRef(module, name), ("1",))}, protocol=2)
    with pytest.raises(CheckpointError) as e:
        loads_nvidia_pickle(data)
    assert name in str(e.value) and "refusing" in str(e.value)


def test_refuses_numpy_object_arrays():
    data = _write(np.array([1, "a"], dtype=object))
    with pytest.raises(CheckpointError, match="object"):
        loads_nvidia_pickle(data)


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_reads_older_names_and_protocols(pkl, snapshot, protocol, tmp_path):
    # As NVIDIA's published files were written (numpy 1.x names; torch 1.x OrderedDicts;
    # protocol 2/3 GLOBAL opcodes; builtins.set): write the fixture's objects that way.
    def to_ordered(obj):
        state = dict(obj.state)
        for k in ("_parameters", "_buffers", "_modules"):
            state[k] = collections.OrderedDict(
                (n, to_ordered(v) if isinstance(v, PersistentObject) else v)
                for n, v in state[k].items())
        return PersistentObject(obj.class_name, state, obj.module_src, obj.version, obj.meta)

    old = {"G_ema": to_ordered(snapshot["G_ema"])}
    data = dumps_nvidia_pickle(old, protocol=protocol)
    names = _globals(data)
    assert names["numpy.core.multiarray.scalar"] and not names["numpy._core.multiarray.scalar"]
    if protocol < 4:
        assert not any(op.name == "STACK_GLOBAL" for op, _, _ in pickletools.genops(data))
        assert names["builtins.set" if protocol == 3 else "__builtin__.set"]
    back = loads_nvidia_pickle(data)["G_ema"]
    assert isinstance(back.state["_modules"], collections.OrderedDict)
    a, b = snapshot["G_ema"].state_dict(), back.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    path = tmp_path / "old.pkl"
    path.write_bytes(data)
    G0 = load_model(str(pkl))
    G1 = load_model(str(path))
    z = G0.latents(range(2))
    with torch.no_grad():
        assert torch.equal(G0(z), G1(z))


def test_rewriting_keeps_the_layout(pkl, snapshot):
    data = dumps_nvidia_pickle(snapshot)
    assert _globals(data).keys() == _globals(pkl.read_bytes()).keys() - {
        "numpy._core.multiarray.scalar"} | {"numpy.core.multiarray.scalar"}
    assert abs(len(data) - pkl.stat().st_size) < 100


def test_a_storage_saved_on_a_gpu_is_read_onto_the_cpu():
    """Community pickles may hold storages tagged 'cuda:0' (saved from a GPU): they are read
    onto the CPU, values intact, on a machine without one."""
    from rewrite.models.nvidia_pickle import _load_storage_from_bytes

    import warnings

    t = torch.arange(6, dtype=torch.float32)
    buf = io.BytesIO()
    with warnings.catch_warnings():                   # TypedStorage, as NVIDIA's files hold
        warnings.simplefilter("ignore")
        torch.save(t.storage(), buf, _use_new_zipfile_serialization=False)
    cpu_tag = b"X\x03\x00\x00\x00cpu"
    assert buf.getvalue().count(cpu_tag) == 1
    payload = buf.getvalue().replace(cpu_tag, b"X\x06\x00\x00\x00cuda:0")
    storage = _load_storage_from_bytes(payload)
    assert storage.device.type == "cpu" and storage.dtype == torch.float32
    assert storage.tolist() == t.tolist()


def test_a_pickle_nested_too_deeply_is_refused_on_export_not_a_recursion_error():
    """Issue 24 item 2: an object tree nested 100 000 lists deep (loads, renders) cannot be
    written back: a clear CheckpointError, never RecursionError."""
    from rewrite.models.nvidia_pickle import dumps_nvidia_pickle
    from rewrite.utils.errors import CheckpointError

    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(CheckpointError, match="nests its objects too deeply"):
        dumps_nvidia_pickle({"G_ema": None, "training_set_kwargs": deep})
    assert dumps_nvidia_pickle({"x": [[1]]})                 # shallow trees still write
