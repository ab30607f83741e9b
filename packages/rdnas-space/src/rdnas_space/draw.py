"""Pictures of architectures: cell drawings (paper Figure 4) and alpha heatmaps.

Cells are drawn with graphviz (the ``dot`` program must be installed; ``make
setup`` installs it); heatmaps with matplotlib (Agg backend, files only).
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch

from .cells import edge_endpoints

__all__ = ["draw_cell", "draw_genotype", "plot_alpha_heatmaps"]

_OP_COLORS = {
    "skip_connect": "#9ecae1",
    "max_pool_3x3": "#fdd0a2",
    "avg_pool_3x3": "#fdae6b",
    "sep_conv_3x3": "#a1d99b",
    "sep_conv_5x5": "#74c476",
    "dil_conv_3x3": "#bcbddc",
    "dil_conv_5x5": "#9e9ac8",
}


def draw_cell(ops: list[tuple[str, int]], concat: list[int], path: str | os.PathLike[str], title: str = "",
              formats: tuple[str, ...] = ("svg", "png")) -> list[Path]:
    """Render one genotype cell to ``path`` with each suffix in ``formats``; returns the files."""
    import graphviz

    g = graphviz.Digraph(format="svg", graph_attr={"rankdir": "LR", "label": title, "labelloc": "t",
                                                   "fontname": "Helvetica"},
                         node_attr={"style": "filled", "shape": "rect", "fontname": "Helvetica", "align": "center"},
                         edge_attr={"fontname": "Helvetica", "fontsize": "11"})
    g.node("c_{k-2}", fillcolor="darkseagreen2")
    g.node("c_{k-1}", fillcolor="darkseagreen2")
    n_nodes = len(ops) // 2
    for i in range(n_nodes):
        g.node(str(i), fillcolor="lightblue")
    names = {0: "c_{k-2}", 1: "c_{k-1}"} | {i + 2: str(i) for i in range(n_nodes)}
    for k, (op, src) in enumerate(ops):
        g.edge(names[src], str(k // 2), label=op, color=_OP_COLORS.get(op, "gray"), penwidth="2")
    g.node("c_{k}", fillcolor="palegoldenrod")
    for state in concat:
        g.edge(names[state], "c_{k}", color="gray")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    files = []
    for fmt in formats:
        target = out.with_suffix(f".{fmt}")
        target.write_bytes(g.pipe(format=fmt))
        files.append(target)
    return files


def draw_genotype(genotype, directory: str | os.PathLike[str], prefix: str = "cell") -> list[Path]:
    """Draw every cell of a genotype (normal, reduce and, if present, robust) into ``directory``.

    Without graphviz's ``dot`` program nothing is drawn (a warning says so): a finished search must not fail at
    its last step for want of a picture.
    """
    files: list[Path] = []
    if shutil.which("dot") is None:
        warnings.warn("graphviz's dot program is not installed: the cell drawings are skipped (install graphviz "
                      "with your package manager to get them)", stacklevel=2)
        return files
    for name in ("normal", "reduce", "robust"):
        ops = getattr(genotype, name)
        if ops is None:
            continue
        concat = getattr(genotype, f"{name}_concat")
        files += draw_cell(ops, concat, Path(directory) / f"{prefix}_{name}", title=f"{name} cell")
    return files


def plot_alpha_heatmaps(alphas: dict[str, torch.Tensor | np.ndarray], primitives: tuple[str, ...],
                        path: str | os.PathLike[str], softmax: bool = True, title: str = "") -> Path:
    """One heatmap of (softmax) alpha per branch, edges by operations, saved as PNG.

    Every panel shares one colour scale (0 to 1 for probabilities, the common range of all branches for raw
    alpha) and prints its values, so a near-uniform alpha looks uniform instead of showing a stretched noise.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    branches = list(alphas)
    tables = {}
    for branch in branches:
        a = torch.as_tensor(alphas[branch]).detach().float().cpu()
        tables[branch] = torch.softmax(a, dim=-1).numpy() if softmax else a.numpy()
    lo, hi = (0.0, 1.0) if softmax else (min(float(t.min()) for t in tables.values()),
                                          max(float(t.max()) for t in tables.values()))
    fig, axes = plt.subplots(1, len(branches), figsize=(4.2 * len(branches), 5.5), squeeze=False)
    for ax, branch in zip(axes[0], branches, strict=True):
        values = tables[branch]
        im = ax.imshow(values, cmap="viridis", aspect="auto", vmin=lo, vmax=hi if hi > lo else lo + 1e-9)
        for (row, col), v in np.ndenumerate(values):
            ax.text(col, row, f"{v:.2f}", ha="center", va="center", fontsize=6,
                    color="white" if v < lo + 0.6 * (hi - lo) else "black")
        ax.set_title(branch)
        ax.set_xticks(range(len(primitives)), primitives, rotation=60, ha="right", fontsize=8)
        n = values.shape[0]
        labels = [f"{s}->{t}" for s, t in edge_endpoints(4)] if n == 14 else [str(i) for i in range(n)]
        ax.set_yticks(range(n), labels, fontsize=8)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(path).with_suffix(".png")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
