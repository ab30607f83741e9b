"""The NAS-Bench-201 space: cells, the supernet, networks from architecture strings, conversions.

A cell has nodes 0..3; node ``i`` sums one operation on each earlier node, giving
six edges, numbered in the order of the architecture string
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``: (1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2).
The macro skeleton is the benchmark's: 3x3 stem (C = 16), three stages of N = 5
cells with residual reduction blocks between them (C, 2C, 4C), BN-ReLU, global
pooling, linear classifier.

Benchmark indices are not a formula of the operations (the benchmark stores its
cells in a shuffled order), so :class:`NB201Table` reads them from the accuracy
table: row i of ``nb201_test_acc_200ep.csv`` is index i.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .base import SupernetBase
from .batchnorm import BatchNorm2d
from .cells import expand_groups, group_sum, is_grouped
from .conv import Conv2d
from .mixed import MixedOp
from .normalize import CIFAR10_MEAN, CIFAR10_STD, Normalize
from .ops import NB201_PRIMITIVES, ReLUConvBN, build_op

__all__ = [
    "NB201_EDGES",
    "NB201_N_ARCHS",
    "arch_to_ops",
    "ops_to_arch",
    "ops_to_code",
    "code_to_ops",
    "sample_cells",
    "NB201Table",
    "default_table_path",
    "NB201SearchCell",
    "NB201Cell",
    "NB201Supernet",
    "NB201Network",
]

NB201_EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
"""(target node, source node) of the six edges, in architecture-string order."""

NB201_N_ARCHS = len(NB201_PRIMITIVES) ** len(NB201_EDGES)  # 15,625

_TABLE_NAME = "nb201_test_acc_200ep.csv"


def arch_to_ops(arch: str) -> tuple[int, ...]:
    """Architecture string -> six operation indices into ``NB201_PRIMITIVES``."""
    nodes = arch.strip().split("+")
    if len(nodes) != 3:
        raise ValueError(f"not a NAS-Bench-201 architecture string (need 3 '+'-separated nodes): {arch!r}")
    ops: list[int] = []
    for target, node in enumerate(nodes, start=1):
        parts = [p for p in node.strip().strip("|").split("|")]
        if len(parts) != target:
            raise ValueError(f"node {target} of {arch!r} must have {target} inputs, got {len(parts)}")
        for source, part in enumerate(parts):
            name, _, src = part.partition("~")
            if src != str(source):
                raise ValueError(f"node {target} of {arch!r}: expected input ~{source}, got {part!r}")
            if name not in NB201_PRIMITIVES:
                raise ValueError(f"unknown NAS-Bench-201 operation {name!r}; known: {list(NB201_PRIMITIVES)}")
            ops.append(NB201_PRIMITIVES.index(name))
    return tuple(ops)


def ops_to_arch(ops: tuple[int, ...] | list[int]) -> str:
    """Six operation indices (or names) -> the architecture string."""
    if len(ops) != len(NB201_EDGES):
        raise ValueError(f"a NAS-Bench-201 cell has 6 edges, got {len(ops)} operations")
    names = [NB201_PRIMITIVES[o] if isinstance(o, (int, np.integer)) else str(o) for o in ops]
    for n in names:
        if n not in NB201_PRIMITIVES:
            raise ValueError(f"unknown NAS-Bench-201 operation {n!r}")
    it = iter(names)
    nodes = ["|" + "|".join(f"{next(it)}~{s}" for s in range(t)) + "|" for t in (1, 2, 3)]
    return "+".join(nodes)


def ops_to_code(ops: tuple[int, ...] | list[int]) -> int:
    """Base-5 code ``sum_e ops[e] * 5**(5 - e)`` (edge 0 most significant): an index into a 5^6 array."""
    code = 0
    for o in ops:
        code = code * len(NB201_PRIMITIVES) + int(o)
    return code


def code_to_ops(code: int) -> tuple[int, ...]:
    """Inverse of :func:`ops_to_code`."""
    if not 0 <= code < NB201_N_ARCHS:
        raise ValueError(f"op code must lie in [0, {NB201_N_ARCHS}), got {code}")
    ops = []
    for _ in NB201_EDGES:
        code, o = divmod(code, len(NB201_PRIMITIVES))
        ops.append(o)
    return tuple(reversed(ops))


def sample_cells(n: int, seed: int) -> np.ndarray:
    """``n`` distinct cells drawn uniformly from the 15,625 with ``seed``, as op indices ``[n, 6]``."""
    if not 0 <= n <= NB201_N_ARCHS:
        raise ValueError(f"can draw 0 to {NB201_N_ARCHS} distinct cells, not {n}")
    codes = np.random.default_rng(seed).choice(NB201_N_ARCHS, size=n, replace=False)
    return np.array([code_to_ops(int(c)) for c in codes], dtype=np.int64).reshape(n, len(NB201_EDGES))


def default_table_path() -> Path:
    """The shared NB201 table: ``$RDNAS_NB201_CSV``, else ``shared/data/nb201/`` beside a parent folder."""
    env = os.environ.get("RDNAS_NB201_CSV")
    if env:
        return Path(env)
    for parent in [Path.cwd(), *Path.cwd().parents, *Path(__file__).resolve().parents]:
        candidate = parent / "shared" / "data" / "nb201" / _TABLE_NAME
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"NAS-Bench-201 table {_TABLE_NAME} not found: pass its path or set RDNAS_NB201_CSV"
    )


@dataclass
class NB201Table:
    """The compact NAS-Bench-201 table: test accuracy (%) after 200 epochs per benchmark index.

    Attributes:
        archs: architecture string per index.
        accuracy: ``{"cifar10"|"cifar100"|"ImageNet16-120": array [15625]}``.
    """

    archs: list[str]
    accuracy: dict[str, np.ndarray]

    COLUMNS = {
        "cifar10": "CIFAR10TestAccuracy200Epochs",
        "cifar100": "CIFAR100TestAccuracy200Epochs",
        "ImageNet16-120": "ImageNetTestAccuracy200Epochs",
    }

    @classmethod
    def from_csv(cls, path: str | os.PathLike[str] | None = None) -> NB201Table:
        """Read the table (default: :func:`default_table_path`); malformed files raise ValueError."""
        p = Path(path) if path is not None else default_table_path()
        if not p.is_file():
            raise FileNotFoundError(f"NAS-Bench-201 table not found at {p}")
        with p.open(newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in [*cls.COLUMNS.values(), "ArchitectureString"] if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"{p} is not a NAS-Bench-201 accuracy table: missing columns {missing}")
            rows = list(reader)
        if len(rows) != NB201_N_ARCHS:
            raise ValueError(f"{p} has {len(rows)} rows; a NAS-Bench-201 table has {NB201_N_ARCHS}")
        try:
            accuracy = {k: np.array([float(r[c]) for r in rows]) for k, c in cls.COLUMNS.items()}
        except ValueError as exc:
            raise ValueError(f"{p} has a non-numeric accuracy: {exc}") from None
        return cls(archs=[r["ArchitectureString"] for r in rows], accuracy=accuracy)

    def __post_init__(self) -> None:
        self._index = {a: i for i, a in enumerate(self.archs)}

    def index_of(self, arch: str | tuple[int, ...]) -> int:
        """Benchmark index of an architecture string or op-index tuple."""
        key = arch if isinstance(arch, str) else ops_to_arch(arch)
        key = ops_to_arch(arch_to_ops(key))  # validate and normalise
        return self._index[key]

    def arch_of(self, index: int) -> str:
        """Architecture string of a benchmark index."""
        if not 0 <= index < len(self.archs):
            raise ValueError(f"benchmark index must lie in [0, {len(self.archs)}), got {index}")
        return self.archs[index]

    def by_code(self, dataset: str = "cifar10") -> np.ndarray:
        """Accuracies as a ``[5] * 6`` array indexed by the six op indices."""
        codes = np.array([ops_to_code(arch_to_ops(a)) for a in self.archs])
        out = np.empty(NB201_N_ARCHS)
        out[codes] = self.accuracy[dataset]
        return out.reshape((len(NB201_PRIMITIVES),) * len(NB201_EDGES))


class NB201SearchCell(nn.Module):
    """NB201 search cell: a :class:`MixedOp` on each of the six edges (BN without affine)."""

    def __init__(self, channels: int, primitives: tuple[str, ...] = NB201_PRIMITIVES) -> None:
        super().__init__()
        self.edges = nn.ModuleList(MixedOp("nb201", primitives, channels, channels, 1, affine=False)
                                   for _ in NB201_EDGES)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, mask: torch.Tensor | None = None,
                renormalize: bool = False) -> torch.Tensor:
        nodes = [x]
        relus = [torch.relu(x)]
        for e, (target, source) in enumerate(NB201_EDGES):
            m = None if mask is None else mask[..., e, :]
            y = self.edges[e](nodes[source], weights[e], m, xr=relus[source], renormalize=renormalize)
            if target == len(nodes):
                nodes.append(y)
            else:
                nodes[target] = nodes[target] + y
            if e in (0, 2):  # nodes 1 and 2 are complete after edges 0 and 2
                relus.append(torch.relu(nodes[target]))
        return nodes[3]

    def forward_groups(self, x: torch.Tensor, weights: torch.Tensor, group_mask: torch.Tensor, base: int,
                       renormalize: bool = False) -> torch.Tensor:
        """Evaluate k coalitions at once on an input that is shared (batch ``base``) or grouped (``k * base``).

        ``group_mask`` is bool ``[k, 6, O]``.  An edge reading a shared node runs each present operation once
        and mixes per coalition (:meth:`MixedOp.forward_groups`); an edge reading a grouped node uses
        per-sample masks.  Returns ``[k * base, ...]`` (or ``[base, ...]`` when k is 1).
        """
        k = group_mask.shape[0]
        nodes = [x]
        relus = [torch.relu(x)]
        for e, (target, source) in enumerate(NB201_EDGES):
            h = nodes[source]
            if is_grouped(h, base, k):
                y = self.edges[e](h, weights[e], group_mask[:, e].repeat_interleave(base, dim=0), xr=relus[source],
                                  renormalize=renormalize)
            else:
                y = self.edges[e].forward_groups(h, weights[e], group_mask[:, e], xr=relus[source],
                                                 renormalize=renormalize)
            if target == len(nodes):
                nodes.append(y)
            else:
                nodes[target] = group_sum([nodes[target], y], base, k)
            if e in (0, 2):
                relus.append(torch.relu(nodes[target]))
        return nodes[3]


class NB201Cell(nn.Module):
    """A derived NB201 cell: one operation per edge (BN with affine)."""

    def __init__(self, channels: int, ops: tuple[int, ...] | list[int]) -> None:
        super().__init__()
        self.ops_idx = tuple(int(o) for o in ops)
        self.edges = nn.ModuleList(build_op("nb201", NB201_PRIMITIVES[o], channels, channels, 1, True)
                                   for o in self.ops_idx)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for e, (target, source) in enumerate(NB201_EDGES):
            y = self.edges[e](nodes[source])
            if target == len(nodes):
                nodes.append(y)
            else:
                nodes[target] = nodes[target] + y
        return nodes[3]


class _ResidualReduction(nn.Module):
    """NB201's reduction block: two 3x3 ReLU-conv-BN (first stride 2) plus avg-pool + 1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int, affine: bool) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1, affine)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1, affine)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


def _skeleton(channels: int, n_per_stage: int, make_cell, affine: bool) -> tuple[nn.Module, nn.ModuleList, int]:
    stem = nn.Sequential(Conv2d(3, channels, 3, padding=1, bias=False), BatchNorm2d(channels))
    layers = nn.ModuleList()
    c = channels
    for stage in range(3):
        if stage > 0:
            layers.append(_ResidualReduction(c, 2 * c, affine))
            c *= 2
        layers.extend(make_cell(c) for _ in range(n_per_stage))
    return stem, layers, c


class NB201Supernet(SupernetBase):
    """NB201 search network: one shared alpha ``cell`` ``[6, 5]`` for every cell."""

    branches = ("cell",)

    def __init__(self, channels: int = 16, n_per_stage: int = 5, n_classes: int = 10,
                 primitives: tuple[str, ...] = NB201_PRIMITIVES, renormalize_masked: bool = False,
                 mean: tuple[float, ...] = CIFAR10_MEAN, std: tuple[float, ...] = CIFAR10_STD) -> None:
        super().__init__()
        self.primitives = tuple(primitives)
        self.renormalize_masked = renormalize_masked
        self.normalize = Normalize(mean, std)
        self.stem, self.layers, c = _skeleton(channels, n_per_stage,
                                              lambda ch: NB201SearchCell(ch, self.primitives), affine=False)
        self.lastact = nn.Sequential(BatchNorm2d(c), nn.ReLU())
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, n_classes)
        self.alpha_cell = nn.Parameter(1e-3 * torch.randn(len(NB201_EDGES), len(self.primitives)))

    def forward(self, x: torch.Tensor, masks: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        mask = self._check_masks(masks).get("cell")
        weights = torch.softmax(self.alpha_cell, dim=-1)
        h = self.stem(self.normalize(x))
        for layer in self.layers:
            if isinstance(layer, NB201SearchCell):
                h = layer(h, weights, mask, self.renormalize_masked)
            else:
                h = layer(h)
        return self.classifier(self.global_pooling(self.lastact(h)).flatten(1))

    def forward_coalitions(self, x: torch.Tensor, branch: str, coalitions: torch.Tensor) -> torch.Tensor:
        """Evaluate k coalitions of the ``cell`` alpha in one pass, sharing the coalition-independent work.

        Same result as stacking ``x`` once per coalition with per-sample masks
        (:meth:`SupernetBase.forward_coalitions`), but the stem and every operation of the first cell that
        reads its (shared) input run once on the B images instead of k times.  ``coalitions``: bool
        ``[k, 6, O]`` or ``[k, 6 * O]``; returns logits ``[k, B, classes]``.
        """
        if branch not in self.branches:
            raise ValueError(f"unknown branch {branch!r}; this network has {list(self.branches)}")
        k, base = coalitions.shape[0], x.shape[0]
        group_mask = coalitions.reshape((k, *self.alpha_shape)).to(device=x.device, dtype=torch.bool)
        weights = torch.softmax(self.alpha_cell, dim=-1)
        h = self.stem(self.normalize(x))
        for layer in self.layers:
            if isinstance(layer, NB201SearchCell):
                h = layer.forward_groups(h, weights, group_mask, base, self.renormalize_masked)
            else:
                h = layer(h)
        if h.shape[0] == base and k > 1:
            h = expand_groups(h, k)
        return self.classifier(self.global_pooling(self.lastact(h)).flatten(1)).reshape(k, base, -1)

    def derive_ops(self) -> tuple[int, ...]:
        """Argmax operation per edge (``none`` included, as in NAS-Bench-201), as op indices."""
        return self._argmax_ops(self.alpha_cell.detach())

    def _argmax_ops(self, weights: torch.Tensor) -> tuple[int, ...]:
        idx = torch.argmax(weights.detach().cpu(), dim=-1).tolist()
        return tuple(NB201_PRIMITIVES.index(self.primitives[i]) for i in idx)

    def derive(self) -> str:
        """The derived cell as an architecture string."""
        return ops_to_arch(self.derive_ops())

    def derive_from(self, weights: dict[str, torch.Tensor]) -> str:
        """The cell taking the op of highest ``weights["cell"]`` ``[6, O]`` on each edge (scores, for instance)."""
        return ops_to_arch(self._argmax_ops(weights["cell"]))


class NB201Network(nn.Module):
    """A network in the benchmark's macro skeleton from an architecture string."""

    def __init__(self, arch: str, channels: int = 16, n_per_stage: int = 5, n_classes: int = 10,
                 mean: tuple[float, ...] = CIFAR10_MEAN, std: tuple[float, ...] = CIFAR10_STD) -> None:
        super().__init__()
        self.arch = ops_to_arch(arch_to_ops(arch))
        ops = arch_to_ops(arch)
        self.normalize = Normalize(mean, std)
        self.stem, self.layers, c = _skeleton(channels, n_per_stage, lambda ch: NB201Cell(ch, ops), affine=True)
        self.lastact = nn.Sequential(BatchNorm2d(c), nn.ReLU())
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(self.normalize(x))
        for layer in self.layers:
            h = layer(h)
        return self.classifier(self.global_pooling(self.lastact(h)).flatten(1))
