"""Multi-process runs on ``torch.distributed``, as launched by ``torchrun``: the group, each rank's device and share.

A process started without ``torchrun`` (no ``WORLD_SIZE`` above 1 in its environment) is rank 0 of a group of
one: :func:`init_distributed` then touches nothing and every command behaves exactly as a single process.
Under ``torchrun`` each rank joins the group (``nccl`` on CUDA, ``gloo`` on CPU unless told otherwise), takes
the GPU named by ``LOCAL_RANK``, works on its contiguous share of the data (:func:`batch_block`), and the
shares are gathered back in order (:func:`all_gather_array`).  Only rank 0 writes files.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from .device import resolve_device

__all__ = ["DistContext", "BACKENDS", "init_distributed", "batch_block", "all_gather_array", "broadcast_object",
           "barrier", "launched_by_torchrun", "sharded", "current_group", "collective_group"]

BACKENDS = ("auto", "nccl", "gloo")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in its group (rank 0 of 1 for a plain process)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this rank writes the run's files (rank 0)."""
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """Whether this process is one of several started by ``torchrun`` (``WORLD_SIZE`` above 1)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def init_distributed(device: str | torch.device = "auto", backend: str = "auto") -> tuple[DistContext, torch.device]:
    """Join the ``torchrun`` group (once per process) and pick this rank's device.

    ``device="auto"`` or ``"cuda"`` under torchrun means ``cuda:LOCAL_RANK``.  ``backend="auto"`` is ``nccl``
    for CUDA devices and ``gloo`` otherwise.

    Raises:
        ValueError: an unknown backend, ``nccl`` without CUDA, or a device :func:`resolve_device` refuses.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown distributed backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    dev = resolve_device(device)
    if not launched_by_torchrun():
        return DistContext(), dev
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    chosen = backend if backend != "auto" else ("nccl" if dev.type == "cuda" else "gloo")
    if chosen == "nccl" and dev.type != "cuda":
        raise ValueError("the nccl backend needs CUDA devices; use --dist-backend gloo on CPU")
    if not dist.is_initialized():
        dist.init_process_group(chosen, device_id=dev if chosen == "nccl" else None, **_attempt_store())
        atexit.register(_destroy_group)
    if not _COLLECTIVES:
        _COLLECTIVES.append(dist.new_group(backend=chosen))
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, chosen), dev


_COLLECTIVES: list[dist.ProcessGroup] = []  # the group of collective_group(), once this process has joined


def collective_group() -> dist.ProcessGroup | None:
    """The group this toolkit's own collectives run on: every rank, but not the world group (None before
    :func:`init_distributed` has joined a group; torch then uses the world group).

    A collective's worker thread drops its reference to the tensors it moved a moment after the caller has
    seen it finish.  If that happens while the interpreter is finalising, it cannot take the GIL to release
    a tensor that Python owns, and the process aborts ("terminate called without an active exception",
    SIGABRT; pytorch/pytorch#190489), which torchrun reports as a failed rank although the work finished.
    The exit handler destroys the groups first, joining their threads, but a process that has built a DDP
    wrapper never releases the world group (torch 2.14), so no collective on Python-owned tensors may run there.
    """
    return _COLLECTIVES[0] if _COLLECTIVES else None


def _destroy_group() -> None:
    """Leave every group while the interpreter is still whole (registered with :mod:`atexit`), which joins
    the worker threads of every group that nothing else holds (see :func:`collective_group`)."""
    _COLLECTIVES.clear()
    if dist.is_initialized():
        dist.destroy_process_group()


def _attempt_store() -> dict[str, Any]:
    """Under torchrun's agent store, a store private to this restart attempt.

    A group that torchrun restarts (``--max-restarts``) would otherwise find the previous attempt's addresses
    in the shared store and fail to connect (gloo: ``connectFullMesh ... Connection refused``).
    """
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return {}
    base = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                         timeout=timedelta(minutes=30))
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    return {"store": dist.PrefixStore(f"rdnas-attempt-{attempt}", base), "rank": int(os.environ["RANK"]),
            "world_size": int(os.environ["WORLD_SIZE"])}


def batch_block(n_items: int, batch_size: int, ctx: DistContext) -> tuple[int, int]:
    """This rank's items ``[lo, hi)``: a contiguous block of whole batches of ``batch_size``.

    Whole batches keep every batch exactly as a single process forms it, so anything seeded per batch (the
    random start of an attack) is the same wherever the batch runs.  Batch counts differ by at most one.
    """
    n_batches = -(-n_items // batch_size)
    base, extra = divmod(n_batches, ctx.world_size)
    first = ctx.rank * base + min(ctx.rank, extra)
    last = first + base + (ctx.rank < extra)
    return min(first * batch_size, n_items), min(last * batch_size, n_items)


def all_gather_array(part: Any, ctx: DistContext) -> np.ndarray:
    """Every rank's ``part`` concatenated along axis 0 in rank order, on every rank (a no-op for one process)."""
    part = part.detach().cpu().numpy() if isinstance(part, torch.Tensor) else np.asarray(part)
    if not ctx.is_distributed:
        return part
    parts: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(parts, part, group=collective_group())
    return np.concatenate(parts)


def broadcast_object(obj: Any, ctx: DistContext, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank."""
    if not ctx.is_distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src, group=collective_group())
    return box[0]


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (a no-op for one process)."""
    if ctx.is_distributed:
        dist.barrier(group=collective_group())


_GROUP: ContextVar[DistContext | None] = ContextVar("advbench_group", default=None)


@contextmanager
def sharded(ctx: DistContext) -> Iterator[DistContext]:
    """Within this block every suite shares its images out over ``ctx``'s ranks and gathers the per-image
    results back in order, so each rank returns what a single process would (a no-op for one process)."""
    token = _GROUP.set(ctx if ctx.is_distributed else None)
    try:
        yield ctx
    finally:
        _GROUP.reset(token)


def current_group() -> DistContext | None:
    """The group the suites are sharding over (inside :func:`sharded`), or None for one process."""
    return _GROUP.get()
