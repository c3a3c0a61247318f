"""Checks shared by the NVIDIA pickle family tests (StyleGAN2-ADA, StyleGAN3)."""

import torch


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
