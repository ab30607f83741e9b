"""Ranking diagnostic of a NAS-Bench-201 search: how well the trained supernet's values rank cells.

A search can only pick good cells if the values its game gives agree with the benchmark.  For the trained
supernet of a run (``checkpoint.pt`` of a seeded run directory) this module:

1. samples K cells with a seed and values each under the supernet as the one-op-per-edge coalition, on the
   scoring images of the run's last round, with the search's own game (metric and weights);
2. reports the Kendall tau and Spearman rho of those values against a benchmark column, and the overlap of
   the top-k cells by value and by benchmark accuracy;
3. compares the run's per-player scores (the last round's, their mean over rounds, and the final alpha)
   with the Shapley values of the tabular game (:class:`~rdnas_search.nb201.NB201TableGame`, long-run
   Monte-Carlo): the oracle that the supernet game approximates.  Kendall tau over the 30 players, and the
   edges on which both pick the same operation.

Only this diagnostic and the final lookup read the benchmark; the search never does.  Writes
``diagnose.json``, ``diagnose.md`` and ``diagnose.png`` into the run directory.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from advbench.distributed import DistContext
from advbench.files import atomic_write_text
from rdnas_space import NB201_EDGES, NB201_PRIMITIVES, ops_to_arch, sample_cells
from rose_estimator import Game, RoseResult
from scipy import stats

from .config import ConfigError
from .game import SupernetGame, player_indices
from .nb201 import NB201_DATASETS, NB201TableGame, TableBenchmark, open_benchmark
from .report import save_figure
from .scoring import player_scores
from .search import CHECKPOINT, RunDirError, Searcher, load_run_config, load_search_checkpoint

__all__ = ["DiagnoseOptions", "cell_values", "rank_agreement", "tabular_shapley", "op_marginals", "diagnose_run",
           "diagnose"]

_N_OPS = len(NB201_PRIMITIVES)
_N_EDGES = len(NB201_EDGES)


@dataclass(frozen=True)
class DiagnoseOptions:
    """Settings of the diagnostic.

    Attributes:
        n_cells: K, cells sampled uniformly (without replacement) from the 15,625.
        seed: seed of that sample.
        dataset: benchmark column the values are ranked against.
        top_k: size of the top sets whose overlap is reported.
        oracle_walks: antithetic walks of the tabular game's long-run Shapley estimate.
        images: ``score`` (the last round's scoring sample, as the search saw it) or ``val`` (every
            validation image of the run: less noise).
    """

    n_cells: int = 100
    seed: int = 0
    dataset: str = "cifar10"
    top_k: int = 10
    oracle_walks: int = 2000
    images: str = "score"

    def __post_init__(self) -> None:
        if self.dataset not in NB201_DATASETS:
            raise ConfigError(f"unknown NAS-Bench-201 dataset {self.dataset!r}; choose one of "
                              f"{', '.join(NB201_DATASETS)}")
        if not 2 <= self.n_cells <= _N_OPS ** _N_EDGES:
            raise ConfigError(f"the diagnostic needs 2 to {_N_OPS ** _N_EDGES} cells, got {self.n_cells}")
        if not 1 <= self.top_k <= self.n_cells:
            raise ConfigError(f"top_k must lie in [1, n_cells={self.n_cells}], got {self.top_k}")
        if self.oracle_walks < 2 or self.oracle_walks % 2:
            raise ConfigError(f"oracle_walks must be an even number of at least 2, got {self.oracle_walks}")
        if self.images not in ("score", "val"):
            raise ConfigError(f"images must be score or val, got {self.images!r}")


def cell_values(game: Game, cells: np.ndarray, metric_weights: tuple[float, ...] | None = None,
                batch_size: int = 16) -> np.ndarray:
    """Value of each cell ``[K, 6]`` as the one-op-per-edge coalition of ``game`` (metrics combined by weight)."""
    coalitions = np.zeros((len(cells), _N_EDGES * _N_OPS), dtype=bool)
    coalitions[np.arange(len(cells))[:, None], np.arange(_N_EDGES)[None] * _N_OPS + cells] = True
    values = np.concatenate([game.value(coalitions[i : i + batch_size])
                             for i in range(0, len(cells), batch_size)])
    w = np.full(game.n_metrics, 1.0 / game.n_metrics) if metric_weights is None else np.asarray(metric_weights)
    return values @ (w / w.sum())


def rank_agreement(values: np.ndarray, truth: np.ndarray, top_k: int = 10) -> dict[str, float]:
    """Kendall tau (b), Spearman rho and top-k overlap (a share in [0, 1]) of ``values`` against ``truth``.

    Both correlations are 0 when either side is constant (it ranks nothing).
    """
    values, truth = np.asarray(values, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    constant = np.ptp(values) == 0 or np.ptp(truth) == 0
    tau = 0.0 if constant else stats.kendalltau(values, truth).statistic
    rho = 0.0 if constant else stats.spearmanr(values, truth).statistic
    top_v = set(np.argsort(-values, kind="stable")[:top_k].tolist())
    top_t = set(np.argsort(-truth, kind="stable")[:top_k].tolist())
    return {"kendall_tau": float(np.nan_to_num(tau)), "spearman_rho": float(np.nan_to_num(rho)),
            "top_k_overlap": len(top_v & top_t) / top_k}


def tabular_shapley(bench: TableBenchmark, dataset: str, walks: int = 2000, seed: int = 0) -> np.ndarray:
    """Long-run Monte-Carlo Shapley values ``[30]`` of the tabular game (antithetic walks, plain mean)."""
    from rose_estimator import sample_gains

    sample = sample_gains(NB201TableGame(bench.table, dataset), walks, rng=seed, antithetic=True, batch_size=4096)
    return sample.gains[:, :, 0].mean(axis=0)


def op_marginals(cells: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mean value of the sampled cells holding each op on each edge, ``[6, O]`` (NaN where none was drawn)."""
    out = np.full((_N_EDGES, _N_OPS), np.nan)
    for e in range(_N_EDGES):
        for o in range(_N_OPS):
            hit = cells[:, e] == o
            if hit.any():
                out[e, o] = float(values[hit].mean())
    return out


def _marginal_comparison(cells: np.ndarray, values: np.ndarray, bench: TableBenchmark, dataset: str
                         ) -> dict[str, Any]:
    """The supernet's per-op marginals against the benchmark's exact ones (the mean over all 15,625 cells)."""
    grid = bench.table.by_code(dataset)
    exact = np.stack([grid.mean(axis=tuple(a for a in range(_N_EDGES) if a != e)) for e in range(_N_EDGES)])
    sampled = op_marginals(cells, values)
    filled = np.where(np.isnan(sampled), np.nanmin(sampled), sampled)
    arch = ops_to_arch(tuple(int(o) for o in filled.argmax(axis=1)))
    return {"kendall_tau": rank_agreement(filled.reshape(-1), exact.reshape(-1), 1)["kendall_tau"],
            "edges_agreeing": int((filled.argmax(1) == exact.argmax(1)).sum()), "argmax_cell": arch,
            "argmax_cell_accuracy": bench.test_accuracy(arch, dataset), "supernet": filled.tolist(),
            "benchmark": exact.tolist()}


def _edge_choice(scores: np.ndarray) -> np.ndarray:
    return np.asarray(scores).reshape(_N_EDGES, _N_OPS).argmax(axis=1)


def _player_comparison(name: str, scores: np.ndarray, oracle: np.ndarray, bench: TableBenchmark, dataset: str
                       ) -> dict[str, Any]:
    choice = _edge_choice(scores)
    arch = ops_to_arch(tuple(int(o) for o in choice))
    return {"scores": name, "kendall_tau": rank_agreement(scores, oracle, 1)["kendall_tau"],
            "edges_agreeing": int((choice == _edge_choice(oracle)).sum()), "argmax_cell": arch,
            "argmax_cell_accuracy": bench.test_accuracy(arch, dataset)}


def _run_scores(state: dict[str, Any], scorer: str, metric_weights: tuple[float, ...] | None
                ) -> dict[str, np.ndarray]:
    """Per-player scores a run produced: last round, mean over rounds (ROSE/MC runs) and the final alpha.

    A round played after edges were committed (``commit_every``) scores the open edges only; the committed
    edges' players count 0 in it."""
    rounds = []
    for _, r in sorted(state.get("rose", {}).items(), key=lambda kv: int(kv[0])):
        if "cell" in r:
            result = RoseResult.from_dict(r["cell"])
            full = np.zeros(_N_EDGES * _N_OPS)
            full[player_indices(result.player_names, NB201_PRIMITIVES)] = player_scores(result, scorer, metric_weights)
            rounds.append(full)
    out = {"final alpha": state["model"]["alpha_cell"].detach().double().numpy().reshape(-1)}
    if rounds:
        out = {"last round": rounds[-1], "mean over rounds": np.mean(rounds, axis=0), **out}
    return out


def _plot(values: np.ndarray, truth: np.ndarray, run_scores: dict[str, np.ndarray], oracle: np.ndarray,
          agreement: dict[str, float], dataset: str, metric: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    axes[0].scatter(truth, values, s=12, alpha=0.7)
    axes[0].set_xlabel(f"benchmark {dataset} test accuracy (%)")
    axes[0].set_ylabel(f"supernet value ({metric})")
    axes[0].set_title(f"{len(values)} sampled cells: tau {agreement['kendall_tau']:.2f}, "
                      f"rho {agreement['spearman_rho']:.2f}")
    key = "mean over rounds" if "mean over rounds" in run_scores else "final alpha"
    ops = np.tile(np.arange(_N_OPS), _N_EDGES)
    for o, name in enumerate(NB201_PRIMITIVES):
        axes[1].scatter(oracle[ops == o], run_scores[key][ops == o], s=22, label=name)
    axes[1].set_xlabel("Shapley value in the tabular game (oracle)")
    axes[1].set_ylabel(f"run's score ({key})")
    axes[1].set_title("30 (edge, op) players")
    axes[1].legend(fontsize=7)
    for ax in axes:
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


def _markdown(result: dict[str, Any]) -> str:
    a, o = result["cells"], result["options"]
    lines = [f"# Ranking diagnostic: {result['run']}", "",
             f"Supernet values of {o['n_cells']} cells (seed {o['seed']}, one op per edge, metric "
             f"`{result['metric']}`, {result['n_images']} {o['images']} images) against the {o['dataset']} "
             "test column.", "",
             "| Kendall tau | Spearman rho | top-{k} overlap |".format(k=o["top_k"]), "|---:|---:|---:|",
             f"| {a['kendall_tau']:.3f} | {a['spearman_rho']:.3f} | {a['top_k_overlap']:.2f} |", "",
             "Per-op marginals (mean value of the sampled cells with that op on that edge) against the "
             "benchmark's (mean over all cells): Kendall tau {:.3f} over the 30, {} of 6 edges with the same best "
             "op; the cell of the best marginals, `{}`, scores {:.2f}.".format(
                 result["marginals"]["kendall_tau"], result["marginals"]["edges_agreeing"],
                 result["marginals"]["argmax_cell"].replace("|", "\\|"), result["marginals"]["argmax_cell_accuracy"]),
             "",
             f"Players against the tabular game's Shapley values ({o['oracle_walks']} antithetic walks; its "
             f"per-edge argmax cell scores {result['oracle_cell_accuracy']:.2f}):", "",
             "| run's scores | Kendall tau (30 players) | edges agreeing (of 6) | their argmax cell | its accuracy |",
             "|---|---:|---:|---|---:|"]
    for p in result["players"]:
        cell = p["argmax_cell"].replace("|", "\\|")
        lines.append(f"| {p['scores']} | {p['kendall_tau']:.3f} | {p['edges_agreeing']} | `{cell}` | "
                     f"{p['argmax_cell_accuracy']:.2f} |")
    lines += ["", "![diagnostic](diagnose.png)", ""]
    return "\n".join(lines)


def diagnose_run(run_dir: str | os.PathLike[str], options: DiagnoseOptions | None = None,
                 bench: TableBenchmark | None = None, oracle: np.ndarray | None = None) -> dict[str, Any]:
    """The diagnostic of one NB201 search run directory; writes ``diagnose.{json,md,png}`` there.

    Raises:
        RunDirError: not an NB201 search run with a checkpoint.
    """
    options = options or DiagnoseOptions()
    run = Path(run_dir)
    cfg = load_run_config(run)
    if cfg.space != "nb201":
        raise RunDirError(f"{run} is a {cfg.space}-space search; the diagnostic reads NAS-Bench-201 runs")
    state = load_search_checkpoint(run / CHECKPOINT)
    bench = bench if bench is not None else open_benchmark()
    if oracle is None:
        oracle = tabular_shapley(bench, options.dataset, options.oracle_walks)
    searcher = Searcher(cfg, run, DistContext())
    searcher.load_state_dict(state)
    searcher.net.eval()
    last = max(int(state["epoch"]) - 1, 0)
    x, y, x_adv, _ = searcher._score_sample(last, None if options.images == "score" else len(searcher.val_data))
    game = SupernetGame(searcher.net, "cell", x, y, x_adv, cfg.value_metric, searcher.net.primitives,
                        batch_stats=cfg.bn_stats == "batch")
    cells = sample_cells(options.n_cells, options.seed)
    values = cell_values(game, cells, cfg.metric_weights if cfg.adversarial else None, cfg.coalition_batch)
    truth = np.array([bench.test_accuracy(ops_to_arch(tuple(int(o) for o in c)), options.dataset) for c in cells])
    agreement = rank_agreement(values, truth, options.top_k)
    scores = _run_scores(state, cfg.scorer, cfg.metric_weights if cfg.adversarial else None)
    oracle_arch = ops_to_arch(tuple(int(o) for o in _edge_choice(oracle)))
    result = {"run": run.name, "options": asdict(options), "metric": cfg.value_metric, "n_images": int(y.shape[0]),
              "cells": agreement, "marginals": _marginal_comparison(cells, values, bench, options.dataset),
              "players": [_player_comparison(k, v, oracle, bench, options.dataset) for k, v in scores.items()],
              "oracle_cell": oracle_arch, "oracle_cell_accuracy": bench.test_accuracy(oracle_arch, options.dataset),
              "sampled": [{"ops": c.tolist(), "value": float(v), "accuracy": float(t)}
                          for c, v, t in zip(cells, values, truth, strict=True)]}
    _plot(values, truth, scores, oracle, agreement, options.dataset, cfg.value_metric, run / "diagnose.png")
    atomic_write_text(run / "diagnose.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(run / "diagnose.md", _markdown(result))
    return result


def diagnose(path: str | os.PathLike[str], options: DiagnoseOptions | None = None) -> list[dict[str, Any]]:
    """Diagnose a search run directory, or every seeded run of an ``rdnas-search nb201`` directory.

    For an nb201 directory, ``diagnose.md`` at its top summarises the runs (mean of each figure).
    """
    options = options or DiagnoseOptions()
    root = Path(path)
    if (root / CHECKPOINT).is_file():
        runs = [root]
    else:
        runs = sorted(p for p in root.glob("run*-seed*") if (p / CHECKPOINT).is_file())
        if not runs:
            raise RunDirError(f"{root} holds no NAS-Bench-201 search run with a {CHECKPOINT}")
    bench = open_benchmark()
    oracle = tabular_shapley(bench, options.dataset, options.oracle_walks)
    results = [diagnose_run(r, options, bench, oracle) for r in runs]
    if len(runs) > 1 or runs[0] != root:
        atomic_write_text(root / "diagnose.md", _summary_markdown(results, options))
        atomic_write_text(root / "diagnose.json", json.dumps({"options": asdict(options), "runs": [
            {k: v for k, v in r.items() if k != "sampled"} for r in results]}, indent=2) + "\n")
    return results


def _summary_markdown(results: list[dict[str, Any]], options: DiagnoseOptions) -> str:
    lines = [f"# Ranking diagnostic ({options.dataset} column, {options.n_cells} cells, seed {options.seed})", "",
             "| run | Kendall tau | Spearman rho | top-k overlap | players' tau (mean over rounds or alpha) "
             "| edges agreeing |", "|---|---:|---:|---:|---:|---:|"]
    for r in results:
        p = r["players"][1] if len(r["players"]) > 1 else r["players"][0]
        lines.append(f"| [{r['run']}]({r['run']}/diagnose.md) | {r['cells']['kendall_tau']:.3f} | "
                     f"{r['cells']['spearman_rho']:.3f} | {r['cells']['top_k_overlap']:.2f} | "
                     f"{p['kendall_tau']:.3f} | {p['edges_agreeing']} |")
    mean = {k: float(np.mean([r["cells"][k] for r in results])) for k in ("kendall_tau", "spearman_rho",
                                                                          "top_k_overlap")}
    lines += [f"| **mean** | **{mean['kendall_tau']:.3f}** | {mean['spearman_rho']:.3f} | "
              f"{mean['top_k_overlap']:.2f} | | |", ""]
    return "\n".join(lines)
