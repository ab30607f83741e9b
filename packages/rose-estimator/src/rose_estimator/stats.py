"""The ROSE statistics (eqs. 16-19 and 28) as pure functions over gains ``[S, P, K]``.

``S`` permutations (walks), ``P`` players, ``K`` metrics.  Nothing here draws
random numbers or calls a game, so every function can be tested on hand-built
arrays.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "QUANTILE_METHOD",
    "check_gains",
    "standardize",
    "player_groups",
    "unit_stderr",
    "iqr_fences",
    "outlier_score",
    "group_assignment",
    "group_means",
    "median_of_means",
    "combine_scores",
    "confidence_radius",
    "normalize_weights",
]

QUANTILE_METHOD = "linear"
"""Quantile definition used for Q1/Q3 (numpy's default, Hyndman-Fan type 7), pinned."""


def check_gains(gains: ArrayLike) -> NDArray[np.float64]:
    """Return ``gains`` as a float ``[S, P, K]`` array or raise a ValueError saying why not."""
    g = np.asarray(gains, dtype=np.float64)
    if g.ndim != 3:
        raise ValueError(
            f"gains must be a 3-d array [S permutations, P players, K metrics], got shape {g.shape}; "
            "add a trailing axis of length 1 for a single metric"
        )
    if not np.isfinite(g).all():
        raise ValueError("gains contain NaN or inf; the value function must return finite numbers")
    return g


def standardize(
    gains: ArrayLike, *, groups: ArrayLike | None = None, rtol: float = 1e-9, atol: float = 1e-12
) -> NDArray[np.float64]:
    """Eq. 16: standardise each metric's gains across players within each permutation.

    ``z = (gain - mean) / max(std, floor)`` with ``floor = max(atol, rtol * max|gain|)``
    taken per permutation and metric, and deviations ``|gain - mean| <= floor`` set
    to exactly 0.  The paper writes ``std + eps``; a floor relative to the gains' own
    scale keeps the result invariant to a positive rescaling of the value function,
    and snapping stops floating-point noise between (mathematically) equal gains
    from being blown up into spurious outliers.

    ``groups`` (``[P]`` labels, optional) is the second reading of the paper's "across operations": the mean,
    the (population) std and the floor are taken over the players that share a label (the operations of one
    edge), so within each walk every group's gains have mean 0 and unit spread, and rescaling or shifting one
    group's gains changes none of its standardised gains.  ``None`` standardises over all players.
    """
    g = check_gains(gains)
    if groups is None:
        return _standardize_over(g, rtol, atol)
    labels = player_groups(groups, g.shape[1])
    z = np.empty_like(g)
    for label in np.unique(labels):
        cols = labels == label
        z[:, cols] = _standardize_over(g[:, cols], rtol, atol)
    return z


def player_groups(groups: ArrayLike, n_players: int) -> NDArray[np.int64]:
    """Validate per-player group labels (``[P]`` integers) for :func:`standardize`."""
    labels = np.asarray(groups)
    if labels.shape != (n_players,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"groups must be {n_players} integer labels, one per player, got shape {labels.shape} "
                         f"of {labels.dtype}")
    return labels.astype(np.int64)


def _standardize_over(g: NDArray[np.float64], rtol: float, atol: float) -> NDArray[np.float64]:
    # divided by the largest |gain| first (z does not change under a positive scaling), so that gains near the
    # float range (1e300) do not overflow in the variance
    scale = np.abs(g).max(axis=1, keepdims=True)
    safe = np.where(scale > 0, scale, 1.0)
    gn = g / safe
    dev = gn - gn.mean(axis=1, keepdims=True)
    floor = np.maximum(atol, rtol * scale) / safe
    dev = np.where(np.abs(dev) <= floor, 0.0, dev)
    return dev / np.maximum(gn.std(axis=1, keepdims=True), floor)


def iqr_fences(
    z: ArrayLike, l1: float = 1.2, l2: float = 2.0, *, iqr_floor: float = 1e-9
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Eq. 17 fences per player and metric over the S permutations.

    ``tau+ = Q3 + l1 * IQR`` and ``tau- = Q1 - l2 * IQR`` with quartiles computed by
    :data:`QUANTILE_METHOD`.  A zero IQR (most gains identical) is replaced by
    ``iqr_floor`` (in standardised units), so the fences sit just outside the bulk
    and a gain that really differs from it counts as an outlier.

    Returns:
        ``(tau_minus, tau_plus)``, each ``[P, K]``.
    """
    if l1 < 0 or l2 < 0:
        raise ValueError(f"IQR fence factors must be non-negative, got l1={l1}, l2={l2}")
    zz = check_gains(z)
    q1, q3 = np.quantile(zz, [0.25, 0.75], axis=0, method=QUANTILE_METHOD)
    iqr = np.maximum(q3 - q1, iqr_floor)
    return q1 - l2 * iqr, q3 + l1 * iqr


def outlier_score(
    z: ArrayLike, l1: float = 1.2, l2: float = 2.0, *, iqr_floor: float = 1e-9
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """Eq. 17: ``v = (#{gain > tau+} - #{gain < tau-}) / S`` per player and metric.

    A gain must clear its fence by more than ``iqr_floor`` to count, so rounding
    noise of a gain lying exactly on a fence cannot flip the count.

    Returns:
        ``(v, n_above, n_below)``, each ``[P, K]``; ``v`` lies in ``[-1, 1]`` and the
        counts are the "exception triggers" of the paper's Figures 5-6.
    """
    zz = check_gains(z)
    tau_minus, tau_plus = iqr_fences(zz, l1, l2, iqr_floor=iqr_floor)
    above = (zz > tau_plus[None] + iqr_floor).sum(axis=0)
    below = (zz < tau_minus[None] - iqr_floor).sum(axis=0)
    return (above - below) / zz.shape[0], above, below


def group_assignment(unit_ids: ArrayLike, n_groups: int) -> NDArray[np.int64]:
    """Assign walks to ``n_groups`` contiguous groups by sampling order.

    Walks sharing a unit id (an antithetic pair) always land in the same group.
    Unit ``u`` of ``U`` (numbered in order of first appearance) goes to group
    ``floor(u * G / U)``, so group sizes differ by at most one unit.
    """
    ids = np.asarray(unit_ids)
    if ids.ndim != 1:
        raise ValueError(f"unit_ids must be 1-d, got shape {ids.shape}")
    _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))  # rank of each unit by first appearance
    n_units = first.size
    if n_groups < 1:
        raise ValueError(f"the number of groups G must be at least 1, got {n_groups}")
    if n_units < n_groups:
        raise ValueError(
            f"median-of-means needs at least G={n_groups} sampling units, got {n_units} "
            "(S permutations, or S/2 antithetic pairs): sample more permutations or lower G"
        )
    return (order[inverse] * n_groups) // n_units


def group_means(z: ArrayLike, unit_ids: ArrayLike, n_groups: int) -> NDArray[np.float64]:
    """Per-group means of ``z`` ``[S, P, K]`` -> ``[G, P, K]`` (the inner term of eq. 18)."""
    zz = check_gains(z)
    groups = group_assignment(unit_ids, n_groups)
    if groups.size != zz.shape[0]:
        raise ValueError(f"unit_ids has {groups.size} entries but gains has S={zz.shape[0]} permutations")
    sums = np.zeros((n_groups,) + zz.shape[1:])
    np.add.at(sums, groups, zz)
    counts = np.bincount(groups, minlength=n_groups).astype(np.float64)
    return sums / counts[:, None, None]


def median_of_means(z: ArrayLike, unit_ids: ArrayLike | None = None, n_groups: int = 1) -> NDArray[np.float64]:
    """Eq. 18: the median over G groups of the group means, ``[P, K]``.

    ``G = 1`` is the plain mean; ``G = S`` (no antithetic pairs) is the median.
    """
    zz = check_gains(z)
    ids = np.arange(zz.shape[0]) if unit_ids is None else unit_ids
    return np.median(group_means(zz, ids, n_groups), axis=0)


def combine_scores(
    m: ArrayLike, v: ArrayLike, beta: float = 0.3, metric_weights: ArrayLike | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Eq. 19: ``Score = (1 - beta) * m + beta * v`` per metric, then a weighted sum over metrics.

    Args:
        m, v: ``[P, K]``.
        beta: weight of the outlier score, in ``[0, 1]``.
        metric_weights: ``[K]`` non-negative weights, normalised to sum 1 (default equal).

    Returns:
        ``(score, per_metric)`` with shapes ``[P]`` and ``[P, K]``.
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must lie in [0, 1], got {beta}")
    mm, vv = np.asarray(m, dtype=np.float64), np.asarray(v, dtype=np.float64)
    if mm.shape != vv.shape or mm.ndim != 2:
        raise ValueError(f"m and v must both be [P, K], got {mm.shape} and {vv.shape}")
    per_metric = (1.0 - beta) * mm + beta * vv
    w = normalize_weights(metric_weights, mm.shape[1])
    return per_metric @ w, per_metric


def normalize_weights(metric_weights: ArrayLike | None, n_metrics: int) -> NDArray[np.float64]:
    """Validate metric weights ``[K]`` and scale them to sum 1 (equal weights when None)."""
    if metric_weights is None:
        return np.full(n_metrics, 1.0 / n_metrics)
    w = np.asarray(metric_weights, dtype=np.float64)
    if w.shape != (n_metrics,) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(
            f"metric_weights must be {n_metrics} non-negative numbers with a positive sum, got {w.tolist()}"
        )
    return w / w.sum()


def confidence_radius(
    group_size: int, bound: ArrayLike, beta: float, delta: float = 0.05
) -> NDArray[np.float64]:
    """Radius ``e`` with ``P(|Score - phi| >= e) <= delta`` from the appendix bound (eq. 28).

    Eq. 28 gives ``2 exp(-n0 e^2 / (8 M^2))`` for ``e > 2 beta (1 + M)``; solving for
    ``delta`` gives ``e = M sqrt(8 ln(2 / delta) / n0)``, and the validity condition
    raises it to at least ``2 beta (1 + M)``.  ``n0`` is the (smallest) group size
    and ``M`` the bound on the gains (per player, in the scale the score lives in).
    """
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must lie in (0, 1), got {delta}")
    if group_size < 1:
        raise ValueError(f"group_size must be at least 1, got {group_size}")
    big_m = np.asarray(bound, dtype=np.float64)
    e = big_m * math.sqrt(8.0 * math.log(2.0 / delta) / group_size)
    return np.maximum(e, 2.0 * beta * (1.0 + big_m))


def unit_stderr(gains: ArrayLike, unit_ids: ArrayLike) -> NDArray[np.float64]:
    """Standard error of the mean of ``gains`` ``[S, P, K]`` over sampling units (an antithetic pair is averaged
    into one unit first), ``[P, K]``; NaN below two units."""
    g = check_gains(gains)
    _, inverse, counts = np.unique(np.asarray(unit_ids), return_inverse=True, return_counts=True)
    if counts.size < 2:
        return np.full(g.shape[1:], np.nan)
    sums = np.zeros((counts.size,) + g.shape[1:])
    np.add.at(sums, inverse, g)
    unit_means = sums / counts[:, None, None]
    return unit_means.std(axis=0, ddof=1) / np.sqrt(counts.size)
