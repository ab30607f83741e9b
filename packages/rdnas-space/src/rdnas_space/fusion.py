"""Fusion of the two branches of a dual-branch cell (eqs. 7-11) and its ablation variants.

All variants first reduce the concatenated branches ``H`` (2C channels) with
``U = Conv1x1(ReLU(H))`` (eq. 8) and then re-weight ``U``:

- ``eca`` (default): ``w = sigmoid(Conv1d_k(GAP(U)))``, ``F = w * U`` (eqs. 9-11), with
  ECA's adaptive odd kernel size ``k`` (:func:`eca_kernel_size`);
- ``none``: ``F = U`` (plain 1x1 fusion);
- ``cbam``: CBAM channel attention (shared MLP, reduction 16, on average- and
  max-pooled descriptors) then spatial attention (k = 7);
- ``ecam``: ECA channel attention then spatial attention with k = 5.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .conv import Conv2d

__all__ = ["FUSIONS", "Fusion", "ECA", "ChannelAttention", "SpatialAttention", "eca_kernel_size"]

FUSIONS = ("eca", "none", "cbam", "ecam")


def eca_kernel_size(channels: int, gamma: int = 2, b: int = 1) -> int:
    """ECA's adaptive kernel size ``k = |log2(C) / gamma + b / gamma|``, made odd (upwards)."""
    t = int(abs(math.log2(channels) / gamma + b / gamma))
    return t if t % 2 else t + 1


class ECA(nn.Module):
    """Efficient Channel Attention: GAP, 1-d conv across channels, sigmoid."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.kernel_size = eca_kernel_size(channels)
        self.conv = nn.Conv1d(1, 1, self.kernel_size, padding=self.kernel_size // 2, bias=False)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        z = u.mean(dim=(2, 3))  # GAP, eq. 9: [B, C]
        w = torch.sigmoid(self.conv(z.unsqueeze(1))).squeeze(1)  # eq. 10
        return u * w[:, :, None, None]  # eq. 11


class ChannelAttention(nn.Module):
    """CBAM channel attention: shared MLP over average- and max-pooled descriptors."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(Conv2d(channels, hidden, 1, bias=False), nn.ReLU(),
                                 Conv2d(hidden, channels, 1, bias=False))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(u.mean(dim=(2, 3), keepdim=True))
        mx = self.mlp(u.amax(dim=(2, 3), keepdim=True))
        return u * torch.sigmoid(avg + mx)


class SpatialAttention(nn.Module):
    """Spatial attention: conv over the channel-wise mean and max maps, sigmoid."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        maps = torch.cat([u.mean(dim=1, keepdim=True), u.amax(dim=1, keepdim=True)], dim=1)
        return u * torch.sigmoid(self.conv(maps))


class Fusion(nn.Module):
    """Fuse ``H = [H_norm; H_rob]`` (``2C`` channels) into ``C`` channels.

    Args:
        kind: one of :data:`FUSIONS`.
        channels: C, the output channels (input has 2C).
    """

    def __init__(self, kind: str, channels: int) -> None:
        super().__init__()
        if kind not in FUSIONS:
            raise ValueError(f"unknown fusion {kind!r}; choose one of {list(FUSIONS)}")
        self.kind = kind
        self.reduce = nn.Sequential(nn.ReLU(), Conv2d(2 * channels, channels, 1, bias=False))  # eq. 8
        attention: list[nn.Module] = {
            "eca": [ECA(channels)],
            "none": [],
            "cbam": [ChannelAttention(channels, 16), SpatialAttention(7)],
            "ecam": [ECA(channels), SpatialAttention(5)],
        }[kind]
        self.attention = nn.Sequential(*attention)

    def forward(self, h_norm: torch.Tensor, h_rob: torch.Tensor) -> torch.Tensor:
        return self.attention(self.reduce(torch.cat([h_norm, h_rob], dim=1)))
