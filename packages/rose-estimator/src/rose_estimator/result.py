"""The ROSE configuration and result objects (score, statistics, JSON round trip)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import stats
from .sampler import GainSample

__all__ = ["RoseConfig", "RoseResult", "STANDARDIZE"]

STANDARDIZE = ("all", "group")
"""Scopes of eq. 16: over all players of a walk, or over each group of players (``player_groups``)."""


@dataclass(frozen=True)
class RoseConfig:
    """Settings of the ROSE statistics.

    Attributes:
        beta: weight of the outlier score v in eq. 19 (paper's best: 0.3).
        l1: upper IQR fence factor (paper's best: 1.2).
        l2: lower IQR fence factor (paper's best: 2.0).
        n_groups: median-of-means groups G (eq. 18).
        metric_weights: weights of the K metrics in the combined score (default equal).
        delta: confidence level of the reported radius (eq. 28).
        gain_bound: M of eq. 28 in standardised units; None uses each player's
            largest observed ``|z|``.
        std_rtol: relative floor of the per-permutation std (eq. 16).
        iqr_floor: replacement for a zero IQR, in standardised units (eq. 17).
        standardize: ``all`` (eq. 16 over every player of a walk) or ``group`` (over the players sharing a
            label of the result's ``player_groups``, such as the operations of one edge).
    """

    beta: float = 0.3
    l1: float = 1.2
    l2: float = 2.0
    n_groups: int = 5
    metric_weights: tuple[float, ...] | None = None
    delta: float = 0.05
    gain_bound: float | None = None
    std_rtol: float = 1e-9
    iqr_floor: float = 1e-9
    standardize: str = "all"

    def __post_init__(self) -> None:
        for name in ("beta", "l1", "l2", "delta", "std_rtol", "iqr_floor"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not np.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if not 0.0 <= self.beta <= 1.0:
            raise ValueError(f"beta must lie in [0, 1], got {self.beta}")
        if self.l1 < 0 or self.l2 < 0:
            raise ValueError(f"IQR fence factors l1, l2 must be non-negative, got {self.l1}, {self.l2}")
        if isinstance(self.n_groups, bool) or not isinstance(self.n_groups, (int, np.integer)):
            raise ValueError(f"n_groups must be a whole number, got {self.n_groups!r}")
        if self.n_groups < 1:
            raise ValueError(f"n_groups must be at least 1, got {self.n_groups}")
        if not 0.0 < self.delta < 1.0:
            raise ValueError(f"delta must lie in (0, 1), got {self.delta}")
        if self.gain_bound is not None and self.gain_bound <= 0:
            raise ValueError(f"gain_bound must be positive, got {self.gain_bound}")
        if self.standardize not in STANDARDIZE:
            raise ValueError(f"standardize must be one of {', '.join(STANDARDIZE)}, got {self.standardize!r}")
        if self.metric_weights is not None:
            w = tuple(float(x) for x in self.metric_weights)
            if not all(np.isfinite(w)):
                raise ValueError(f"metric_weights must be finite numbers, got {list(w)}")
            object.__setattr__(self, "metric_weights", tuple(float(w) for w in self.metric_weights))


@dataclass
class RoseResult:
    """ROSE scores of every player, with the statistics they come from.

    Build with :meth:`from_sample` (or through :class:`~rose_estimator.RoseEstimator`);
    grow with :meth:`extend`; save with :meth:`to_json`.  Arrays are indexed
    ``[player, metric]`` unless said otherwise.

    Attributes:
        score: ``[P]`` combined ROSE score (eq. 19, metrics weighted).
        score_per_metric: ``[P, K]``.
        m: ``[P, K]`` median-of-means of the standardised gains (eq. 18).
        v: ``[P, K]`` outlier score (eq. 17).
        mc_mean: ``[P, K]`` plain Monte-Carlo Shapley estimate (mean raw gain).
        mc_stderr: ``[P, K]`` its standard error over sampling units (NaN below 2 units).
        m_raw: ``[P, K]`` median of means of the raw gains: the robust estimate in the value's own units
            (eq. 18 without eq. 16), for users who read values, not z-scores (data valuation, attribution).
        score_stderr: ``[P]`` standard error of the mean of the standardised gains behind ``score`` (metrics
            weighted as in the score), over sampling units: how far apart two scores must be to differ.
        n_above, n_below: ``[P, K]`` gains above ``tau+`` / below ``tau-`` (exception triggers).
        group_means: ``[G, P, K]`` standardised group means.
        radius: ``[P]`` confidence radius of the score at ``config.delta`` (eq. 28).  Read it with care: ``M``
            is each player's largest *observed* ``|z|`` unless ``gain_bound`` is set (for gains standardised
            over P players ``sqrt(P - 1)`` is a true bound), and ``n0`` counts walks, although the two walks of
            an antithetic pair are not independent; with a handful of walks per group it is vacuous.
        radius_vacuous: True when the radius is at least the whole spread of the scores (max - min), so it
            cannot separate any two players: report it as "no guarantee", not as information.
        gains: ``[S, P, K]`` raw marginal gains; unit_ids: ``[S]``.
        player_groups: ``[P]`` integer labels for ``config.standardize == "group"`` (None otherwise).
    """

    config: RoseConfig
    player_names: list[str]
    metric_names: list[str]
    gains: NDArray[np.float64]
    unit_ids: NDArray[np.int64]
    n_truncated: int
    n_evaluations: int
    player_groups: NDArray[np.int64] | None = None
    score: NDArray[np.float64] = field(init=False)
    score_per_metric: NDArray[np.float64] = field(init=False)
    m: NDArray[np.float64] = field(init=False)
    v: NDArray[np.float64] = field(init=False)
    mc_mean: NDArray[np.float64] = field(init=False)
    mc_stderr: NDArray[np.float64] = field(init=False)
    m_raw: NDArray[np.float64] = field(init=False)
    score_stderr: NDArray[np.float64] = field(init=False)
    n_above: NDArray[np.int64] = field(init=False)
    n_below: NDArray[np.int64] = field(init=False)
    group_means: NDArray[np.float64] = field(init=False)
    radius: NDArray[np.float64] = field(init=False)
    radius_vacuous: bool = field(init=False)

    def __post_init__(self) -> None:
        self.gains = stats.check_gains(self.gains)
        self.unit_ids = np.asarray(self.unit_ids, dtype=np.int64)
        n_perm, n_players, n_metrics = self.gains.shape
        if self.unit_ids.shape != (n_perm,):
            raise ValueError(f"unit_ids must have shape [{n_perm}], got {self.unit_ids.shape}")
        if len(self.player_names) != n_players or len(self.metric_names) != n_metrics:
            raise ValueError("player_names / metric_names do not match the gains' P and K")
        cfg = self.config
        if cfg.standardize == "group":
            if self.player_groups is None:
                raise ValueError("standardize='group' needs player_groups, one integer label per player")
            self.player_groups = stats.player_groups(self.player_groups, n_players)
        elif self.player_groups is not None:
            self.player_groups = stats.player_groups(self.player_groups, n_players)
        z = stats.standardize(self.gains, groups=self.player_groups if cfg.standardize == "group" else None,
                              rtol=cfg.std_rtol)
        self.group_means = stats.group_means(z, self.unit_ids, cfg.n_groups)
        self.m = np.median(self.group_means, axis=0)
        self.v, self.n_above, self.n_below = stats.outlier_score(z, cfg.l1, cfg.l2, iqr_floor=cfg.iqr_floor)
        self.score, self.score_per_metric = stats.combine_scores(self.m, self.v, cfg.beta, cfg.metric_weights)
        self.mc_mean = self.gains.mean(axis=0)
        self.mc_stderr = stats.unit_stderr(self.gains, self.unit_ids)
        self.m_raw = stats.median_of_means(self.gains, self.unit_ids, cfg.n_groups)
        weights = stats.normalize_weights(cfg.metric_weights, n_metrics)
        self.score_stderr = stats.unit_stderr((z @ weights)[:, :, None], self.unit_ids)[:, 0]
        groups = stats.group_assignment(self.unit_ids, cfg.n_groups)
        n0 = int(np.bincount(groups, minlength=cfg.n_groups).min())
        bound = np.abs(z).max(axis=(0, 2)) if cfg.gain_bound is None else np.full(n_players, cfg.gain_bound)
        self.radius = stats.confidence_radius(n0, bound, cfg.beta, cfg.delta)
        spread = float(self.score.max() - self.score.min()) if n_players else 0.0
        self.radius_vacuous = bool(n_players == 0 or float(self.radius.min()) >= spread)

    @classmethod
    def from_sample(
        cls,
        sample: GainSample,
        config: RoseConfig,
        player_names: list[str],
        metric_names: list[str],
        player_groups: ArrayLike | None = None,
    ) -> RoseResult:
        """Score one :class:`~rose_estimator.sampler.GainSample` (``player_groups``: labels for
        ``config.standardize == "group"``)."""
        return cls(
            config=config,
            player_names=list(player_names),
            metric_names=list(metric_names),
            gains=sample.gains,
            unit_ids=sample.unit_ids,
            n_truncated=sample.n_truncated,
            n_evaluations=sample.n_evaluations,
            player_groups=None if player_groups is None else np.asarray(player_groups),
        )

    @property
    def n_permutations(self) -> int:
        """Number of walks S behind the result."""
        return int(self.gains.shape[0])

    def extend(self, sample: GainSample) -> RoseResult:
        """A new result over the old walks plus ``sample``'s (unit ids kept disjoint)."""
        offset = int(self.unit_ids.max()) + 1 if self.unit_ids.size else 0
        return RoseResult(
            config=self.config,
            player_names=self.player_names,
            metric_names=self.metric_names,
            gains=np.concatenate([self.gains, sample.gains]),
            unit_ids=np.concatenate([self.unit_ids, sample.unit_ids + offset]),
            n_truncated=self.n_truncated + sample.n_truncated,
            n_evaluations=self.n_evaluations + sample.n_evaluations,
            player_groups=self.player_groups,
        )

    def ranking(self) -> list[str]:
        """Player names from highest to lowest score (ties by player order)."""
        order = np.argsort(-self.score, kind="stable")
        return [self.player_names[i] for i in order]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary holding the inputs and every statistic."""
        return {
            "format": "rose-result/1",
            "config": asdict(self.config),
            "player_names": self.player_names,
            "metric_names": self.metric_names,
            "n_permutations": self.n_permutations,
            "n_truncated": self.n_truncated,
            "n_evaluations": self.n_evaluations,
            "score": self.score.tolist(),
            "score_per_metric": self.score_per_metric.tolist(),
            "m": self.m.tolist(),
            "v": self.v.tolist(),
            "mc_mean": self.mc_mean.tolist(),
            "mc_stderr": [[None if np.isnan(x) else x for x in row] for row in self.mc_stderr.tolist()],
            "m_raw": self.m_raw.tolist(),
            "score_stderr": [None if np.isnan(x) else x for x in self.score_stderr.tolist()],
            "player_groups": None if self.player_groups is None else self.player_groups.tolist(),
            "n_above": self.n_above.tolist(),
            "n_below": self.n_below.tolist(),
            "group_means": self.group_means.tolist(),
            "radius": self.radius.tolist(),
            "radius_vacuous": self.radius_vacuous,
            "gains": self.gains.tolist(),
            "unit_ids": self.unit_ids.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoseResult:
        """Rebuild a result from :meth:`to_dict` output (statistics are recomputed)."""
        if data.get("format") != "rose-result/1":
            raise ValueError("not a ROSE result: the 'format' field must be 'rose-result/1'")
        cfg = dict(data["config"])
        return cls(
            config=RoseConfig(**cfg),
            player_names=list(data["player_names"]),
            metric_names=list(data["metric_names"]),
            gains=np.asarray(data["gains"], dtype=np.float64).reshape(
                -1, len(data["player_names"]), len(data["metric_names"])
            ),
            unit_ids=np.asarray(data["unit_ids"], dtype=np.int64),
            n_truncated=int(data["n_truncated"]),
            n_evaluations=int(data["n_evaluations"]),
            player_groups=None if data.get("player_groups") is None else np.asarray(data["player_groups"]),
        )

    def to_json(self, path: str | os.PathLike[str]) -> None:
        """Write the result to ``path`` atomically (temporary file, then rename)."""
        target = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
        try:
            mask = os.umask(0)
            os.umask(mask)
            os.fchmod(fd, 0o666 & ~mask)  # the mode a plain open() gives, not mkstemp's 0600
            with os.fdopen(fd, "w") as fh:
                json.dump(self.to_dict(), fh)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> RoseResult:
        """Load a result written by :meth:`to_json`."""
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from None
        return cls.from_dict(data)

