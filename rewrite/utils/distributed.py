"""Running under ``torchrun``: process group set-up and the few collectives we use.

Commands that scale out (``stats``, bulk ``sample``, ``eval``) call
:func:`context` once. Under ``torchrun --nproc-per-node N -m rewrite ...``
(``WORLD_SIZE`` > 1 in the environment) it joins the process group (``gloo`` on
CPU, ``nccl`` on GPU) and each rank takes every ``world``-th *batch* of the
work: batch boundaries are those of a single-process run, so every batch is
computed exactly as it would be there. Without ``torchrun`` it is a world of
one and every helper is a no-op.

Usage::

    d = context()
    for chunk in d.my_batches(range(n), batch_size): ...
    total = d.all_reduce_sum(partial)          # float64 tensor summed over ranks
"""

from __future__ import annotations

import atexit
import dataclasses
import datetime
import os
from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist

from .batching import batches
from .errors import RewriteError

#: Fault injection for tests: the rank named here raises at start-up.
FAIL_RANK_ENV = "REWRITE_TEST_FAIL_RANK"


@dataclasses.dataclass
class DistContext:
    """This process's place in the run."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes summaries and shows progress."""
        return self.rank == 0

    def device(self, requested: str | torch.device) -> torch.device:
        """The device for this rank: ``cuda:<local rank>`` when CUDA is asked for."""
        dev = torch.device(requested)
        if self.enabled and dev.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return dev

    def my_batches(self, items: Sequence[int], batch_size: int) -> list[list[int]]:
        """This rank's batches: every ``world``-th batch of the single-process split."""
        return batches(list(items), batch_size)[self.rank :: self.world]

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        """Sum ``t`` over ranks (in place on a CPU copy for gloo); returns the sum."""
        if not self.enabled:
            return t
        buf = t.detach().clone()
        if dist.get_backend() == "nccl":
            buf = buf.cuda(self.local_rank)
        dist.all_reduce(buf)
        return buf.to(t.device)

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


_CONTEXT: DistContext | None = None


def context() -> DistContext:
    """Join the ``torchrun`` process group once (if launched by torchrun) and describe it."""
    global _CONTEXT
    if _CONTEXT is not None:
        return _CONTEXT
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if os.environ.get(FAIL_RANK_ENV) == str(rank):
        raise RewriteError(f"rank {rank} failed on purpose ({FAIL_RANK_ENV}={rank})")
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local)
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=10))
        # Leave the group before the interpreter exits: gloo's threads torn down at
        # exit otherwise abort the process now and then ("terminate called ...").
        atexit.register(_leave_group)
    _CONTEXT = DistContext(rank, world, local)
    return _CONTEXT


def _leave_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def interleave(parts: list[list[Any]], n_batches: int) -> list[Any]:
    """Undo :meth:`DistContext.my_batches`: per-rank lists of batch results -> results in
    batch order (rank r held batches r, r + world, ...)."""
    world = len(parts)
    return [parts[b % world][b // world] for b in range(n_batches)]
