"""Human-facing outputs of a search: genotype, cell drawings, alpha heatmaps, trigger trends, report.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from advbench.files import atomic_write, atomic_write_text
from rdnas_space import Genotype, arch_to_ops, draw_genotype, plot_alpha_heatmaps

if TYPE_CHECKING:
    from .search import Searcher

__all__ = ["write_search_artefacts", "plot_trigger_trends", "search_report", "save_figure"]


def plot_trigger_trends(history: list[dict[str, Any]], branch: str, primitives: tuple[str, ...], path: Path) -> Path:
    """Exception triggers (gains beyond the IQR fences) per primitive and epoch (the paper's Figures 5-6)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in history if branch in r.get("branches", {})]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharex=True)
    for ax, key, title in ((axes[0], "triggers_above", "upper (gain > tau+)"),
                           (axes[1], "triggers_below", "lower (gain < tau-)")):
        for op in primitives:
            counts = [r["branches"][branch][key][op] for r in history if branch in r.get("branches", {})]
            ax.plot(epochs, counts, marker="o", label=op)
        ax.set_title(f"{branch if branch == 'cell' else branch + ' cell'}: {title}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("exception triggers")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, ncol=2)
    return save_figure(fig, path)


def save_figure(fig: Any, path: Path) -> Path:
    """Save a matplotlib figure as PNG atomically (temporary file, then rename) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=110))
    plt.close(fig)
    return path


def search_report(cfg: dict[str, Any], history: list[dict[str, Any]], derived: Genotype | str,
                  images: list[str]) -> str:
    """report.md of a finished search; ``derived`` is the genotype, or the NAS-Bench-201 architecture string."""
    nb201 = isinstance(derived, str)
    space = f"space `{cfg['space']}`" + ("" if nb201 else f", fusion `{cfg['fusion']}`")
    lines = ["# RDNAS search report", "",
             f"Preset `{cfg['preset']}`, seed {cfg['seed']}, {space}, "
             f"scorer `{cfg['scorer']}`, adversarial search: {cfg['adversarial']}.", "",
             "## Derived cell" if nb201 else "## Derived genotype", "", "```",
             derived if nb201 else derived.to_darts(), "```", ""]
    lines += [f"![{Path(i).stem}]({i})" for i in images if i.startswith("cells/") and i.endswith(".png")]
    lines += ["", "## Epochs", "",
              "| epoch | phase | train loss | train clean | train adv | val clean | val adv | train s | attack s "
              "| scoring s | evaluations |",
              "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    for r in history:
        lines.append(f"| {r['epoch']} | {r['phase']} | {r['train_loss']:.3f} | {pct(r['train_clean_acc'])} | "
                     f"{pct(r['train_adv_acc'])} | {pct(r['val_clean_acc'])} | {pct(r['val_adv_acc'])} | "
                     f"{r['time_train_s']:.1f} | {r['time_attack_s'] + r['time_score_attack_s']:.1f} | "
                     f"{r['time_score_s']:.1f} | {r['evaluations']} |")
    total = sum(r["time_train_s"] + r["time_attack_s"] + r["time_score_attack_s"] + r["time_score_s"] for r in history)
    lines += ["", f"Total search time: {total:.0f} s.", ""]
    lines += ["## Pictures", ""] + [f"![{Path(i).stem}]({i})" for i in images if not i.startswith("cells/")]
    lines += ["", "## Settings", "", "```json", json.dumps(cfg, indent=2), "```", ""]
    return "\n".join(lines)


def write_search_artefacts(searcher: Searcher, derived: Genotype | str) -> list[Path]:
    """The derived genotype (``genotype.json`` and ``cells/*.svg|png``) or NAS-Bench-201 cell (``cell.json``),
    ``alpha.png``, ``triggers_*.png`` and ``report.md`` in the run directory."""
    run = searcher.run_dir
    prims = searcher.net.primitives
    if isinstance(derived, str):
        result = run / "cell.json"
        atomic_write_text(result, json.dumps({"arch": derived, "ops": list(arch_to_ops(derived))}, indent=2) + "\n")
        files: list[Path] = []
    else:
        result = run / "genotype.json"
        derived.to_json(result)
        files = draw_genotype(derived, run / "cells")
    files.append(plot_alpha_heatmaps({b: a for b, a in searcher.net.alphas().items()}, prims, run / "alpha",
                                     title="softmax(alpha) after the search"))
    for branch in ("normal", "robust", "cell"):
        if any(branch in r.get("branches", {}) for r in searcher.history):
            files.append(plot_trigger_trends(searcher.history, branch, prims, run / f"triggers_{branch}.png"))
    rel = [str(f.relative_to(run)) for f in files]
    cfg = json.loads((run / "config.json").read_text())["config"]
    atomic_write_text(run / "report.md", search_report(cfg, searcher.history, derived, rel))
    return [result, run / "report.md", *files]
