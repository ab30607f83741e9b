"""The common attack interface: ``attack(model, x, y) -> x_adv``."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from ..threat import ThreatModel

__all__ = ["Attack", "project", "predict"]


class Attack(ABC):
    """An attack under a :class:`~advbench.ThreatModel`.

    ``attack(model, x, y)`` returns adversarial images in the eps-ball around ``x``
    and in [0, 1].  Attacks never change the model's train/eval mode; evaluation
    suites put models in eval mode first.  ``seed`` makes random starts
    reproducible without touching the global generator.
    """

    name: str = "attack"

    def __init__(self, threat: ThreatModel, seed: int = 0) -> None:
        self.threat = threat
        self.seed = seed

    @abstractmethod
    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Adversarial versions of ``x`` (labels ``y``)."""

    def _generator(self, device: torch.device) -> torch.Generator:
        g = torch.Generator(device=device)
        g.manual_seed(self.seed)
        return g


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Clip into the L-infinity ball of radius eps around x, then into [0, 1]."""
    return torch.clamp(torch.min(torch.max(x_adv, x - eps), x + eps), 0.0, 1.0)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Predicted labels, batched."""
    return torch.cat([model(x[i : i + batch_size]).argmax(1) for i in range(0, x.shape[0], batch_size)])
