"""The ROSE configuration and result objects (score, statistics, JSON round trip)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import stats
from .sampler import GainSample

__all__ = ["RoseConfig", "RoseResult"]


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
        if self.metric_weights is not None:
            object.__setattr__(self, "metric_weights", tuple(float(w) for w in self.metric_weights))


@dataclass
class RoseResult:
    """ROSE scores of every player, with the statistics they come from.

    Build with :meth:`from_gains` (or through :class:`~rose_estimator.RoseEstimator`);
    grow with :meth:`extend`; save with :meth:`to_json`.  Arrays are indexed
    ``[player, metric]`` unless said otherwise.

    Attributes:
        score: ``[P]`` combined ROSE score (eq. 19, metrics weighted).
        score_per_metric: ``[P, K]``.
        m: ``[P, K]`` median-of-means of the standardised gains (eq. 18).
        v: ``[P, K]`` outlier score (eq. 17).
        mc_mean: ``[P, K]`` plain Monte-Carlo Shapley estimate (mean raw gain).
        mc_stderr: ``[P, K]`` its standard error over sampling units (NaN below 2 units).
        n_above, n_below: ``[P, K]`` gains above ``tau+`` / below ``tau-`` (exception triggers).
        group_means: ``[G, P, K]`` standardised group means.
        radius: ``[P]`` confidence radius of the score at ``config.delta`` (eq. 28).
        gains: ``[S, P, K]`` raw marginal gains; unit_ids: ``[S]``.
    """

    config: RoseConfig
    player_names: list[str]
    metric_names: list[str]
    gains: NDArray[np.float64]
    unit_ids: NDArray[np.int64]
    n_truncated: int
    n_evaluations: int
    score: NDArray[np.float64] = field(init=False)
    score_per_metric: NDArray[np.float64] = field(init=False)
    m: NDArray[np.float64] = field(init=False)
    v: NDArray[np.float64] = field(init=False)
    mc_mean: NDArray[np.float64] = field(init=False)
    mc_stderr: NDArray[np.float64] = field(init=False)
    n_above: NDArray[np.int64] = field(init=False)
    n_below: NDArray[np.int64] = field(init=False)
    group_means: NDArray[np.float64] = field(init=False)
    radius: NDArray[np.float64] = field(init=False)

    def __post_init__(self) -> None:
        self.gains = stats.check_gains(self.gains)
        self.unit_ids = np.asarray(self.unit_ids, dtype=np.int64)
        n_perm, n_players, n_metrics = self.gains.shape
        if self.unit_ids.shape != (n_perm,):
            raise ValueError(f"unit_ids must have shape [{n_perm}], got {self.unit_ids.shape}")
        if len(self.player_names) != n_players or len(self.metric_names) != n_metrics:
            raise ValueError("player_names / metric_names do not match the gains' P and K")
        cfg = self.config
        z = stats.standardize(self.gains, rtol=cfg.std_rtol)
        self.group_means = stats.group_means(z, self.unit_ids, cfg.n_groups)
        self.m = np.median(self.group_means, axis=0)
        self.v, self.n_above, self.n_below = stats.outlier_score(z, cfg.l1, cfg.l2, iqr_floor=cfg.iqr_floor)
        self.score, self.score_per_metric = stats.combine_scores(self.m, self.v, cfg.beta, cfg.metric_weights)
        self.mc_mean = self.gains.mean(axis=0)
        self.mc_stderr = _unit_stderr(self.gains, self.unit_ids)
        groups = stats.group_assignment(self.unit_ids, cfg.n_groups)
        n0 = int(np.bincount(groups, minlength=cfg.n_groups).min())
        bound = np.abs(z).max(axis=(0, 2)) if cfg.gain_bound is None else np.full(n_players, cfg.gain_bound)
        self.radius = stats.confidence_radius(n0, bound, cfg.beta, cfg.delta)

    @classmethod
    def from_sample(
        cls,
        sample: GainSample,
        config: RoseConfig,
        player_names: list[str],
        metric_names: list[str],
    ) -> RoseResult:
        """Score one :class:`~rose_estimator.sampler.GainSample`."""
        return cls(
            config=config,
            player_names=list(player_names),
            metric_names=list(metric_names),
            gains=sample.gains,
            unit_ids=sample.unit_ids,
            n_truncated=sample.n_truncated,
            n_evaluations=sample.n_evaluations,
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
            "n_above": self.n_above.tolist(),
            "n_below": self.n_below.tolist(),
            "group_means": self.group_means.tolist(),
            "radius": self.radius.tolist(),
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
        )

    def to_json(self, path: str | os.PathLike[str]) -> None:
        """Write the result to ``path`` atomically (temporary file, then rename)."""
        target = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
        try:
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


def _unit_stderr(gains: NDArray[np.float64], unit_ids: NDArray[np.int64]) -> NDArray[np.float64]:
    """Standard error of the mean gain, with antithetic pairs averaged into one unit first."""
    _, inverse, counts = np.unique(unit_ids, return_inverse=True, return_counts=True)
    sums = np.zeros((counts.size,) + gains.shape[1:])
    np.add.at(sums, inverse, gains)
    unit_means = sums / counts[:, None, None]
    if counts.size < 2:
        return np.full(gains.shape[1:], np.nan)
    return unit_means.std(axis=0, ddof=1) / np.sqrt(counts.size)
