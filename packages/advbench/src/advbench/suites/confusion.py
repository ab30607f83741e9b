"""Class-wise confusion matrices under FGSM and PGD-20 (the paper's Figure 7)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..attacks import FGSM, PGD
from ..threat import ThreatModel
from .common import adversarial_predictions

__all__ = ["run_confusion", "confusion_matrix"]


def confusion_matrix(y_true: torch.Tensor, y_pred: torch.Tensor, n_classes: int) -> torch.Tensor:
    """``[true, predicted]`` counts."""
    flat = y_true.long() * n_classes + y_pred.long()
    return torch.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def run_confusion(model: nn.Module, x: torch.Tensor, y: torch.Tensor, n_classes: int, *, eps: float = 8 / 255,
                  step: float = 2 / 255, seed: int = 0, batch_size: int = 128,
                  progress: bool = True) -> dict[str, Any]:
    """Confusion matrices (counts) for clean inputs, FGSM and PGD-20 at ``eps``."""
    model.eval()
    threat = ThreatModel(eps=eps, step=step, steps=20)
    attacks = {"clean": None, "fgsm": FGSM(threat, seed), "pgd20": PGD(threat, seed)}
    matrices = {}
    for name, attack in attacks.items():
        pred = adversarial_predictions(model, x, y, attack, batch_size, f"confusion {name}", progress)
        matrices[name] = confusion_matrix(y.cpu(), pred, n_classes).tolist()
    return {"suite": "confusion", "matrices": matrices, "attacks": {"fgsm": threat.with_(steps=1, step=eps,
            random_start=False).to_dict(), "pgd20": threat.to_dict()}, "sanity": []}
