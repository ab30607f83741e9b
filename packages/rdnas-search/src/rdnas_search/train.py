"""Final adversarial training of a derived network (AdvRush protocol, Section 4.2), then advbench's white-box suite.

The same function trains RDNAS genotypes (dual-branch networks), the published
single-cell genotypes (``darts_v2``, ``pdarts``, ``advrush``) and advbench's
hand-crafted models (``resnet18``, ...), so every comparison uses one protocol:
Madry-style training on PGD-k examples (cross-entropy on the adversarial batch
only), random-crop and flip augmentation, SGD with momentum, and step decay.
Every epoch ends with an atomic checkpoint; ``resume=True`` continues from it.

Under ``torchrun`` the network trains under DDP, each rank on its contiguous share of every batch, the
white-box evaluation is sharded over the ranks, and only rank 0 writes (:mod:`rdnas_search.distributed`).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from advbench import (
    CheckpointInfo,
    Classifier,
    TensorData,
    ThreatModel,
    autocast_for,
    build_model,
    configure_device,
    list_models,
    load_dataset,
    pgd_train,
    save_checkpoint,
    subset,
    to_device,
)
from advbench.checkpoint import load_weights
from advbench.distributed import all_gather_array, barrier, init_distributed, sharded
from advbench.files import atomic_torch_save, atomic_write_text, check_output_dir, remove_orphans
from advbench.suites import run_whitebox
from rdnas_space import PUBLISHED_GENOTYPES, Genotype, compile_regions, random_genotype, to_channels_last
from torch import nn
from tqdm.auto import tqdm

from .config import TrainConfig, from_dict, to_dict
from .distributed import any_rank, local_share, loss_scale, restarted, sync_buffers, wrap_ddp
from .search import DONE, NonFiniteLossError, RunDirError, _seed_for, check_dir, claim_dir, load_run_checkpoint
from .searchdata import crop_flip

__all__ = ["run_train", "TrainOutcome", "resolve_model_spec", "default_archive"]

CHECKPOINT = "train_checkpoint.pt"
RANDOM_PREFIX = "random:"
"""``--genotype random:SEED``: a dual-branch genotype drawn uniformly from the space (the random baseline)."""
CKPT_FORMAT = "rdnas-train-checkpoint/1"


@dataclass
class TrainOutcome:
    run_dir: Path
    epochs_done: int
    finished: bool
    model_path: Path | None
    whitebox: dict[str, Any] | None


def default_archive() -> str | None:
    """The shared CIFAR-10 JPEG archive (``shared/data`` beside a parent folder), if present."""
    for parent in [Path.cwd(), *Path.cwd().parents, *Path(__file__).resolve().parents]:
        candidate = parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
        if candidate.is_file():
            return str(candidate)
    return None


def resolve_model_spec(spec: str, cfg: TrainConfig, n_classes: int) -> tuple[str, dict[str, Any], str]:
    """(advbench arch name, builder arguments, description) for a genotype file, published name or arch."""
    if spec in PUBLISHED_GENOTYPES:
        g = PUBLISHED_GENOTYPES[spec]
        kwargs = {"num_classes": n_classes, "genotype": g.to_dict(), "channels": cfg.baseline_channels,
                  "n_cells": cfg.baseline_n_cells, "dual": False, "auxiliary": cfg.auxiliary}
        return "rdnas_genotype", kwargs, f"published genotype {spec}"
    path = Path(spec)
    if spec.startswith(RANDOM_PREFIX) or path.suffix == ".json" or path.exists():
        if spec.startswith(RANDOM_PREFIX):
            g, source = _random_genotype(spec), f"random genotype {spec}"
        else:
            g, source = Genotype.from_json(path), f"genotype {path}"
        dual = g.is_dual
        kwargs = {"num_classes": n_classes, "genotype": g.to_dict(),
                  "channels": cfg.channels if dual else cfg.baseline_channels,
                  "n_cells": cfg.n_cells if dual else cfg.baseline_n_cells, "dual": dual,
                  "fusion": cfg.fusion, "auxiliary": cfg.auxiliary,
                  "stem_multiplier": cfg.stem_multiplier if dual else 3}
        return "rdnas_genotype", kwargs, source
    if spec in list_models():
        return spec, {"num_classes": n_classes}, f"advbench model {spec}"
    raise ValueError(f"{spec!r} is not a genotype file, a published genotype ({', '.join(PUBLISHED_GENOTYPES)}), "
                     f"{RANDOM_PREFIX}SEED or an advbench architecture ({', '.join(list_models())})")


def _random_genotype(spec: str) -> Genotype:
    """The dual-branch genotype ``random:SEED`` names (:func:`rdnas_space.random_genotype`)."""
    text = spec[len(RANDOM_PREFIX):]
    if not text.isdigit():
        raise ValueError(f"{spec!r}: a random genotype is named {RANDOM_PREFIX}SEED with a non-negative integer seed")
    return random_genotype(int(text))


def _data_root(cfg: TrainConfig) -> str | None:
    """Where the training data is read from: ``data_root``, or the shared archive for ``dataset=archive``."""
    root = cfg.data_root or (default_archive() if cfg.dataset == "archive" else None)
    return None if root is None else str(Path(root).resolve())


def _data(cfg: TrainConfig) -> tuple[TensorData, TensorData]:
    root = _data_root(cfg)
    train = load_dataset(cfg.dataset, root, "train")
    test = load_dataset(cfg.dataset, root, "test")
    return subset(train, cfg.n_train, cfg.seed, balanced=True), subset(test, cfg.n_test, cfg.seed)


def _load_train_checkpoint(path: Path) -> dict[str, Any]:
    return load_run_checkpoint(path, CKPT_FORMAT, "training")


def run_train(spec: str, cfg: TrainConfig, run_dir: str | os.PathLike[str], *, resume: bool = False,
              stop_after: int | None = None) -> TrainOutcome:
    """Adversarially train ``spec`` from scratch in ``run_dir``, write an advbench checkpoint, evaluate it.

    Under ``torchrun`` every rank returns the same outcome and only rank 0 writes; a group that torchrun
    restarted after a failure resumes the run it finds in ``run_dir``.
    """
    with contextlib.ExitStack() as claim:
        return _run_train(spec, cfg, run_dir, resume, stop_after, claim)


def _run_train(spec: str, cfg: TrainConfig, run_dir: str | os.PathLike[str], resume: bool, stop_after: int | None,
               claim: contextlib.ExitStack) -> TrainOutcome:
    run = check_output_dir(run_dir)
    ctx, device = init_distributed(cfg.device, cfg.dist_backend)
    resume = resume or (restarted() and (run / "train_config.json").is_file())
    check_dir(run, "training", resume=resume)
    state = None
    if resume:
        meta_path = run / "train_config.json"
        if not meta_path.is_file():
            raise RunDirError(f"{run} is not a training run directory (no train_config.json)")
        try:
            meta = json.loads(meta_path.read_text())
            cfg, spec = from_dict(TrainConfig, meta["config"]), meta["spec"]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise RunDirError(f"{meta_path} is not a training config ({str(exc).splitlines()[0]})") from None
        if (run / DONE).is_file():
            raise RunDirError(f"{run} is a finished training run; nothing to resume")
        if ctx.is_main:
            remove_orphans(run)
        if (run / CHECKPOINT).is_file():
            state = _load_train_checkpoint(run / CHECKPOINT)
    elif (run / CHECKPOINT).exists() or (run / "train_config.json").exists():
        raise RunDirError(f"{run} already holds a training run; use --resume {run} or another --out")
    if resume:
        ctx, device = init_distributed(cfg.device, cfg.dist_backend)  # the saved config's device
    configure_device(device)
    train, test = _data(cfg)
    arch, kwargs, description = resolve_model_spec(spec, cfg, train.num_classes)
    barrier(ctx)  # every rank has read the directory before rank 0 writes to it
    claim.enter_context(claim_dir(run, "training", resume=resume, main=ctx.is_main))
    if not resume and (run / "train_config.json").exists():  # another writer got here between check and claim
        raise RunDirError(f"{run} already holds a training run; use --resume {run} or another --out")
    if not resume and ctx.is_main:
        atomic_write_text(run / "train_config.json", json.dumps({"spec": spec, "config": to_dict(cfg)}, indent=2))
    torch.manual_seed(cfg.seed)
    mean = tuple(train.x.mean(dim=(0, 2, 3)).tolist())
    std = tuple(train.x.std(dim=(0, 2, 3)).tolist())
    model = Classifier(build_model(arch, **kwargs), mean, std).to(device)
    if cfg.channels_last:
        model = to_channels_last(model)
    if cfg.compile:
        compile_regions(model.net)
    ddp_model = wrap_ddp(model, ctx, device)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    batches = -(-len(train) // cfg.batch_size)
    sched = _scheduler(opt, cfg, batches)
    threat = ThreatModel(eps=cfg.train_eps, step=cfg.attack_step, steps=cfg.attack_steps)
    history: list[dict[str, Any]] = []
    epoch0 = 0
    if state is not None:
        load_weights(model, state["model"], f"{run / CHECKPOINT} does not fit this run's network")
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        history, epoch0 = list(state["history"]), int(state["epoch"])
    last = cfg.epochs if stop_after is None else min(cfg.epochs, stop_after)
    # progress counts training batches, so the ETA shows at once
    bar = tqdm(total=cfg.epochs * batches, initial=epoch0 * batches, desc="train", unit="batch",
               disable=not (cfg.progress and ctx.is_main))
    net = model.net
    try:
        for epoch in range(epoch0, last):
            gen = torch.Generator().manual_seed(_seed_for(cfg.seed, epoch, "final-train"))
            attack_purpose = f"final-attack-rank{ctx.rank}" if ctx.is_distributed else "final-attack"
            attack_gen = torch.Generator(device=device).manual_seed(_seed_for(cfg.seed, epoch, attack_purpose))
            if hasattr(net, "drop_path_prob"):
                net.drop_path_prob = cfg.drop_path_prob * epoch / cfg.epochs
            model.train()
            order = torch.randperm(len(train), generator=gen)
            t0, loss_sum, correct, n, n_adv = time.perf_counter(), 0.0, 0, 0, 0
            for i in range(0, len(order), cfg.batch_size):
                idx = order[i : i + cfg.batch_size]
                if len(idx) < ctx.world_size:  # a last batch too small to give every rank an image: dropped by all
                    continue
                share = local_share(len(idx), ctx)  # augment the whole batch as one process would, keep a share
                x = to_device(crop_flip(train.x[idx], gen)[share], device)
                if cfg.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                y = to_device(train.y[idx][share], device)
                n_clean = round(cfg.clean_fraction * len(y))  # the share's first images stay clean
                with autocast_for(device, cfg.precision):  # backward stays outside the region
                    if n_clean < len(y):
                        x_adv = pgd_train(_MainHead(model), x[n_clean:], y[n_clean:], threat, attack_gen)
                        x = torch.cat([x[:n_clean], x_adv]) if n_clean else x_adv
                    out = ddp_model(x)
                    logits, aux = out if isinstance(out, tuple) else (out, None)
                    loss = nn.functional.cross_entropy(logits, y)
                    if aux is not None:
                        loss = loss + cfg.auxiliary_weight * nn.functional.cross_entropy(aux, y)
                if any_rank(not torch.isfinite(loss), ctx, device):
                    raise NonFiniteLossError(
                        f"the training loss became {float(loss.detach())} at epoch {epoch + 1}: the run stops and "
                        f"keeps its last good checkpoint (epoch {epoch}); lower the learning rate (--set lr=...)")
                opt.zero_grad(set_to_none=True)
                (loss * loss_scale(len(y), len(idx), ctx)).backward()
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                if cfg.lr_schedule == "onecycle":
                    sched.step()
                loss_sum += float(loss.detach()) * len(y)
                correct += int((logits[n_clean:].argmax(1) == y[n_clean:]).sum())  # on the attacked images
                n += len(y)
                n_adv += len(y) - n_clean
                bar.update(1)
            lr = opt.param_groups[0]["lr"]  # the rate this epoch used (onecycle: its last batch's)
            if cfg.lr_schedule == "step":
                sched.step()
            sync_buffers(model, ctx)
            if ctx.is_distributed:  # the epoch's sums over every rank's shares
                sums = all_gather_array([[loss_sum, correct, n, n_adv]], ctx).sum(axis=0).tolist()
                loss_sum, correct, n, n_adv = sums
            history.append({"epoch": epoch + 1, "loss": loss_sum / n,
                            "train_adv_acc": 100 * correct / n_adv if n_adv else None,
                            "lr": lr, "time_s": time.perf_counter() - t0})
            if ctx.is_main:
                atomic_torch_save({"format": CKPT_FORMAT, "epoch": epoch + 1, "model": model.state_dict(),
                                   "opt": opt.state_dict(), "sched": sched.state_dict(), "history": history,
                                   "rng": {"torch": torch.get_rng_state()}}, run / CHECKPOINT)
                atomic_write_text(run / "train_log.jsonl", "".join(json.dumps(r) + "\n" for r in history))
    finally:
        bar.close()
    done = len(history)
    if done < cfg.epochs:
        return TrainOutcome(run, done, False, None, None)
    info = CheckpointInfo(arch=arch, arch_kwargs=kwargs, mean=mean, std=std, dataset=cfg.dataset,
                          data_root=_data_root(cfg),
                          classes=train.classes, provenance={"trained_by": "rdnas-search train", "spec": spec,
                                                             "preset": cfg.preset, "seed": str(cfg.seed)})
    model_path = save_checkpoint(run / "model.pt", model.net, info) if ctx.is_main else run / "model.pt"
    model.eval()
    with sharded(ctx):
        wb = run_whitebox(model, test.x, test.y, eps=cfg.eps, step=2 / 255, seed=cfg.seed, batch_size=128,
                          autoattack=cfg.eval_autoattack, log_file=run / "autoattack.log" if ctx.is_main else None,
                          progress=cfg.progress and ctx.is_main)
    if not ctx.is_main:
        return TrainOutcome(run, done, True, model_path, wb)
    atomic_write_text(run / "whitebox.json", json.dumps(wb, indent=2))
    atomic_write_text(run / "report.md", _train_report(description, cfg, history, wb, len(test)))
    atomic_write_text(run / DONE, json.dumps({"epochs": done}) + "\n")  # the completion marker, written last
    return TrainOutcome(run, done, True, model_path, wb)


def _scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, batches: int) -> torch.optim.lr_scheduler.LRScheduler:
    """``step``: the rate times ``gamma`` at every milestone epoch (stepped once an epoch); ``onecycle``: a
    triangle per batch, from 0 up to ``lr`` at ``warmup_frac`` of the run and down to 0 at its end."""
    if cfg.lr_schedule == "step":
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.milestones), gamma=cfg.gamma)
    total = cfg.epochs * batches
    peak = max(1, round(cfg.warmup_frac * total))
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min((i + 1) / peak, max(0.0, (total - i) / (total - peak + 1))) if total > peak else 1.0)


class _MainHead(nn.Module):
    """The model's main logits only (networks with an auxiliary head return a pair in training mode)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        return out[0] if isinstance(out, tuple) else out


def _schedule_text(cfg: TrainConfig) -> str:
    if cfg.lr_schedule == "onecycle":
        return f"one-cycle lr peaking at {cfg.lr} after {cfg.warmup_frac:.0%} of the batches"
    return f"lr {cfg.lr} x{cfg.gamma} at {list(cfg.milestones)}"


def _train_report(description: str, cfg: TrainConfig, history: list[dict[str, Any]], wb: dict[str, Any],
                  n_test: int) -> str:
    acc = wb["accuracy"]
    labels = {"clean": "Clean", "fgsm": "FGSM", "pgd20": "PGD-20", "pgd100": "PGD-100", "apgd_ce": "APGD-CE",
              "autoattack": "AutoAttack"}
    keys = [k for k in labels if k in acc]
    lines = [f"# Adversarial training: {description}", "",
             f"Preset `{cfg.preset}`, seed {cfg.seed}: {cfg.epochs} epochs, PGD-{cfg.attack_steps} "
             f"(eps {cfg.train_eps * 255:.3g}/255, step {cfg.attack_step * 255:.3g}/255"
             f"{f', on {1 - cfg.clean_fraction:.0%} of every batch' if cfg.clean_fraction else ''}), "
             f"{_schedule_text(cfg)}, "
             f"batch {cfg.batch_size}.", "",
             "| epoch | loss | train adv acc | lr | seconds |", "|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['epoch']} | {r['loss']:.3f} | "
              f"{'-' if r['train_adv_acc'] is None else format(r['train_adv_acc'], '.1f')} | {r['lr']:.4g} "
              f"| {r['time_s']:.0f} |"
              for r in history]
    lines += ["", f"## White-box evaluation ({n_test} test images, eps {cfg.eps * 255:.3g}/255)", "",
              "| " + " | ".join(labels[k] for k in keys) + " | params | FLOPs |",
              "|" + "---:|" * (len(keys) + 2),
              "| " + " | ".join(f"{acc[k]:.2f}" for k in keys) + f" | {wb['size']['params'] / 1e6:.2f}M | "
              f"{wb['size']['flops'] / 1e6:.1f}M |", ""]
    lines += [f"- sanity {'ok' if c['passed'] else '**FAILED**'}: {c['name']} ({c['detail']})" for c in wb["sanity"]]
    return "\n".join(lines) + "\n"
