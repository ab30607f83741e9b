"""NAS-Bench-201 lookup mode: several seeded searches, each derived cell looked up, one small Table 5.

Two games (``NB201Options.game``):

- ``supernet``: the search of :func:`~rdnas_search.search.run_search` on the
  NAS-Bench-201 supernet (``space="nb201"``), clean by default as in the paper's
  Table 5; ROSE, the plain Monte-Carlo mean or first-order DARTS move the shared
  cell alpha; the argmax op of each edge (``none`` included, as the benchmark
  does) is looked up;
- ``table``: no training, ROSE over the 30 (edge, op) players of
  :class:`~rdnas_search.nb201.NB201TableGame`, valued from the benchmark itself: a
  test bed for the estimator, not a search result.

``scorer="naswot"`` (either game) is the training-free peer (:mod:`~rdnas_search.naswot`): N random cells
scored on one batch of the run's training images, the best kept.

A run directory holds ``config.json``, one sub-directory per seeded run (a full
search run directory: checkpoints, logs, alpha plots), ``runs.jsonl`` (one
record per finished run), ``summary.json``, ``accuracy.png`` and ``report.md``.
Interrupted work resumes with ``resume=True``: finished runs are kept, the
interrupted one continues from its last epoch.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from advbench import resolve_device
from advbench.distributed import DistContext, barrier, init_distributed
from advbench.files import atomic_write_text, check_output_dir
from rose_estimator import RoseConfig, RoseEstimator

from .config import ConfigError, SearchConfig, from_dict, to_dict
from .distributed import restarted
from .naswot import naswot_search
from .nb201 import NB201_DATASETS, NB201TableGame, TableBenchmark, open_benchmark
from .report import save_figure
from .scoring import edge_labels, player_scores
from .search import RunDirError, check_dir, claim_dir, is_finished, run_search
from .searchdata import search_split

__all__ = ["NB201Options", "NB201Outcome", "run_nb201", "NB201_GAMES", "NB201_PARALLEL"]

NB201_GAMES = ("supernet", "table")
NB201_PARALLEL = ("walks", "seeds")
_FORMAT = "rdnas-nb201/1"


@dataclass(frozen=True)
class NB201Options:
    """What the lookup mode adds to a search config.

    Attributes:
        benchmark: the compact ``.csv`` table or the official ``.pth`` (None: the shared table).
        dataset: the benchmark column to report: ``cifar10``, ``cifar100`` or ``ImageNet16-120``.
        runs: seeded runs (seeds ``seed, seed + 1, ...``).
        game: ``supernet`` (train and search) or ``table`` (ROSE on the tabular game, no training).
        parallel: under torchrun, ``walks`` (every rank works on every seed: DDP training and sharded ROSE
            walks; only rank 0 writes) or ``seeds`` (each rank searches its own seeds alone, ``rank``,
            ``rank + world``, ..., writing those seeds' run directories; rank 0 writes the rest).
    """

    benchmark: str | None = None
    dataset: str = "cifar10"
    runs: int = 3
    game: str = "supernet"
    parallel: str = "walks"

    def __post_init__(self) -> None:
        if self.dataset not in NB201_DATASETS:
            raise ConfigError(f"unknown NAS-Bench-201 dataset {self.dataset!r}; choose one of "
                              f"{', '.join(NB201_DATASETS)}")
        if self.game not in NB201_GAMES:
            raise ConfigError(f"game must be one of {', '.join(NB201_GAMES)}; got {self.game!r}")
        if self.runs < 1:
            raise ConfigError(f"runs must be positive, got {self.runs}")
        if self.parallel not in NB201_PARALLEL:
            raise ConfigError(f"parallel must be one of {', '.join(NB201_PARALLEL)}; got {self.parallel!r}")


@dataclass
class NB201Outcome:
    """Per-run records and their summary (``finished`` is False when the work was stopped early)."""

    run_dir: Path
    runs: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    finished: bool = False


def _search_time(run_dir: Path) -> float:
    """Seconds of search in a run's log (sum of per-epoch wall times, so resumed runs count once)."""
    lines = (run_dir / "log.jsonl").read_text().splitlines()
    return float(sum(json.loads(line)["time_epoch_s"] for line in lines if line.strip()))


def _supernet_run(cfg: SearchConfig, run_dir: Path, stop_after: int | None,
                  group: DistContext | None = None) -> tuple[str | None, float]:
    """Run, resume or reuse one seeded supernet search; the derived cell (None if stopped) and its time."""
    if is_finished(run_dir):
        return json.loads((run_dir / "cell.json").read_text())["arch"], _search_time(run_dir)
    outcome = run_search(cfg, run_dir, resume=(run_dir / "config.json").is_file(), stop_after=stop_after,
                         group=group)
    return (outcome.genotype if outcome.finished else None), _search_time(run_dir)


def _table_run(cfg: SearchConfig, bench: TableBenchmark, dataset: str, run_dir: Path,
               write: bool = True) -> tuple[str, float]:
    """ROSE (or the plain mean) over the tabular game; writes ``cell.json`` and ``rose.json`` (if ``write``)."""
    cell = run_dir / "cell.json"
    if cell.is_file():
        record = json.loads(cell.read_text())
        return record["arch"], float(record["search_time_s"])
    t0 = time.perf_counter()
    game = NB201TableGame(bench.table, dataset)
    rose_cfg = RoseConfig(beta=cfg.beta, l1=cfg.l1, l2=cfg.l2, n_groups=cfg.n_groups,
                          standardize="group" if cfg.standardize == "edge" else "all")
    result = RoseEstimator(rose_cfg).approximate(game, cfg.n_permutations, rng=np.random.default_rng(cfg.seed),
                                                 antithetic=cfg.antithetic, truncation_tol=cfg.truncation_tol,
                                                 player_groups=edge_labels(game.player_names)
                                                 if cfg.standardize == "edge" else None)
    arch = NB201TableGame.derive(player_scores(result, cfg.scorer))
    seconds = time.perf_counter() - t0
    if not write:
        return arch, seconds
    run_dir.mkdir(parents=True, exist_ok=True)
    result.to_json(run_dir / "rose.json")
    atomic_write_text(cell, json.dumps({"arch": arch, "search_time_s": seconds, "scorer": cfg.scorer,
                                        "evaluations": result.n_evaluations}, indent=2) + "\n")
    return arch, seconds


def _naswot_run(cfg: SearchConfig, run_dir: Path, write: bool = True) -> tuple[str, float]:
    """NASWOT over ``cfg.naswot_cells`` random cells; writes ``cell.json`` (every cell's score, if ``write``)."""
    cell = run_dir / "cell.json"
    if cell.is_file():
        record = json.loads(cell.read_text())
        return record["arch"], float(record["search_time_s"])
    train, _ = search_split(cfg.dataset, cfg.n_train, cfg.n_val, cfg.seed, cfg.data_root)
    idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(cfg.seed))[: cfg.naswot_batch]
    result = naswot_search(train.x[idx], cfg.naswot_cells, cfg.seed, n_classes=train.num_classes,
                           device=resolve_device(cfg.device))
    if not write:
        return result.arch, result.seconds
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(cell, json.dumps({"arch": result.arch, "search_time_s": result.seconds, "scorer": "naswot",
                                        "score": result.score, "cells": result.cells}, indent=2) + "\n")
    return result.arch, result.seconds


def _summary(rows: list[dict[str, Any]], dataset: str) -> dict[str, Any]:
    """Mean and (population) standard deviation over runs, as the benchmark's papers report them."""
    out: dict[str, Any] = {"dataset": dataset, "runs": len(rows)}
    if not rows:
        return out
    for key in ("test_accuracy", "percentile", "search_time_s"):
        values = np.array([r[key] for r in rows], dtype=np.float64)
        out[key] = {"mean": float(values.mean()), "std": float(values.std())}
    out["optimum"] = rows[0]["optimum"]
    out["columns"] = {d: {"mean": float(np.mean([r["accuracies"][d] for r in rows])),
                          "std": float(np.std([r["accuracies"][d] for r in rows]))} for d in NB201_DATASETS}
    return out


def _plot(all_acc: np.ndarray, rows: list[dict[str, Any]], dataset: str, path: Path) -> Path:
    """Histogram of every cell's benchmark accuracy with the derived cells marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, lo in ((axes[0], float(all_acc.min())), (axes[1], float(np.percentile(all_acc, 90)))):
        ax.hist(all_acc[all_acc >= lo], bins=60, color="0.7")
        for r in rows:
            if r["test_accuracy"] >= lo:
                ax.axvline(r["test_accuracy"], color="tab:red", lw=1.2)
        ax.axvline(float(all_acc.max()), color="tab:green", ls="--", lw=1.2)
        ax.set_xlabel(f"{dataset} test accuracy (%)")
        ax.set_ylabel("cells")
    axes[0].set_title("all 15,625 cells (red: derived, green: optimum)")
    below = sum(r["test_accuracy"] < lo for r in rows)
    axes[1].set_title("top 10%" + (f" ({below} derived cell(s) below)" if below else ""))
    return save_figure(fig, path)


def _seconds(t: float) -> str:
    return f"{t:.2f}" if t < 10 else f"{t:.0f}"


def _report(cfg: SearchConfig, options: NB201Options, bench_name: str, rows: list[dict[str, Any]],
            summary: dict[str, Any], note: str) -> str:
    d = options.dataset
    what = ("ROSE over the tabular game (no training)" if options.game == "table" else
            f"supernet search, scorer `{cfg.scorer}`, adversarial: {cfg.adversarial}")
    if cfg.scorer == "naswot":
        what = f"NASWOT over {cfg.naswot_cells} random cells (training-free, no supernet)"
    lines = ["# NAS-Bench-201 lookup search", "",
             f"{what}; preset `{cfg.preset}`; benchmark source `{bench_name}`; column: {d} test accuracy "
             f"(200 epochs).", "",
             f"| run | seed | cell | {d} test | percentile | search (s) |", "|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        cell = r["arch"].replace("|", "\\|")  # a table cell: escape the string's pipes
        lines.append(f"| {r['run']} | {r['seed']} | `{cell}` | {r['test_accuracy']:.2f} | "
                     f"{r['percentile']:.2f} | {_seconds(r['search_time_s'])} |")
    if rows:
        s = summary
        lines.append(f"| **mean ± std** | | | **{s['test_accuracy']['mean']:.2f} ± {s['test_accuracy']['std']:.2f}** "
                     f"| {s['percentile']['mean']:.2f} ± {s['percentile']['std']:.2f} "
                     f"| {_seconds(s['search_time_s']['mean'])} ± {_seconds(s['search_time_s']['std'])} |")
        lines += ["", f"Optimum of the benchmark: {s['optimum']:.2f}.  Percentile: share of the 15,625 cells at or "
                  "below the derived cell.  Standard deviations are over runs (population form)."]
        others = [c for c in NB201_DATASETS if c != d]
        lines += ["", "Derived cells on the other columns:", "",
                  "| run | " + " | ".join(others) + " | validation |", "|---:|" + "---:|" * (len(others) + 1)]
        for r in rows:
            valid = "-" if r["valid_accuracy"] is None else f"{r['valid_accuracy']:.2f}"
            lines.append(f"| {r['run']} | " + " | ".join(f"{r['accuracies'][c]:.2f}" for c in others)
                         + f" | {valid} |")
        columns = summary["columns"]
        lines.append("| **mean ± std** | " + " | ".join(f"**{columns[c]['mean']:.2f} ± {columns[c]['std']:.2f}**"
                                                     for c in others) + " | |")
        if note:
            lines += ["", f"Validation accuracy: {note}."]
        lines += ["", "![benchmark accuracy of the derived cells](accuracy.png)"]
    lines += ["", "## Settings", "", "```json", json.dumps({"search": to_dict(cfg), "nb201": asdict(options)},
                                                         indent=2), "```", ""]
    return "\n".join(lines)


def _own_seeds(cfg: SearchConfig, run: Path, options: NB201Options, ctx: DistContext,
               stop_after: int | None) -> None:
    """``parallel="seeds"``: search this rank's seeds alone, then wait (on the files, not on a collective with
    a timeout) until every other rank's seeds are finished too."""
    mine = range(ctx.rank, options.runs, ctx.world_size)
    for r in mine:
        _supernet_run(replace(cfg, seed=cfg.seed + r), run / f"run{r}-seed{cfg.seed + r}", stop_after,
                      group=DistContext())
    if stop_after is not None:
        barrier(ctx)
        return
    while not all(is_finished(run / f"run{r}-seed{cfg.seed + r}") for r in range(options.runs)):
        time.sleep(2.0)


def _load(run: Path) -> tuple[SearchConfig, NB201Options]:
    path = run / "config.json"
    try:
        data = json.loads(path.read_text())
        if data.get("format") != _FORMAT:
            raise KeyError("format")
        return from_dict(SearchConfig, data["config"]), NB201Options(**data["nb201"])
    except FileNotFoundError:
        raise RunDirError(f"{run} is not an nb201 run directory (no config.json)") from None
    except (KeyError, TypeError, ValueError, json.JSONDecodeError):
        raise RunDirError(f"{path} is not an nb201 run config") from None


def run_nb201(cfg: SearchConfig, run_dir: str | os.PathLike[str], options: NB201Options | None = None, *,
              resume: bool = False, stop_after: int | None = None) -> NB201Outcome:
    """Search ``options.runs`` times (seeds ``cfg.seed + r``), look every derived cell up, write the report.

    Args:
        cfg: search settings with ``space="nb201"`` (ignored when resuming: the saved ones are used).
        run_dir: output directory; must not hold another run unless resuming.
        options: benchmark, dataset column, number of runs, game.
        resume: continue the work saved in ``run_dir``.
        stop_after: stop each unfinished supernet run after this many epochs (as an interruption would).

    Under torchrun the seeds are shared as ``options.parallel`` says; every rank returns the same outcome.

    Raises:
        ConfigError: bad options; RunDirError: a run directory that cannot be used;
        FileNotFoundError / ValueError: a missing or malformed benchmark file.
    """
    with contextlib.ExitStack() as claim:
        return _run_nb201(cfg, run_dir, options, resume, stop_after, claim)


def _run_nb201(cfg: SearchConfig, run_dir: str | os.PathLike[str], options: NB201Options | None, resume: bool,
               stop_after: int | None, claim: contextlib.ExitStack) -> NB201Outcome:
    run = check_output_dir(run_dir)
    ctx, _ = init_distributed(cfg.device, cfg.dist_backend)
    resume = resume or (restarted() and (run / "config.json").is_file())
    check_dir(run, "nb201", resume=resume)
    if resume:
        cfg, options = _load(run)
        if json.loads((run / "summary.json").read_text()).get("finished") if (run / "summary.json").is_file() \
                else False:
            raise RunDirError(f"{run} is a finished run ({options.runs} runs); nothing to resume")
    else:
        options = options or NB201Options()
        if cfg.space != "nb201":
            raise ConfigError(f"the lookup mode searches the nb201 space; got space={cfg.space!r}")
        if options.game == "table" and cfg.scorer == "darts":
            raise ConfigError("the tabular game has no gradients: use --scorer rose or mc, or --game supernet")
    bench = open_benchmark(options.benchmark)  # fails before any training on a bad file
    if resume:
        claim.enter_context(claim_dir(run, "nb201", resume=True, main=ctx.is_main))
    if options.game == "table" and not isinstance(bench, TableBenchmark):
        raise ConfigError("the tabular game reads the compact .csv table; pass it with --benchmark")
    all_acc = bench.all_test_accuracies(options.dataset)
    if not resume:
        if (run / "config.json").exists():
            raise RunDirError(f"{run} already holds a run; use --resume {run} or another --out")
        resolve_device(cfg.device)  # fail on a missing device or dataset before anything is written
        if options.game == "supernet" or cfg.scorer == "naswot":
            search_split(cfg.dataset, cfg.n_train, cfg.n_val, cfg.seed, cfg.data_root)
        barrier(ctx)  # every rank has read the directory before rank 0 writes to it
        claim.enter_context(claim_dir(run, "nb201", main=ctx.is_main))
        if (run / "config.json").exists():  # another writer got here between the check and the claim
            raise RunDirError(f"{run} already holds a run; use --resume {run} or another --out")
        if ctx.is_main:
            atomic_write_text(run / "config.json", json.dumps(
                {"format": _FORMAT, "config": to_dict(cfg), "nb201": asdict(options)}, indent=2))
    if ctx.is_distributed and options.parallel == "seeds" and options.game == "supernet" and cfg.scorer != "naswot":
        _own_seeds(cfg, run, options, ctx, stop_after)
    outcome = NB201Outcome(run)
    note = ""
    for r in range(options.runs):
        seed = cfg.seed + r
        sub = run / f"run{r}-seed{seed}"
        if cfg.scorer == "naswot":
            arch, seconds = _naswot_run(replace(cfg, seed=seed), sub, write=ctx.is_main)
        elif options.game == "table":
            arch, seconds = _table_run(replace(cfg, seed=seed), bench, options.dataset, sub, write=ctx.is_main)
        else:
            arch, seconds = _supernet_run(replace(cfg, seed=seed), sub, stop_after)
        if arch is None:
            break
        info = bench.summary(arch, options.dataset)
        note = info.pop("note")
        outcome.runs.append({"run": r, "seed": seed, "dir": sub.name, **info, "search_time_s": seconds,
                             "accuracies": {d: bench.test_accuracy(arch, d) for d in NB201_DATASETS}})
        if cfg.progress and ctx.is_main:
            print(f"run {r + 1}/{options.runs} (seed {seed}): {info['test_accuracy']:.2f} on {options.dataset} "
                  f"(percentile {info['percentile']:.1f}) after {seconds:.0f} s: {arch}", flush=True)
    outcome.finished = len(outcome.runs) == options.runs
    outcome.summary = _summary(outcome.runs, options.dataset)
    if not ctx.is_main:
        return outcome
    atomic_write_text(run / "runs.jsonl", "".join(json.dumps(r) + "\n" for r in outcome.runs))
    if outcome.runs:
        _plot(all_acc, outcome.runs, options.dataset, run / "accuracy.png")
    atomic_write_text(run / "report.md", _report(cfg, options, bench.name, outcome.runs, outcome.summary, note))
    # written last: its "finished" flag is the completion marker of the whole lookup run
    atomic_write_text(run / "summary.json", json.dumps({**outcome.summary, "finished": outcome.finished}, indent=2))
    return outcome
