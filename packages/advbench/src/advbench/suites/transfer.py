"""The transfer matrix of the paper's Table 2: PGD-20 examples from each source, accuracy of each target."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..attacks import PGD, predict
from ..distributed import all_gather_array, batch_block, current_group
from ..threat import ThreatModel
from .common import SanityCheck

__all__ = ["run_transfer"]


def run_transfer(models: dict[str, nn.Module], x: torch.Tensor, y: torch.Tensor, *, eps: float = 8 / 255,
                 step: float = 2 / 255, seed: int = 0, batch_size: int = 128,
                 progress: bool = True) -> dict[str, Any]:
    """``matrix[source][target]``: accuracy (%) of target on PGD-20 examples crafted on source.

    The diagonal is each model's white-box PGD-20 accuracy; a transfer entry below
    its target's white-box accuracy is flagged (a black-box attack should not beat
    the white-box one).  Inside :func:`~advbench.distributed.sharded` each rank takes its block of batches and
    the counts are summed over the ranks.
    """
    from tqdm.auto import tqdm

    threat = ThreatModel(eps=eps, step=step, steps=20)
    names = list(models)
    for m in models.values():
        m.eval()
    correct = {s: dict.fromkeys(names, 0) for s in names}
    device_of = {n: next(m.parameters()).device for n, m in models.items()}
    group = current_group()
    lo, hi = (0, x.shape[0]) if group is None else batch_block(x.shape[0], batch_size, group)
    for src in tqdm(names, desc="transfer sources", disable=not progress, leave=False):
        attack = PGD(threat, seed)
        for i in range(lo, hi, batch_size):
            j = min(i + batch_size, hi)
            xb, yb = x[i:j].to(device_of[src]), y[i:j].to(device_of[src])
            x_adv = attack(models[src], xb, yb)
            for tgt in names:
                pred = predict(models[tgt], x_adv.to(device_of[tgt])).cpu()
                correct[src][tgt] += int((pred == yb.cpu()).sum())
    if group is not None:
        counts = all_gather_array([[correct[s][t] for s in names for t in names]], group).sum(0).tolist()
        correct = {s: {t: int(counts[i * len(names) + k]) for k, t in enumerate(names)} for i, s in enumerate(names)}
    n = max(int(x.shape[0]), 1)
    matrix = {s: {t: 100.0 * correct[s][t] / n for t in names} for s in names}
    checks = []
    for t in names:
        for s in names:
            if s != t:
                ok = matrix[s][t] >= matrix[t][t]
                checks.append(SanityCheck(f"transfer {s} -> {t} not below white-box", ok,
                                          f"{matrix[s][t]:.2f}% vs white-box {matrix[t][t]:.2f}%").to_dict())
    return {"suite": "transfer", "matrix": matrix, "attacks": {"pgd20": threat.to_dict()}, "sanity": checks}
