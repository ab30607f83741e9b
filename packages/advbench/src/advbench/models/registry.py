"""Architecture registry, extensible by other packages through the ``advbench.models`` entry points.

A builder is any callable ``builder(num_classes=..., **kwargs) -> nn.Module`` that
returns a classifier on *normalised* inputs; :class:`Classifier` adds the
normalisation so every model advbench handles takes images in [0, 1].  Another
package registers builders in its ``pyproject.toml``::

    [project.entry-points."advbench.models"]
    rdnas_genotype = "rdnas_space.advbench_models:build_genotype_network"
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any

import torch
from torch import nn

__all__ = ["register_model", "build_model", "list_models", "Classifier", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "advbench.models"
Builder = Callable[..., nn.Module]
_REGISTRY: dict[str, Builder] = {}
_ENTRY_POINTS_LOADED = False


def register_model(name: str) -> Callable[[Builder], Builder]:
    """Decorator registering ``builder`` under ``name``."""

    def decorate(builder: Builder) -> Builder:
        _REGISTRY[name] = builder
        return builder

    return decorate


def _load_entry_points() -> None:
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in _REGISTRY:
            _REGISTRY[ep.name] = ep.load()


def list_models() -> list[str]:
    """Names of every registered architecture (built-in and from entry points)."""
    _load_entry_points()
    return sorted(_REGISTRY)


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the bare network registered as ``name``.

    Raises:
        ValueError: for an unknown name (the message lists the known ones) or bad arguments.
    """
    if name not in _REGISTRY:
        _load_entry_points()
    if name not in _REGISTRY:
        raise ValueError(f"unknown architecture {name!r}; registered: {', '.join(list_models())}")
    try:
        return _REGISTRY[name](**kwargs)
    except TypeError as exc:
        raise ValueError(f"cannot build {name!r} with arguments {kwargs}: {exc}") from None


class Classifier(nn.Module):
    """``net((x - mean) / std)``: a network plus its input normalisation, taking images in [0, 1]."""

    def __init__(self, net: nn.Module, mean: Sequence[float] = (0.0, 0.0, 0.0),
                 std: Sequence[float] = (1.0, 1.0, 1.0)) -> None:
        super().__init__()
        if len(mean) != len(std) or any(s <= 0 for s in std):
            raise ValueError(f"mean and std need one entry per channel and std > 0, got {mean}, {std}")
        self.net = net
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)
