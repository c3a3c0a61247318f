"""Fuzz of the delta-file reader (``load_deltas``, and ``Rewriter.apply_delta_file`` behind
``rewrite apply``): damaged metadata (the format fields and the JSON edit list), replaced
tensors, safetensors header fields (dtypes, shapes, offsets) and raw bytes give a
DeltaFileError (or another RewriteError) or deltas that are well formed and apply cleanly;
never another exception, never a changed file, never a model changed by a refused file."""

import json
import math

import pytest
import torch
from hypothesis import event, example, given, strategies as st
from safetensors.torch import save_file

from rewrite.edit import Delta, LowRank, Rewriter, load_deltas
from rewrite.edit.delta import save_deltas
from rewrite.edit.spec import EditSpec
from rewrite.utils.errors import DeltaFileError, RewriteError

from ..conftest import make_tiny_dcgan
from ._contract import (fuzz, header_mutation, json_values, mutated_bytes, mutated_json,
                        reader_contract, split_safetensors, join_safetensors, write_input)
from .test_fuzz_spec import BASES

G = make_tiny_dcgan()
BASE_FP = G.fingerprint()
PARAM = "main.3.weight"                    # ConvTranspose2d [in 16, out 8, 4, 4]


def _base_deltas() -> list[Delta]:
    gen = torch.Generator().manual_seed(0)
    D = torch.linalg.qr(torch.randn(16, 2, generator=gen, dtype=torch.float64))[0].T.float()
    lam = torch.randn(8, 4, 4, 2, generator=gen) * 0.1
    low = Delta("main.3", "least-collateral", low_rank=LowRank(PARAM, lam, D, 0, 1),
                loss_before=0.5, loss=0.1, seconds=1.5, steps=3, collateral=0.01,
                visible_collateral=0.002, spec=BASES[0], strength=0.5)
    dense = Delta("main.6", "finetune-layer",
                  dense={"main.6.weight": torch.randn(8, 4, 4, 4, generator=gen) * 0.01},
                  loss_before=0.3, loss=0.2, units=[1, 3], spec=BASES[2])
    return [low, dense]


def _base_file() -> bytes:
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "base.safetensors"
        save_deltas(_base_deltas(), path, BASE_FP)
        return path.read_bytes()


BASE = _base_file()
HEADER, BODY = split_safetensors(BASE)
META = HEADER["__metadata__"]
ENTRIES = json.loads(META["edits"])


def _with_meta(meta: dict) -> bytes:
    return join_safetensors({**HEADER, "__metadata__": meta}, BODY)


def _check_deltas(path, deltas: list[Delta], base: str) -> None:
    """Deltas that loaded are well formed, and applying them to the model is all or
    nothing: a RewriteError leaves every weight as it was."""
    assert isinstance(base, str)
    for d in deltas:
        assert isinstance(d.layer, str) and isinstance(d.method, str), d
        assert isinstance(d.loss_kind, str), d
        for name in ("loss_before", "loss", "seconds", "collateral", "visible_collateral"):
            assert type(getattr(d, name)) is float, (name, getattr(d, name))
        assert type(d.steps) is int and d.steps >= 0, d.steps
        assert d.units is None or all(type(u) is int for u in d.units), d.units
        assert d.spec is None or isinstance(d.spec, dict), d.spec
        assert math.isfinite(d.strength) and 0 <= d.strength <= 10, d.strength
        json.dumps(d.figures())
    session = Rewriter(make_tiny_dcgan(), progress=False)
    before = {k: v.clone() for k, v in session.model.state_dict().items()}
    try:
        session.apply_delta_file(path, check_base=False)
    except RewriteError as e:
        assert str(e).strip()
        event("apply: refused")
        after = session.model.state_dict()
        assert all(torch.equal(after[k], before[k]) for k in before), "a refused file changed"
        return
    event("apply: applied")
    for d in deltas:
        if d.spec is not None:
            try:
                EditSpec.from_json(d.spec)
            except RewriteError:
                pass


def _contract(tmp_path_factory, data: bytes) -> None:
    path = write_input(tmp_path_factory, data, "edit.safetensors")
    out = reader_contract(load_deltas, path)
    if out is not None:
        _check_deltas(path, *out)


def test_the_base_file_loads_and_applies(tmp_path_factory):
    path = write_input(tmp_path_factory, BASE, "edit.safetensors")
    deltas, base = load_deltas(path)
    assert base == BASE_FP and len(deltas) == 2
    session = Rewriter(make_tiny_dcgan(), progress=False)
    assert len(session.apply_delta_file(path)) == 2


@fuzz(100)
@given(entries=mutated_json([ENTRIES], max_mutations=3))
def test_mutated_edit_list(entries, tmp_path_factory):
    _contract(tmp_path_factory, _with_meta({**META, "edits": json.dumps(entries)}))


_meta_values = st.one_of(st.text(max_size=12), json_values.map(json.dumps),
                         st.sampled_from(["1", "2", "rewrite.delta", "", "[" * 5000, "NaN"]))


@fuzz(80)
@given(key=st.sampled_from(["format", "version", "base_fingerprint", "edits", "extra"]),
       value=st.one_of(st.none(), _meta_values))
@example(key="edits", value="[" * 5000)
def test_mutated_metadata_fields(key, value, tmp_path_factory):
    meta = dict(META)
    if value is None:
        meta.pop(key, None)
    else:
        meta[key] = value
    _contract(tmp_path_factory, _with_meta(meta))


_tensor_names = sorted(k for k in HEADER if k != "__metadata__")


@st.composite
def _replacement(draw) -> torch.Tensor:
    shape = draw(st.lists(st.sampled_from([0, 1, 2, 4, 8, 16]), min_size=0, max_size=5))
    dtype = draw(st.sampled_from([torch.float32, torch.float64, torch.float16, torch.bfloat16,
                                  torch.int64, torch.uint8, torch.bool]))
    fill = draw(st.sampled_from([0.0, 1.0, 1e30, math.nan, math.inf]))
    return torch.full(shape, fill).to(dtype) if dtype.is_floating_point else torch.zeros(
        shape, dtype=dtype)


@fuzz(60)
@given(name=st.sampled_from(_tensor_names + ["edit.2.lambda"]),
       tensor=st.one_of(st.none(), _replacement()))
def test_replaced_tensors(name, tensor, tmp_path_factory):
    """Tensors the header declares consistently, but of another shape, dtype or value (or
    missing, or extra); written by safetensors itself."""
    from safetensors.torch import load

    tensors = load(BASE)
    if tensor is None:
        tensors.pop(name, None)
    else:
        tensors[name] = tensor
    path = tmp_path_factory.mktemp("fuzz") / "edit.safetensors"
    save_file(tensors, str(path), metadata=META)
    _contract(tmp_path_factory, path.read_bytes())


@fuzz(100)
@given(header=header_mutation(HEADER))
def test_mutated_header_fields(header, tmp_path_factory):
    _contract(tmp_path_factory, join_safetensors(header, BODY))


@fuzz(100)
@given(data=mutated_bytes(BASE))
def test_damaged_bytes(data, tmp_path_factory):
    _contract(tmp_path_factory, data)


# -- what the fuzz found ------------------------------------------------------------------

def _load_with_edits(tmp_path, edits: str):
    path = tmp_path / "edit.safetensors"
    path.write_bytes(_with_meta({**META, "edits": edits}))
    return load_deltas(path)


def test_an_edit_list_nested_too_deeply_is_a_delta_file_error(tmp_path):
    """Was a RecursionError traceback from json."""
    with pytest.raises(DeltaFileError, match="nested too deeply"):
        _load_with_edits(tmp_path, "[" * 100_000)


def test_recorded_figures_of_the_wrong_type_read_as_unknown(tmp_path):
    """Figures were returned as found (a list as the loss, a 400-digit integer that float()
    cannot convert); a layer that is not a name is refused."""
    fig = {**ENTRIES[0]["figures"], "loss": [1], "loss_before": 10 ** 400, "seconds": None,
           "steps": -3, "units": "1,2", "loss_kind": 7, "collateral": "0.1"}
    (d, _), _ = _load_with_edits(tmp_path, json.dumps([{**ENTRIES[0], "figures": fig,
                                                        "spec": "x"}, ENTRIES[1]]))
    assert math.isnan(d.loss) and math.isnan(d.loss_before) and math.isnan(d.seconds)
    assert math.isnan(d.collateral) and d.steps == 0 and d.units is None and d.spec is None
    assert d.loss_kind == "layer-L1" and d.strength == 0.5
    fig["layer"] = ["main.3"]
    with pytest.raises(DeltaFileError, match=r"edit 0 has layer \['main.3'\]; it must be a name"):
        _load_with_edits(tmp_path, json.dumps([{**ENTRIES[0], "figures": fig}]))
