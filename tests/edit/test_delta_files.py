"""Hostile delta files: low-rank factors whose axes or shapes do not fit are refused with a
DeltaFileError (on load, or on apply when they do not fit the model), never an IndexError,
and the model's weights stay as they were."""


import pytest
import torch

from rewrite.edit import Delta, LowRank, Rewriter, load_deltas
from rewrite.edit.delta import save_deltas
from rewrite.utils.errors import DeltaFileError, EditError

from ..conftest import rewrite_delta_file

PARAM = "main.3.weight"          # tiny DCGAN: ConvTranspose2d [in 16, out 8, 4, 4]


def _good_delta(rank: int = 1) -> Delta:
    gen = torch.Generator().manual_seed(0)
    D = torch.linalg.qr(torch.randn(16, rank, generator=gen, dtype=torch.float64))[0].T.float()
    lam = torch.randn(8, 4, 4, rank, generator=gen) * 0.1
    return Delta("main.3", "hand-made", low_rank=LowRank(PARAM, lam, D, 0, 1))


def _tampered(tmp_path, G, low_rank=None, lam=None, D=None):
    """A delta file for ``G`` written by rewrite, then its low-rank header fields and / or
    its factor tensors replaced."""
    path = tmp_path / "edit.safetensors"
    save_deltas([_good_delta()], path, G.fingerprint())

    def change(entries, tensors):
        if low_rank is not None:
            entries[0]["low_rank"].update(low_rank)
        if lam is not None:
            tensors["edit.0.lambda"] = lam
        if D is not None:
            tensors["edit.0.D"] = D

    return rewrite_delta_file(path, change, path)


def test_an_intact_hand_made_delta_file_round_trips(tiny_dcgan, tmp_path):
    path = _tampered(tmp_path, tiny_dcgan)
    before = tiny_dcgan.state_dict()[PARAM].clone()
    (d,) = Rewriter(tiny_dcgan, progress=False).apply_delta_file(path)
    assert d.low_rank.in_axis == 0 and d.low_rank.out_axis == 1
    assert not torch.equal(tiny_dcgan.state_dict()[PARAM], before)


@pytest.mark.parametrize("fields,needle", [
    ({"in_axis": 7}, "in_axis is 7; for a 4-axis weight it must be a whole number from 0 to 3"),
    ({"out_axis": 4}, "out_axis is 4"),
    ({"in_axis": -1}, "in_axis is -1"),
    ({"out_axis": -4}, "out_axis is -4"),
    ({"in_axis": 1, "out_axis": 1}, "in_axis and out_axis are both 1"),
    ({"in_axis": True}, "in_axis is True"),
    ({"in_axis": "0"}, "in_axis is '0'"),
    ({"in_axis": 0.5}, "in_axis is 0.5"),
    ({"in_axis": 10 ** 30}, "in_axis is 1000000000000000000000000000000"),
    ({"param": ["main.3.weight"]}, "names parameter ['main.3.weight']"),
])
def test_axis_fields_out_of_range_are_refused(tiny_dcgan, tmp_path, fields, needle):
    path = _tampered(tmp_path, tiny_dcgan, low_rank=fields)
    with pytest.raises(DeltaFileError, match="edit 0") as err:
        load_deltas(path)
    assert needle in str(err.value)
    before = {k: v.clone() for k, v in tiny_dcgan.state_dict().items()}
    with pytest.raises(DeltaFileError):
        Rewriter(tiny_dcgan, progress=False).apply_delta_file(path)
    assert all(torch.equal(tiny_dcgan.state_dict()[k], before[k]) for k in before)


@pytest.mark.parametrize("tensors,needle", [
    ({"lam": torch.zeros(8, 4, 4, 2)}, "has rank 2 in its last axis but D (1, 16) has 1 rows"),
    ({"D": torch.zeros(3, 16)}, "has rank 1 in its last axis but D (3, 16) has 3 rows"),
    ({"D": torch.zeros(1, 16, 1)}, "D must have 2 axes"),
    ({"lam": torch.zeros(1)}, "lambda must have at least 2 axes"),
    ({"lam": torch.zeros(8, 4, 4, 1, dtype=torch.int32)}, "lambda must be a floating-point"),
])
def test_factors_that_do_not_match_each_other_are_refused(tiny_dcgan, tmp_path, tensors,
                                                           needle):
    path = _tampered(tmp_path, tiny_dcgan, **tensors)
    with pytest.raises(DeltaFileError) as err:
        load_deltas(path)
    assert needle in str(err.value)


@pytest.mark.parametrize("lam,D", [
    (torch.zeros(8, 4, 4, 1), torch.zeros(1, 32)),          # a wider input axis
    (torch.zeros(8, 1), torch.zeros(1, 16)),                # a 2-axis change of a 4-axis weight
    (torch.zeros(8, 4, 3, 1), torch.zeros(1, 16)),          # another kernel
])
def test_factors_that_do_not_fit_the_model_are_refused_on_apply(tiny_dcgan, tmp_path, lam, D):
    """Consistent with each other, but not with the weight: refused before Λ D is formed."""
    path = _tampered(tmp_path, tiny_dcgan, lam=lam, D=D)
    load_deltas(path)
    before = {k: v.clone() for k, v in tiny_dcgan.state_dict().items()}
    with pytest.raises(DeltaFileError, match="edit 0 .* does not fit this model"):
        Rewriter(tiny_dcgan, progress=False).apply_delta_file(path)
    assert all(torch.equal(tiny_dcgan.state_dict()[k], before[k]) for k in before)


def test_a_hand_made_delta_with_a_bad_axis_is_an_edit_error(tiny_dcgan):
    session = Rewriter(tiny_dcgan, progress=False)
    good = _good_delta()
    for in_axis, out_axis in ((7, 1), (0, 0), (-1, 1)):
        bad = Delta("main.3", "hand-made", low_rank=LowRank(PARAM, good.low_rank.lam,
                                                            good.low_rank.D, in_axis, out_axis))
        with pytest.raises(EditError, match="cannot be applied"):
            session.apply(bad)
    missing = Delta("main.3", "hand-made", low_rank=LowRank("main.99.weight", good.low_rank.lam,
                                                            good.low_rank.D, 0, 1))
    with pytest.raises(EditError, match="'main.99.weight', which this model does not have"):
        session.apply(missing)
    assert session.deltas == []


def test_a_failure_part_way_leaves_the_session_as_it_was(tiny_dcgan, tmp_path, monkeypatch):
    """Replaying edits (strength, remove) and applying a delta file are all or nothing: when
    an apply fails part way, the edits applied so far are undone and the old ones restored,
    bit for bit."""
    session = Rewriter(tiny_dcgan, progress=False)
    first, second = _good_delta(), _good_delta(2)
    path = tmp_path / "two.safetensors"
    save_deltas([first, second], path, tiny_dcgan.fingerprint())
    session.apply(first)
    session.apply(second)
    weights = {k: v.clone() for k, v in tiny_dcgan.state_dict().items()}
    history = session.deltas
    real, calls, fail_at = session.apply, [], [0]

    def flaky(edit):
        calls.append(edit)
        if len(calls) == fail_at[0]:
            raise RuntimeError("cancelled")
        return real(edit)

    monkeypatch.setattr(session, "apply", flaky)
    # Each fails at its last apply (the replays after undoing all, the file after one).
    for attempt, fail_at[0] in ((lambda: session.set_strength(0, 0.5), 2),
                                (lambda: session.remove(0), 1),
                                (lambda: session.apply_delta_file(path, check_base=False), 2)):
        calls.clear()
        with pytest.raises(RuntimeError, match="cancelled"):
            attempt()
        assert all(a is b for a, b in zip(session.deltas, history, strict=True))
        assert all(torch.equal(tiny_dcgan.state_dict()[k], weights[k]) for k in weights)
