"""Checks shared by the NVIDIA pickle family tests (StyleGAN2-ADA, StyleGAN3)."""

import numpy as np
import torch


def relative_error(got: torch.Tensor, ref: np.ndarray) -> float:
    """max |ours - ref| relative to the reference tensor's scale (max |ref|)."""
    return float(np.abs(got.detach().numpy() - ref).max() / np.abs(ref).max())


def assert_training_copy_moved_like_g_ema(snap: dict, orig: dict, key: str) -> None:
    """In a written snapshot ``snap`` (read back) against the input ``orig``: ``G_ema``'s
    tensor ``key`` changed, ``G``'s moved by exactly the same difference, and every other
    tensor of both is the input's bit for bit."""
    new_ema, old_ema = snap["G_ema"].state_dict(), orig["G_ema"].state_dict()
    new_g, old_g = snap["G"].state_dict(), orig["G"].state_dict()
    assert not torch.equal(new_ema[key], old_ema[key])
    assert not torch.equal(old_g[key], old_ema[key])      # the fixture's G is its own copy
    assert torch.equal(new_g[key], old_g[key] + (new_ema[key] - old_ema[key]))
    for name in old_ema:
        if name != key:
            assert torch.equal(new_ema[name], old_ema[name]), name
            assert torch.equal(new_g[name], old_g[name]), name


def small_copy_paste(G, model: str, layer: str, **extra) -> dict:
    """A small copy-paste request (JSON form) on ``layer``: a quarter-size square of
    sample 1 pasted on sample 2, context on sample 3; 200 statistics samples."""
    q = G.resolution // 4
    return {"version": 1, "model": model, "layer": layer, "kind": "copy-paste",
            "stats": {"samples": 200},
            "copy": {"sample": 1, "mask": {"rect": [q, q, 2 * q, 2 * q]}},
            "paste": {"sample": 2, "mask": {"rect": [2 * q, 2 * q, 3 * q, 3 * q]}},
            "context": [{"sample": 3, "mask": {"rect": [q, q, 3 * q, 2 * q]}}], **extra}


def assert_edit_lowers_the_loss_and_exports(G, spec: dict, path) -> None:
    """Apply ``spec`` to ``G``: its goal loss drops, and the model exported to ``path``
    (e.g. NVIDIA's .pkl) loads back rendering the edited model bit for bit."""
    from rewrite.edit import EditSpec, Rewriter
    from rewrite.models import load_model

    session = Rewriter(G, progress=False)
    d = session.apply(EditSpec.from_json(spec))
    assert d.loss < d.loss_before, d.figures()
    session.export_checkpoint(path)
    z = G.latents(range(3))
    with torch.no_grad():
        assert torch.equal(load_model(str(path))(z), G(z))


def held_out_change_by_solver(G, model: str, layer: str, solvers=("least-collateral",
                                                                  "finetune-layer"),
                              rank: int | None = None) -> dict[str, float]:
    """The same small copy-paste request on ``layer`` solved by each of ``solvers`` (each
    undone before the next): {solver: mean |change| of 32 held-out images}. Each solve
    must lower its goal loss."""
    from rewrite.edit import EditSpec, Rewriter

    base = small_copy_paste(G, model, layer)
    if rank is not None:
        base["rank"] = rank
    z = G.latents(range(100, 132))
    with torch.no_grad():
        before = G(z)
    change = {}
    for solver in solvers:
        spec = EditSpec.from_json({**base, "solver": {"name": solver, "params": (
            {"steps": 300} if solver == "finetune-layer" else {})}})
        session = Rewriter(G, progress=False)
        d = session.apply(spec)
        assert d.loss < d.loss_before, (solver, d.figures())
        with torch.no_grad():
            change[solver] = float((G(z) - before).abs().mean())
        session.undo()
    return change
