"""NASWOT (Mellor et al., 2021): a training-free NAS-Bench-201 baseline in the same harness as the search.

For an untrained network and one batch of N images, every ReLU gives each image a binary code (which of its
units are active).  Concatenated over all ReLUs, the codes ``c_i`` define the kernel
``K[i, j] = N_A - d_H(c_i, c_j)`` (``N_A`` units, ``d_H`` the Hamming distance), and the score is
``log |det K|``: a network that separates the images into distinct linear regions scores high.  The
search scores N random cells in the benchmark's macro skeleton (16 channels, 5 cells per stage, as the
authors do) and keeps the best.  It never trains and never reads the benchmark.

As in the reference code, the ReLUs' inputs are read in training mode (BatchNorm on batch statistics),
the weights come from PyTorch's default initialisation under a fixed seed, and the batch is 128 training
images.  The reference also skips ReLUs that the backward pass does not reach; every ReLU of these networks
lies on a path to the output, so no such filter is needed here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from rdnas_space import NB201Network, ops_to_arch, sample_cells
from torch import nn

__all__ = ["activation_kernel", "naswot_score", "NaswotResult", "naswot_search"]


def activation_kernel(codes: torch.Tensor) -> torch.Tensor:
    """``K = C C^T + (1 - C)(1 - C)^T`` for binary codes ``C`` ``[N, units]``: ``K[i, j] = N_A - d_H(c_i, c_j)``."""
    c = codes.double()
    return c @ c.T + (1.0 - c) @ (1.0 - c).T


def naswot_score(net: nn.Module, x: torch.Tensor) -> float:
    """``log |det K|`` of the activation codes of every ``nn.ReLU`` of ``net`` on the batch ``x``."""
    kernel = torch.zeros(x.shape[0], x.shape[0], dtype=torch.float64)

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal kernel
        kernel = kernel + activation_kernel((inputs[0].detach().flatten(1) > 0).cpu())

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.ReLU)]
    try:
        net.train()
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    return float(torch.linalg.slogdet(kernel).logabsdet)


@dataclass
class NaswotResult:
    """The best of the scored cells, every cell with its score, and the wall time."""

    arch: str
    score: float
    cells: list[dict[str, object]]
    seconds: float


def naswot_search(x: torch.Tensor, n_cells: int = 100, seed: int = 0, channels: int = 16, n_per_stage: int = 5,
                  n_classes: int = 10, device: torch.device | str = "cpu") -> NaswotResult:
    """Score ``n_cells`` random cells (drawn with ``seed``) on the batch ``x`` and return the best.

    Each network is built under ``torch.manual_seed(seed)``, so a cell's score depends only on the cell, the
    seed and the batch.
    """
    t0 = time.perf_counter()
    x = x.to(device)
    scored = []
    for ops in sample_cells(n_cells, seed):
        arch = ops_to_arch(tuple(int(o) for o in ops))
        torch.manual_seed(seed)
        net = NB201Network(arch, channels, n_per_stage, n_classes).to(device)
        scored.append({"arch": arch, "score": naswot_score(net, x)})
    best = max(scored, key=lambda r: r["score"])
    return NaswotResult(str(best["arch"]), float(best["score"]), scored, time.perf_counter() - t0)
