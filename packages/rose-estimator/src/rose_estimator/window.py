"""ROSE over a sliding window of scoring rounds: an estimator that is updated round by round.

A search scores its players once per round, each round from a handful of walks.  Within one round the
median of eq. 18 then has few groups of few walks (the NB201 cpu preset: 3 groups of one antithetic pair),
and eq. 17's quartiles come from so few gains that ``v`` can only take a few values.  :class:`RoseWindow`
keeps the standardised gains (eq. 16) of the last ``window`` rounds and computes

- ``m``: the median over the window's groups of the group means, with ``groups_per_round`` groups a round
  (default one: each group is a whole round's walks), so the median has ``window * groups_per_round``
  groups (eq. 18 across rounds);
- ``v``: eq. 17 over every walk of the window, so repeated decisive walks in different rounds add up;
- ``Score = (1 - beta) m + beta v`` (eq. 19).

This is an extension of the paper, whose statistics are per round; with ``window=1`` it is exactly the
per-round :class:`~rose_estimator.RoseResult` with ``n_groups = groups_per_round``.  Each round is
standardised on its own, so rounds of a changing game (a supernet whose weights and alpha move) share the
z-scale even when the raw values drift.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import stats
from .result import RoseConfig

__all__ = ["RoseWindow", "WindowScore"]


@dataclass(frozen=True)
class WindowScore:
    """The statistics of the rounds in a window (arrays indexed ``[player, metric]`` unless said otherwise).

    Attributes:
        score: ``[P]`` combined score (eq. 19, metrics weighted).
        score_per_metric, m, v: ``[P, K]``.
        n_above, n_below: ``[P, K]`` walks of the window above ``tau+`` / below ``tau-``.
        group_means: ``[G_total, P, K]`` the groups' means, oldest round first.
        n_rounds: rounds in the window; n_walks: walks in the window.
    """

    score: NDArray[np.float64]
    score_per_metric: NDArray[np.float64]
    m: NDArray[np.float64]
    v: NDArray[np.float64]
    n_above: NDArray[np.int64]
    n_below: NDArray[np.int64]
    group_means: NDArray[np.float64]
    n_rounds: int
    n_walks: int


class RoseWindow:
    """ROSE statistics over the last ``window`` rounds of walks (see the module docstring).

    Example:
        >>> win = RoseWindow(RoseConfig(beta=0.3), window=5)
        >>> for round_gains in rounds:  # doctest: +SKIP
        ...     step = win.update(round_gains).score

    Args:
        config: beta, l1, l2, metric weights, std floor and standardisation scope (its ``n_groups`` is not used:
            ``groups_per_round`` sets the groups).
        window: rounds kept (the oldest is dropped when a new one arrives).
        groups_per_round: median-of-means groups formed from each round's walks.
        player_groups: ``[P]`` labels for ``config.standardize == "group"``.
    """

    def __init__(self, config: RoseConfig | None = None, window: int = 5, groups_per_round: int = 1,
                 player_groups: ArrayLike | None = None) -> None:
        for name, value in (("window", window), ("groups_per_round", groups_per_round)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
        self.config = config or RoseConfig()
        if self.config.standardize == "group" and player_groups is None:
            raise ValueError("standardize='group' needs player_groups, one integer label per player")
        self.window = int(window)
        self.groups_per_round = int(groups_per_round)
        self.player_groups = None if player_groups is None else np.asarray(player_groups)
        self._z: deque[NDArray[np.float64]] = deque(maxlen=self.window)
        self._means: deque[NDArray[np.float64]] = deque(maxlen=self.window)

    @property
    def n_rounds(self) -> int:
        """Rounds now in the window."""
        return len(self._z)

    def update(self, gains: ArrayLike, unit_ids: ArrayLike | None = None) -> WindowScore:
        """Add one round's raw gains ``[S, P, K]`` (``unit_ids`` ``[S]``: antithetic pairs share an id) and
        return the window's statistics."""
        g = stats.check_gains(gains)
        if self._z and g.shape[1:] != self._z[-1].shape[1:]:
            raise ValueError(f"a round has gains for {g.shape[1:]} (players, metrics), the window holds "
                             f"{self._z[-1].shape[1:]}")
        ids = np.arange(g.shape[0]) if unit_ids is None else np.asarray(unit_ids)
        groups = None
        if self.config.standardize == "group":
            groups = stats.player_groups(self.player_groups, g.shape[1])
        z = stats.standardize(g, groups=groups, rtol=self.config.std_rtol)
        self._means.append(stats.group_means(z, ids, self.groups_per_round))
        self._z.append(z)
        return self.statistics()

    def statistics(self) -> WindowScore:
        """The statistics of the rounds now in the window."""
        if not self._z:
            raise ValueError("the window holds no round yet: call update() first")
        cfg = self.config
        means = np.concatenate(list(self._means))
        walks = np.concatenate(list(self._z))
        m = np.median(means, axis=0)
        v, above, below = stats.outlier_score(walks, cfg.l1, cfg.l2, iqr_floor=cfg.iqr_floor)
        score, per_metric = stats.combine_scores(m, v, cfg.beta, cfg.metric_weights)
        return WindowScore(score=score, score_per_metric=per_metric, m=m, v=v, n_above=above, n_below=below,
                           group_means=means, n_rounds=len(self._z), n_walks=int(walks.shape[0]))

    def reset(self) -> None:
        """Forget every round (a new game)."""
        self._z.clear()
        self._means.clear()
