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


def held_out_change_by_solver(G, model: str, layer: str, solvers=("least-collateral",
                                                                  "finetune-layer"),
                              rank: int | None = None) -> dict[str, float]:
    """The same small copy-paste request on ``layer`` solved by each of ``solvers`` (each
    undone before the next): {solver: mean |change| of 32 held-out images}. Each solve
    must lower its goal loss."""
    from rewrite.edit import EditSpec, Rewriter

    q = G.resolution // 4
    base = {
        "version": 1, "model": model, "layer": layer, "kind": "copy-paste",
        "stats": {"samples": 200},
        "copy": {"sample": 1, "mask": {"rect": [q, q, 2 * q, 2 * q]}},
        "paste": {"sample": 2, "mask": {"rect": [2 * q, 2 * q, 3 * q, 3 * q]}},
        "context": [{"sample": 3, "mask": {"rect": [q, q, 3 * q, 2 * q]}}]}
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
