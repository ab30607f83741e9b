"""What every supernet shares: named alpha tensors, parameter groups, coalition evaluation."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

__all__ = ["SupernetBase"]


class SupernetBase(nn.Module):
    """Base of the DARTS-space and NAS-Bench-201 supernets.

    Subclasses register one ``alpha_<branch>`` parameter of shape ``[E, O]`` per
    name in :attr:`branches` and implement ``forward(x, masks)`` where ``masks``
    maps branch names to coalitions (bool ``[E, O]`` or per sample ``[B, E, O]``).
    """

    branches: tuple[str, ...] = ()
    primitives: tuple[str, ...] = ()
    """Candidate operation names: the columns of every alpha."""

    def alphas(self) -> dict[str, nn.Parameter]:
        """The alpha tensors by branch name."""
        return {b: getattr(self, f"alpha_{b}") for b in self.branches}

    def arch_parameters(self) -> list[nn.Parameter]:
        """Alpha tensors (the architecture parameter group)."""
        return list(self.alphas().values())

    def weight_parameters(self) -> Iterator[nn.Parameter]:
        """Every parameter that is not an alpha (the weight parameter group)."""
        ids = {id(p) for p in self.arch_parameters()}
        return (p for p in self.parameters() if id(p) not in ids)

    @property
    def alpha_shape(self) -> tuple[int, int]:
        """``(E, O)``: edges per cell and candidate operations per edge."""
        first = next(iter(self.alphas().values()))
        return int(first.shape[0]), int(first.shape[1])

    @property
    def n_players(self) -> int:
        """Players of one branch game: E * O (player ``e * O + o``)."""
        e, o = self.alpha_shape
        return e * o

    def _check_masks(self, masks: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
        masks = masks or {}
        unknown = set(masks) - set(self.branches)
        if unknown:
            raise ValueError(f"unknown branch(es) {sorted(unknown)}; this network has {list(self.branches)}")
        return masks

    def forward_coalitions(self, x: torch.Tensor, branch: str, coalitions: torch.Tensor) -> torch.Tensor:
        """Evaluate k coalitions of one branch in a single forward pass.

        ``x`` ``[B, C, H, W]`` is stacked once per coalition; ``coalitions`` is bool
        ``[k, E, O]`` or ``[k, E * O]``.  Other branches are unmasked.  Returns
        logits ``[k, B, classes]``.  Use in eval mode: in training mode BatchNorm
        statistics would mix the coalitions.
        """
        k = coalitions.shape[0]
        coal = coalitions.reshape((k, *self.alpha_shape)).to(device=x.device, dtype=torch.bool)
        batch = x.shape[0]
        stacked = x.repeat(k, 1, 1, 1)
        per_sample = coal.repeat_interleave(batch, dim=0)
        return self.forward(stacked, {branch: per_sample}).reshape(k, batch, -1)
