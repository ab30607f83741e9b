"""Networks built from a genotype, for training from scratch (DARTS ``NetworkCIFAR`` layout).

``dual=True`` puts dual-branch cells (normal + robust, fused) at the normal
positions; ``dual=False`` is the classic single-cell DARTS network.  Paper
settings: 12 positions (10 dual-branch + 2 reduction cells) at 32 channels; the
published DARTS-style baselines use 20 single cells at 36 channels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .batchnorm import BatchNorm2d
from .cells import Cell, DualBranchCell
from .conv import Conv2d
from .fusion import FUSIONS
from .genotype import Genotype
from .normalize import CIFAR10_MEAN, CIFAR10_STD, Normalize

__all__ = ["NetworkConfig", "GenotypeNetwork", "AuxiliaryHead"]


@dataclass
class NetworkConfig:
    """Shape of a derived network (see module docstring for the paper's values)."""

    channels: int = 32
    n_cells: int = 12
    n_classes: int = 10
    dual: bool = True
    fusion: str = "eca"
    auxiliary: bool = False
    drop_path_prob: float = 0.0
    stem_multiplier: int = 3
    mean: tuple[float, ...] = field(default=CIFAR10_MEAN)
    std: tuple[float, ...] = field(default=CIFAR10_STD)

    def __post_init__(self) -> None:
        if self.n_cells < 3:
            raise ValueError(f"n_cells must be at least 3, got {self.n_cells}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {self.fusion!r}; choose one of {list(FUSIONS)}")
        if not 0.0 <= self.drop_path_prob < 1.0:
            raise ValueError(f"drop_path_prob must lie in [0, 1), got {self.drop_path_prob}")


class AuxiliaryHead(nn.Module):
    """DARTS auxiliary classifier on the 8x8 features after the second reduction."""

    def __init__(self, channels: int, n_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            Conv2d(channels, 128, 1, bias=False),
            BatchNorm2d(128),
            nn.ReLU(inplace=True),
            Conv2d(128, 768, 2, bias=False),
            BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class GenotypeNetwork(nn.Module):
    """A CIFAR-style network from a genotype.

    ``forward`` returns logits; in training mode with ``auxiliary=True`` it returns
    ``(logits, aux_logits)``.  Set ``drop_path_prob`` on the instance to schedule it.
    """

    def __init__(self, genotype: Genotype, config: NetworkConfig | None = None) -> None:
        super().__init__()
        self.genotype = genotype
        self.config = cfg = config or NetworkConfig()
        if cfg.dual and not genotype.is_dual:
            raise ValueError("dual=True needs a genotype with a robust cell; use dual=False for DARTS genotypes")
        self.drop_path_prob = cfg.drop_path_prob
        self.normalize = Normalize(cfg.mean, cfg.std)
        c = cfg.channels
        c_curr = cfg.stem_multiplier * c
        self.stem = nn.Sequential(Conv2d(3, c_curr, 3, padding=1, bias=False), BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, c
        self.cells = nn.ModuleList()
        self.reduction_positions = (cfg.n_cells // 3, 2 * cfg.n_cells // 3)
        reduction_prev = False
        self.aux_position = self.reduction_positions[1]
        aux_channels = 0
        for i in range(cfg.n_cells):
            reduction = i in self.reduction_positions
            if reduction:
                c_curr *= 2
                cell: nn.Module = Cell(genotype.reduce, genotype.reduce_concat, c_pp, c_p, c_curr, True,
                                       reduction_prev)
            elif cfg.dual:
                cell = DualBranchCell(genotype, c_pp, c_p, c_curr, reduction_prev, cfg.fusion)
            else:
                cell = Cell(genotype.normal, genotype.normal_concat, c_pp, c_p, c_curr, False, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, cell.out_channels
            if i == self.aux_position:
                aux_channels = c_p
        self.auxiliary_head = AuxiliaryHead(aux_channels, cfg.n_classes) if cfg.auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, cfg.n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        s0 = s1 = self.stem(self.normalize(x))
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_position and self.auxiliary_head is not None and self.training:
                aux = self.auxiliary_head(s1)
        logits = self.classifier(self.global_pooling(s1).flatten(1))
        return (logits, aux) if aux is not None else logits
