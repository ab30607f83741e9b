"""The white-box suite: the columns of the paper's Table 1 (clean, FGSM, PGD-20, PGD-100, APGD-CE, AutoAttack)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..attacks import FGSM, PGD, run_autoattack
from ..threat import ThreatModel
from .common import SanityCheck, accuracy_under, large_eps_check, model_size, non_increasing

__all__ = ["run_whitebox"]


def run_whitebox(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float = 8 / 255,
                 step: float = 2 / 255, seed: int = 0, batch_size: int = 128, autoattack: bool = True,
                 log_file: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Accuracy (%) under each attack of Table 1 at ``eps``, with params, FLOPs and sanity checks.

    PGD uses ``step`` (2/255 in the paper), a random start and one restart.
    APGD-CE and AutoAttack (standard) come from ``pyautoattack``, in one cascade: APGD-CE's accuracy is the
    cascade's after its first attack.  ``autoattack=False`` skips both (they dominate the cost on CPU).
    """
    model.eval()
    base = ThreatModel(eps=eps, step=step, steps=20)
    attacks: dict[str, dict[str, Any]] = {
        "clean": {},
        "fgsm": ThreatModel(eps=eps, step=eps, steps=1, random_start=False).to_dict(),
        "pgd20": base.to_dict(),
        "pgd100": base.with_(steps=100).to_dict(),
    }
    acc: dict[str, float] = {
        "clean": accuracy_under(model, x, y, None, batch_size, "clean", progress),
        "fgsm": accuracy_under(model, x, y, FGSM(base, seed), batch_size, "FGSM", progress),
        "pgd20": accuracy_under(model, x, y, PGD(base, seed), batch_size, "PGD-20", progress),
        "pgd100": accuracy_under(model, x, y, PGD(base.with_(steps=100), seed), batch_size, "PGD-100", progress),
    }
    cumulative: dict[str, float] = {}
    if autoattack:
        # APGD-CE alone is the cascade's first stage (same seed, same samples): its number is read from there
        aa = run_autoattack(model, x, y, eps, seed=seed, batch_size=batch_size, log_file=log_file)
        acc["apgd_ce"] = 100.0 * aa.cumulative["apgd-ce"]
        acc["autoattack"] = 100.0 * int(aa.robust.sum()) / len(aa.robust)
        cumulative = {k: 100.0 * v for k, v in aa.cumulative.items()}
        attacks["apgd_ce"] = {"library": "pyautoattack", "version": "standard", "attacks": ["apgd-ce"], "eps": eps}
        attacks["autoattack"] = {"library": "pyautoattack", "version": "standard",
                                 "attacks": list(aa.cumulative)[1:], "eps": eps}
    large_acc, large_check = large_eps_check(model, x, y, seed, batch_size, progress)
    checks = [
        SanityCheck("PGD-100 not above PGD-20", acc["pgd100"] <= acc["pgd20"],
                    f"PGD-100 {acc['pgd100']:.2f}% vs PGD-20 {acc['pgd20']:.2f}%"),
        SanityCheck("FGSM not below PGD", acc["fgsm"] >= acc["pgd20"],
                    f"FGSM {acc['fgsm']:.2f}% vs PGD-20 {acc['pgd20']:.2f}%"),
        SanityCheck("accuracy does not increase with eps",
                    non_increasing([acc["clean"], acc["pgd20"], large_acc], 0.0),
                    f"clean {acc['clean']:.2f}% >= PGD-20 {acc['pgd20']:.2f}% >= PGD-20@64/255 {large_acc:.2f}%"),
        large_check,
    ]
    if autoattack:
        checks.append(SanityCheck("AutoAttack not above APGD-CE", acc["autoattack"] <= acc["apgd_ce"],
                                  f"AutoAttack {acc['autoattack']:.2f}% vs APGD-CE {acc['apgd_ce']:.2f}%"))
    return {
        "suite": "whitebox",
        "accuracy": acc,
        "autoattack_cumulative": cumulative,
        "attacks": attacks,
        "size": model_size(model, (1, *x.shape[1:])),
        "sanity": [c.to_dict() for c in checks],
    }
