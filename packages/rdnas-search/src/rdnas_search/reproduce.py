"""``rdnas-search reproduce``: each experiment of the paper as a declarative spec, run as resumable jobs.

A spec (``rdnas_search/specs/*.toml``) lists the experiment's *pipelines* (a search with its switches, the final
training of what it found or of a baseline, extra evaluation suites, or a NAS-Bench-201 lookup), the layout of its
table (rows, columns, the metric of each column) and the paper's own figure for every cell.  :func:`reproduce`
turns the pipelines into jobs, runs every job that is not finished yet (so a killed reproduction resumes, and a
search that several tables share runs once in one output directory), and writes ``TABLE.md`` and ``TABLE.json``
with the measured mean +- std over seeds next to the paper's value, plus a plot where the paper has one.

Jobs are named by what they compute (kind, scale, settings, seed), so two tables that need the same search share
it.  Each job's scalars (losses, accuracies, alpha entropy, exception triggers) also go to TensorBoard event
files under ``DIR/tensorboard``.

Scales: ``smoke`` (seconds per job, for CI: the smoke presets shrunk further), ``cpu`` (the cpu presets: a
pipeline demonstration on 2 cores, not a reproduction of the paper's numbers) and ``paper`` (the paper's settings;
where it leaves one open, the presets' documented choice).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from advbench.files import atomic_write_text, check_output_dir

from .config import (
    ConfigError,
    SearchConfig,
    TrainConfig,
    apply_overrides,
    nb201_preset,
    search_preset,
    to_dict,
    train_preset,
)

__all__ = ["SCALES", "Spec", "Pipeline", "Job", "list_specs", "load_spec", "plan", "reproduce", "SPEC_DIR"]

SCALES = ("smoke", "cpu", "paper")
SPEC_DIR = Path(__file__).with_name("specs")

# smoke: the smoke presets shrunk to seconds per job (one scoring round of one walk a branch), so that every spec
# reproduces end to end in CI
_SMOKE_SEARCH = {"n_train": 16, "n_val": 8, "epochs": 1, "warmup_epochs": 0, "batch_size": 16,
                 "n_permutations": 1, "antithetic": False, "n_groups": 1, "n_score": 2, "coalition_batch": 112}
_SMOKE_TRAIN = {"n_train": 32, "n_test": 16, "batch_size": 16}
# cpu: the cpu presets, with one warm-up and one scoring epoch in a search (the preset has two scoring epochs) and
# one PGD restart per eps in the sweep (Table 9 has five), so that a table takes about an hour on 2 cores
_CPU_SEARCH = {"epochs": 2}
_SWEEP_RESTARTS = {"smoke": 1, "cpu": 1, "paper": 5}
_SCALE_SEARCH = {"smoke": _SMOKE_SEARCH, "cpu": _CPU_SEARCH}
# wall time of one job on this project's 2-core CPU (docs/results.md), used by --plan for smoke and cpu scale.
# cpu sweep: one restart of Table 9's schedule (20-50 steps at six radii, plus the large-eps check) is about 200
# attacked passes over the 200 test images; cpu search: the PGD-3 preset's warm-up and first scoring epoch (235 +
# 382 s on 2026-12-07, AVX2); cpu train: the 5,000-image FGSM preset (596 s on 2026-12-07)
_SECONDS = {"smoke": {"search": 12, "train": 6, "sweep": 25, "transfer": 5, "nb201": 12},
            "cpu": {"search": 620, "train": 600, "sweep": 860, "transfer": 120, "nb201": 520}}
# paper scale: the paper's own costs (0.2 GPU-days for a search; Table 5: 731 s for an NB201 search)
_PAPER_GPU_HOURS = {"search": 0.2 * 24, "nb201": 731 / 3600}


class SpecError(ConfigError):
    """A spec file that cannot be read or does not describe an experiment."""


@dataclass(frozen=True)
class Column:
    """A table column: ``metric`` is read from each row's pipeline (``target``: the column's pipeline, for the
    transfer matrix)."""

    label: str
    metric: str
    target: str | None = None


@dataclass(frozen=True)
class Row:
    """A table row: its pipeline, the paper's figure per column (None: the paper has none), and words that
    replace upper-case placeholders in the columns' metrics (``fill``)."""

    label: str
    pipeline: str
    paper: tuple[float | None, ...]
    fill: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Pipeline:
    """What one row measures.

    Attributes:
        search: overrides of the search preset, or None for no search.
        train: ``search`` (train the genotype found), a published genotype or an advbench arch; None: no training.
        train_overrides: overrides of the training preset.
        sweep: also run advbench's eps sweep (Table 9) on the trained model.
        nb201: overrides of the NB201 preset for ``rdnas-search nb201`` (Table 5); None: not an NB201 row.
    """

    name: str
    search: dict[str, Any] | None = None
    train: str | None = None
    train_overrides: dict[str, Any] = field(default_factory=dict)
    sweep: bool = False
    nb201: dict[str, Any] | None = None


@dataclass(frozen=True)
class Spec:
    name: str
    title: str
    source: str
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    pipelines: dict[str, Pipeline]
    transfer: tuple[str, ...] = ()
    plot: str | None = None
    note: str = ""


@dataclass
class Job:
    """One unit of work: its id names what it computes, so a finished one is found again and reused."""

    id: str
    kind: str  # search | train | sweep | transfer | nb201
    seed: int
    settings: dict[str, Any]
    needs: tuple[str, ...] = ()

    def command(self, out: Path) -> str:
        """The equivalent command line (what ``--plan`` prints)."""
        scale = self.settings.get("preset")
        extra = {"search": _SCALE_SEARCH.get(scale, {}), "train": _SMOKE_TRAIN if scale == "smoke" else {},
                 "nb201": {"n_score": 4} if scale == "smoke" else {}}.get(self.kind, {})
        merged = {**extra, **self.settings.get("overrides", {})}
        sets = " ".join(f"--set {k}={_cli_value(v)}" for k, v in sorted(merged.items()))
        d = out / "jobs" / self.id
        if self.kind == "search":
            return f"rdnas-search run --preset {self.settings['preset']} --seed {self.seed} {sets} --out {d}".strip()
        if self.kind == "train":
            genotype = out / self.settings["spec"] if self.needs else self.settings["spec"]
            return (f"rdnas-search train --genotype {genotype} --preset {self.settings['preset']} "
                    f"--seed {self.seed} {sets} --out {d}")
        if self.kind == "nb201":
            return (f"rdnas-search nb201 --preset {self.settings['preset']} --seed {self.seed} --runs 1 {sets} "
                    f"--out {d}")
        models = " ".join(str(out / "jobs" / m / "model.pt") for m in self.needs)
        verb = "eval --suite sweep --model" if self.kind == "sweep" else "transfer --models"
        restarts = f" --restarts {self.settings['restarts']}" if self.kind == "sweep" else ""
        return (f"advbench {verb} {models} --n-examples {self.settings['n_examples']}{restarts} --seed {self.seed} "
                f"--out {d}")


def _cli_value(v: Any) -> str:
    return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v).lower() if isinstance(v, bool) else str(v)


# ------------------------------------------------------------------------------------------------ specs
def list_specs() -> list[str]:
    """Names of the shipped experiments."""
    return sorted(p.stem for p in SPEC_DIR.glob("*.toml"))


def load_spec(name: str) -> Spec:
    """The experiment ``name`` (a shipped spec) or a spec file path."""
    path = Path(name) if name.endswith(".toml") else SPEC_DIR / f"{name}.toml"
    if not path.is_file():
        raise SpecError(f"no experiment {name!r}; choose one of {', '.join(list_specs())} (rdnas-search reproduce "
                        f"--list)")
    try:
        raw = tomllib.loads(path.read_text())
        pipelines = {n: Pipeline(name=n, **p) for n, p in raw.get("pipelines", {}).items()}
        columns = tuple(Column(**c) for c in raw["columns"])
        rows = tuple(Row(r["label"], r["pipeline"], tuple(None if v == "" else float(v) for v in r["paper"]),
                         tuple(sorted(r.get("fill", {}).items()))) for r in raw["rows"])
        spec = Spec(name=path.stem, title=raw["title"], source=raw["source"], columns=columns, rows=rows,
                    pipelines=pipelines, transfer=tuple(raw.get("transfer", ())), plot=raw.get("plot"),
                    note=raw.get("note", ""))
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise SpecError(f"{path} is not a reproduction spec ({type(exc).__name__}: {exc})") from None
    for row in spec.rows:
        if row.pipeline not in spec.pipelines:
            raise SpecError(f"{path}: row {row.label!r} names the unknown pipeline {row.pipeline!r}")
        if len(row.paper) != len(spec.columns):
            raise SpecError(f"{path}: row {row.label!r} has {len(row.paper)} paper values for "
                            f"{len(spec.columns)} columns")
    return spec


# ------------------------------------------------------------------------------------------------- jobs
def _job_id(kind: str, payload: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"{kind}-{digest}"


def _search_cfg(scale: str, overrides: dict[str, Any], seed: int) -> SearchConfig:
    extra = _SCALE_SEARCH.get(scale, {})
    return apply_overrides(search_preset(scale), {**extra, **overrides, "seed": seed, "progress": False})


def _train_cfg(scale: str, overrides: dict[str, Any], seed: int) -> TrainConfig:
    extra = dict(_SMOKE_TRAIN) if scale == "smoke" else {}
    return apply_overrides(train_preset(scale), {**extra, **overrides, "seed": seed, "progress": False})


def _nb201_cfg(scale: str, overrides: dict[str, Any], seed: int) -> SearchConfig:
    extra = {"n_score": 4} if scale == "smoke" else {}
    return apply_overrides(nb201_preset(scale), {**extra, **overrides, "seed": seed, "progress": False})


def plan(spec: Spec, scale: str, seeds: list[int]) -> tuple[list[Job], dict[tuple[str, int], dict[str, str]]]:
    """The jobs of ``spec`` at ``scale`` for every seed (shared ones once), and for every (pipeline, seed) the
    ids of its jobs by kind.  Every config is built and checked here, so a bad spec fails before any work."""
    if scale not in SCALES:
        raise SpecError(f"scale must be one of {', '.join(SCALES)}; got {scale!r}")
    jobs: dict[str, Job] = {}
    owners: dict[tuple[str, int], dict[str, str]] = {}

    def add(job: Job) -> str:
        jobs.setdefault(job.id, job)
        return job.id

    for seed in seeds:
        for name, p in spec.pipelines.items():
            mine: dict[str, str] = {}
            if p.nb201 is not None:
                cfg = _nb201_cfg(scale, p.nb201, seed)
                payload = {"scale": scale, "config": to_dict(cfg)}
                mine["nb201"] = add(Job(_job_id("nb201", payload), "nb201", seed,
                                        {"preset": scale, "overrides": p.nb201}))
            if p.search is not None:
                cfg = _search_cfg(scale, p.search, seed)
                mine["search"] = add(Job(_job_id("search", {"scale": scale, "config": to_dict(cfg)}), "search", seed,
                                         {"preset": scale, "overrides": p.search}))
            if p.train is not None:
                if p.train == "search" and "search" not in mine:
                    raise SpecError(f"{spec.name}: pipeline {name!r} trains its search's genotype but has no search")
                tcfg = _train_cfg(scale, p.train_overrides, seed)
                source = mine["search"] if p.train == "search" else p.train
                needs = (mine["search"],) if p.train == "search" else ()
                mine["train"] = add(Job(_job_id("train", {"scale": scale, "source": source,
                                                          "config": to_dict(tcfg)}), "train", seed,
                                        {"preset": scale, "overrides": p.train_overrides,
                                         "spec": f"jobs/{source}/genotype.json" if needs else p.train}, needs))
            if p.sweep:
                if "train" not in mine:
                    raise SpecError(f"{spec.name}: pipeline {name!r} sweeps eps but trains no model")
                n = _train_cfg(scale, p.train_overrides, seed).n_test
                restarts = _SWEEP_RESTARTS[scale]
                mine["sweep"] = add(Job(_job_id("sweep", {"model": mine["train"], "n": n, "restarts": restarts}),
                                        "sweep", seed, {"n_examples": n, "restarts": restarts}, (mine["train"],)))
            owners[(name, seed)] = mine
        if spec.transfer:
            models = tuple(owners[(n, seed)]["train"] for n in spec.transfer)
            n = _train_cfg(scale, {}, seed).n_test
            tid = add(Job(_job_id("transfer", {"models": models, "n": n}), "transfer", seed,
                          {"n_examples": n, "names": list(spec.transfer)}, models))
            for n_ in spec.transfer:
                owners[(n_, seed)]["transfer"] = tid
    return list(jobs.values()), owners


def estimate(jobs: list[Job], scale: str) -> str:
    """A human estimate of the time the jobs take at ``scale``."""
    if scale == "paper":
        hours = sum(_PAPER_GPU_HOURS.get(j.kind, 0.0) for j in jobs)
        trains = sum(j.kind == "train" for j in jobs)
        return (f"about {hours:.1f} GPU-hours of search (the paper's 0.2 GPU-days a search, 731 s an NB201 "
                f"search) plus {trains} final training(s) of 120 epochs, whose cost the paper does not report")
    seconds = sum(_SECONDS[scale][j.kind] for j in jobs)
    return f"about {seconds / 60:.0f} minutes on 2 CPU cores (per-job times measured or derived here, docs/results.md)"


# ---------------------------------------------------------------------------------------------- running
def _done(job: Job, d: Path) -> bool:
    if job.kind in ("search", "train"):
        return (d / "DONE").is_file()
    if job.kind == "nb201":
        return (d / "summary.json").is_file() and json.loads((d / "summary.json").read_text()).get("finished", False)
    return (d / "results.json").is_file()


def _run_job(job: Job, scale: str, root: Path, device: str) -> None:
    from advbench import EvalConfig, evaluate, evaluate_transfer

    from .nb201_search import NB201Options, run_nb201
    from .search import run_search
    from .train import default_archive, run_train

    d = root / "jobs" / job.id
    started = (d / "config.json").is_file() or (d / "train_config.json").is_file()
    overrides = {**job.settings.get("overrides", {}), "device": device}
    if job.kind == "search":
        run_search(_search_cfg(scale, overrides, job.seed), d, resume=started)
    elif job.kind == "train":
        spec = str(root / job.settings["spec"]) if job.needs else job.settings["spec"]
        run_train(spec, _train_cfg(scale, overrides, job.seed), d, resume=started)
    elif job.kind == "nb201":
        run_nb201(_nb201_cfg(scale, overrides, job.seed), d, NB201Options(runs=1), resume=started)
    else:
        models = [str(root / "jobs" / m / "model.pt") for m in job.needs]
        cfg = EvalConfig(suite="sweep", dataset="archive", data_root=default_archive(), n_examples=
                         job.settings["n_examples"], restarts=job.settings.get("restarts", 5), seed=job.seed,
                         device=device, out=str(d), progress=False)
        if job.kind == "sweep":
            evaluate(models[0], cfg)
        else:
            evaluate_transfer(models, cfg)


def _tensorboard(job: Job, root: Path) -> None:
    """The job's scalars as TensorBoard event files in ``DIR/tensorboard/JOB`` (rewritten from its logs)."""
    from torch.utils.tensorboard import SummaryWriter

    d, tb = root / "jobs" / job.id, root / "tensorboard" / job.id
    log = d / ("log.jsonl" if job.kind == "search" else "train_log.jsonl")
    if job.kind not in ("search", "train") or not log.is_file():
        return
    for old in tb.glob("events.out.tfevents.*"):
        old.unlink()
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    with SummaryWriter(str(tb)) as writer:
        for r in records:
            step = int(r["epoch"])
            for key, value in r.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "epoch":
                    writer.add_scalar(f"{job.kind}/{key}", value, step)
            for branch, alpha in (r.get("alpha") or {}).items():
                p = np.exp(np.asarray(alpha) - np.max(alpha, axis=-1, keepdims=True))
                p /= p.sum(-1, keepdims=True)
                writer.add_scalar(f"alpha_entropy/{branch}", float(-(p * np.log(p + 1e-12)).sum(-1).mean()), step)
            for branch, info in (r.get("branches") or {}).items():
                for side in ("triggers_above", "triggers_below"):
                    for op, count in info.get(side, {}).items():
                        writer.add_scalar(f"{side}/{branch}/{op}", count, step)


def _pipeline_results(root: Path, mine: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "train" in mine:
        out["whitebox"] = json.loads((root / "jobs" / mine["train"] / "whitebox.json").read_text())
    if "sweep" in mine:
        out["sweep"] = json.loads((root / "jobs" / mine["sweep"] / "results.json").read_text())["suites"][0]
    if "transfer" in mine:
        out["transfer"] = json.loads((root / "jobs" / mine["transfer"] / "results.json").read_text())
    if "nb201" in mine:
        out["nb201"] = json.loads((root / "jobs" / mine["nb201"] / "runs.jsonl").read_text().splitlines()[0])
    if "search" in mine:
        log = (root / "jobs" / mine["search"] / "log.jsonl").read_text().splitlines()
        out["search_log"] = [json.loads(line) for line in log if line.strip()]
    return out


def _metric(results: dict[str, Any], metric: str, target_names: dict[str, str]) -> float | None:
    """One number of a pipeline's results (None where the pipeline does not measure it)."""
    kind, _, key = metric.partition(".")
    try:
        if kind == "whitebox":
            wb = results["whitebox"]
            if key == "params_m":
                return wb["size"]["params"] / 1e6
            if key == "flops_m":
                return wb["size"]["flops"] / 1e6
            return wb["accuracy"].get(key)
        if kind == "sweep":
            return next(p["accuracy"] for p in results["sweep"]["points"] if p["eps_255"] == int(key))
        if kind == "transfer":  # advbench names the models by file stem: model, model-1, model-2, ...
            src, tgt = target_names["source"], target_names["target"]
            if src == tgt:
                return None
            matrix = results["transfer"]["suites"][0]["matrix"]
            return matrix[src][tgt]
        if kind == "nb201":
            return results["nb201"][key]
        if kind == "triggers":
            branch, op, side = key.split(".")
            return float(sum(r.get("branches", {}).get(branch, {}).get(f"triggers_{side}", {}).get(op, 0)
                             for r in results["search_log"]))
    except (KeyError, StopIteration):
        return None
    raise SpecError(f"unknown metric {metric!r}")


def _fmt(values: list[float]) -> str:
    if not values:
        return "—"
    mean = float(np.mean(values))
    return f"{mean:.2f}" if len(values) == 1 else f"{mean:.2f} ± {float(np.std(values)):.2f}"


def _table(spec: Spec, scale: str, seeds: list[int], root: Path, owners: dict[tuple[str, int], dict[str, str]],
           seconds: float) -> dict[str, Any]:
    cells = []
    for row in spec.rows:
        for col, paper in zip(spec.columns, row.paper, strict=True):
            values = []
            names = {}
            if col.target is not None:  # transfer: the row's model is the source, the column's the target
                keys = ["model"] + [f"model-{i}" for i in range(1, len(spec.transfer))]
                names = {"source": keys[spec.transfer.index(row.pipeline)],
                         "target": keys[spec.transfer.index(col.target)]}
            metric = col.metric
            for word, value in row.fill:
                metric = metric.replace(word, value)
            for seed in seeds:
                res = _pipeline_results(root, owners[(row.pipeline, seed)])
                v = _metric(res, metric, names)
                if v is not None:
                    values.append(float(v))
            cells.append({"row": row.label, "column": col.label, "metric": metric, "measured": values,
                          "mean": float(np.mean(values)) if values else None,
                          "std": float(np.std(values)) if values else None, "paper": paper})
    return {"experiment": spec.name, "title": spec.title, "source": spec.source, "scale": scale, "seeds": seeds,
            "seconds": seconds, "cells": cells, "note": spec.note}


def _markdown(table: dict[str, Any], spec: Spec) -> str:
    cols = [c.label for c in spec.columns]
    head = "| | " + " | ".join(f"{c} (ours)" + f" | {c} (paper)" for c in cols) + " |"
    lines = [f"# {spec.title}", "",
             f"Scale `{table['scale']}`, seeds {table['seeds']}: measured mean ± std over seeds next to the "
             f"paper's figure (\"paper\", quoted from its {spec.source}).  {table['seconds']:.0f} s of jobs.", "",
             head, "|---|" + "---:|" * (2 * len(cols))]
    by_row: dict[str, list[dict[str, Any]]] = {}
    for c in table["cells"]:
        by_row.setdefault(c["row"], []).append(c)
    for label, cells in by_row.items():
        parts = [f"{_fmt(c['measured'])} | {'—' if c['paper'] is None else c['paper']}" for c in cells]
        lines.append(f"| {label} | " + " | ".join(parts) + " |")
    if table["scale"] != "paper":
        lines += ["", f"At `{table['scale']}` scale this is a demonstration of the pipeline: the networks, data "
                      "and budgets are far smaller than the paper's, so the numbers cannot confirm or refute it."]
    if spec.note:
        lines += ["", spec.note]
    return "\n".join(lines) + "\n"


def _plot(spec: Spec, table: dict[str, Any], path: Path, root: Path,
          owners: dict[tuple[str, int], dict[str, str]]) -> list[Path]:
    """The table's plot: measured against paper per row, or (``plot = "triggers"``) the first seed's trigger-trend
    figures of the search, copied next to the table."""
    import shutil

    from .report import save_figure

    if spec.plot == "triggers":
        search = root / "jobs" / owners[(spec.rows[0].pipeline, table["seeds"][0])]["search"]
        copies = []
        for branch in ("normal", "robust"):
            if (search / f"triggers_{branch}.png").is_file():
                copies.append(path.with_name(f"{path.stem}-{branch}.png"))
                shutil.copyfile(search / f"triggers_{branch}.png", copies[-1])
        return copies
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for row in spec.rows:
        cells = [c for c in table["cells"] if c["row"] == row.label]
        xs = range(len(cells))
        ax.plot(xs, [c["mean"] if c["mean"] is not None else math.nan for c in cells], marker="o",
                label=f"{row.label} (ours)")
        if any(c["paper"] is not None for c in cells):
            ax.plot(xs, [c["paper"] if c["paper"] is not None else math.nan for c in cells], ls="--", marker="x",
                    label=f"{row.label} (paper)")
        ax.set_xticks(list(xs), [c["column"] for c in cells], rotation=30, ha="right")
    ax.set_ylabel(str(spec.plot))
    ax.set_title(spec.title, fontsize=9)
    ax.legend(fontsize=7)
    return [save_figure(fig, path)]


def reproduce(name: str, scale: str, out: str | os.PathLike[str], *, seeds: int = 1, seed: int = 0,
              device: str = "auto", dry_run: bool = False,
              on_job: Callable[[Job, str], None] | None = None) -> dict[str, Any]:
    """Run (or resume) experiment ``name`` at ``scale`` in ``out``; returns the table (``TABLE.json``'s content).

    Args:
        name: a shipped experiment (:func:`list_specs`) or a spec file.
        scale: ``smoke``, ``cpu`` or ``paper``.
        out: the reproduction directory; jobs live in ``out/jobs`` and are shared by every experiment run there.
        seeds: how many seeds (``seed``, ``seed + 1``, ...); tables show mean ± std over them.
        device: for every job (``auto``: CUDA when present).
        dry_run: only plan: returns ``{"jobs": [...], "estimate": ...}`` and runs nothing (``--plan``).
        on_job: called with each job and its state (``done``, ``run``), for progress output.
    """
    from .search import check_dir, claim_dir

    spec = load_spec(name)
    if seeds < 1:
        raise SpecError(f"--seeds must be positive, got {seeds}")
    seed_list = list(range(seed, seed + seeds))
    jobs, owners = plan(spec, scale, seed_list)
    root = check_output_dir(out, "--out")
    check_dir(root, "reproduce")
    if dry_run:
        return {"jobs": [{"id": j.id, "kind": j.kind, "seed": j.seed, "command": j.command(root),
                          "done": _done(j, root / "jobs" / j.id)} for j in jobs], "estimate": estimate(jobs, scale)}
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    with claim_dir(root, "reproduce"), tqdm(total=len(jobs), desc=f"reproduce {spec.name}", unit="job") as bar:
        (root / "jobs").mkdir(parents=True, exist_ok=True)
        for job in jobs:
            d = root / "jobs" / job.id
            state = "done" if _done(job, d) else "run"
            if on_job is not None:
                on_job(job, state)
            if state == "run":
                started = time.perf_counter()
                _run_job(job, scale, root, device)
                with open(root / "jobs.jsonl", "a") as log:
                    log.write(json.dumps({"experiment": spec.name, "job": job.id, "kind": job.kind, "seed": job.seed,
                                          "seconds": time.perf_counter() - started}) + "\n")
            _tensorboard(job, root)
            bar.update(1)
        table = _table(spec, scale, seed_list, root, owners, time.perf_counter() - t0)
        atomic_write_text(root / f"{spec.name}.json", json.dumps(table, indent=2))
        atomic_write_text(root / f"{spec.name}.md", _markdown(table, spec))
        if spec.plot is not None:
            _plot(spec, table, root / f"{spec.name}.png", root, owners)
    return table
