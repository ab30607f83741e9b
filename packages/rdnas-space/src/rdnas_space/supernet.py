"""The DARTS-space search network (supernet) with dual-branch normal cells and coalition masks.

Layout: stem (3x3 conv, ``stem_multiplier * C`` channels), then ``n_cells`` cell
positions with reductions at ``n_cells // 3`` and ``2 * n_cells // 3`` (channels
double there), global average pooling and a linear classifier.  Normal positions
hold dual-branch cells (normal and robust branches fused by attention) or, with
``dual=False``, plain DARTS cells.  The paper's network is ``n_cells=12`` (10
dual-branch + 2 reduction cells) at ``C=32``.

Three alpha tensors of shape ``[E, O]`` (E = 14 edges, O = 8 operations):
``normal``, ``reduce`` and ``robust`` (the last only in the dual space).  A
*coalition* of a branch is a boolean mask over its (edge, op) players, shaped
``[E, O]`` for the whole batch or ``[B, E, O]`` per sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .base import SupernetBase
from .batchnorm import BatchNorm2d
from .cells import DualBranchSearchCell, SearchCell, edge_endpoints, expand_groups, n_edges
from .conv import Conv2d
from .fusion import FUSIONS
from .genotype import Genotype
from .normalize import CIFAR10_MEAN, CIFAR10_STD, Normalize
from .ops import DARTS_PRIMITIVES

__all__ = ["SupernetConfig", "Supernet", "derive_cell", "BRANCHES"]

BRANCHES = ("normal", "reduce", "robust")


@dataclass
class SupernetConfig:
    """Shape of a search network.

    Attributes:
        channels: initial channels C.
        n_cells: cell positions including the two reduction cells.
        n_classes: classifier outputs.
        dual: dual-branch normal cells (False: single-cell DARTS ablation).
        fusion: ``eca``, ``none``, ``cbam`` or ``ecam`` (dual only).
        n_nodes: intermediate nodes per cell.
        stem_multiplier: stem channels = stem_multiplier * C.
        primitives: candidate operations (alpha's columns).
        renormalize_masked: rescale the weights of the present ops to sum 1 under a mask.
        mean, std: input normalisation applied inside the network (inputs are in [0, 1]).
    """

    channels: int = 16
    n_cells: int = 8
    n_classes: int = 10
    dual: bool = True
    fusion: str = "eca"
    n_nodes: int = 4
    stem_multiplier: int = 3
    primitives: tuple[str, ...] = DARTS_PRIMITIVES
    renormalize_masked: bool = False
    mean: tuple[float, ...] = field(default=CIFAR10_MEAN)
    std: tuple[float, ...] = field(default=CIFAR10_STD)

    def __post_init__(self) -> None:
        if self.n_cells < 3:
            raise ValueError(f"n_cells must be at least 3 (two of them are reductions), got {self.n_cells}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {self.fusion!r}; choose one of {list(FUSIONS)}")
        self.primitives = tuple(self.primitives)
        unknown = [p for p in self.primitives if p not in DARTS_PRIMITIVES]
        if unknown:
            raise ValueError(f"unknown DARTS primitives {unknown}; known: {list(DARTS_PRIMITIVES)}")


class Supernet(SupernetBase):
    """DARTS-space supernet with named alpha tensors and per-branch coalition masks."""

    def __init__(self, config: SupernetConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or SupernetConfig()
        c = cfg.channels
        self.normalize = Normalize(cfg.mean, cfg.std)
        c_curr = cfg.stem_multiplier * c
        self.stem = nn.Sequential(Conv2d(3, c_curr, 3, padding=1, bias=False), BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, c
        self.cells = nn.ModuleList()
        self.reduction_positions = (cfg.n_cells // 3, 2 * cfg.n_cells // 3)
        reduction_prev = False
        for i in range(cfg.n_cells):
            reduction = i in self.reduction_positions
            if reduction:
                c_curr *= 2
                cell: nn.Module = SearchCell(cfg.primitives, c_pp, c_p, c_curr, True, reduction_prev, cfg.n_nodes)
            elif cfg.dual:
                cell = DualBranchSearchCell(cfg.primitives, c_pp, c_p, c_curr, reduction_prev, cfg.fusion,
                                            cfg.n_nodes)
            else:
                cell = SearchCell(cfg.primitives, c_pp, c_p, c_curr, False, reduction_prev, cfg.n_nodes)
            self.cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, cell.out_channels
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, cfg.n_classes)
        shape = (n_edges(cfg.n_nodes), len(cfg.primitives))
        self.alpha_normal = nn.Parameter(1e-3 * torch.randn(shape))
        self.alpha_reduce = nn.Parameter(1e-3 * torch.randn(shape))
        self.alpha_robust = nn.Parameter(1e-3 * torch.randn(shape)) if cfg.dual else None

    @property
    def primitives(self) -> tuple[str, ...]:  # type: ignore[override]
        """Candidate operations (alpha's columns)."""
        return self.config.primitives

    @property
    def branches(self) -> tuple[str, ...]:  # type: ignore[override]
        """Branch names of this network: ``normal``, ``reduce`` and, if dual, ``robust``."""
        return BRANCHES if self.config.dual else BRANCHES[:2]

    def forward(self, x: torch.Tensor, masks: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Logits for images ``x`` in [0, 1]; ``masks`` maps branch names to coalitions."""
        masks = self._check_masks(masks)
        weights = {b: torch.softmax(a, dim=-1) for b, a in self.alphas().items()}
        renorm = self.config.renormalize_masked
        s0 = s1 = self.stem(self.normalize(x))
        for cell in self.cells:
            if isinstance(cell, DualBranchSearchCell):
                out = cell(s0, s1, weights["normal"], weights["robust"], masks.get("normal"), masks.get("robust"),
                           renorm)
            elif cell.reduction:
                out = cell(s0, s1, weights["reduce"], masks.get("reduce"), renorm)
            else:
                out = cell(s0, s1, weights["normal"], masks.get("normal"), renorm)
            s0, s1 = s1, out
        return self.classifier(self.global_pooling(s1).flatten(1))

    def forward_coalitions(self, x: torch.Tensor, branch: str, coalitions: torch.Tensor) -> torch.Tensor:
        """Evaluate k coalitions of one branch in one pass, sharing all coalition-independent work.

        Same result as stacking ``x`` once per coalition with per-sample masks
        (:meth:`SupernetBase.forward_coalitions`), but the stem, every cell before
        the first masked one, and every operation whose input does not yet depend
        on the coalition run once on the B images instead of k times.
        ``coalitions``: bool ``[k, E, O]`` or ``[k, E * O]``; returns ``[k, B, classes]``.
        """
        if branch not in self.branches:
            raise ValueError(f"unknown branch {branch!r}; this network has {list(self.branches)}")
        k, base = coalitions.shape[0], x.shape[0]
        masks = {branch: coalitions.reshape((k, *self.alpha_shape)).to(device=x.device, dtype=torch.bool)}
        weights = {b: torch.softmax(a, dim=-1) for b, a in self.alphas().items()}
        renorm = self.config.renormalize_masked
        s0 = s1 = self.stem(self.normalize(x))
        for cell in self.cells:
            if isinstance(cell, DualBranchSearchCell):
                out = cell.forward_groups(s0, s1, weights["normal"], weights["robust"], masks.get("normal"),
                                          masks.get("robust"), base, renorm)
            else:
                name = "reduce" if cell.reduction else "normal"
                out = cell.forward_groups(s0, s1, weights[name], masks.get(name), base, renorm)
            s0, s1 = s1, out
        if s1.shape[0] == base and k > 1:
            s1 = expand_groups(s1, k)
        return self.classifier(self.global_pooling(s1).flatten(1)).reshape(k, base, -1)

    def derive(self) -> Genotype:
        """Derive the genotype by the DARTS rule (eq. 14, NOTES.md) from softmax(alpha)."""
        return self.derive_from({b: torch.softmax(a.detach(), -1) for b, a in self.alphas().items()})

    def derive_from(self, weights: dict[str, torch.Tensor]) -> Genotype:
        """The DARTS rule on other per-branch ``[E, O]`` weights than softmax(alpha) (mean scores, for instance)."""
        prims = self.config.primitives
        concat = list(range(2, 2 + self.config.n_nodes))
        cells = {b: derive_cell(weights[b], prims, self.config.n_nodes) for b in self.branches}
        return Genotype(
            normal=cells["normal"], normal_concat=concat, reduce=cells["reduce"], reduce_concat=concat,
            robust=cells.get("robust"), robust_concat=concat if "robust" in cells else None,
        )


def derive_cell(weights: torch.Tensor, primitives: tuple[str, ...], n_nodes: int = 4) -> list[tuple[str, int]]:
    """DARTS derive rule on one cell's op weights ``[E, O]``.

    For every intermediate node keep the two incoming edges whose best non-``none``
    operation has the highest weight, and on each the argmax operation excluding
    ``none``.  As in DARTS, the stronger edge is listed first; ties go to the
    earlier edge / operation.
    """
    w = weights.detach().cpu().double().clone()
    if "none" in primitives:
        w[:, primitives.index("none")] = -float("inf")
    ends = edge_endpoints(n_nodes)
    genes: list[tuple[str, int]] = []
    for node in range(n_nodes):
        rows = [e for e, (_, dst) in enumerate(ends) if dst == node + 2]
        for e in sorted(rows, key=lambda r: -float(w[r].max()))[:2]:
            op = int(torch.argmax(w[e]))
            genes.append((primitives[op], ends[e][0]))
    return genes
