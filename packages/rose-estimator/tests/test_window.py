"""Per-group standardisation (eq. 16 per edge), the windowed estimator, and the value-unit outputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from rose_estimator import RoseConfig, RoseResult, RoseWindow, outlier_score, standardize


def _grouped_gains(rng: np.random.Generator, s: int = 6, edges: int = 3, ops: int = 4, k: int = 2) -> np.ndarray:
    """Gains with a different scale and offset on every edge, as a supernet game gives them."""
    scale = rng.uniform(0.1, 10.0, size=(1, edges, 1, k))
    shift = rng.uniform(-5.0, 5.0, size=(1, edges, 1, k))
    return (rng.standard_normal((s, edges, ops, k)) * scale + shift).reshape(s, edges * ops, k)


def test_grouped_standardisation_has_zero_mean_and_unit_spread_per_edge() -> None:
    g = _grouped_gains(np.random.default_rng(0))
    labels = np.repeat(np.arange(3), 4)
    z = standardize(g, groups=labels).reshape(6, 3, 4, 2)
    assert_allclose(z.mean(axis=2), 0.0, atol=1e-12)
    assert_allclose(z.std(axis=2), 1.0, rtol=1e-12)  # population form, within each walk, edge and metric
    everywhere = standardize(g).reshape(6, 3, 4, 2)
    assert not np.allclose(everywhere.std(axis=2), 1.0)  # the two readings of eq. 16 differ on such gains


def test_one_group_is_the_standardisation_over_all_players() -> None:
    g = _grouped_gains(np.random.default_rng(1))
    assert_array_equal(standardize(g, groups=np.zeros(12, dtype=int)), standardize(g))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), edge=st.integers(0, 2), factor=st.floats(0.01, 100.0),
       shift=st.floats(-100.0, 100.0))
def test_rescaling_and_shifting_one_edge_leaves_every_standardised_gain_unchanged(
        seed: int, edge: int, factor: float, shift: float) -> None:
    g = _grouped_gains(np.random.default_rng(seed))
    labels = np.repeat(np.arange(3), 4)
    moved = g.copy()
    moved[:, labels == edge] = factor * moved[:, labels == edge] + shift
    assert_allclose(standardize(moved, groups=labels), standardize(g, groups=labels), rtol=1e-7, atol=1e-7)


def test_bad_group_labels_are_refused() -> None:
    g = np.zeros((2, 4, 1))
    with pytest.raises(ValueError, match="4 integer labels"):
        standardize(g, groups=[0, 1])
    with pytest.raises(ValueError, match="integer labels"):
        standardize(g, groups=[0.5, 0.5, 1.0, 1.0])


def test_group_standardisation_in_a_result_needs_labels() -> None:
    with pytest.raises(ValueError, match="player_groups"):
        RoseResult(RoseConfig(standardize="group", n_groups=1), ["a", "b"], ["m"], np.ones((2, 2, 1)),
                   np.arange(2), 0, 0)
    with pytest.raises(ValueError, match="standardize"):
        RoseConfig(standardize="edges")


def test_window_equals_a_hand_computation() -> None:
    # two rounds of two walks each, three players, one metric; gains chosen so standardising is easy to follow
    r1 = np.array([[[3.0], [0.0], [0.0]], [[0.0], [3.0], [0.0]]])
    r2 = np.array([[[0.0], [0.0], [3.0]], [[3.0], [0.0], [0.0]]])
    win = RoseWindow(RoseConfig(beta=0.5, l1=0.0, l2=0.0), window=2)
    win.update(r1)
    out = win.update(r2)
    # every walk is (3, 0, 0) up to order: mean 1, population std sqrt(2): z = 2/sqrt(2) = sqrt(2) or -1/sqrt(2)
    hi, lo = np.sqrt(2.0), -1.0 / np.sqrt(2.0)
    round_means = np.array([[(hi + lo) / 2, (lo + hi) / 2, lo], [(lo + hi) / 2, lo, (hi + lo) / 2]])
    assert_allclose(out.group_means[:, :, 0], round_means)
    assert_allclose(out.m[:, 0], np.median(round_means, axis=0))  # the median of 2 groups is their mean
    walks = np.array([[hi, lo, lo], [lo, hi, lo], [lo, lo, hi], [hi, lo, lo]])
    # player 0: z = (hi, lo, lo, hi); quartiles (type 7) lo + 0.25 (hi - lo) ... Q1 = lo, Q3 = hi, IQR = hi - lo;
    # with l1 = l2 = 0 nothing lies strictly outside [Q1, Q3], so v = 0 for player 0.  Player 1: z = (lo, hi, lo,
    # lo): Q1 = Q3 = lo, the zero IQR is floored, and the one hi is an upper outlier: v = 1/4.  Player 2 alike.
    assert_allclose(out.v[:, 0], [0.0, 0.25, 0.25])
    assert_array_equal(out.n_above[:, 0], [0, 1, 1])
    assert_allclose(out.score, 0.5 * out.m[:, 0] + 0.5 * out.v[:, 0])
    assert out.n_rounds == 2 and out.n_walks == 4
    assert_allclose(outlier_score(walks[:, :, None], 0.0, 0.0)[0], out.v)


def test_the_window_drops_its_oldest_round() -> None:
    rng = np.random.default_rng(3)
    rounds = [rng.standard_normal((4, 5, 2)) for _ in range(4)]
    win = RoseWindow(window=2)
    for r in rounds:
        out = win.update(r)
    fresh = RoseWindow(window=2)
    fresh.update(rounds[2])
    assert_array_equal(out.score, fresh.update(rounds[3]).score)
    assert out.n_rounds == 2


@pytest.mark.parametrize(("groups", "standardize_scope"), [(1, "all"), (3, "all"), (2, "group")])
def test_a_window_of_one_round_is_the_per_round_result(groups: int, standardize_scope: str) -> None:
    rng = np.random.default_rng(4)
    labels = np.repeat(np.arange(3), 4)
    cfg = RoseConfig(beta=0.3, l1=1.2, l2=2.0, n_groups=groups, standardize=standardize_scope,
                     metric_weights=(0.25, 0.75))
    win = RoseWindow(cfg, window=1, groups_per_round=groups, player_groups=labels)
    for _ in range(3):
        gains = _grouped_gains(rng, s=12)
        ids = np.repeat(np.arange(6), 2)  # antithetic pairs
        out = win.update(gains, ids)
        ref = RoseResult(cfg, [f"p{i}" for i in range(12)], ["a", "b"], gains, ids, 0, 0, player_groups=labels)
        assert_allclose(out.m, ref.m, rtol=1e-12, atol=1e-12)
        assert_array_equal(out.v, ref.v)
        assert_allclose(out.score, ref.score, rtol=1e-12, atol=1e-12)


def test_window_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="window"):
        RoseWindow(window=0)
    with pytest.raises(ValueError, match="player_groups"):
        RoseWindow(RoseConfig(standardize="group"))
    win = RoseWindow()
    with pytest.raises(ValueError, match="no round"):
        win.statistics()
    win.update(np.ones((2, 3, 1)))
    with pytest.raises(ValueError, match="players, metrics"):
        win.update(np.ones((2, 4, 1)))


def test_value_unit_estimate_and_standard_error() -> None:
    rng = np.random.default_rng(5)
    gains = rng.standard_normal((8, 4, 1)) * 3.0 + 10.0
    ids = np.arange(8)
    one = RoseResult(RoseConfig(n_groups=1), list("abcd"), ["m"], gains, ids, 0, 0)
    assert_allclose(one.m_raw, one.mc_mean)  # one group: the plain mean, in the value's units
    four = RoseResult(RoseConfig(n_groups=4), list("abcd"), ["m"], gains, ids, 0, 0)
    pair_means = gains.reshape(4, 2, 4, 1).mean(axis=1)
    assert_allclose(four.m_raw, np.median(pair_means, axis=0))
    z = standardize(gains)[:, :, 0]
    assert_allclose(four.score_stderr, z.std(axis=0, ddof=1) / np.sqrt(8))
    back = RoseResult.from_dict(four.to_dict())
    assert_allclose(back.m_raw, four.m_raw)
    assert_allclose(back.score_stderr, four.score_stderr)


def test_a_radius_from_a_few_walks_is_flagged_vacuous() -> None:
    rng = np.random.default_rng(6)
    gains = rng.standard_normal((6, 10, 1)) + np.linspace(0, 1, 10)[None, :, None]
    few = RoseResult(RoseConfig(n_groups=3), [f"p{i}" for i in range(10)], ["m"], gains, np.repeat(np.arange(3), 2),
                     0, 0)
    assert few.radius_vacuous and few.radius.min() >= few.score.max() - few.score.min()
    many_gains = rng.standard_normal((4000, 3, 1)) * 0.1 + np.array([0.0, 5.0, 10.0])[None, :, None]
    many = RoseResult(RoseConfig(n_groups=1, beta=0.0), ["a", "b", "c"], ["m"], many_gains, np.arange(4000), 0, 0)
    assert not many.radius_vacuous and many.to_dict()["radius_vacuous"] is False


def test_the_demo_reports_the_comparison_over_draws(capsys: pytest.CaptureFixture[str]) -> None:
    from rose_estimator.demo import main

    assert main(["--repeats", "4", "--permutations", "20", "--groups", "2"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("over 4 draws (seeds 0..3") and "ROSE ahead in" in last
    ahead, behind = (int(last.split(word)[1].split()[0].rstrip(",")) for word in ("ahead in", "behind in"))
    assert ahead + behind <= 4
