"""Cell drawings (SVG and PNG through graphviz) and alpha heatmaps."""

from __future__ import annotations

import torch
from rdnas_space import (
    ADVRUSH,
    DARTS_PRIMITIVES,
    Supernet,
    SupernetConfig,
    draw_genotype,
    plot_alpha_heatmaps,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_draw_genotype_writes_svg_and_png(tmp_path) -> None:
    g = Supernet(SupernetConfig(channels=4, n_cells=3)).derive()
    files = draw_genotype(g, tmp_path)
    names = sorted(f.name for f in files)
    assert names == sorted(f"cell_{b}.{ext}" for b in ("normal", "reduce", "robust") for ext in ("svg", "png"))
    svg = (tmp_path / "cell_normal.svg").read_text()
    assert "<svg" in svg
    for op, _ in g.normal:
        assert op in svg
    assert (tmp_path / "cell_normal.png").read_bytes().startswith(PNG_MAGIC)
    single = draw_genotype(ADVRUSH, tmp_path / "advrush")
    assert len(single) == 4  # no robust cell


def test_alpha_heatmap(tmp_path) -> None:
    alphas = {b: torch.randn(14, 8) for b in ("normal", "reduce", "robust")}
    out = plot_alpha_heatmaps(alphas, DARTS_PRIMITIVES, tmp_path / "alpha", title="epoch 3")
    data = out.read_bytes()
    assert out.suffix == ".png" and data.startswith(PNG_MAGIC) and len(data) > 10_000
