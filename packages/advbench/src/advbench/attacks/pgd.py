"""PGD (Madry et al.): projected signed-gradient ascent on the cross-entropy in an L-infinity ball.

Two variants:

- :class:`PGD`, for evaluation: uniform random start, any number of restarts,
  per-sample tracking of the worst case over iterates and restarts, and samples
  drop out as soon as they are misclassified (their adversarial example is
  kept), so the cost falls as the attack succeeds.  With the same seed, more
  steps or more restarts can only lower robust accuracy: the trajectories agree
  up to the shorter schedule and every iterate is checked.
- :func:`pgd_train`, for adversarial training and the search's inner loop: the
  last iterate for the whole batch, in whatever mode the model is in.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..threat import ThreatModel
from .base import Attack, project

__all__ = ["PGD", "PGDResult", "pgd_train"]


@dataclass
class PGDResult:
    """Adversarial images and, per sample, whether the model still classifies it correctly."""

    x_adv: torch.Tensor
    robust: torch.Tensor
    n_gradients: int


def _start(x: torch.Tensor, threat: ThreatModel, generator: torch.Generator | None) -> torch.Tensor:
    if not threat.random_start or threat.eps == 0:
        return x.clone()
    noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return torch.clamp(x + (2.0 * noise - 1.0) * threat.eps, 0.0, 1.0)


class PGD(Attack):
    """PGD-k with restarts, best-iterate tracking and early exit per sample."""

    name = "pgd"

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.perturb(model, x, y).x_adv

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> PGDResult:
        """Run the attack; returns the worst case found for every sample."""
        t = self.threat
        x = x.detach()
        generator = self._generator(x.device)
        x_best = x.clone()
        best_loss = torch.full((x.shape[0],), -float("inf"), device=x.device)
        with torch.no_grad():
            robust = model(x).argmax(1) == y
        n_grad = 0
        for _ in range(t.restarts):
            idx = robust.nonzero().squeeze(1)
            if idx.numel() == 0:
                break
            x0, y0 = x[idx], y[idx]
            x_adv = _start(x0, t, generator)
            for step in range(t.steps + 1):
                x_adv.requires_grad_(True)
                logits = model(x_adv)
                loss = nn.functional.cross_entropy(logits, y0, reduction="none")
                fooled = logits.argmax(1) != y0
                with torch.no_grad():
                    better = (loss > best_loss[idx]) | fooled
                    x_best[idx[better]] = x_adv[better].detach()
                    best_loss[idx[better]] = loss[better].detach()
                    robust[idx[fooled]] = False
                if step == t.steps:
                    break
                keep = ~fooled
                if not keep.any():
                    break
                (grad,) = torch.autograd.grad(loss[keep].sum(), x_adv)
                n_grad += int(keep.sum())
                with torch.no_grad():
                    idx, x0, y0 = idx[keep], x0[keep], y0[keep]
                    x_adv = project(x_adv.detach()[keep] + t.step * grad[keep].sign(), x0, t.eps)
        return PGDResult(x_adv=x_best, robust=robust, n_gradients=n_grad)


def pgd_train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Adversarial examples for training: the last PGD iterate for every sample.

    The model's mode is left as it is (DARTS-style search and AdvRush training
    craft in training mode).  Parameters receive no gradient from this call.
    """
    x = x.detach()
    x_adv = _start(x, threat, generator)
    for _ in range(threat.steps):
        x_adv.requires_grad_(True)
        loss = nn.functional.cross_entropy(model(x_adv), y)
        (grad,) = torch.autograd.grad(loss, x_adv)
        x_adv = project(x_adv.detach() + threat.step * grad.sign(), x, threat.eps)
    return x_adv.detach()
