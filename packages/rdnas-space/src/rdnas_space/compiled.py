"""Regional ``torch.compile`` of search and derived networks.

Compiling a whole dual-branch supernet is impractical (on a 2-core CPU inductor did not finish one
in 9.5 minutes), so :func:`compile_regions` compiles the repeated cell modules instead: every search
cell's ``forward`` and ``forward_groups`` (the coalition pass) and every derived cell's ``forward``.
Cells of one class and one geometry share a graph, so a network compiles one graph per stage and
mode, not one per cell.  The stem, fusion and classifier stay eager.

Coalition masks change at every call.  To keep the graphs independent of which operations a
coalition holds, every :class:`~rdnas_space.mixed.MixedOp` is switched to its dense path: all
operations run and the mask multiplies their weights, with no Python branch on the mask's values
(which would put a ``.tolist()`` graph break, and a recompilation per pattern, in every edge).

Inductor's layout optimisation is switched off (process-wide): it chooses convolution layouts itself and
would put the convolutions that :mod:`rdnas_space.conv` guards back into channels_last, onto oneDNN's
faulty kernel (measured: a compiled ``FactorizedReduce`` of 4 input channels corrupts the heap).

Parameters and buffers are untouched, so state dicts, checkpoints and resumption are the same as
for the eager network.  :func:`compile_counters` reads dynamo's counters, to bound recompilations.
"""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import nn

from .cells import Cell, SearchCell
from .mixed import MixedOp
from .nb201 import NB201Cell, NB201SearchCell

__all__ = ["compile_regions", "compile_counters", "REGION_TYPES"]

REGION_TYPES: tuple[type[nn.Module], ...] = (SearchCell, NB201SearchCell, Cell, NB201Cell)
"""The module classes compiled as regions (search cells, derived cells, of both spaces)."""

RECOMPILE_LIMIT = 64
"""The graphs one cell class may compile (positions x train/eval x mask kinds x batch shapes), at least."""

M = TypeVar("M", bound=nn.Module)


def compile_regions(model: M, backend: str = "inductor", mode: str | None = None) -> M:
    """Compile every cell of ``model`` in place (and make its mixed edges dense); returns ``model``.

    Args:
        model: a supernet, a derived network, or anything holding their cells.
        backend: the ``torch.compile`` backend (``inductor``; ``aot_eager`` traces without code
            generation, which is what tests of graph counts and equality need).
        mode: ``torch.compile``'s mode (``None``, ``"reduce-overhead"`` for CUDA graphs, ...).
    """
    # every cell of a class shares one code object and so one recompile budget (8 by default), which the
    # geometries of a network's positions, train/eval and mask kinds exceed: past it dynamo silently runs eager
    dynamo_config = torch._dynamo.config
    dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, RECOMPILE_LIMIT)
    import torch._inductor.config as inductor_config

    inductor_config.layout_optimization = False  # keep the guarded convolutions in the layout the guard chose
    for module in model.modules():
        if isinstance(module, MixedOp):
            module.dense = True
    for module in model.modules():
        if isinstance(module, REGION_TYPES):
            module.compile(backend=backend, mode=mode)
            if hasattr(module, "forward_groups"):
                module.forward_groups = torch.compile(module.forward_groups, backend=backend, mode=mode)
    return model


def compile_counters() -> dict[str, int]:
    """Dynamo's running totals: ``frames`` compiled and ``graphs`` produced (unique graphs) so far."""
    from torch._dynamo.utils import counters

    return {"frames": int(counters["frames"]["ok"]), "graphs": int(counters["stats"]["unique_graphs"])}
