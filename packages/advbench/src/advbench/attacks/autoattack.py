"""APGD-CE and AutoAttack (Croce & Hein, 2020) through the ``pyautoattack`` package.

The adapter always passes ``eps`` and the model's device, puts the model in eval
mode, routes the library's ``auto-attack`` logger where the caller wants it, and
records what the library does not return: per-sample robustness and the
cumulative robust accuracy after each attack of the sequence.  Attacks are run
one at a time on the samples still robust (exactly AutoAttack's cascade), one
batch at a time so that a batch's result does not depend on the others (and a
sharded run gives the same per-sample results); the library's state-file resume
is not used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..distributed import all_gather_array, batch_block, current_group
from ..threat import ThreatModel
from .base import Attack, predict

__all__ = ["AutoAttackResult", "run_autoattack", "APGDCE", "AutoAttack", "STANDARD_ATTACKS"]

STANDARD_ATTACKS = ("apgd-ce", "apgd-t", "fab-t", "square")
"""The attacks of AutoAttack's standard version, in the order it runs them."""


@dataclass
class AutoAttackResult:
    """Worst-case images, per-sample robustness and accuracy after each attack of the cascade."""

    x_adv: torch.Tensor
    robust: torch.Tensor
    cumulative: dict[str, float] = field(default_factory=dict)


def _configure_logger(log_file: str | Path | None) -> logging.Logger:
    """Route the library's ``auto-attack`` logger to ``log_file``; it reports its progress at DEBUG level."""
    logger = logging.getLogger("auto-attack")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    for handler in list(logger.handlers):
        if getattr(handler, "_advbench", False):
            logger.removeHandler(handler)
    handler: logging.Handler = logging.FileHandler(log_file) if log_file else logging.NullHandler()
    handler._advbench = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(asctime)s auto-attack %(levelname)s %(message)s"))
    logger.addHandler(handler)
    return logger


def run_autoattack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    attacks: tuple[str, ...] = STANDARD_ATTACKS,
    seed: int = 0,
    batch_size: int = 256,
    log_file: str | Path | None = None,
) -> AutoAttackResult:
    """Run AutoAttack's standard-version attacks in ``attacks`` as a cascade.

    Args:
        model: classifier on images in [0, 1] (put in eval mode here).
        x, y: images and labels (on the model's device or movable there).
        eps: L-infinity radius.
        attacks: subset of :data:`STANDARD_ATTACKS`, in cascade order (``("apgd-ce",)`` is APGD-CE).
        seed: the library's seed (its attacks draw random restarts from it).
        batch_size: attack batch size.
        log_file: where the ``auto-attack`` logger writes (default: nowhere).
    """
    from pyautoattack import AutoAttack as _LibAutoAttack

    unknown = [a for a in attacks if a not in STANDARD_ATTACKS]
    if unknown:
        raise ValueError(f"unknown AutoAttack attack(s) {unknown}; choose from {list(STANDARD_ATTACKS)}")
    model.eval()
    device = next(model.parameters()).device
    x, y = x.to(device), y.to(device)
    _configure_logger(log_file)
    adversary = _LibAutoAttack(model, eps=float(eps), norm="Linf", version="standard", device=device, seed=seed)
    adversary.verbose = log_file is not None
    group = current_group()
    lo, hi = (0, len(y)) if group is None else batch_block(len(y), batch_size, group)
    robust = torch.zeros(0, dtype=torch.bool, device=device)
    x_adv, counts = [x[:0]], torch.zeros(len(attacks) + 1, dtype=torch.long)
    for start in range(lo, hi, batch_size):  # one cascade per batch: a batch's result never depends on another
        xb, yb = x[start : min(start + batch_size, hi)], y[start : min(start + batch_size, hi)]
        rb, xa = _cascade(model, adversary, xb, yb, attacks, batch_size, counts)
        robust, x_adv = torch.cat([robust, rb]), [*x_adv, xa]
    x_all = torch.cat(x_adv)
    if group is not None:
        robust = torch.from_numpy(all_gather_array(robust, group)).to(device)
        x_all = torch.from_numpy(all_gather_array(x_all, group)).to(device)
        counts = torch.from_numpy(all_gather_array(counts[None], group).sum(0))
    n = max(len(y), 1)
    cumulative = {name: int(c) / n for name, c in zip(("clean", *attacks), counts.tolist(), strict=True)}
    return AutoAttackResult(x_adv=x_all, robust=robust, cumulative=cumulative)


def _cascade(model: nn.Module, adversary: object, x: torch.Tensor, y: torch.Tensor, attacks: tuple[str, ...],
             batch_size: int, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """AutoAttack's cascade on one batch: each attack runs on the images still robust; adds the number of
    images robust before the first and after each attack to ``counts``."""
    robust = predict(model, x) == y
    counts[0] += int(robust.sum())
    x_adv = x.clone()
    for k, name in enumerate(attacks, start=1):
        idx = robust.nonzero().squeeze(1)
        if idx.numel() > 0:
            adversary.attacks_to_run = [name]  # type: ignore[attr-defined]
            adv, _ = adversary.run_standard_evaluation(x[idx], y[idx], batch_size=batch_size)  # type: ignore[attr-defined]
            adv = adv.to(x.device)
            fooled = predict(model, adv) != y[idx]
            x_adv[idx[fooled]] = adv[fooled]
            robust[idx[fooled]] = False
        counts[k] += int(robust.sum())
    return robust, x_adv


class APGDCE(Attack):
    """APGD with the cross-entropy loss (AutoAttack's first attack; 100 iterations)."""

    name = "apgd-ce"
    attacks: tuple[str, ...] = ("apgd-ce",)

    def __init__(self, threat: ThreatModel, seed: int = 0, batch_size: int = 256,
                 log_file: str | Path | None = None) -> None:
        super().__init__(threat, seed)
        self.batch_size = batch_size
        self.log_file = log_file

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> AutoAttackResult:
        return run_autoattack(model, x, y, self.threat.eps, attacks=self.attacks, seed=self.seed,
                              batch_size=self.batch_size, log_file=self.log_file)

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.perturb(model, x, y).x_adv


class AutoAttack(APGDCE):
    """AutoAttack, standard version: APGD-CE, APGD-T, FAB-T, Square."""

    name = "autoattack"
    attacks = STANDARD_ATTACKS
