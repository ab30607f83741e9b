"""The eps sweep of the paper's Table 9: PGD with step eps/4 and 5 restarts at eps in {1,2,3,4,6,8}/255."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..attacks import PGD
from ..threat import ThreatModel
from .common import SanityCheck, accuracy_under, large_eps_check, non_increasing

__all__ = ["run_sweep", "TABLE9_SCHEDULE"]

TABLE9_SCHEDULE: tuple[tuple[int, int], ...] = ((1, 50), (2, 40), (3, 30), (4, 20), (6, 20), (8, 20))
"""(eps in 1/255, PGD steps) pairs of Table 9."""


def run_sweep(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, seed: int = 0, batch_size: int = 128,
              restarts: int = 5, schedule: tuple[tuple[int, int], ...] = TABLE9_SCHEDULE,
              progress: bool = True) -> dict[str, Any]:
    """Robust accuracy (%) at each eps of ``schedule``, plus clean accuracy and sanity checks."""
    model.eval()
    points = [{"eps_255": 0, "steps": 0, "accuracy": accuracy_under(model, x, y, None, batch_size, "clean",
                                                                    progress)}]
    attacks = {}
    for eps_255, steps in schedule:
        threat = ThreatModel(eps=eps_255 / 255, step=eps_255 / 255 / 4, steps=steps, restarts=restarts)
        acc = accuracy_under(model, x, y, PGD(threat, seed), batch_size, f"PGD-{steps} @ {eps_255}/255", progress)
        points.append({"eps_255": eps_255, "steps": steps, "accuracy": acc})
        attacks[f"pgd_eps{eps_255}"] = threat.to_dict()
    curve = [p["accuracy"] for p in points]
    large_acc, large_check = large_eps_check(model, x, y, seed, batch_size, progress)
    checks = [
        SanityCheck("accuracy does not increase with eps", non_increasing(curve + [large_acc], 0.0),
                    " >= ".join(f"{a:.2f}%" for a in curve + [large_acc])),
        large_check,
    ]
    return {"suite": "sweep", "accuracy": {"clean": points[0]["accuracy"]}, "points": points, "attacks": attacks,
            "sanity": [c.to_dict() for c in checks]}
