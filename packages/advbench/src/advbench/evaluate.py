"""End-to-end evaluation: load a checkpoint and a dataset, run suites, write results (library side of the CLI)."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .checkpoint import CheckpointInfo, load_checkpoint
from .data import DataError, TensorData, load_dataset, subset
from .device import PRECISIONS, autocast_for, configure_device
from .distributed import BACKENDS, DistContext, init_distributed, sharded
from .files import check_output_dir
from .report import write_outputs
from .rundir import RunKindError, check_run_dir, claim_run_dir
from .suites import run_autoattack_suite, run_confusion, run_sweep, run_transfer, run_whitebox
from .suites.common import model_size
from .threat import format_eps

__all__ = ["EvalConfig", "evaluate", "evaluate_transfer", "check_finite_logits", "SUITES"]

SUITES = ("whitebox", "sweep", "autoattack", "confusion", "all")


@dataclass
class EvalConfig:
    """Settings of an evaluation run (the CLI's options)."""

    suite: str = "whitebox"
    dataset: str | None = None
    data_root: str | None = None
    split: str = "test"
    n_examples: int | None = 1000
    eps: float = 8 / 255
    step: float = 2 / 255
    seed: int = 0
    batch_size: int = 128
    device: str = "auto"
    out: str | None = None  # None: a fresh advbench-out/<model>-<time> directory
    force: bool = False  # replace an earlier evaluation's results in ``out``
    arch: str | None = None
    download: bool = False
    cache_dir: str | None = None
    progress: bool = True
    skip_autoattack: bool = False
    restarts: int = 5  # sweep suite: PGD random restarts per eps (Table 9's protocol uses 5)
    precision: str = "fp32"  # fp32 (reference) | bf16 (autocast; faster on GPU, may inflate robust accuracy)
    dist_backend: str = "auto"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.suite not in SUITES:
            raise ValueError(f"unknown suite {self.suite!r}; choose one of {', '.join(SUITES)}")
        if self.n_examples is not None and self.n_examples < 1:
            raise ValueError(f"--n-examples must be positive, got {self.n_examples}")
        if not 0.0 < self.eps <= 1.0:
            raise ValueError(f"--eps must lie in (0, 1], got {self.eps}")
        if not 0.0 < self.step <= 1.0:
            raise ValueError(f"--step must lie in (0, 1], got {self.step}")
        if self.batch_size < 1:
            raise ValueError(f"--batch-size must be positive, got {self.batch_size}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.restarts < 1:
            raise ValueError(f"--restarts must be at least 1, got {self.restarts}")
        if self.seed < 0:
            raise ValueError(f"--seed must be a non-negative integer, got {self.seed}")
        if self.dist_backend not in BACKENDS:
            raise ValueError(f"--dist-backend must be one of {', '.join(BACKENDS)}, got {self.dist_backend!r}")
        if self.out is not None:
            if str(self.out) == "":
                raise ValueError("--out is empty; give a directory")
            check_output_dir(self.out)


def _load_data(cfg: EvalConfig, info: CheckpointInfo) -> tuple[TensorData, str]:
    """The evaluation subset, and a note when ``--n-examples`` asks for more images than the split has."""
    name, root = cfg.dataset, cfg.data_root
    if name is None:  # the data the model was trained on, read from where the checkpoint says
        local = info.dataset in ("imagefolder", "archive", "npz")
        name = info.dataset if local or info.dataset in ("cifar10", "cifar100", "svhn") else "cifar10"
        root = root or (info.data_root if name == info.dataset else None)
        if local and root is None:
            raise DataError(f"the model was trained on a local {info.dataset} whose path its checkpoint does not "
                            f"record: give --dataset {info.dataset} --data-root PATH")
    data = load_dataset(name, root, cfg.split, download=cfg.download, cache_dir=cfg.cache_dir)
    if data.num_classes != info.num_classes:
        raise DataError(f"the model predicts {info.num_classes} classes but {name} has {data.num_classes}: "
                        "evaluate it on the dataset it was trained for")
    note = ""
    if cfg.n_examples is not None and cfg.n_examples > len(data):
        note = (f"--n-examples {cfg.n_examples} asks for more images than the {cfg.split} split of {data.name} "
                f"has: all {len(data)} are evaluated")
        print(f"advbench: note: {note}", file=sys.stderr)
    return subset(data, cfg.n_examples, cfg.seed), note


def check_finite_logits(model: torch.nn.Module, x: torch.Tensor, batch_size: int) -> None:
    """Refuse a model whose logits on the first batch are NaN or infinite: every accuracy would be noise."""
    device = next(model.parameters()).device
    with torch.no_grad():
        logits = model(x[:batch_size].to(device))
    if not torch.isfinite(logits).all():
        bad = int((~torch.isfinite(logits)).any(dim=1).sum())
        raise ValueError(f"the model returns non-finite logits (NaN or inf) for {bad} of the first "
                         f"{logits.shape[0]} images: refusing to report accuracies")


def _header(cfg: EvalConfig, device: torch.device, data: TensorData, model_meta: dict[str, Any],
            note: str = "") -> dict[str, Any]:
    return {
        "advbench_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {k: v for k, v in asdict(cfg).items() if k not in ("extra", "dist_backend")},
        "device": str(device),
        "eps": cfg.eps,
        "eps_str": format_eps(cfg.eps),
        "model": model_meta,
        "data": {"dataset": data.name, "split": cfg.split, "n_examples": len(data), "seed": cfg.seed,
                 "classes": data.classes, **({"note": note} if note else {})},
    }


def evaluate(model_path: str | Path, cfg: EvalConfig) -> dict[str, Any]:
    """Evaluate the checkpoint at ``model_path``; writes results.json, report.md and plots into ``cfg.out``.

    Under ``torchrun`` the images are shared out over the ranks and the per-image results gathered back in
    order (:func:`~advbench.distributed.sharded`): every rank returns what one process would, and only rank 0
    writes.
    """
    ctx, device = init_distributed(cfg.device, cfg.dist_backend)
    if cfg.out is not None:
        check_run_dir(cfg.out, "eval")
        _refuse_earlier(Path(cfg.out), cfg)
    with sharded(ctx), contextlib.ExitStack() as claim:
        return _evaluate(model_path, cfg, ctx, device, claim)


def output_dir(cfg: EvalConfig, name: str) -> Path:
    """``cfg.out``, or a fresh ``advbench-out/<name>-<YYYYmmdd-HHMMSS>`` (a suffix keeps it fresh)."""
    if cfg.out is not None:
        return Path(cfg.out)
    base = Path("advbench-out") / f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    out, k = base, 1
    while out.exists():
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out


def _refuse_earlier(out: Path, cfg: EvalConfig) -> None:
    if (out / "results.json").exists() and not cfg.force:
        raise RunKindError(f"{out} already holds an evaluation's results; give another --out, or --force to "
                           "replace them")


def _evaluate(model_path: str | Path, cfg: EvalConfig, ctx: DistContext, device: torch.device,
              claim: contextlib.ExitStack) -> dict[str, Any]:
    torch.manual_seed(cfg.seed)
    configure_device(device)
    model, info = load_checkpoint(model_path, arch=cfg.arch, device=device)
    data, note = _load_data(cfg, info)
    x = data.x
    check_finite_logits(model, x, cfg.batch_size)
    out = output_dir(cfg, Path(model_path).stem)
    claim.enter_context(claim_run_dir(out, "eval", main=ctx.is_main))
    _refuse_earlier(out, cfg)
    size = model_size(model, (1, *x.shape[1:]))
    meta = {"path": str(model_path), "name": Path(model_path).stem, "arch": info.arch, "arch_kwargs": info.arch_kwargs,
            "trained_on": info.dataset, "provenance": info.provenance, "size": size}
    results = _header(cfg, device, data, meta, note)
    suites = ["whitebox", "sweep", "confusion"] if cfg.suite == "all" else [cfg.suite]
    log_file = out / "autoattack.log" if ctx.is_main else None
    progress = cfg.progress and ctx.is_main
    results["suites"] = []
    for suite in suites:
        with autocast_for(device, cfg.precision):
            results["suites"].append(_run_suite(suite, model, data, cfg, log_file, progress))
    accuracies = {k: v for s in results["suites"] for k, v in s.get("accuracy", {}).items()}
    results["robustbench"] = {"threat_model": "Linf", "eps": format_eps(cfg.eps), "eps_float": cfg.eps,
                              "dataset": data.name, "n_examples": len(data),
                              "clean_acc": accuracies.get("clean"), "autoattack_acc": accuracies.get("autoattack")}
    if ctx.is_main:
        write_outputs(results, out)
    results["out"] = str(out)
    return results


def _run_suite(suite: str, model: torch.nn.Module, data: TensorData, cfg: EvalConfig, log_file: Path | None,
               progress: bool) -> dict[str, Any]:
    x, y, common = data.x, data.y, {"seed": cfg.seed, "batch_size": cfg.batch_size}
    if suite == "whitebox":
        return run_whitebox(model, x, y, eps=cfg.eps, step=cfg.step, autoattack=not cfg.skip_autoattack,
                            log_file=log_file, progress=progress, **common)
    if suite == "sweep":
        return run_sweep(model, x, y, restarts=cfg.restarts, progress=progress, **common)
    if suite == "autoattack":
        return run_autoattack_suite(model, x, y, eps=cfg.eps, log_file=log_file, **common)
    return run_confusion(model, x, y, data.num_classes, eps=cfg.eps, step=cfg.step, progress=progress, **common)


def evaluate_transfer(model_paths: list[str | Path], cfg: EvalConfig) -> dict[str, Any]:
    """Source-by-target transfer matrix (PGD-20) over ``model_paths``; writes outputs into ``cfg.out`` (sharded
    under ``torchrun`` like :func:`evaluate`)."""
    if len(model_paths) < 2:
        raise ValueError("transfer needs at least two models")
    ctx, device = init_distributed(cfg.device, cfg.dist_backend)
    if cfg.out is not None:
        check_run_dir(cfg.out, "transfer")
        _refuse_earlier(Path(cfg.out), cfg)
    with sharded(ctx), contextlib.ExitStack() as claim:
        return _evaluate_transfer(model_paths, cfg, ctx, device, claim)


def _evaluate_transfer(model_paths: list[str | Path], cfg: EvalConfig, ctx: DistContext, device: torch.device,
                       claim: contextlib.ExitStack) -> dict[str, Any]:
    torch.manual_seed(cfg.seed)
    loaded = [load_checkpoint(p, arch=cfg.arch, device=device) for p in model_paths]
    names = []
    for p in model_paths:
        stem = Path(p).stem
        names.append(stem if stem not in names else f"{stem}-{len(names)}")
    data, note = _load_data(cfg, loaded[0][1])
    for (model, info), p in zip(loaded, model_paths, strict=True):
        if info.num_classes != data.num_classes:
            raise DataError(f"{p} predicts {info.num_classes} classes but the data has {data.num_classes}")
        check_finite_logits(model, data.x, cfg.batch_size)
    models = {n: m for n, (m, _) in zip(names, loaded, strict=True)}
    out = output_dir(cfg, "transfer")
    claim.enter_context(claim_run_dir(out, "transfer", main=ctx.is_main))
    _refuse_earlier(out, cfg)
    meta = {"path": ", ".join(map(str, model_paths)), "name": "transfer", "arch": ", ".join(i.arch for _, i in loaded)}
    results = _header(cfg, device, data, meta, note)
    with autocast_for(device, cfg.precision):
        results["suites"] = [run_transfer(models, data.x, data.y, eps=cfg.eps, step=cfg.step, seed=cfg.seed,
                                          batch_size=cfg.batch_size, progress=cfg.progress and ctx.is_main)]
    results["robustbench"] = None
    if ctx.is_main:
        write_outputs(results, out)
    results["out"] = str(out)
    return results
