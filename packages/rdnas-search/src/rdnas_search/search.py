"""The robust search (Algorithm 1): adversarial weight training, ROSE scoring of every branch, alpha updates.

One epoch:

1. train the supernet's weights on ``L = lam CE(clean) + (1 - lam) CE(adv)`` (eq. 5)
   with PGD-k examples (eq. 12) from advbench;
2. after ``warmup_epochs``, for each branch (``normal``, ``reduce``, ``robust``) play
   the branch's game (:class:`~rdnas_search.game.SupernetGame`) with ROSE, and
   update ``alpha <- alpha + eta * Score`` followed by the per-edge shift that
   makes each edge's logits sum to 1 (a shift leaves the softmax unchanged), or
   the Adam update of eq. 13 (``update="adam"``);
3. write ``log.jsonl`` and an atomic checkpoint.

``scorer="mc"`` replaces the ROSE score by the plain Monte-Carlo mean of the same
standardised gains (beta = 0, one group), so the two differ only in the robust
statistics; ``scorer="darts"`` updates alpha by first-order DARTS gradient steps
(Adam, eq. 13's settings) on the composite loss of a validation batch instead.

All randomness of epoch ``e`` comes from generators seeded by ``(seed, e, purpose)``,
so a run resumed from the checkpoint of epoch ``e`` continues exactly as an
uninterrupted one would on the same machine.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from advbench import ThreatModel, pgd_train, resolve_device
from advbench.checkpoint import CheckpointError, atomic_torch_save, safe_load
from advbench.report import atomic_write_text
from rdnas_space import NB201Supernet, Supernet, SupernetBase, SupernetConfig, to_channels_last
from rose_estimator import RoseConfig, RoseEstimator, RoseResult, standardize
from rose_estimator.stats import normalize_weights
from torch import nn
from tqdm.auto import tqdm

from .config import SearchConfig, from_dict, to_dict
from .game import SupernetGame
from .searchdata import search_split

__all__ = ["Searcher", "run_search", "SearchOutcome", "RunDirError", "CHECKPOINT", "update_alpha", "build_supernet",
           "result_file", "player_scores", "load_search_checkpoint", "load_run_config"]

CHECKPOINT = "checkpoint.pt"
CKPT_FORMAT = "rdnas-search-checkpoint/1"


class RunDirError(ValueError):
    """A run directory that cannot be resumed (not a run, or already finished)."""


@dataclass
class SearchOutcome:
    """What a finished (or stopped) search leaves behind."""

    run_dir: Path
    epochs_done: int
    finished: bool
    genotype: Any | None  # a Genotype, or an architecture string for the NAS-Bench-201 space
    alphas: dict[str, torch.Tensor]


def _seed_for(seed: int, epoch: int, purpose: str) -> int:
    tag = sum((i + 1) * ord(ch) for i, ch in enumerate(purpose))
    return (seed * 1_000_003 + epoch * 10_007 + tag) % (2**63 - 1)


def update_alpha(alpha: torch.Tensor, score: torch.Tensor, eta: float) -> None:
    """Additive update and per-edge shift (Algorithm 1, lines 9-10), in place.

    ``alpha <- alpha + eta * score``, then each row is shifted so its logits sum to
    1; a shift leaves the softmax unchanged, so the probabilities move exactly as
    the additive step says (a higher score gains probability).
    """
    with torch.no_grad():
        alpha.add_(eta * score.to(alpha))
        alpha.sub_((alpha.sum(dim=-1, keepdim=True) - 1.0) / alpha.shape[-1])


def player_scores(result: RoseResult, scorer: str, metric_weights: tuple[float, ...] | None = None) -> np.ndarray:
    """ROSE score per player (eq. 19), or for ``scorer="mc"`` the plain mean of the same standardised gains."""
    if scorer == "rose":
        return np.asarray(result.score, dtype=np.float64)
    weights = normalize_weights(metric_weights, len(result.metric_names))
    return standardize(result.gains).mean(axis=0) @ weights


def build_supernet(cfg: SearchConfig, n_classes: int) -> SupernetBase:
    """The search network of ``cfg.space``: DARTS-space (dual or single) or NAS-Bench-201."""
    if cfg.space == "nb201":
        return NB201Supernet(cfg.channels, cfg.cells_per_stage, n_classes, renormalize_masked=cfg.renormalize_masked)
    return Supernet(SupernetConfig(channels=cfg.channels, n_cells=cfg.n_cells, n_classes=n_classes,
                                   dual=cfg.space == "dual", fusion=cfg.fusion,
                                   renormalize_masked=cfg.renormalize_masked))


def result_file(cfg: SearchConfig) -> str:
    """The file a finished run derives: ``cell.json`` (NAS-Bench-201) or ``genotype.json``."""
    return "cell.json" if cfg.space == "nb201" else "genotype.json"


class Searcher:
    """State of one search run; :func:`run_search` drives it epoch by epoch."""

    def __init__(self, cfg: SearchConfig, run_dir: Path) -> None:
        self.cfg, self.run_dir = cfg, run_dir
        self.device = resolve_device(cfg.device)
        self.train_data, self.val_data = search_split(cfg.dataset, cfg.n_train, cfg.n_val, cfg.seed, cfg.data_root)
        torch.manual_seed(cfg.seed)
        self.net = build_supernet(cfg, self.train_data.num_classes).to(self.device)
        if cfg.channels_last:
            self.net = to_channels_last(self.net)
        self.w_opt = torch.optim.SGD(self.net.weight_parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                     weight_decay=cfg.weight_decay)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.w_opt, T_max=cfg.epochs, eta_min=cfg.lr_min)
        self.a_opt = torch.optim.Adam(self.net.arch_parameters(), lr=cfg.arch_lr, betas=cfg.arch_betas,
                                      weight_decay=cfg.arch_weight_decay)
        if cfg.scorer != "darts":  # alpha moves only through scores: no gradients needed in weight training
            for a in self.net.arch_parameters():
                a.requires_grad_(False)
        self.threat = ThreatModel(eps=cfg.eps, step=cfg.attack_step, steps=cfg.attack_steps)
        self.rose_cfg = RoseConfig(beta=cfg.beta, l1=cfg.l1, l2=cfg.l2, n_groups=cfg.n_groups,
                                   metric_weights=cfg.metric_weights if cfg.adversarial else None)
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        self.rose: dict[str, dict[str, Any]] = {}

    # ----------------------------------------------------------------- helpers
    def _to(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.cfg.channels_last else x

    def _composite_loss(self, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator | None
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, float]:
        """Eq. 5 loss, clean logits, adversarial logits, seconds spent attacking."""
        logits = self.net(x)
        if not self.cfg.adversarial:
            return nn.functional.cross_entropy(logits, y), logits, None, 0.0
        t0 = time.perf_counter()
        x_adv = pgd_train(self.net, x, y, self.threat, gen)
        t_attack = time.perf_counter() - t0
        adv_logits = self.net(x_adv)
        lam = self.cfg.lam
        loss = lam * nn.functional.cross_entropy(logits, y) + (1 - lam) * nn.functional.cross_entropy(adv_logits, y)
        return loss, logits, adv_logits, t_attack

    # ------------------------------------------------------------------ phases
    def train_epoch(self, epoch: int, bar: tqdm | None = None) -> dict[str, float]:
        """One pass over the training images (and DARTS alpha steps when that scorer is chosen)."""
        cfg = self.cfg
        gen = torch.Generator().manual_seed(_seed_for(cfg.seed, epoch, "train"))
        attack_gen = torch.Generator(device=self.device).manual_seed(_seed_for(cfg.seed, epoch, "attack"))
        order = torch.randperm(len(self.train_data), generator=gen)
        val_order = torch.randperm(len(self.val_data), generator=gen)
        darts = cfg.scorer == "darts" and epoch >= cfg.warmup_epochs
        self.net.train()
        totals = {"loss": 0.0, "clean_correct": 0.0, "adv_correct": 0.0, "n": 0, "attack_s": 0.0, "arch_loss": 0.0}
        t0 = time.perf_counter()
        n_batches = -(-len(order) // cfg.batch_size)
        for b in range(n_batches):
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            x = self.train_data.x[idx]
            if torch.rand(1, generator=gen).item() < 0.5:
                x = x.flip(3)
            x, y = self._to(x), self.train_data.y[idx].to(self.device)
            if darts:  # first-order DARTS: an alpha step on a validation batch, then the weight step
                vidx = val_order[(b * cfg.batch_size) % len(val_order) :][: cfg.batch_size]
                xv, yv = self._to(self.val_data.x[vidx]), self.val_data.y[vidx].to(self.device)
                self.a_opt.zero_grad(set_to_none=True)
                arch_loss, _, _, t_att = self._composite_loss(xv, yv, attack_gen)
                arch_loss.backward()
                self.a_opt.step()
                totals["attack_s"] += t_att
                totals["arch_loss"] += float(arch_loss.detach()) * len(vidx)
            loss, logits, adv_logits, t_att = self._composite_loss(x, y, attack_gen)
            self.w_opt.zero_grad(set_to_none=True)
            self.a_opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(list(self.net.weight_parameters()), cfg.grad_clip)
            self.w_opt.step()
            totals["loss"] += float(loss.detach()) * len(idx)
            totals["clean_correct"] += float((logits.argmax(1) == y).sum())
            if adv_logits is not None:
                totals["adv_correct"] += float((adv_logits.argmax(1) == y).sum())
            totals["n"] += len(idx)
            totals["attack_s"] += t_att
            if bar is not None:
                bar.set_postfix_str(f"epoch {epoch + 1} train {b + 1}/{n_batches}")
        self.sched.step()
        n = max(totals["n"], 1)
        elapsed = time.perf_counter() - t0
        out = {"train_loss": totals["loss"] / n, "train_clean_acc": 100 * totals["clean_correct"] / n,
               "train_adv_acc": 100 * totals["adv_correct"] / n if cfg.adversarial else None,
               "time_train_s": elapsed - totals["attack_s"], "time_attack_s": totals["attack_s"],
               "lr": self.w_opt.param_groups[0]["lr"]}
        if darts:
            out["arch_loss"] = totals["arch_loss"] / n
        return out

    @torch.no_grad()
    def _accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:
        return 100.0 * float((self.net(x).argmax(1) == y).float().mean())

    def _score_sample(self, epoch: int, n_images: int | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, float]:
        """The scoring round's validation sample (``n_score`` images, or the first ``n_images`` of the round's
        permutation of the validation set) and its adversarial versions (crafted once, full supernet)."""
        gen = torch.Generator().manual_seed(_seed_for(self.cfg.seed, epoch, "score"))
        idx = torch.randperm(len(self.val_data), generator=gen)[: n_images or self.cfg.n_score]
        x, y = self._to(self.val_data.x[idx]), self.val_data.y[idx].to(self.device)
        if not self.cfg.adversarial:
            return x, y, None, 0.0
        self.net.eval()
        t0 = time.perf_counter()
        attack_gen = torch.Generator(device=self.device).manual_seed(_seed_for(self.cfg.seed, epoch, "score-attack"))
        x_adv = pgd_train(self.net, x, y, self.threat, attack_gen)
        return x, y, x_adv, time.perf_counter() - t0

    def score_epoch(self, epoch: int, bar: tqdm | None = None) -> dict[str, Any]:
        """Evaluate the validation accuracy, and (after warm-up) score every branch and update alpha."""
        cfg = self.cfg
        x, y, x_adv, t_attack = self._score_sample(epoch)
        self.net.eval()
        out: dict[str, Any] = {"val_clean_acc": self._accuracy(x, y),
                               "val_adv_acc": self._accuracy(x_adv, y) if x_adv is not None else None,
                               "time_score_attack_s": t_attack, "time_score_s": 0.0, "evaluations": 0,
                               "branches": {}}
        if epoch < cfg.warmup_epochs or cfg.scorer == "darts":
            return out
        t0 = time.perf_counter()
        prims = self.net.primitives
        estimator = RoseEstimator(self.rose_cfg)
        alphas = self.net.alphas()
        for b_index, branch in enumerate(self.net.branches):
            if bar is not None:
                bar.set_postfix_str(f"epoch {epoch + 1} scoring {branch}")
            game = SupernetGame(self.net, branch, x, y, x_adv, cfg.value_metric, prims)
            rng = np.random.default_rng([cfg.seed, epoch, b_index])
            result = estimator.approximate(game, cfg.n_permutations, rng=rng, batch_size=cfg.coalition_batch,
                                           antithetic=cfg.antithetic, truncation_tol=cfg.truncation_tol)
            score = self._score(result).reshape(alphas[branch].shape)
            if cfg.update == "shift":
                update_alpha(alphas[branch], score, cfg.eta)
            else:  # eq. 13: Adam on -sum p(alpha) * Score
                self.a_opt.zero_grad(set_to_none=True)
                with torch.enable_grad():
                    alphas[branch].requires_grad_(True)
                    (-(torch.softmax(alphas[branch], -1) * score.to(alphas[branch])).sum()).backward()
                self.a_opt.step()
                alphas[branch].requires_grad_(False)
            self.rose.setdefault(str(epoch), {})[branch] = result.to_dict()
            triggers_up = result.n_above.sum(axis=1).reshape(score.shape).sum(axis=0)
            triggers_down = result.n_below.sum(axis=1).reshape(score.shape).sum(axis=0)
            out["branches"][branch] = {
                "score": score.tolist(),
                "evaluations": result.n_evaluations,
                "truncated": result.n_truncated,
                "triggers_above": dict(zip(prims, triggers_up.tolist(), strict=True)),
                "triggers_below": dict(zip(prims, triggers_down.tolist(), strict=True)),
            }
            out["evaluations"] += result.n_evaluations
        out["time_score_s"] = time.perf_counter() - t0
        return out

    def _score(self, result: RoseResult) -> torch.Tensor:
        return torch.from_numpy(player_scores(result, self.cfg.scorer, self.rose_cfg.metric_weights)).float()

    # ------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": CKPT_FORMAT,
            "epoch": self.epoch,
            "config": to_dict(self.cfg),
            "model": self.net.state_dict(),
            "w_opt": self.w_opt.state_dict(),
            "a_opt": self.a_opt.state_dict(),
            "sched": self.sched.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])},
            "history": self.history,
            "rose": self.rose,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["model"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
        self.sched.load_state_dict(state["sched"])
        torch.set_rng_state(state["rng"]["torch"])
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])
        self.rose = dict(state["rose"])

    def save_checkpoint(self) -> None:
        atomic_torch_save(self.state_dict(), self.run_dir / CHECKPOINT)


def load_search_checkpoint(path: Path) -> dict[str, Any]:
    """A search checkpoint, loaded safely (``weights_only``); anything else is a :class:`RunDirError`."""
    try:
        state = safe_load(path)
    except CheckpointError as exc:
        raise RunDirError(str(exc)) from None
    if not isinstance(state, dict) or state.get("format") != CKPT_FORMAT:
        raise RunDirError(f"{path} is not a search checkpoint")
    return state


def _write_log(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """Rewrite log.jsonl from the checkpointed history (so a resumed run's log has no duplicates)."""
    atomic_write_text(run_dir / "log.jsonl", "".join(json.dumps(r) + "\n" for r in history))


def load_run_config(run_dir: Path) -> SearchConfig:
    """The resolved config saved in a run directory."""
    path = run_dir / "config.json"
    if not path.is_file() or not (run_dir / CHECKPOINT).is_file():
        raise RunDirError(f"{run_dir} is not a search run directory (no config.json / {CHECKPOINT})")
    try:
        return from_dict(SearchConfig, json.loads(path.read_text())["config"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise RunDirError(f"{run_dir}/config.json is not a search config ({exc})") from None


def run_search(cfg: SearchConfig, run_dir: str | os.PathLike[str], *, resume: bool = False,
               stop_after: int | None = None) -> SearchOutcome:
    """Run (or resume) a search in ``run_dir``; writes every artefact of the package README.

    Args:
        cfg: the settings (ignored when resuming: the run's saved config is used).
        run_dir: output directory (created); must not hold another run unless resuming.
        resume: continue from the last checkpoint in ``run_dir``.
        stop_after: stop after this many completed epochs (checkpoint written), as an
            interruption would; used by tests and for staged runs.
    """
    from .report import write_search_artefacts

    run = Path(run_dir)
    if resume:
        cfg = load_run_config(run)
        state = load_search_checkpoint(run / CHECKPOINT)
        if int(state["epoch"]) >= cfg.epochs and (run / result_file(cfg)).is_file():
            raise RunDirError(f"{run} is a finished run ({cfg.epochs} epochs); nothing to resume")
    else:
        if (run / CHECKPOINT).exists():
            raise RunDirError(f"{run} already holds a run; use --resume {run} or another --out")
        run.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run / "config.json", json.dumps({"config": to_dict(cfg), "seed": cfg.seed}, indent=2))
        state = None
    searcher = Searcher(cfg, run)
    if state is not None:
        searcher.load_state_dict(state)
    last = cfg.epochs if stop_after is None else min(cfg.epochs, stop_after)
    bar = tqdm(total=cfg.epochs, initial=searcher.epoch, desc="search", unit="epoch", disable=not cfg.progress)
    try:
        for epoch in range(searcher.epoch, last):
            record: dict[str, Any] = {"epoch": epoch + 1, "phase": "warmup" if epoch < cfg.warmup_epochs else "search"}
            t0 = time.perf_counter()
            record.update(searcher.train_epoch(epoch, bar))
            record.update(searcher.score_epoch(epoch, bar))
            record["time_epoch_s"] = time.perf_counter() - t0
            record["alpha"] = {b: a.detach().cpu().tolist() for b, a in searcher.net.alphas().items()}
            searcher.history.append(record)
            searcher.epoch = epoch + 1
            searcher.save_checkpoint()
            _write_log(run, searcher.history)
            bar.update(1)
    finally:
        bar.close()
    finished = searcher.epoch >= cfg.epochs
    genotype = searcher.net.derive() if finished else None
    if finished:
        write_search_artefacts(searcher, genotype)
    alphas = {b: a.detach().cpu().clone() for b, a in searcher.net.alphas().items()}
    return SearchOutcome(run, searcher.epoch, finished, genotype, alphas)
