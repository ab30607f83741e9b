"""A surrogate of the NAS-Bench-201 supernet game for estimator research: the tabular game with feedback and noise.

The real search's game is slow (minutes a seed) and noisy in ways the tabular game
(:class:`~rdnas_search.nb201.NB201TableGame`) is not: the supernet ranks cells only weakly (the diagnostic's
Kendall tau between its cell values and the benchmark is about 0.3 on the selection seeds), its values drift as
the weights train between rounds, and its coalition values depend on alpha (the masked mixture is weighted by
softmax(alpha), not renormalised).  :class:`SurrogateGame` models exactly these three things, so that a scorer
can be run through the search's own alpha dynamics on 100+ seeds in minutes:

- **feedback**: the value of a coalition C is the expected accuracy of a cell drawn edge by edge from the masked
  mixture: operation ``o`` of C with probability ``softmax(alpha)[e, o]``, and ``none`` with the mass of the
  masked operations (a masked operation contributes nothing to its edge, as in the supernet);
- **a biased supernet**: every cell's accuracy is distorted by a persistent Gaussian term drawn once per seed;
- **drift**: a fresh Gaussian term per round, fixed within the round (the supernet is deterministic within a
  scoring round: the same images and weights for every walk).

The two standard deviations are set by :func:`fit_distortion` so that the distorted cell values rank cells with
a chosen Kendall tau against the benchmark (the real diagnostic's), split between the persistent and the per-round
part by ``persistent_share``.  It is a model, not the supernet: choose with it, then confirm on the real search.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from rdnas_space import NB201_EDGES, NB201_PRIMITIVES, ops_to_arch
from rose_estimator import Game, RoseEstimator, RoseResult
from scipy import stats

from .config import SearchConfig
from .scoring import edge_labels, momentum_step, player_scores, rose_config, round_score, scale_step
from .search import update_alpha

__all__ = ["SurrogateNoise", "SurrogateGame", "fit_distortion", "surrogate_search"]

_N_EDGES, _N_OPS = len(NB201_EDGES), len(NB201_PRIMITIVES)
_NONE = NB201_PRIMITIVES.index("none")


@dataclass(frozen=True)
class SurrogateNoise:
    """The surrogate's two distortions of the benchmark's cell accuracies (percentage points)."""

    persistent: float = 0.0
    per_round: float = 0.0


class SurrogateGame(Game):
    """One scoring round of the surrogate: 30 (edge, op) players valued under a fixed alpha and distorted grid."""

    def __init__(self, grid: np.ndarray, alpha: np.ndarray) -> None:
        names = [f"e{e}:{op}" for e in range(_N_EDGES) for op in NB201_PRIMITIVES]
        super().__init__(_N_EDGES * _N_OPS, 1, player_names=names, metric_names=["surrogate accuracy"])
        self.grid = grid
        a = np.asarray(alpha, dtype=np.float64)
        w = np.exp(a - a.max(axis=1, keepdims=True))
        self.weights = w / w.sum(axis=1, keepdims=True)

    def value_function(self, coalitions: np.ndarray) -> np.ndarray:
        m = coalitions.reshape(coalitions.shape[0], _N_EDGES, _N_OPS).astype(np.float64) * self.weights[None]
        m[:, :, _NONE] += 1.0 - m.sum(axis=2)  # the masked operations' mass: the edge outputs nothing
        return np.einsum("abcdef,ma,mb,mc,md,me,mf->m", self.grid, *[m[:, e] for e in range(_N_EDGES)],
                         optimize=True)


def _tau_at(grid: np.ndarray, sigma: float, n_cells: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    flat = grid.reshape(-1)
    idx = rng.choice(flat.size, n_cells, replace=False)
    taus = [stats.kendalltau(flat[idx], flat[idx] + sigma * rng.standard_normal(n_cells)).statistic
            for _ in range(20)]
    return float(np.mean(taus))


def fit_distortion(grid: np.ndarray, target_tau: float, n_cells: int = 100, seed: int = 0) -> float:
    """The standard deviation (points) of a Gaussian distortion under which ``n_cells`` sampled cells' values
    have Kendall tau ``target_tau`` with their benchmark accuracies (bisection on a log scale)."""
    if not 0.0 < target_tau < 1.0:
        raise ValueError(f"target_tau must lie in (0, 1), got {target_tau}")
    lo, hi = 1e-3, 1e3
    for _ in range(40):
        mid = float(np.sqrt(lo * hi))
        if _tau_at(grid, mid, n_cells, seed) > target_tau:
            lo = mid
        else:
            hi = mid
    return float(np.sqrt(lo * hi))


def surrogate_search(cfg: SearchConfig, grid: np.ndarray, noise: SurrogateNoise, seed: int) -> str:
    """The search's scoring dynamics on the surrogate: ``epochs - warmup_epochs`` rounds of ``cfg``'s walks,
    scores (:func:`~rdnas_search.scoring.round_score`), step scaling, momentum and the additive update, then
    the derive rule; returns the derived cell.  The same ``seed`` gives the same walks and distortions to every
    scorer, so contenders are paired."""
    rng = np.random.default_rng([seed, 7919])
    distorted = grid + noise.persistent * rng.standard_normal(grid.shape)
    gen = torch.Generator().manual_seed(seed)
    alpha = 1e-3 * torch.randn(_N_EDGES, _N_OPS, generator=gen)
    momentum: torch.Tensor | None = None
    history: list[RoseResult] = []
    rcfg = rose_config(cfg)
    for epoch in range(cfg.warmup_epochs, cfg.epochs):
        round_grid = distorted + noise.per_round * rng.standard_normal(grid.shape)
        game = SurrogateGame(round_grid, alpha.numpy())
        result = RoseEstimator(rcfg).approximate(game, cfg.n_permutations, rng=np.random.default_rng([seed, epoch]),
                                                 antithetic=cfg.antithetic,
                                                 player_groups=edge_labels(game.player_names))
        history.append(result)
        score = torch.from_numpy(round_score(history, cfg)).float().reshape(_N_EDGES, _N_OPS)
        step = momentum_step(scale_step(score, cfg.step_scale), momentum, cfg.score_momentum)
        if cfg.score_momentum > 0:
            momentum = step
        update_alpha(alpha, step, cfg.eta)
    if cfg.derive == "mean_score":
        weights = np.mean([player_scores(r, cfg.scorer, rcfg.metric_weights) for r in history], axis=0)
        choice = weights.reshape(_N_EDGES, _N_OPS).argmax(axis=1)
    else:
        choice = alpha.numpy().argmax(axis=1)
    return ops_to_arch(tuple(int(i) for i in choice))
