"""FGSM (Goodfellow et al., 2015): one signed-gradient step of size eps."""

from __future__ import annotations

import torch
from torch import nn

from .base import Attack, project

__all__ = ["FGSM"]


class FGSM(Attack):
    """``x + eps * sign(grad_x CE(model(x), y))``, clipped to [0, 1] (no random start)."""

    name = "fgsm"

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = x.detach()
        delta = torch.zeros_like(x, requires_grad=True)
        loss = nn.functional.cross_entropy(model(x + delta), y)
        (grad,) = torch.autograd.grad(loss, delta)
        return project(x + self.threat.eps * grad.sign(), x, self.threat.eps).detach()
