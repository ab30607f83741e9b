"""The search and the training on ``torch.distributed``: ROSE walks sharded over the ranks, DDP weight training.

Launch any command with ``torchrun --nproc-per-node N -m rdnas_search ...``.  The group itself (backend, each
rank's device, gathering) is :mod:`advbench.distributed`'s; this module adds what the search needs on top:

- :func:`rose_sharding`: rose-estimator's framework-free :class:`~rose_estimator.Sharding` hook, filled in with
  ``torch.distributed``: every rank walks its block of the round's coalition batches and the values are gathered
  in order, so every rank holds the single-process :class:`~rose_estimator.RoseResult`, bit for bit;
- :func:`wrap_ddp` and :func:`local_share`: DDP over a contiguous share of every global batch (the global batch,
  hence the learning rate, is unchanged); BatchNorm keeps per-rank batch statistics and rank 0's running
  statistics (:func:`sync_buffers`), because SyncBatchNorm needs GPUs and the search must run on CPU too;
- :func:`restarted`: a group restarted by ``torchrun --max-restarts`` resumes from the last checkpoint.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from advbench.distributed import DistContext, all_gather_array, collective_group
from rose_estimator import Sharding, contiguous_block
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = ["rose_sharding", "wrap_ddp", "local_share", "sync_buffers", "restarted", "loss_scale", "any_rank"]


def rose_sharding(ctx: DistContext) -> Sharding | None:
    """The walks of a ROSE round split over ``ctx``'s ranks (None for one process)."""
    if not ctx.is_distributed:
        return None
    return Sharding(shard=lambda n: contiguous_block(n, ctx.rank, ctx.world_size),
                    gather=lambda part: all_gather_array(part, ctx))


def wrap_ddp(net: nn.Module, ctx: DistContext, device: torch.device, find_unused: bool = False) -> nn.Module:
    """``net`` under DDP for a group, ``net`` itself for one process.  ``find_unused``: some parameters get no
    gradient in a step (single-path training)."""
    if not ctx.is_distributed:
        return net
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(net, device_ids=ids, find_unused_parameters=find_unused)


def local_share(n: int, ctx: DistContext) -> slice:
    """This rank's contiguous share of a global batch of ``n`` items."""
    lo, hi = contiguous_block(n, ctx.rank, ctx.world_size)
    return slice(lo, hi)


def loss_scale(n_local: int, n_global: int, ctx: DistContext) -> float:
    """The factor that makes DDP's mean of the ranks' gradients the gradient of the global batch's mean loss
    when shares differ in size (1 for one process)."""
    return n_local * ctx.world_size / n_global if ctx.is_distributed and n_global else 1.0


@torch.no_grad()
def sync_buffers(net: nn.Module, ctx: DistContext) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics), so evaluation and scoring see one model."""
    if ctx.is_distributed:
        for buf in net.buffers():
            dist.broadcast(buf, src=0, group=collective_group())


def any_rank(flag: bool | torch.Tensor, ctx: DistContext, device: torch.device) -> bool:
    """Whether ``flag`` holds on any rank, so that every rank takes the same branch (stops together)."""
    if not ctx.is_distributed:
        return bool(flag)
    t = torch.tensor([float(bool(flag))], device=device)
    dist.all_reduce(t, group=collective_group())
    return bool(t.item() > 0)


def restarted() -> bool:
    """Whether ``torchrun`` restarted this group after a failure (``--max-restarts``)."""
    try:
        return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0
    except ValueError:
        return False
