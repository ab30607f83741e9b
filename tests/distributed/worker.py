"""Work that the distributed tests run under ``torchrun`` (2 ranks, gloo): ``worker.py MODE OUT``.

- ``score``: one ROSE round on an NB201 supernet game and on a numpy game, sharded over the ranks and in one
  process; rank 0 writes whether the results are equal, bit for bit.
- ``ddp``: two DDP steps of the NB201 supernet on the ranks' shares of two global batches; rank 0 saves the
  final state (weights and BatchNorm statistics);
- ``exit``: join the group, take a DDP step and a buffer sync, run the interpreter's exit handlers, and write
  whether the group was left and whether the threads of the group that the collectives use were joined.
"""

from __future__ import annotations

import atexit
import json
import os
import sys

import numpy as np
import torch
from advbench.distributed import collective_group, init_distributed
from rdnas_search.config import nb201_preset
from rdnas_search.distributed import local_share, loss_scale, rose_sharding, sync_buffers, wrap_ddp
from rdnas_search.game import SupernetGame
from rdnas_search.search import build_supernet
from rose_estimator import FunctionGame, RoseEstimator


def hashed_value(coalitions: np.ndarray) -> np.ndarray:
    codes = coalitions.astype(np.int64) @ (1 << np.arange(coalitions.shape[1], dtype=np.int64))
    return np.stack([np.sin(codes * 0.7) + coalitions.sum(1), np.cos(codes * 1.3)], axis=1)


def supernet(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = build_supernet(nb201_preset("smoke"), 10)
    for a in net.arch_parameters():
        a.requires_grad_(False)
    return net


def data(n: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)


def score(out: str) -> None:
    ctx, _ = init_distributed("cpu")
    net = supernet().eval()
    x, y = data(12)
    est = RoseEstimator(n_groups=2)
    equal = {}
    for name, make, batch in [
        ("supernet", lambda: SupernetGame(net, "cell", x, y, None, "neg_ce", net.primitives), 7),
        ("numpy", lambda: FunctionGame(hashed_value, n_players=30, n_metrics=2, vectorized=True), 16),
    ]:
        kwargs = {"rng": np.random.default_rng([5, 0]), "batch_size": batch, "antithetic": True}
        sharded = est.approximate(make(), 6, sharding=rose_sharding(ctx), **kwargs).to_dict()
        kwargs["rng"] = np.random.default_rng([5, 0])
        single = est.approximate(make(), 6, **kwargs).to_dict()
        equal[name] = sharded == single
        equal[f"{name}_evaluations"] = sharded["n_evaluations"]
    if ctx.is_main:
        with open(out, "w") as f:
            json.dump(equal, f)


def ddp(out: str) -> None:
    ctx, device = init_distributed("cpu")
    net = supernet().train()
    model = wrap_ddp(net, ctx, device)
    opt = torch.optim.SGD(net.weight_parameters(), lr=0.1, momentum=0.9)
    x, y = data(14)
    for idx in (torch.arange(0, 7), torch.arange(7, 14)):  # global batches of 7: unequal shares (4 + 3)
        share = local_share(len(idx), ctx)
        xb, yb = x[idx][share], y[idx][share]
        loss = torch.nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad()
        (loss * loss_scale(len(yb), len(idx), ctx)).backward()
        opt.step()
    sync_buffers(net, ctx)
    if ctx.is_main:
        torch.save(net.state_dict(), out)


def _threads() -> set[str]:
    """This process's threads (Linux's /proc)."""
    return set(os.listdir("/proc/self/task"))


def leave(out: str) -> None:
    """Record the threads that the collectives' group starts, take a DDP step and a buffer sync, run the exit
    handlers, and write which of those threads are left."""
    recorded: list[tuple[torch.distributed.ProcessGroup, set[str]]] = []
    new_group = torch.distributed.new_group

    def recording_new_group(*args, **kwargs):
        before = _threads()
        group = new_group(*args, **kwargs)
        recorded.append((group, _threads() - before))
        return group

    torch.distributed.new_group = recording_new_group
    ctx, device = init_distributed("cpu")
    torch.distributed.new_group = new_group
    joined = torch.distributed.is_initialized()
    (group, threads), = recorded  # init_distributed made one group: the collectives'
    uses_it = collective_group() is group
    recorded.clear()  # hold no reference that would keep the group alive at exit
    del group
    net = supernet().train()
    model = wrap_ddp(net, ctx, device)
    x, y = data(8)
    share = local_share(8, ctx)
    torch.nn.functional.cross_entropy(model(x[share]), y[share]).backward()
    sync_buffers(net, ctx)
    del model, net
    atexit._run_exitfuncs()  # what the interpreter runs at exit, while it is still whole
    if ctx.is_main:
        with open(out, "w") as f:
            json.dump({"joined": joined, "left": not torch.distributed.is_initialized(), "uses_it": uses_it,
                       "started": len(threads), "left_running": len(threads & _threads())}, f)


if __name__ == "__main__":
    {"score": score, "ddp": ddp, "exit": leave}[sys.argv[1]](sys.argv[2])
