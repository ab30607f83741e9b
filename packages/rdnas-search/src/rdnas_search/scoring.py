"""From a round's walks to alpha's step: the player scores (ROSE or plain Monte-Carlo), the optional window of
rounds, the optional equal-step scaling and the score momentum.

The search (:class:`~rdnas_search.search.Searcher`) and the replay (:mod:`~rdnas_search.replay`) both go
through these functions, so a replay with a run's own settings recomputes that run's steps exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from rose_estimator import RoseConfig, RoseResult, RoseWindow, standardize
from rose_estimator.stats import normalize_weights

from .config import SearchConfig

__all__ = ["rose_config", "edge_labels", "player_scores", "round_score", "scale_step", "momentum_step"]


def rose_config(cfg: SearchConfig) -> RoseConfig:
    """The estimator settings of a search config (metric weights only when the game has two metrics)."""
    return RoseConfig(beta=cfg.beta, l1=cfg.l1, l2=cfg.l2, n_groups=cfg.n_groups,
                      metric_weights=cfg.metric_weights if cfg.adversarial else None,
                      standardize="group" if cfg.standardize == "edge" else "all")


def edge_labels(player_names: Sequence[str]) -> np.ndarray:
    """The edge of every ``"e{edge}:{op}"`` player: the groups of ``standardize="edge"``."""
    return np.asarray([int(name.partition(":")[0][1:]) for name in player_names], dtype=np.int64)


def player_scores(result: RoseResult, scorer: str, metric_weights: tuple[float, ...] | None = None) -> np.ndarray:
    """ROSE score per player (eq. 19), or for ``scorer="mc"`` the plain mean of the same standardised gains
    (eq. 16 in the result's own scope)."""
    if scorer == "rose":
        return np.asarray(result.score, dtype=np.float64)
    weights = normalize_weights(metric_weights, len(result.metric_names))
    groups = result.player_groups if result.config.standardize == "group" else None
    return standardize(result.gains, groups=groups).mean(axis=0) @ weights


def round_score(rounds: Sequence[RoseResult], cfg: SearchConfig) -> np.ndarray:
    """The score of the newest round's players (``rounds[-1]``) under ``cfg``'s statistics.

    The gains are re-scored with ``cfg`` (whatever settings the saved results carry).  ``rose_window = W``
    pools the last W rounds (:class:`~rose_estimator.RoseWindow`, one group per round); otherwise the newest
    round alone is scored, with ``n_groups`` groups.
    """
    if not rounds:
        raise ValueError("no round to score")
    rcfg = rose_config(cfg)
    newest = rounds[-1]
    groups = edge_labels(newest.player_names) if cfg.standardize == "edge" else None
    if cfg.scorer == "rose" and cfg.rose_window:
        window = RoseWindow(rcfg, window=cfg.rose_window, player_groups=groups)
        for r in rounds[-cfg.rose_window:]:
            if r.player_names != newest.player_names:
                raise ValueError("rounds of a window must have the same players")
            out = window.update(r.gains, r.unit_ids)
        return np.asarray(out.score, dtype=np.float64)
    rescored = RoseResult(rcfg, newest.player_names, newest.metric_names, newest.gains, newest.unit_ids,
                          newest.n_truncated, newest.n_evaluations, player_groups=groups)
    return player_scores(rescored, cfg.scorer, rcfg.metric_weights)


def scale_step(score: torch.Tensor, how: str, open_edges: torch.Tensor | None = None) -> torch.Tensor:
    """``how="rms"``: ``score`` ``[E, O]`` divided by the RMS of its per-edge centred values over the open edges.

    The per-edge shift of the update removes each edge's mean, so alpha moves by ``eta`` times the centred
    score: after this scaling every round moves alpha by the same norm, whatever scorer produced it.
    ``how="none"`` returns ``score`` unchanged.
    """
    if how == "none":
        return score
    centred = score - score.mean(dim=-1, keepdim=True)
    if open_edges is not None:
        centred = centred[open_edges]
    rms = float(centred.pow(2).mean().sqrt()) if centred.numel() else 0.0
    return score / rms if rms > 0 else score


def momentum_step(score: torch.Tensor, previous: torch.Tensor | None, mu: float) -> torch.Tensor:
    """The running average ``mu * previous + (1 - mu) * score`` (Shapley-NAS's momentum; ``mu = 0``: ``score``)."""
    if mu <= 0:
        return score
    return mu * (previous if previous is not None else torch.zeros_like(score)) + (1 - mu) * score
