"""Replay a finished search's scoring rounds under other estimator settings: seconds, no training.

Every round of a ROSE or Monte-Carlo search saves its raw marginal gains and sampling units (the checkpoint's
``rose`` record).  A replay re-scores those gains with a variant of the statistics (eq. 16's scope, the number
of groups G, beta, the fences, the window of rounds, the step scaling, the momentum, eta) and re-runs the
alpha updates, then derives the cell or genotype the variant would have given.

The starting alpha is recovered from the run itself: with the additive update and the per-edge shift,
``alpha_T = alpha_0 + eta * sum_t centre(step_t)`` up to a per-edge constant that the softmax ignores, so
``alpha_0`` follows from the final alpha and the run's own steps.  A replay with the run's own settings
therefore derives the run's own result.

What a replay cannot model is the feedback: in the real search each update changes the supernet's mixture and
so the next rounds' gains, while a replay scores the gains the original trajectory produced.  It ranks
statistics on the same gains; a variant it favours must still be confirmed by real searches on paired seeds.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rose_estimator import RoseResult

from .config import ConfigError, SearchConfig, apply_overrides, to_dict
from .game import player_indices
from .scoring import edge_labels, momentum_step, player_scores, rose_config, round_score, scale_step
from .search import CHECKPOINT, RunDirError, build_supernet, load_run_config, load_search_checkpoint

__all__ = ["ReplayResult", "REPLAY_KEYS", "replay_run", "replay_runs", "replay_steps"]

REPLAY_KEYS = ("scorer", "beta", "l1", "l2", "n_groups", "standardize", "rose_window", "step_scale",
               "score_momentum", "eta", "derive")
"""The settings a replay may change: the statistics and the alpha dynamics, nothing that changes the gains."""


@dataclass(frozen=True)
class ReplayResult:
    """What a replay derived.

    Attributes:
        run: the run directory replayed.
        config: the run's settings with the variant's overrides applied.
        derived: the cell (NAS-Bench-201 architecture string) or genotype the variant gives.
        alphas: each branch's final alpha under the variant, ``[E, O]``.
        rounds: scoring rounds replayed.
    """

    run: Path
    config: SearchConfig
    derived: Any
    alphas: dict[str, np.ndarray]
    rounds: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (the derived result as a string or a genotype dictionary)."""
        derived = self.derived if isinstance(self.derived, str) else self.derived.to_dict()
        return {"run": str(self.run), "config": to_dict(self.config), "derived": derived, "rounds": self.rounds,
                "alphas": {b: a.tolist() for b, a in self.alphas.items()}}


def replay_steps(cfg: SearchConfig, rounds: list[dict[str, RoseResult]], shape: Mapping[str, tuple[int, int]],
                 primitives: tuple[str, ...]) -> dict[str, list[torch.Tensor]]:
    """Each branch's alpha step of every round under ``cfg``, exactly as the search computes it."""
    steps: dict[str, list[torch.Tensor]] = {b: [] for b in shape}
    momentum: dict[str, torch.Tensor] = {}
    for index in range(len(rounds)):
        for branch, (n_edges, n_ops) in shape.items():
            history = [r[branch] for r in rounds[: index + 1]]
            score = torch.zeros(n_edges * n_ops)
            score[player_indices(history[-1].player_names, primitives)] = torch.from_numpy(
                round_score(history, cfg)).float()
            score = score.reshape(n_edges, n_ops)
            step = momentum_step(scale_step(score, cfg.step_scale), momentum.get(branch), cfg.score_momentum)
            if cfg.score_momentum > 0:
                momentum[branch] = step
            steps[branch].append(step)
    return steps


def _centred_sum(steps: list[torch.Tensor]) -> torch.Tensor:
    total = torch.zeros_like(steps[0], dtype=torch.float64)
    for s in steps:
        s64 = s.double()
        total += s64 - s64.mean(dim=-1, keepdim=True)
    return total


def _final_alpha(model: Mapping[str, torch.Tensor], branch: str) -> torch.Tensor:
    keys = [k for k in model if k == f"alpha_{branch}" or k.endswith(f".alpha_{branch}")]
    if len(keys) != 1:
        raise RunDirError(f"the checkpoint holds no unique alpha for branch {branch!r}")
    return model[keys[0]].detach().double().cpu()


def replay_run(run_dir: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None) -> ReplayResult:
    """Re-score a finished (or stopped) search run's saved rounds with ``overrides`` and derive the result.

    Args:
        run_dir: a search run directory (``rdnas-search run``, or one seeded run of ``rdnas-search nb201``).
        overrides: settings of :data:`REPLAY_KEYS` (strings are parsed as ``--set`` values are).

    Raises:
        RunDirError: not a replayable run (no checkpoint, no scoring round, committed edges, eq. 13's update).
        ConfigError: an override that is not a replay setting, or a bad value.
    """
    run = Path(run_dir)
    cfg = load_run_config(run)
    if not (run / CHECKPOINT).is_file():
        raise RunDirError(f"{run} has no {CHECKPOINT} to replay")
    if cfg.scorer not in ("rose", "mc") or cfg.update != "shift" or cfg.commit_every:
        raise RunDirError(f"{run} is not replayable: the replay re-runs ROSE or Monte-Carlo scores with the additive "
                          f"update and no committed edges (this run: scorer={cfg.scorer}, update={cfg.update}, "
                          f"commit_every={cfg.commit_every})")
    extra = sorted(set(overrides or {}) - set(REPLAY_KEYS))
    if extra:
        raise ConfigError(f"a replay cannot change {', '.join(extra)}: it re-scores saved gains; it may change "
                          f"{', '.join(REPLAY_KEYS)}")
    variant = apply_overrides(cfg, dict(overrides or {}))
    if variant.scorer not in ("rose", "mc"):
        raise ConfigError("a replay scores with rose or mc")
    state = load_search_checkpoint(run / CHECKPOINT)
    rounds = [{b: RoseResult.from_dict(r) for b, r in record.items()}
              for _, record in sorted(state.get("rose", {}).items(), key=lambda kv: int(kv[0]))]
    if not rounds:
        raise RunDirError(f"{run} has no scoring round to replay (it stopped in its warm-up)")
    n_classes = int(next(v for k, v in state["model"].items() if k.endswith("classifier.weight")).shape[0])
    net = build_supernet(cfg, n_classes)
    shape = {b: tuple(a.shape) for b, a in net.alphas().items()}
    own = replay_steps(cfg, rounds, shape, net.primitives)
    variant_steps = own if variant == cfg else replay_steps(variant, rounds, shape, net.primitives)
    alphas = {}
    for branch in shape:
        alpha0 = _final_alpha(state["model"], branch) - cfg.eta * _centred_sum(own[branch])
        alphas[branch] = alpha0 + variant.eta * _centred_sum(variant_steps[branch])
    if variant.derive == "mean_score":
        weights = {b: _mean_scores([r[b] for r in rounds], variant, net.primitives).reshape(shape[b]) for b in shape}
    else:
        weights = {b: torch.softmax(a, dim=-1) for b, a in alphas.items()}
    return ReplayResult(run=run, config=variant, derived=net.derive_from(weights),
                        alphas={b: a.numpy() for b, a in alphas.items()}, rounds=len(rounds))


def _mean_scores(results: list[RoseResult], cfg: SearchConfig, primitives: tuple[str, ...]) -> torch.Tensor:
    """``derive="mean_score"``: the mean over rounds of each round's own scores (as the search derives)."""
    rcfg = rose_config(cfg)
    rows = []
    for r in results:
        rescored = RoseResult(rcfg, r.player_names, r.metric_names, r.gains, r.unit_ids, r.n_truncated,
                              r.n_evaluations,
                              player_groups=edge_labels(r.player_names) if cfg.standardize == "edge" else None)
        full = np.zeros(len(r.player_names))
        full[player_indices(r.player_names, primitives)] = player_scores(rescored, cfg.scorer, rcfg.metric_weights)
        rows.append(full)
    return torch.from_numpy(np.mean(rows, axis=0)).float()


def replay_runs(path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None) -> list[ReplayResult]:
    """:func:`replay_run` on a search run directory, or on every seeded run of an ``rdnas-search nb201``
    directory (its ``run{r}-seed{s}`` sub-directories, in run order)."""
    root = Path(path)
    if not root.is_dir():
        raise RunDirError(f"{root} is not a directory")
    subs = sorted((d for d in root.glob("run*-seed*") if d.is_dir()),
                  key=lambda d: int(d.name[3:].partition("-")[0]) if d.name[3:].partition("-")[0].isdigit() else 0)
    return [replay_run(d, overrides) for d in subs] if subs else [replay_run(root, overrides)]
