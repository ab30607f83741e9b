"""ROSE statistics (eqs. 16-19, 28) on hand-built and generated gain arrays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal
from rose_estimator import (
    combine_scores,
    confidence_radius,
    group_assignment,
    group_means,
    iqr_fences,
    median_of_means,
    outlier_score,
    standardize,
)

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
gain_arrays = st.tuples(st.integers(2, 30), st.integers(2, 12), st.integers(1, 3)).flatmap(
    lambda shape: arrays(np.float64, shape, elements=finite)
)


def test_standardize_matches_eq16() -> None:
    g = np.array([[[1.0], [2.0], [3.0], [6.0]]])
    z = standardize(g)
    assert_allclose(z[0, :, 0], (g[0, :, 0] - 3.0) / np.std([1, 2, 3, 6]))
    assert_allclose(z.mean(axis=1), 0.0, atol=1e-12)
    assert_allclose(z.std(axis=1), 1.0, atol=1e-12)


def test_standardize_floor_ignores_float_noise() -> None:
    g = np.full((1, 5, 1), 0.3) + np.array([0, 1e-17, -2e-17, 5e-17, 0])[None, :, None]
    assert np.abs(standardize(g)).max() < 1e-6


@given(gain_arrays, st.floats(0.01, 100))
def test_scores_invariant_to_positive_rescaling_of_gains(g: np.ndarray, scale: float) -> None:
    """Gains are differences of values, so v -> a v + b multiplies them by a > 0."""
    z1, z2 = standardize(g), standardize(scale * g)
    assert_allclose(z2, z1, atol=1e-6)
    ids = np.arange(g.shape[0])
    m1 = median_of_means(z1, ids, 2)
    m2 = median_of_means(z2, ids, 2)
    assert_allclose(m1, m2, atol=1e-6)
    s1, _ = combine_scores(m1, outlier_score(z1)[0])
    s2, _ = combine_scores(m2, outlier_score(z2)[0])
    assert_allclose(s1, s2, atol=1e-6)


def test_affine_invariance_through_a_game() -> None:
    from rose_estimator import FunctionGame, RoseEstimator, UnanimityGame

    base = UnanimityGame(6, [[0, 1], [2], [3, 4, 5], [1, 5]], [1.0, 0.5, 2.0, -0.7])
    est = RoseEstimator(n_groups=4)
    r1 = est.approximate(base, 24, rng=3)
    shifted = FunctionGame(lambda c: 7.5 * base.value(c) - 3.0, 6, vectorized=True)
    r2 = est.approximate(shifted, 24, rng=3)
    assert_allclose(r2.score, r1.score, atol=1e-9)
    assert_array_equal(r2.n_above, r1.n_above)
    assert_allclose(r2.mc_mean, 7.5 * r1.mc_mean, atol=1e-9)


@given(gain_arrays, st.floats(0, 5), st.floats(0, 5))
def test_outlier_score_in_unit_interval(g: np.ndarray, l1: float, l2: float) -> None:
    v, above, below = outlier_score(standardize(g), l1, l2)
    assert ((v >= -1.0) & (v <= 1.0)).all()
    assert_allclose(v, (above - below) / g.shape[0])
    assert ((above + below) <= g.shape[0]).all()


def test_outlier_counts_on_hand_built_case() -> None:
    z = np.zeros((20, 1, 1))
    z[:, 0, 0] = np.linspace(-1, 1, 20)
    z[3, 0, 0] = 50.0  # one upper outlier
    z[7, 0, 0] = -50.0  # one lower outlier
    z[9, 0, 0] = 40.0  # a second upper outlier
    v, above, below = outlier_score(z, 1.2, 2.0)
    assert above[0, 0] == 2 and below[0, 0] == 1
    assert v[0, 0] == pytest.approx(1 / 20)
    q1, q3 = np.quantile(z[:, 0, 0], [0.25, 0.75], method="linear")
    lo, hi = iqr_fences(z, 1.2, 2.0)
    assert lo[0, 0] == pytest.approx(q1 - 2.0 * (q3 - q1))
    assert hi[0, 0] == pytest.approx(q3 + 1.2 * (q3 - q1))


def test_zero_iqr_counts_rare_decisive_gains() -> None:
    z = np.zeros((10, 1, 1))
    z[2, 0, 0] = 3.0  # rare but decisive help
    z[5, 0, 0] = 1e-14  # float noise must not count
    v, above, below = outlier_score(z)
    assert (above[0, 0], below[0, 0]) == (1, 0)
    assert v[0, 0] == pytest.approx(0.1)


@given(gain_arrays)
def test_one_group_is_the_mean_and_s_groups_the_median(g: np.ndarray) -> None:
    ids = np.arange(g.shape[0])
    assert_allclose(median_of_means(g, ids, 1), g.mean(axis=0), rtol=1e-12, atol=1e-9)
    assert_allclose(median_of_means(g, ids, g.shape[0]), np.median(g, axis=0), rtol=1e-12, atol=1e-9)


def test_groups_keep_antithetic_pairs_together() -> None:
    ids = np.repeat(np.arange(7), 2)
    groups = group_assignment(ids, 3)
    assert_array_equal(groups[0::2], groups[1::2])
    assert_array_equal(np.bincount(groups), [6, 4, 4])
    assert_array_equal(group_assignment(np.arange(10), 3), [0, 0, 0, 0, 1, 1, 1, 2, 2, 2])


@given(st.integers(3, 9), st.data())
def test_median_of_means_bounded_under_minority_corruption(n_groups: int, data) -> None:
    size = data.draw(st.integers(1, 5))
    s = n_groups * size
    rng = np.random.default_rng(data.draw(st.integers(0, 10_000)))
    g = rng.normal(size=(s, 4, 1))
    ids = np.arange(s)
    clean_means = group_means(g, ids, n_groups)
    bad = data.draw(st.sets(st.integers(0, n_groups - 1), max_size=(n_groups - 1) // 2))
    magnitude = data.draw(st.floats(1e3, 1e12))
    corrupted = g.copy()
    for grp in bad:
        corrupted[grp * size : (grp + 1) * size] += magnitude
    mom = median_of_means(corrupted, ids, n_groups)
    lo, hi = clean_means.min(axis=0), clean_means.max(axis=0)
    assert ((mom >= lo - 1e-9) & (mom <= hi + 1e-9)).all()
    if bad:
        shift = corrupted.mean(axis=0) - g.mean(axis=0)
        assert_allclose(shift, magnitude * len(bad) * size / s, rtol=1e-6)


def test_combine_scores_eq19_and_weights() -> None:
    m = np.array([[1.0, 0.0], [0.0, 1.0]])
    v = np.array([[0.5, -0.5], [0.0, 0.0]])
    score, per_metric = combine_scores(m, v, beta=0.3, metric_weights=[3.0, 1.0])
    assert_allclose(per_metric, 0.7 * m + 0.3 * v)
    assert_allclose(score, per_metric @ np.array([0.75, 0.25]))
    assert_allclose(combine_scores(m, v, beta=0.0)[1], m)


def test_confidence_radius_solves_eq28() -> None:
    r = confidence_radius(group_size=50, bound=np.array([1.0, 2.0]), beta=0.0, delta=0.05)
    assert_allclose(2 * np.exp(-50 * r**2 / (8 * np.array([1.0, 4.0]))), 0.05)
    r_beta = confidence_radius(group_size=10_000, bound=np.array([1.0]), beta=0.3, delta=0.05)
    assert_allclose(r_beta, 2 * 0.3 * 2.0)  # the validity condition e > 2 beta (1 + M) binds


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: combine_scores(np.zeros((2, 1)), np.zeros((2, 1)), beta=1.5), "beta must lie in"),
        (lambda: combine_scores(np.zeros((2, 1)), np.zeros((2, 1)), beta=-0.1), "beta must lie in"),
        (lambda: iqr_fences(np.zeros((4, 2, 1)), l1=-1.0), "non-negative"),
        (lambda: median_of_means(np.zeros((3, 2, 1)), None, 5), "at least G=5"),
        (lambda: standardize(np.zeros((3, 2))), "3-d array"),
        (lambda: standardize(np.full((2, 2, 1), np.nan)), "NaN or inf"),
        (lambda: combine_scores(np.zeros((2, 1)), np.zeros((3, 1))), r"\[P, K\]"),
        (lambda: combine_scores(np.zeros((2, 2)), np.zeros((2, 2)), metric_weights=[1.0]), "metric_weights"),
        (lambda: confidence_radius(5, 1.0, 0.3, delta=0.0), "delta"),
    ],
)
def test_bad_input_raises_clear_errors(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
