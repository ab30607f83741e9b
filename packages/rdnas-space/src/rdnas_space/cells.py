"""DARTS cells (search and derived) and the dual-branch cell (eqs. 6-11).

A DARTS cell takes the outputs of the two previous cells, has ``n_nodes``
intermediate nodes (4), where node ``i`` sums one edge from each earlier state
(so 2 + 3 + 4 + 5 = 14 edges), and outputs the channel concatenation of its
intermediate nodes.  Edges are numbered node by node, inputs in order:
edge 0 = s0->n0, 1 = s1->n0, 2 = s0->n1, 3 = s1->n1, 4 = n0->n1, ...
"""

from __future__ import annotations

import functools
import operator

import torch
from torch import nn

from .fusion import Fusion
from .genotype import Genotype
from .mixed import MixedOp
from .ops import FactorizedReduce, Identity, ReLUConvBN, build_op

__all__ = ["SearchCell", "DualBranchSearchCell", "Cell", "DualBranchCell", "n_edges", "edge_endpoints",
           "drop_path", "expand_groups", "group_sum", "is_grouped"]


def n_edges(n_nodes: int = 4) -> int:
    """Number of edges of a DARTS cell with ``n_nodes`` intermediate nodes (14 for 4)."""
    return sum(2 + i for i in range(n_nodes))


def edge_endpoints(n_nodes: int = 4) -> list[tuple[int, int]]:
    """``(source state, target node)`` of every edge; states 0, 1 are the inputs, 2.. the nodes."""
    return [(j, i + 2) for i in range(n_nodes) for j in range(2 + i)]


def _preprocess(c_pp: int, c_p: int, c: int, reduction_prev: bool, affine: bool) -> tuple[nn.Module, nn.Module]:
    pre0 = FactorizedReduce(c_pp, c, affine) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0, affine)
    return pre0, ReLUConvBN(c_p, c, 1, 1, 0, affine)


class SearchCell(nn.Module):
    """A DARTS search cell: every edge is a :class:`~rdnas_space.mixed.MixedOp`.

    Args:
        primitives: candidate operation names (alpha's columns).
        c_pp, c_p: channels of the two inputs; c: channels per node.
        reduction: whether this cell halves the resolution (stride 2 on input edges).
        reduction_prev: whether the previous cell did (s0 then needs a factorized reduce).
        n_nodes: intermediate nodes (4).
    """

    def __init__(self, primitives: tuple[str, ...], c_pp: int, c_p: int, c: int, reduction: bool,
                 reduction_prev: bool, n_nodes: int = 4) -> None:
        super().__init__()
        self.reduction, self.n_nodes = reduction, n_nodes
        self.preprocess0, self.preprocess1 = _preprocess(c_pp, c_p, c, reduction_prev, affine=False)
        self.edges = nn.ModuleList(
            MixedOp("darts", primitives, c, c, 2 if reduction and src < 2 else 1, affine=False)
            for src, _ in edge_endpoints(n_nodes)
        )
        self.out_channels = n_nodes * c

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor,
                mask: torch.Tensor | None = None, renormalize: bool = False) -> torch.Tensor:
        """``weights``: ``[E, O]`` softmax(alpha); ``mask``: None, bool ``[E, O]`` or ``[B, E, O]``."""
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        relus: list[torch.Tensor] = [torch.relu(s) for s in states]
        edge = 0
        for node in range(self.n_nodes):
            total = None
            for j, h in enumerate(states):
                m = None if mask is None else mask[..., edge, :]
                y = self.edges[edge](h, weights[edge], m, xr=relus[j], renormalize=renormalize)
                total = y if total is None else total + y
                edge += 1
            states.append(total)
            if node < self.n_nodes - 1:  # the last node feeds no edge
                relus.append(torch.relu(total))
        return torch.cat(states[2:], dim=1)

    def forward_groups(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor,
                       group_mask: torch.Tensor | None, base: int, renormalize: bool = False) -> torch.Tensor:
        """Evaluate k coalitions at once on states that are shared (batch ``base``) or grouped (``k * base``).

        ``group_mask`` is bool ``[k, E, O]``, one coalition per group, or None (this
        cell is not masked).  An edge reading a shared state runs each present
        operation once and mixes per coalition (:meth:`MixedOp.forward_groups`);
        an edge reading a grouped state uses per-sample masks.  The output stays
        shared only when nothing in the cell depends on the coalition.
        """
        k = group_mask.shape[0] if group_mask is not None else max(s0.shape[0], s1.shape[0]) // base
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        relus: list[torch.Tensor] = [torch.relu(h) for h in states]
        edge = 0
        for node in range(self.n_nodes):
            terms = []
            for j, h in enumerate(states):
                op = self.edges[edge]
                if group_mask is None:
                    y = op(h, weights[edge], None, xr=relus[j], renormalize=renormalize)
                elif is_grouped(h, base, k):
                    per_sample = group_mask[:, edge].repeat_interleave(base, dim=0)
                    y = op(h, weights[edge], per_sample, xr=relus[j], renormalize=renormalize)
                else:
                    y = op.forward_groups(h, weights[edge], group_mask[:, edge], xr=relus[j], renormalize=renormalize)
                terms.append(y)
                edge += 1
            states.append(group_sum(terms, base, k))
            if node < self.n_nodes - 1:
                relus.append(torch.relu(states[-1]))
        nodes = states[2:]
        if any(is_grouped(h, base, k) for h in nodes):
            nodes = [h if is_grouped(h, base, k) else expand_groups(h, k) for h in nodes]
        return torch.cat(nodes, dim=1)


def is_grouped(h: torch.Tensor, base: int, k: int) -> bool:
    """Whether ``h`` holds one batch per coalition (``k * base`` samples) rather than a shared one."""
    return k > 1 and h.shape[0] == k * base


def expand_groups(h: torch.Tensor, k: int) -> torch.Tensor:
    """Repeat a shared batch ``[B, ...]`` once per coalition: ``[k * B, ...]``."""
    return h.repeat(k, *([1] * (h.dim() - 1)))


def group_sum(terms: list[torch.Tensor], base: int, k: int) -> torch.Tensor:
    """Sum tensors that are shared ``[B, ...]`` or grouped ``[k * B, ...]``, broadcasting the shared ones."""
    grouped = [t for t in terms if is_grouped(t, base, k)]
    shared = [t for t in terms if not is_grouped(t, base, k)]
    total_shared = functools.reduce(operator.add, shared) if shared else None
    if not grouped:
        return total_shared
    total = functools.reduce(operator.add, grouped)
    if total_shared is None:
        return total
    return (total.view(k, base, *total.shape[1:]) + total_shared.unsqueeze(0)).reshape(total.shape)


class DualBranchSearchCell(nn.Module):
    """Normal and robust search cells on the same inputs, fused (eqs. 6-11)."""

    def __init__(self, primitives: tuple[str, ...], c_pp: int, c_p: int, c: int, reduction_prev: bool,
                 fusion: str = "eca", n_nodes: int = 4) -> None:
        super().__init__()
        self.normal = SearchCell(primitives, c_pp, c_p, c, False, reduction_prev, n_nodes)
        self.robust = SearchCell(primitives, c_pp, c_p, c, False, reduction_prev, n_nodes)
        self.out_channels = self.normal.out_channels
        self.fusion = Fusion(fusion, self.out_channels)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, w_normal: torch.Tensor, w_robust: torch.Tensor,
                mask_normal: torch.Tensor | None = None, mask_robust: torch.Tensor | None = None,
                renormalize: bool = False) -> torch.Tensor:
        h_norm = self.normal(s0, s1, w_normal, mask_normal, renormalize)
        h_rob = self.robust(s0, s1, w_robust, mask_robust, renormalize)
        return self.fusion(h_norm, h_rob)

    def forward_groups(self, s0: torch.Tensor, s1: torch.Tensor, w_normal: torch.Tensor, w_robust: torch.Tensor,
                       mask_normal: torch.Tensor | None, mask_robust: torch.Tensor | None, base: int,
                       renormalize: bool = False) -> torch.Tensor:
        """:meth:`SearchCell.forward_groups` on both branches, then fusion (per coalition if either branch is)."""
        h_norm = self.normal.forward_groups(s0, s1, w_normal, mask_normal, base, renormalize)
        h_rob = self.robust.forward_groups(s0, s1, w_robust, mask_robust, base, renormalize)
        if h_norm.shape[0] < h_rob.shape[0]:
            h_norm = expand_groups(h_norm, h_rob.shape[0] // base)
        elif h_rob.shape[0] < h_norm.shape[0]:
            h_rob = expand_groups(h_rob, h_norm.shape[0] // base)
        return self.fusion(h_norm, h_rob)


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples with probability ``drop_prob`` and rescale the rest (DARTS)."""
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


class Cell(nn.Module):
    """A derived DARTS cell: two chosen operations per node, from a genotype.

    Args:
        ops: ``[(op name, input state)]``, two per node (the genotype's list).
        concat: states concatenated at the output.
    """

    def __init__(self, ops: list[tuple[str, int]], concat: list[int], c_pp: int, c_p: int, c: int,
                 reduction: bool, reduction_prev: bool) -> None:
        super().__init__()
        if len(ops) % 2:
            raise ValueError(f"a genotype cell needs two operations per node, got {len(ops)}")
        self.reduction = reduction
        self.preprocess0, self.preprocess1 = _preprocess(c_pp, c_p, c, reduction_prev, affine=True)
        self.indices = [idx for _, idx in ops]
        self.concat = list(concat)
        self.ops = nn.ModuleList(
            build_op("darts", name, c, c, 2 if reduction and idx < 2 else 1, affine=True) for name, idx in ops
        )
        self.out_channels = len(self.concat) * c

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for k in range(len(self.ops) // 2):
            total = 0
            for e in (2 * k, 2 * k + 1):
                h = self.ops[e](states[self.indices[e]])
                if self.training and drop_prob > 0 and not isinstance(self.ops[e], Identity):
                    h = drop_path(h, drop_prob)
                total = total + h
            states.append(total)
        return torch.cat([states[i] for i in self.concat], dim=1)


class DualBranchCell(nn.Module):
    """A derived dual-branch cell: normal and robust genotype cells, fused."""

    def __init__(self, genotype: Genotype, c_pp: int, c_p: int, c: int, reduction_prev: bool,
                 fusion: str = "eca") -> None:
        super().__init__()
        if genotype.robust is None:
            raise ValueError("a dual-branch network needs a genotype with a robust cell")
        self.normal = Cell(genotype.normal, genotype.normal_concat, c_pp, c_p, c, False, reduction_prev)
        self.robust = Cell(genotype.robust, genotype.robust_concat, c_pp, c_p, c, False, reduction_prev)
        if self.normal.out_channels != self.robust.out_channels:
            raise ValueError("normal and robust cells must concatenate the same number of nodes")
        self.out_channels = self.normal.out_channels
        self.fusion = Fusion(fusion, self.out_channels)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        return self.fusion(self.normal(s0, s1, drop_prob), self.robust(s0, s1, drop_prob))
