"""Transfer (black-box) attacks: craft on a source model, measure on a target."""

from __future__ import annotations

import torch
from torch import nn

from .base import Attack, predict

__all__ = ["transfer_accuracy"]


def transfer_accuracy(source: nn.Module, target: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: Attack,
                      batch_size: int = 256) -> float:
    """Accuracy of ``target`` on adversarial examples that ``attack`` crafts against ``source``."""
    source.eval()
    target.eval()
    correct = 0
    for i in range(0, x.shape[0], batch_size):
        xb, yb = x[i : i + batch_size], y[i : i + batch_size]
        x_adv = attack(source, xb, yb)
        correct += int((predict(target, x_adv) == yb).sum())
    return correct / max(x.shape[0], 1)
