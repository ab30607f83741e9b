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
standardised gains (beta = 0, one group).  The two then differ in the robust statistics and also in the size
of their steps (ROSE moves alpha by ``(1 - beta) m + beta v``, MC by the whole mean); ``step_scale="rms"``
gives every round's step the same norm, so that only the statistics differ.  ``scorer="darts"`` updates alpha
by first-order DARTS gradient steps (Adam, eq. 13's settings) on the composite loss of a validation batch instead.

All randomness of epoch ``e`` comes from generators seeded by ``(seed, e, purpose)``,
so a run resumed from the checkpoint of epoch ``e`` continues exactly as an
uninterrupted one would on the same machine.

Under ``torchrun`` (:mod:`rdnas_search.distributed`) every rank trains on its share of each batch under DDP and
walks its share of every ROSE round; only rank 0 writes the run directory, and a group restarted by torchrun
resumes from the last checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from advbench import ThreatModel, autocast_for, configure_device, pgd_train, resolve_device, to_device
from advbench.checkpoint import CheckpointError, load_weights, safe_load
from advbench.distributed import DistContext, all_gather_array, barrier, init_distributed
from advbench.files import atomic_torch_save, atomic_write_text, check_output_dir, remove_orphans
from advbench.rundir import RunKindError, check_run_dir, claim_run_dir, run_kind
from rdnas_space import NB201Supernet, Supernet, SupernetBase, SupernetConfig, compile_regions, to_channels_last
from rose_estimator import RoseEstimator, RoseResult
from torch import nn
from tqdm.auto import tqdm

from .config import SearchConfig, from_dict, to_dict
from .distributed import any_rank, local_share, loss_scale, restarted, rose_sharding, sync_buffers, wrap_ddp
from .game import SupernetGame, player_indices
from .scoring import edge_labels, momentum_step, player_scores, rose_config, round_score, scale_step
from .searchdata import crop_flip, search_split

__all__ = ["Searcher", "run_search", "SearchOutcome", "RunDirError", "NonFiniteLossError", "CHECKPOINT", "DONE",
           "update_alpha", "build_supernet", "result_file", "player_scores", "load_search_checkpoint",
           "load_run_checkpoint", "load_run_config", "is_finished", "finish_run", "render_report"]

CHECKPOINT = "checkpoint.pt"
DONE = "DONE"
"""The completion marker: written after every other artefact of a finished run."""
CKPT_FORMAT = "rdnas-search-checkpoint/1"


class _Masked(nn.Module):
    """A supernet with fixed per-sample masks, for losses and attacks on sampled paths."""

    def __init__(self, net: SupernetBase, masks: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.net, self.masks = net, masks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, self.masks)


class RunDirError(RunKindError):
    """A run directory that cannot be resumed (not a run, or already finished) or written (another kind of run);
    the run-directory checks of :mod:`advbench.rundir` raise its base class."""


class NonFiniteLossError(RunDirError):
    """The training loss became NaN or infinite; the run stops and keeps its last good checkpoint."""


@dataclass
class SearchOutcome:
    """What a finished (or stopped) search leaves behind."""

    run_dir: Path
    epochs_done: int
    finished: bool
    genotype: Any | None  # a Genotype, or an architecture string for the NAS-Bench-201 space
    alphas: dict[str, torch.Tensor]


def check_dir(run: Path, kind: str, *, resume: bool = False) -> Path:
    """:func:`advbench.rundir.check_run_dir`, its refusals raised as :class:`RunDirError`."""
    try:
        return check_run_dir(run, kind, resume=resume)
    except RunKindError as exc:
        raise RunDirError(str(exc)) from None


@contextlib.contextmanager
def claim_dir(run: Path, kind: str, *, resume: bool = False, main: bool = True) -> Iterator[Path]:
    """:func:`advbench.rundir.claim_run_dir` (kind recorded, exclusive lock held for the block), its refusals
    raised as :class:`RunDirError`."""
    with contextlib.ExitStack() as stack:
        try:
            path = stack.enter_context(claim_run_dir(run, kind, resume=resume, main=main))
        except RunKindError as exc:
            raise RunDirError(str(exc)) from None
        yield path


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


def _per_primitive(counts: np.ndarray, players: np.ndarray, shape: torch.Size) -> np.ndarray:
    """Per-player counts of a (possibly restricted) game summed over edges, per primitive ``[O]``."""
    full = np.zeros(int(np.prod(shape)), dtype=np.int64)
    full[players] = counts
    return full.reshape(tuple(shape)).sum(axis=0)


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
    """State of one search run; :func:`run_search` drives it epoch by epoch.

    ``group``: the ranks sharing this run (default: the torchrun group, or one process without torchrun).
    """

    def __init__(self, cfg: SearchConfig, run_dir: Path, group: DistContext | None = None) -> None:
        self.cfg, self.run_dir = cfg, run_dir
        if group is None:
            self.dist, self.device = init_distributed(cfg.device, cfg.dist_backend)
        else:
            self.dist, self.device = group, resolve_device(cfg.device)
        configure_device(self.device)
        self.train_data, self.val_data = search_split(cfg.dataset, cfg.n_train, cfg.n_val, cfg.seed, cfg.data_root)
        torch.manual_seed(cfg.seed)
        self.net = build_supernet(cfg, self.train_data.num_classes).to(self.device)
        if cfg.channels_last:
            self.net = to_channels_last(self.net)
        if cfg.compile:
            self.net = compile_regions(self.net)
        self.w_opt = torch.optim.SGD(self.net.weight_parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                     weight_decay=cfg.weight_decay)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.w_opt, T_max=cfg.epochs, eta_min=cfg.lr_min)
        self.a_opt = torch.optim.Adam(self.net.arch_parameters(), lr=cfg.arch_lr, betas=cfg.arch_betas,
                                      weight_decay=cfg.arch_weight_decay)
        if cfg.scorer != "darts":  # alpha moves only through scores: no gradients needed in weight training
            for a in self.net.arch_parameters():
                a.requires_grad_(False)
        # DDP after alpha's requires_grad is settled: it reduces the gradients of what requires them then
        self.ddp = wrap_ddp(self.net, self.dist, self.device, find_unused=cfg.path_sampling != "none")
        self.threat = ThreatModel(eps=cfg.eps, step=cfg.attack_step, steps=cfg.attack_steps)
        self.rose_cfg = rose_config(cfg)
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        self.rose: dict[str, dict[str, Any]] = {}
        self.momentum: dict[str, torch.Tensor] = {}  # running average of each branch's scores (score_momentum)
        # commit_every: the op each edge is fixed to (-1: still open), per branch
        self.committed = {b: torch.full((a.shape[0],), -1, dtype=torch.long) for b, a in self.net.alphas().items()}

    # ----------------------------------------------------------------- helpers
    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        """The run's precision region (``precision=bf16``: bfloat16 autocast) for forwards and attacks."""
        return autocast_for(self.device, self.cfg.precision)

    def _to(self, x: torch.Tensor) -> torch.Tensor:
        x = to_device(x, self.device)
        return x.contiguous(memory_format=torch.channels_last) if self.cfg.channels_last else x

    def _composite_loss(self, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator | None,
                        masks: dict[str, torch.Tensor] | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, float]:
        """Eq. 5 loss, clean logits, adversarial logits, seconds spent attacking (``masks``: sampled paths).

        The losses go through DDP (under torchrun); the attack, which needs no weight gradients, through the
        bare supernet.
        """
        net = self.ddp if masks is None else _Masked(self.ddp, masks)
        with self._autocast():
            logits = net(x)
            if not self.cfg.adversarial:
                return nn.functional.cross_entropy(logits, y), logits, None, 0.0
            t0 = time.perf_counter()
            x_adv = pgd_train(self.net if masks is None else _Masked(self.net, masks), x, y, self.threat, gen)
            t_attack = time.perf_counter() - t0
            adv_logits = net(x_adv)
            lam = self.cfg.lam
            loss = (lam * nn.functional.cross_entropy(logits, y)
                    + (1 - lam) * nn.functional.cross_entropy(adv_logits, y))
        return loss, logits, adv_logits, t_attack

    # ------------------------------------------------------------------ phases
    def train_epoch(self, epoch: int, bar: tqdm | None = None) -> dict[str, float]:
        """One pass over the training images (and DARTS alpha steps when that scorer is chosen).

        Under torchrun each rank takes its contiguous share of every batch (drawn, augmented and path-sampled
        as one process would) and crafts that share's attacks with its own generator.
        """
        cfg, ctx = self.cfg, self.dist
        gen = torch.Generator().manual_seed(_seed_for(cfg.seed, epoch, "train"))
        attack_purpose = f"attack-rank{ctx.rank}" if ctx.is_distributed else "attack"
        attack_gen = torch.Generator(device=self.device).manual_seed(_seed_for(cfg.seed, epoch, attack_purpose))
        order = torch.randperm(len(self.train_data), generator=gen)
        val_order = torch.randperm(len(self.val_data), generator=gen)
        darts = cfg.scorer == "darts" and epoch >= cfg.warmup_epochs
        path_gen = torch.Generator().manual_seed(_seed_for(cfg.seed, epoch, "paths"))
        self.net.train()
        totals = {"loss": 0.0, "clean_correct": 0.0, "adv_correct": 0.0, "n": 0, "attack_s": 0.0, "arch_loss": 0.0}
        t0 = time.perf_counter()
        n_batches = -(-len(order) // cfg.batch_size)
        for b in range(n_batches):
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            if len(idx) < ctx.world_size:  # a last batch too small to give every rank an image: dropped by all
                continue
            x = self.train_data.x[idx]
            if cfg.augment == "crop_flip":
                x = crop_flip(x, gen)
            elif torch.rand(1, generator=gen).item() < 0.5:
                x = x.flip(3)
            share = local_share(len(idx), ctx)
            x, y = self._to(x[share]), to_device(self.train_data.y[idx][share], self.device)
            vidx = val_order[(b * cfg.batch_size) % len(val_order) :][: cfg.batch_size]
            if darts and len(vidx) >= ctx.world_size:  # first-order DARTS: an alpha step on a validation batch
                vshare = local_share(len(vidx), ctx)
                xv = self._to(self.val_data.x[vidx][vshare])
                yv = to_device(self.val_data.y[vidx][vshare], self.device)
                self.a_opt.zero_grad(set_to_none=True)
                arch_loss, _, _, t_att = self._composite_loss(xv, yv, attack_gen)
                (arch_loss * loss_scale(len(yv), len(vidx), ctx)).backward()
                self.a_opt.step()
                totals["attack_s"] += t_att
                totals["arch_loss"] += float(arch_loss.detach()) * len(yv)
            masks = self._with_committed(self._sample_paths(len(idx), epoch, path_gen))
            if masks is not None:
                masks = {branch: m if m.dim() == 2 else m[share] for branch, m in masks.items()}
            loss, logits, adv_logits, t_att = self._composite_loss(x, y, attack_gen, masks)
            if any_rank(not torch.isfinite(loss), ctx, self.device):
                raise NonFiniteLossError(
                    f"the training loss became {float(loss.detach())} at epoch {epoch + 1}, batch {b + 1}: the run "
                    f"stops and keeps its last good checkpoint (epoch {epoch}); lower the learning rate (--set lr=...)")
            self.w_opt.zero_grad(set_to_none=True)
            self.a_opt.zero_grad(set_to_none=True)
            (loss * loss_scale(len(y), len(idx), ctx)).backward()
            nn.utils.clip_grad_norm_(list(self.net.weight_parameters()), cfg.grad_clip)
            self.w_opt.step()
            totals["loss"] += float(loss.detach()) * len(y)
            totals["clean_correct"] += float((logits.argmax(1) == y).sum())
            if adv_logits is not None:
                totals["adv_correct"] += float((adv_logits.argmax(1) == y).sum())
            totals["n"] += len(y)
            totals["attack_s"] += t_att
            if bar is not None:
                bar.set_postfix_str(f"epoch {epoch + 1} train", refresh=False)
                bar.update(1)
        lr = self.w_opt.param_groups[0]["lr"]  # the rate this epoch used
        self.sched.step()
        sync_buffers(self.net, ctx)
        if ctx.is_distributed:  # the epoch's sums over every rank's shares (times stay rank 0's)
            keys = ("loss", "clean_correct", "adv_correct", "n", "arch_loss")
            sums = all_gather_array([[totals[k] for k in keys]], ctx).sum(axis=0)
            totals.update({k: float(v) for k, v in zip(keys, sums, strict=True)})
        n = max(totals["n"], 1)
        elapsed = time.perf_counter() - t0
        out = {"train_loss": totals["loss"] / n, "train_clean_acc": 100 * totals["clean_correct"] / n,
               "train_adv_acc": 100 * totals["adv_correct"] / n if cfg.adversarial else None,
               "time_train_s": elapsed - totals["attack_s"], "time_attack_s": totals["attack_s"],
               "lr": lr}
        if darts:
            out["arch_loss"] = totals["arch_loss"] / n
        return out

    def _sample_paths(self, batch: int, epoch: int, gen: torch.Generator) -> dict[str, torch.Tensor] | None:
        """Sub-networks to train on for every branch (``path_sampling``), as per-sample masks ``[B, E, O]``.

        ``uniform`` draws one op per edge and image with equal probability (SPOS); ``alpha`` does so during the
        warm-up and then draws from softmax(alpha), so training follows the search.  ``coalition`` draws a
        coalition per image as a ROSE walk visits them: a size uniform on 0..P, then a uniform subset of that
        size (each player kept with a probability drawn uniformly per image), so the weights are trained on
        the masked mixtures the game values; ``mixture_then_coalition`` trains the whole mixture during the
        warm-up and coalitions after it.  None: train the whole mixture.
        """
        mode = self.cfg.path_sampling
        if mode == "mixture_then_coalition":
            mode = "none" if epoch < self.cfg.warmup_epochs else "coalition"
        if mode == "none":
            return None
        masks = {}
        for branch, alpha in self.net.alphas().items():
            n_edges, n_ops = alpha.shape
            if mode == "coalition":
                keep = torch.rand(batch, 1, 1, generator=gen)
                masks[branch] = (torch.rand(batch, n_edges, n_ops, generator=gen) < keep).to(self.device)
                continue
            probs = torch.full((n_edges, n_ops), 1.0 / n_ops)
            if mode == "alpha" and epoch >= self.cfg.warmup_epochs:
                probs = torch.softmax(alpha.detach().float().cpu(), dim=-1)
            ops = torch.multinomial(probs, batch, replacement=True, generator=gen)  # [E, B]
            mask = torch.zeros(batch, n_edges, n_ops, dtype=torch.bool)
            mask.scatter_(2, ops.T.unsqueeze(-1), True)
            masks[branch] = mask.to(self.device)
        return masks

    def _with_committed(self, masks: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor] | None:
        """``masks`` with every committed edge holding its op alone (so the other ops are not computed); without
        sampled masks, one ``[E, O]`` mask per branch that has committed edges."""
        out = dict(masks) if masks is not None else {}
        for branch, ops in self.committed.items():
            done = torch.nonzero(ops >= 0).flatten()
            if len(done) == 0:
                continue
            alpha = self.net.alphas()[branch]
            one_hot = torch.zeros(len(done), alpha.shape[1], dtype=torch.bool)
            one_hot[torch.arange(len(done)), ops[done]] = True
            mask = out.get(branch, torch.ones(alpha.shape, dtype=torch.bool, device=self.device)).clone()
            mask[..., done, :] = one_hot.to(mask.device)
            out[branch] = mask
        return out or None

    def _commit(self, round_index: int) -> dict[str, list[int]]:
        """Progressive commitment (``commit_every``): after every ``commit_every``-th scoring round, in each branch,
        fix the open edge whose alpha best separates its top op from the runner-up to that op, while more than
        one edge is open; its other ops leave the mixture and the game.  Returns the edges committed now."""
        every = self.cfg.commit_every
        done: dict[str, list[int]] = {}
        if every <= 0 or self.cfg.scorer not in ("rose", "mc") or round_index % every:
            return done
        for branch, alpha in self.net.alphas().items():
            ops = self.committed[branch]
            open_edges = torch.nonzero(ops < 0).flatten()
            if len(open_edges) < 2:
                continue
            top = alpha.detach().cpu()[open_edges].topk(2, dim=-1)
            pick = int(torch.argmax(top.values[:, 0] - top.values[:, 1]))
            edge, op = int(open_edges[pick]), int(top.indices[pick, 0])
            ops[edge] = op
            with torch.no_grad():  # softmax weight 1 (to float precision) on the op; the row still sums to 1
                row = torch.zeros(alpha.shape[1])
                row[op] = 40.0
                alpha[edge] = (row - (row.sum() - 1.0) / alpha.shape[1]).to(alpha)
            done[branch] = [edge, op]
        return done

    @torch.no_grad()
    def _accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:
        with self._autocast():
            return 100.0 * float((self.net(x).argmax(1) == y).float().mean())

    def _score_sample(self, epoch: int, n_images: int | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, float]:
        """The scoring round's validation sample (``n_score`` images, or the first ``n_images`` of the round's
        permutation of the validation set) and its adversarial versions (crafted once, full supernet)."""
        gen = torch.Generator().manual_seed(_seed_for(self.cfg.seed, epoch, "score"))
        idx = torch.randperm(len(self.val_data), generator=gen)[: n_images or self.cfg.n_score]
        x, y = self._to(self.val_data.x[idx]), to_device(self.val_data.y[idx], self.device)
        if not self.cfg.adversarial:
            return x, y, None, 0.0
        self.net.eval()
        t0 = time.perf_counter()
        attack_gen = torch.Generator(device=self.device).manual_seed(_seed_for(self.cfg.seed, epoch, "score-attack"))
        with self._autocast():
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
        alphas = self.net.alphas()
        steps: dict[str, torch.Tensor] = {}
        for b_index, branch in enumerate(self.net.branches):  # every game on the same supernet (Algorithm 1)
            if bar is not None:
                bar.set_postfix_str(f"epoch {epoch + 1} scoring {branch}")
            result = self._play(branch, b_index, epoch, x, y, x_adv, bar)
            players = player_indices(result.player_names, prims)  # the open edges' pairs (all, without commits)
            score = torch.zeros(alphas[branch].numel())
            score[players] = self._score(branch, result)
            score = score.reshape(alphas[branch].shape)
            steps[branch] = momentum_step(scale_step(score, cfg.step_scale, self.committed[branch] < 0),
                                          self.momentum.get(branch), cfg.score_momentum)
            if cfg.score_momentum > 0:
                self.momentum[branch] = steps[branch]
            steps[branch][self.committed[branch] >= 0] = 0.0  # a committed edge's alpha stays as it was fixed
            self.rose.setdefault(str(epoch), {})[branch] = result.to_dict()
            triggers_up, triggers_down = (_per_primitive(n.sum(axis=1), players, score.shape)
                                          for n in (result.n_above, result.n_below))
            out["branches"][branch] = {
                "score": score.tolist(),
                "evaluations": result.n_evaluations,
                "truncated": result.n_truncated,
                "triggers_above": dict(zip(prims, triggers_up.tolist(), strict=True)),
                "triggers_below": dict(zip(prims, triggers_down.tolist(), strict=True)),
            }
            out["evaluations"] += result.n_evaluations
        self._update_alphas(steps)
        committed = self._commit(epoch - cfg.warmup_epochs + 1)
        if committed:
            out["committed"] = committed
        out["time_score_s"] = time.perf_counter() - t0
        return out

    def _play(self, branch: str, b_index: int, epoch: int, x: torch.Tensor, y: torch.Tensor,
              x_adv: torch.Tensor | None, bar: tqdm | None = None) -> RoseResult:
        """One branch's game this round, walked with the round's seeded permutations (one progress unit a walk)."""
        cfg = self.cfg
        committed = self.committed[branch]
        per_walk = max(int((committed < 0).sum()) * self.net.alpha_shape[1] - 1, 1)
        counted, shown = 0.0, 0

        def advance(k: float) -> None:
            """Count ``k`` evaluations as a share of a walk; the bar moves in whole walks (no 64.0000000006/72)."""
            nonlocal counted, shown
            counted = min(counted + k / per_walk, float(cfg.n_permutations))
            whole = int(counted + 1e-9)
            if bar is not None and whole > shown:
                bar.update(whole - shown)
            shown = max(shown, whole)

        priority = None
        if cfg.coalition_value == "paths":
            gen = torch.Generator().manual_seed(_seed_for(cfg.seed, epoch, f"priority-{branch}"))
            priority = torch.rand((y.shape[0], *self.net.alphas()[branch].shape), generator=gen)
        game = SupernetGame(self.net, branch, x, y, x_adv, cfg.value_metric, self.net.primitives, priority,
                            on_evaluate=advance, batch_stats=cfg.bn_stats == "batch",
                            fixed=committed if bool((committed >= 0).any()) else None)
        rng = np.random.default_rng([cfg.seed, epoch, b_index])
        with self._autocast():  # every coalition's forward pass
            result = RoseEstimator(self.rose_cfg).approximate(game, cfg.n_permutations, rng=rng,
                                                               batch_size=cfg.coalition_batch,
                                                               antithetic=cfg.antithetic,
                                                               truncation_tol=cfg.truncation_tol,
                                                               sharding=rose_sharding(self.dist),
                                                               player_groups=edge_labels(game.player_names)
                                                               if cfg.standardize == "edge" else None)
        advance(per_walk * (cfg.n_permutations - counted))  # walks cut short by truncation count whole
        return result

    def _update_alphas(self, steps: dict[str, torch.Tensor]) -> None:
        """Move every branch's alpha once all games are played: additive step and shift, or eq. 13 (Adam)."""
        alphas = self.net.alphas()
        if self.cfg.update == "shift":
            for branch, step in steps.items():
                update_alpha(alphas[branch], step, self.cfg.eta)
            return
        self.a_opt.zero_grad(set_to_none=True)  # eq. 13: Adam on -sum p(alpha) * Score, every branch at once
        with torch.enable_grad():
            for branch in steps:
                alphas[branch].requires_grad_(True)
            sum(-(torch.softmax(alphas[b], -1) * s.to(alphas[b])).sum() for b, s in steps.items()).backward()
        self.a_opt.step()
        for branch in steps:
            alphas[branch].requires_grad_(False)

    def _score(self, branch: str, result: RoseResult) -> torch.Tensor:
        """This round's scores of ``result``'s players (with ``rose_window``, over this and earlier rounds)."""
        rounds = [result]
        if self.cfg.rose_window > 1:
            earlier = [r[branch] for e, r in sorted(self.rose.items(), key=lambda kv: int(kv[0])) if branch in r]
            rounds = [RoseResult.from_dict(r) for r in earlier[-(self.cfg.rose_window - 1):]] + rounds
        return torch.from_numpy(round_score(rounds, self.cfg)).float()

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
            "momentum": self.momentum,
            "committed": self.committed,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_weights(self.net, state["model"], f"{self.run_dir / CHECKPOINT} does not fit this run's supernet")
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
        self.sched.load_state_dict(state["sched"])
        torch.set_rng_state(state["rng"]["torch"])
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])
        self.rose = dict(state["rose"])
        self.momentum = dict(state.get("momentum", {}))
        self.committed.update(state.get("committed", {}))

    def derive(self) -> Any:
        """The derived genotype or NB201 cell: from the final alpha, or (``derive="mean_score"``) from the mean of
        every round's scores (same rule: per node the two best non-``none`` edges, or the argmax per edge)."""
        if self.cfg.derive == "alpha":
            return self.net.derive()
        weights = {}
        for branch, alpha in self.net.alphas().items():
            rounds = [player_scores(RoseResult.from_dict(r[branch]), self.cfg.scorer, self.rose_cfg.metric_weights)
                      for r in self.rose.values() if branch in r]
            weights[branch] = (torch.from_numpy(np.mean(rounds, axis=0)).float().reshape(alpha.shape) if rounds
                               else alpha.detach().cpu())
        return self.net.derive_from(weights)

    def save_checkpoint(self) -> None:
        """Write the checkpoint atomically (rank 0 only); a failed write (a full disk) keeps the previous one and
        says so."""
        if not self.dist.is_main:
            return
        try:
            atomic_torch_save(self.state_dict(), self.run_dir / CHECKPOINT)
        except OSError as exc:
            raise RunDirError(f"could not write {self.run_dir / CHECKPOINT} ({exc.strerror or exc}): the checkpoint "
                              f"of epoch {self.epoch - 1} is kept; free space and resume with --resume "
                              f"{self.run_dir}") from None


def load_run_checkpoint(path: Path, fmt: str = CKPT_FORMAT, kind: str = "search") -> dict[str, Any]:
    """A run's checkpoint of format ``fmt``, loaded safely (``weights_only``); anything else is a
    :class:`RunDirError` naming the ``kind`` of checkpoint expected."""
    try:
        state = safe_load(path)
    except CheckpointError as exc:
        raise RunDirError(str(exc)) from None
    if not isinstance(state, dict) or state.get("format") != fmt:
        raise RunDirError(f"{path} is not a {kind} checkpoint")
    return state


def load_search_checkpoint(path: Path) -> dict[str, Any]:
    """A search checkpoint, loaded safely (``weights_only``); anything else is a :class:`RunDirError`."""
    return load_run_checkpoint(path)


def _write_log(run_dir: Path, history: list[dict[str, Any]], ctx: DistContext | None = None) -> None:
    """Rewrite log.jsonl from the checkpointed history (so a resumed run's log has no duplicates); rank 0 only."""
    if ctx is not None and not ctx.is_main:
        return
    atomic_write_text(run_dir / "log.jsonl", "".join(json.dumps(r) + "\n" for r in history))


def load_run_config(run_dir: Path) -> SearchConfig:
    """The resolved config saved in a run directory."""
    path = run_dir / "config.json"
    if not path.is_file():
        raise RunDirError(f"{run_dir} is not a search run directory (no config.json)")
    try:
        return from_dict(SearchConfig, json.loads(path.read_text())["config"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise RunDirError(f"{run_dir}/config.json is not a search config ({str(exc).splitlines()[0]})") from None


def is_finished(run_dir: Path) -> bool:
    """Whether a run wrote every artefact: the completion marker is the last file a run writes."""
    return (Path(run_dir) / DONE).is_file()


def finish_run(searcher: Searcher) -> Any:
    """Derive, write every artefact (result file, drawings, plots, report), then the completion marker (the
    derived result on every rank, the files from rank 0)."""
    from .report import write_search_artefacts

    derived = searcher.derive()
    if not searcher.dist.is_main:
        return derived
    write_search_artefacts(searcher, derived)
    atomic_write_text(searcher.run_dir / DONE, json.dumps({"epochs": searcher.epoch, "result": result_file(
        searcher.cfg)}) + "\n")
    return derived


def render_report(run_dir: str | os.PathLike[str]) -> Path:
    """Re-render a search run's derived result, drawings, plots and ``report.md`` from its checkpoint.

    Works on a finished run and on one that stopped after its last epoch but before its report; a run whose
    epochs are not all done is refused (resume it instead).
    """
    run = Path(run_dir)
    kind = run_kind(run)
    if kind not in (None, "search"):
        article = "an" if kind[0] in "aeino" else "a"
        raise RunDirError(f"{run} holds {article} {kind} run; report re-renders a search run (an nb201 "
                          "directory's runs are its run*-seed* folders)")
    cfg = load_run_config(run)
    if not (run / CHECKPOINT).is_file():
        raise RunDirError(f"{run} has no {CHECKPOINT} yet: the run stopped before its first epoch ended")
    state = load_search_checkpoint(run / CHECKPOINT)
    if int(state["epoch"]) < cfg.epochs:
        raise RunDirError(f"{run} stopped after {state['epoch']} of {cfg.epochs} epochs: resume it with --resume "
                          f"{run}")
    searcher = Searcher(cfg, run, DistContext())
    searcher.load_state_dict(state)
    finish_run(searcher)
    return run / "report.md"


def _progress_units(cfg: SearchConfig, epochs: int, n_train: int, branches: int) -> int:
    """Progress units of the first ``epochs`` epochs: one per training batch, one per scoring walk of a branch."""
    batches = -(-n_train // cfg.batch_size)
    walks = cfg.n_permutations * branches if cfg.scorer in ("rose", "mc") else 0
    return epochs * batches + max(epochs - cfg.warmup_epochs, 0) * walks


def run_search(cfg: SearchConfig, run_dir: str | os.PathLike[str], *, resume: bool = False,
               stop_after: int | None = None, group: DistContext | None = None) -> SearchOutcome:
    """Run (or resume) a search in ``run_dir``; writes every artefact of the package README.

    The device and the data are checked before anything is written.  A resumed run continues from its last
    checkpoint, or from the start when it was stopped before its first one, and writes whatever artefact is
    missing; the completion marker ``DONE`` is written last.

    Args:
        cfg: the settings (ignored when resuming: the run's saved config is used).
        run_dir: output directory (created); must not hold another run unless resuming.
        resume: continue from the last checkpoint in ``run_dir``.
        stop_after: stop after this many completed epochs (checkpoint written), as an
            interruption would; used by tests and for staged runs.
        group: the ranks sharing this run (default: the torchrun group, or this process alone).  Every rank
            returns the same outcome; only rank 0 writes.  A group that torchrun restarted after a failure
            resumes the run it finds in ``run_dir``.

    Raises:
        RunDirError: a directory that cannot hold or resume this run; NonFiniteLossError: the loss became NaN
        or infinite (the last good checkpoint is kept).
    """
    with contextlib.ExitStack() as claim:
        return _run_search(cfg, run_dir, resume, stop_after, group, claim)


def _run_search(cfg: SearchConfig, run_dir: str | os.PathLike[str], resume: bool, stop_after: int | None,
                group: DistContext | None, claim: contextlib.ExitStack) -> SearchOutcome:
    run = check_output_dir(run_dir)
    if group is None:
        group, _ = init_distributed(cfg.device, cfg.dist_backend)
    resume = resume or (restarted() and (run / "config.json").is_file())
    check_dir(run, "search", resume=resume)
    state = None
    if resume:
        cfg = load_run_config(run)
        if is_finished(run):
            raise RunDirError(f"{run} is a finished run ({cfg.epochs} epochs); nothing to resume")
        if group.is_main:
            remove_orphans(run)
        if (run / CHECKPOINT).is_file():
            state = load_search_checkpoint(run / CHECKPOINT)
    elif (run / CHECKPOINT).exists() or (run / "config.json").exists():
        raise RunDirError(f"{run} already holds a run; use --resume {run} or another --out")
    searcher = Searcher(cfg, run, group)  # resolves the device and loads the data: fails before anything is written
    barrier(group)  # every rank has read the directory before rank 0 writes to it
    claim.enter_context(claim_dir(run, "search", resume=resume, main=group.is_main))
    if not resume and (run / "config.json").exists():  # another writer got here between the check and the claim
        raise RunDirError(f"{run} already holds a run; use --resume {run} or another --out")
    if not resume and group.is_main:
        run.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run / "config.json", json.dumps({"config": to_dict(cfg), "seed": cfg.seed}, indent=2))
    if state is not None:
        searcher.load_state_dict(state)
    last = cfg.epochs if stop_after is None else min(cfg.epochs, stop_after)
    sizes = (len(searcher.train_data), len(searcher.net.branches))
    bar = tqdm(total=_progress_units(cfg, cfg.epochs, *sizes), initial=_progress_units(cfg, searcher.epoch, *sizes),
               desc="search", unit="step", disable=not (cfg.progress and group.is_main))
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
            _write_log(run, searcher.history, group)
    finally:
        bar.close()
    finished = searcher.epoch >= cfg.epochs
    genotype = finish_run(searcher) if finished else None
    alphas = {b: a.detach().cpu().clone() for b, a in searcher.net.alphas().items()}
    return SearchOutcome(run, searcher.epoch, finished, genotype, alphas)
