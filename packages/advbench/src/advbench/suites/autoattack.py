"""The AutoAttack suite: clean accuracy and the cumulative accuracy after each attack of the standard cascade."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..attacks import STANDARD_ATTACKS, run_autoattack
from .common import SanityCheck, non_increasing

__all__ = ["run_autoattack_suite"]


def run_autoattack_suite(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float = 8 / 255,
                         seed: int = 0, batch_size: int = 128,
                         log_file: str | Path | None = None) -> dict[str, Any]:
    """AutoAttack (standard version) with per-attack cumulative accuracy (%) and per-sample robustness."""
    result = run_autoattack(model, x, y, eps, seed=seed, batch_size=batch_size, log_file=log_file)
    cumulative = {k: 100.0 * v for k, v in result.cumulative.items()}
    check = SanityCheck("accuracy does not increase along the cascade", non_increasing(list(cumulative.values()), 0),
                        " >= ".join(f"{k} {v:.2f}%" for k, v in cumulative.items()))
    return {
        "suite": "autoattack",
        "accuracy": {"clean": cumulative["clean"], "autoattack": cumulative[STANDARD_ATTACKS[-1]]},
        "autoattack_cumulative": cumulative,
        "robust_per_sample": result.robust.cpu().int().tolist(),
        "attacks": {"autoattack": {"library": "pyautoattack", "version": "standard", "eps": eps,
                                   "attacks": list(STANDARD_ATTACKS)}},
        "sanity": [check.to_dict()],
    }
