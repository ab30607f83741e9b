"""Genotypes: the discrete cells a search derives, with JSON and DARTS-text round trips.

The DARTS text form is the ``namedtuple`` repr used by DARTS and its successors::

    Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=range(2, 6),
             reduce=[...], reduce_concat=[2, 3, 4, 5])

so published cells can be pasted in.  RDNAS genotypes add ``robust`` and
``robust_concat`` (the robust branch of the dual-branch cells).
"""

from __future__ import annotations

import ast
import json
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .ops import DARTS_PRIMITIVES

__all__ = ["Genotype", "DARTS_V2", "PDARTS", "ADVRUSH", "PUBLISHED_GENOTYPES", "random_genotype"]

CellSpec = list[tuple[str, int]]


@dataclass(frozen=True)
class Genotype:
    """A derived architecture: two ``(op, input state)`` pairs per intermediate node.

    Input states 0 and 1 are the two previous cells' outputs, state ``k + 2`` is
    intermediate node ``k``.
    """

    normal: CellSpec
    normal_concat: list[int]
    reduce: CellSpec
    reduce_concat: list[int]
    robust: CellSpec | None = None
    robust_concat: list[int] | None = None

    def __post_init__(self) -> None:
        for name in ("normal", "reduce", "robust"):
            ops = getattr(self, name)
            if ops is None:
                continue
            fixed = [(str(op), int(idx)) for op, idx in ops]
            object.__setattr__(self, name, fixed)
            concat = getattr(self, f"{name}_concat")
            if concat is None:
                raise ValueError(f"genotype has a {name} cell but no {name}_concat")
            object.__setattr__(self, f"{name}_concat", [int(c) for c in concat])
        self.validate()

    @property
    def is_dual(self) -> bool:
        """Whether the genotype has a robust branch (dual-branch network)."""
        return self.robust is not None

    def validate(self, primitives: tuple[str, ...] = DARTS_PRIMITIVES) -> None:
        """Raise ValueError unless every cell is well formed for ``primitives``."""
        for name in ("normal", "reduce", "robust"):
            ops = getattr(self, name)
            if ops is None:
                continue
            if not ops or len(ops) % 2:
                raise ValueError(f"the {name} cell must list two (op, input) pairs per node, got {len(ops)} pairs")
            for k, (op, idx) in enumerate(ops):
                node = k // 2
                if op not in primitives:
                    raise ValueError(f"unknown operation {op!r} in the {name} cell; known: {list(primitives)}")
                if not 0 <= idx < node + 2:
                    raise ValueError(f"node {node} of the {name} cell cannot read state {idx} (only 0..{node + 1})")
            n_states = len(ops) // 2 + 2
            concat = getattr(self, f"{name}_concat")
            if not concat or any(not 0 <= c < n_states for c in concat):
                raise ValueError(f"{name}_concat {concat} must list states of the cell (0..{n_states - 1})")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "normal": [list(p) for p in self.normal],
            "normal_concat": self.normal_concat,
            "reduce": [list(p) for p in self.reduce],
            "reduce_concat": self.reduce_concat,
        }
        if self.robust is not None:
            out["robust"] = [list(p) for p in self.robust]
            out["robust_concat"] = self.robust_concat
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Genotype:
        try:
            return cls(
                normal=[tuple(p) for p in data["normal"]],
                normal_concat=list(data["normal_concat"]),
                reduce=[tuple(p) for p in data["reduce"]],
                reduce_concat=list(data["reduce_concat"]),
                robust=None if data.get("robust") is None else [tuple(p) for p in data["robust"]],
                robust_concat=data.get("robust_concat"),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a genotype: missing or malformed field ({exc})") from None

    def to_json(self, path: str | os.PathLike[str]) -> None:
        """Write ``{"genotype": ..., "darts": text}`` atomically."""
        payload = {"format": "rdnas-genotype/1", "genotype": self.to_dict(), "darts": self.to_darts()}
        _atomic_write(Path(path), json.dumps(payload, indent=2))

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> Genotype:
        """Read a genotype JSON file (this format, or a bare dict of the fields)."""
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ValueError(f"genotype file {path} does not exist") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path} is not a genotype JSON file ({exc})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path} is not a genotype JSON file")
        return cls.from_dict(data.get("genotype", data))

    def to_darts(self) -> str:
        """The DARTS ``Genotype(...)`` text (with robust fields when present)."""
        def cell(ops: CellSpec) -> str:
            return "[" + ", ".join(f"({op!r}, {idx})" for op, idx in ops) + "]"

        parts = [f"normal={cell(self.normal)}", f"normal_concat={self.normal_concat}",
                 f"reduce={cell(self.reduce)}", f"reduce_concat={self.reduce_concat}"]
        if self.robust is not None:
            parts += [f"robust={cell(self.robust)}", f"robust_concat={self.robust_concat}"]
        return "Genotype(" + ", ".join(parts) + ")"

    @classmethod
    def parse(cls, text: str) -> Genotype:
        """Parse the DARTS text form safely (literals and ``range(a, b)`` only; nothing is executed)."""
        try:
            tree = ast.parse(text.strip(), mode="eval").body
        except SyntaxError as exc:
            raise ValueError(f"not a DARTS genotype string: {exc.msg}") from None
        if not isinstance(tree, ast.Call) or getattr(tree.func, "id", None) != "Genotype" or tree.args:
            raise ValueError("expected text of the form Genotype(normal=[...], normal_concat=..., reduce=..., "
                             "reduce_concat=...)")
        fields: dict[str, Any] = {}
        for kw in tree.keywords:
            fields[kw.arg] = _literal(kw.value)
        return cls.from_dict(fields)


def random_genotype(seed: int, dual: bool = True, n_nodes: int = 4,
                    primitives: tuple[str, ...] = DARTS_PRIMITIVES) -> Genotype:
    """A genotype drawn uniformly from what the DARTS derive rule can output: the random-search baseline.

    For every cell (normal, reduce and, if ``dual``, robust) and every intermediate node, two distinct input
    states uniformly among the earlier ones and, on each, an operation uniformly among ``primitives`` other
    than ``none`` (the derive rule never picks it).  The same seed gives the same genotype on every machine
    (Python's :class:`random.Random`, not torch's generator).
    """
    if seed < 0:
        raise ValueError(f"a random genotype's seed must be a non-negative integer, got {seed}")
    rng = random.Random(seed)
    ops = [p for p in primitives if p != "none"]
    concat = list(range(2, 2 + n_nodes))

    def cell() -> CellSpec:
        genes: CellSpec = []
        for node in range(n_nodes):
            genes += [(rng.choice(ops), src) for src in sorted(rng.sample(range(node + 2), 2))]
        return genes

    normal, reduce = cell(), cell()
    robust = cell() if dual else None
    return Genotype(normal=normal, normal_concat=concat, reduce=reduce, reduce_concat=concat, robust=robust,
                    robust_concat=concat if dual else None)


def _literal(node: ast.expr) -> Any:
    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "range":
        return list(range(*[ast.literal_eval(a) for a in node.args]))
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ValueError(f"unsupported expression in genotype text: {ast.unparse(node)}") from None


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.fchmod(fd, 0o666 & ~mask)  # the mode a plain open() gives, not mkstemp's 0600
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


DARTS_V2 = Genotype.parse(
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
    "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
    "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], "
    "reduce_concat=[2, 3, 4, 5])"
)
"""DARTS (second order), Liu et al. 2019: 3.3M parameters at 36 channels, 20 cells."""

PDARTS = Genotype.parse(
    "Genotype(normal=[('skip_connect', 0), ('dil_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3', 0), ('dil_conv_5x5', 4)], "
    "normal_concat=range(2, 6), reduce=[('avg_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_3x3', 0), "
    "('dil_conv_5x5', 2), ('max_pool_3x3', 0), ('dil_conv_3x3', 1), ('dil_conv_3x3', 1), ('dil_conv_5x5', 3)], "
    "reduce_concat=range(2, 6))"
)
"""P-DARTS, Chen et al. 2019: 3.4M parameters at 36 channels, 20 cells."""

ADVRUSH = Genotype.parse(
    "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_5x5', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1)], "
    "normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), "
    "('dil_conv_3x3', 2), ('skip_connect', 0), ('avg_pool_3x3', 1), ('skip_connect', 0), ('skip_connect', 2)], "
    "reduce_concat=range(2, 6))"
)
"""AdvRush, Mok et al. 2021: 4.2M parameters at 36 channels, 20 cells."""

PUBLISHED_GENOTYPES: dict[str, Genotype] = {"darts_v2": DARTS_V2, "pdarts": PDARTS, "advrush": ADVRUSH}
