"""Outputs of an evaluation run: ``results.json``, ``report.md`` and PNG plots, written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .files import atomic_write, atomic_write_text

__all__ = ["write_outputs", "atomic_write_text", "markdown_report"]

_LABELS = {"clean": "Clean", "fgsm": "FGSM", "pgd20": "PGD-20", "pgd100": "PGD-100", "apgd_ce": "APGD-CE",
           "autoattack": "AutoAttack"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=110, bbox_inches="tight"))
    _plt().close(fig)
    return path


def plot_sweep(points: list[dict[str, Any]], path: Path, title: str) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([p["eps_255"] for p in points], [p["accuracy"] for p in points], marker="o")
    ax.set_xlabel("eps (x 1/255)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    return _save(fig, path)


def plot_confusion(matrix: list[list[int]], classes: list[str], path: Path, title: str) -> Path:
    plt = _plt()
    import numpy as np

    m = np.asarray(matrix, dtype=float)
    rows = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    im = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, path)


def plot_transfer(matrix: dict[str, dict[str, float]], path: Path) -> Path:
    plt = _plt()
    names = list(matrix)
    values = [[matrix[s][t] for t in names] for s in names]
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2.5, 1.0 * len(names) + 2))
    im = ax.imshow(values, cmap="viridis", vmin=0, vmax=100)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("target")
    ax.set_ylabel("source (PGD-20)")
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            ax.text(j, i, f"{v:.1f}", ha="center", va="center", color="white" if v < 60 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, path)


def markdown_report(results: dict[str, Any]) -> str:
    """Human-facing summary of a results dict (one section per suite, failing sanity checks flagged)."""
    lines = [f"# advbench report: {results['model'].get('name', '')}", ""]
    m, d = results["model"], results["data"]
    lines += [f"- model: `{m.get('path', '')}` (arch `{m.get('arch', '')}`)",
              f"- data: {d['dataset']} {d['split']} split, {d['n_examples']} examples chosen with seed {d['seed']}",
              f"- threat model: Linf, eps = {results['eps'] * 255:.3g}/255; device {results['device']}",
              f"- advbench {results['advbench_version']}, {results['created']}", ""]
    if d.get("note"):
        lines[-1:-1] = [f"- **note**: {d['note']}"]
    if results["config"].get("precision", "fp32") != "fp32":
        lines[-1:-1] = [f"- **precision {results['config']['precision']}**: attacked under autocast; lower "
                        "precision can mask gradients and inflate robust accuracy (fp32 is the reference)"]
    for suite in results["suites"]:
        name = suite["suite"]
        lines.append(f"## {name}")
        lines.append("")
        if "accuracy" in suite and name in ("whitebox", "autoattack"):
            keys = [k for k in _LABELS if k in suite["accuracy"]]
            lines.append("| " + " | ".join(_LABELS[k] for k in keys) + " | params | FLOPs |")
            lines.append("|" + "---:|" * (len(keys) + 2))
            size = suite.get("size", results["model"].get("size", {}))
            lines.append("| " + " | ".join(f"{suite['accuracy'][k]:.2f}" for k in keys)
                         + f" | {size.get('params', 0) / 1e6:.2f}M | {size.get('flops', 0) / 1e6:.1f}M |")
            if suite.get("autoattack_cumulative"):
                lines += ["", "AutoAttack cascade (cumulative accuracy, %): " + ", ".join(
                    f"{k} {v:.2f}" for k, v in suite["autoattack_cumulative"].items())]
        if name == "sweep":
            lines.append("| eps (/255) | " + " | ".join(str(p["eps_255"]) for p in suite["points"]) + " |")
            lines.append("|---|" + "---:|" * len(suite["points"]))
            lines.append("| PGD steps | " + " | ".join(str(p["steps"]) for p in suite["points"]) + " |")
            lines.append("| accuracy (%) | " + " | ".join(f"{p['accuracy']:.2f}" for p in suite["points"]) + " |")
            lines += ["", "![accuracy against eps](sweep.png)"]
        if name == "confusion":
            for key, matrix in suite["matrices"].items():
                total = sum(map(sum, matrix))
                acc = 100.0 * sum(matrix[i][i] for i in range(len(matrix))) / max(total, 1)
                lines.append(f"- {key}: accuracy {acc:.2f}% ![{key}](confusion_{key}.png)")
        if name == "transfer":
            names = list(suite["matrix"])
            lines.append("| source \\ target | " + " | ".join(names) + " |")
            lines.append("|---|" + "---:|" * len(names))
            for s in names:
                lines.append(f"| {s} | " + " | ".join(f"{suite['matrix'][s][t]:.2f}" for t in names) + " |")
            lines += ["", "![transfer matrix](transfer.png)"]
        failed = [c for c in suite.get("sanity", []) if not c["passed"]]
        lines.append("")
        for c in suite.get("sanity", []):
            mark = "ok" if c["passed"] else "**FAILED**"
            lines.append(f"- sanity {mark}: {c['name']} ({c['detail']})")
        if failed:
            lines += ["", f"> **Warning:** {len(failed)} sanity check(s) failed; treat these numbers with care "
                      "(gradient masking or a broken evaluation are likely)."]
        lines.append("")
    return "\n".join(lines)


def write_outputs(results: dict[str, Any], out: Path) -> list[Path]:
    """Write ``results.json``, ``report.md`` and the suites' plots into ``out``; returns the files."""
    out.mkdir(parents=True, exist_ok=True)
    files = []
    classes = results["data"].get("classes", [])
    for suite in results["suites"]:
        if suite["suite"] == "sweep":
            files.append(plot_sweep(suite["points"], out / "sweep.png", "PGD accuracy against eps (Table 9 protocol)"))
        if suite["suite"] == "confusion":
            for key, matrix in suite["matrices"].items():
                files.append(plot_confusion(matrix, classes, out / f"confusion_{key}.png", f"confusion: {key}"))
        if suite["suite"] == "transfer":
            files.append(plot_transfer(suite["matrix"], out / "transfer.png"))
    atomic_write_text(out / "results.json", json.dumps(results, indent=2))
    atomic_write_text(out / "report.md", markdown_report(results))
    return [out / "results.json", out / "report.md", *files]
