"""Permutation sampler: cost, batching invariance, antithetic pairs, truncation, budget, convergence."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from rose_estimator import (
    AdditiveGame,
    FunctionGame,
    Game,
    NoisyGame,
    UnanimityGame,
    draw_permutations,
    exact_shapley,
    sample_gains,
)
from rose_strategies import gain_range, games


class CountingGame(AdditiveGame):
    """Additive game that records the size of every value() call."""

    def __init__(self, weights) -> None:
        super().__init__(weights)
        self.calls: list[int] = []

    def value_function(self, coalitions):
        self.calls.append(coalitions.shape[0])
        return super().value_function(coalitions)


def test_walk_costs_p_plus_one_evaluations() -> None:
    game = AdditiveGame(np.arange(7.0))
    sample = sample_gains(game, 10, rng=0)
    # P + 1 per walk, with v(empty) and v(full) evaluated once and shared.
    assert sample.n_evaluations == 10 * (7 - 1) + 2
    assert game.n_evaluations == sample.n_evaluations
    sample_gains(game, 4, rng=1)
    assert game.n_evaluations == 10 * 6 + 2 + 4 * 6


def test_batches_respect_batch_size() -> None:
    game = CountingGame(np.ones(9))
    sample_gains(game, 13, rng=0, batch_size=16)
    assert max(game.calls) <= 16
    assert sum(game.calls) == 13 * 8 + 2
    assert len(game.calls) == 2 + math.ceil(13 * 8 / 16)


@given(games(max_players=7), st.integers(1, 50), st.booleans(), st.sampled_from([None, 0.05]))
def test_same_seed_same_gains_whatever_batch_size(game: Game, batch: int, antithetic: bool, tol) -> None:
    noisy = NoisyGame(game, scale=0.1, df=3.0, rng=5)
    reference = sample_gains(noisy, 8, rng=11, batch_size=1000, antithetic=antithetic, truncation_tol=tol)
    noisy2 = NoisyGame(game, scale=0.1, df=3.0, rng=5)
    other = sample_gains(noisy2, 8, rng=11, batch_size=batch, antithetic=antithetic, truncation_tol=tol)
    assert_array_equal(reference.gains, other.gains)
    assert_array_equal(reference.truncated, other.truncated)


def test_gains_sum_to_total_value_in_every_walk() -> None:
    game = UnanimityGame(6, [[0, 1], [2, 3, 4], [5]], [1.0, 2.0, -0.5])
    sample = sample_gains(game, 20, rng=2)
    assert_allclose(sample.gains.sum(axis=1), np.broadcast_to(game.full_value - game.empty_value, (20, 1)))


def test_rng_does_not_touch_global_state() -> None:
    np.random.seed(123)  # noqa: NPY002 - the legacy global state is what must stay untouched
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    sample_gains(AdditiveGame(np.ones(5)), 6, rng=7)
    assert_array_equal(np.random.get_state()[1], before)  # noqa: NPY002


def test_generator_and_seed_agree() -> None:
    a = draw_permutations(9, 5, 42)[0]
    b = draw_permutations(9, 5, np.random.default_rng(42))[0]
    assert_array_equal(a, b)
    assert_array_equal(np.sort(a, axis=1), np.broadcast_to(np.arange(9), (5, 9)))


def test_antithetic_pairs_are_reverses() -> None:
    perms, units = draw_permutations(6, 8, 0, antithetic=True)
    assert_array_equal(perms[1::2], perms[0::2, ::-1])
    assert_array_equal(units, np.repeat(np.arange(4), 2))
    with pytest.raises(ValueError, match="even number"):
        draw_permutations(6, 7, 0, antithetic=True)


@given(st.integers(2, 10), st.data())
def test_antithetic_is_exact_on_additive_and_pairwise_games(n: int, data) -> None:
    """One antithetic pair recovers the Shapley value of any game of degree <= 2."""
    weights = data.draw(st.lists(st.floats(-3, 3), min_size=n, max_size=n))
    pairs = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=6))
    pairs = [sorted({i, j}) for i, j in pairs]
    coef = data.draw(st.lists(st.floats(-3, 3), min_size=len(pairs), max_size=len(pairs)))
    quad = UnanimityGame(n, pairs, coef) if pairs else None
    additive = AdditiveGame(weights)

    def value(c):
        return additive.value(c)[:, 0] + (quad.value(c)[:, 0] if quad else 0.0)

    game = FunctionGame(value, n, vectorized=True)
    sample = sample_gains(game, 2, rng=data.draw(st.integers(0, 1000)), antithetic=True)
    assert_allclose(sample.gains.mean(axis=0), exact_shapley(game), atol=1e-9)


def test_plain_sampling_is_not_exact_on_pairwise_games() -> None:
    """Contrast for the test above: without the reversed partner one walk is biased."""
    game = UnanimityGame(4, [[0, 1], [2, 3]], [1.0, 1.0])
    sample = sample_gains(game, 1, rng=0)
    assert np.abs(sample.gains.mean(axis=0) - exact_shapley(game)).max() == pytest.approx(0.5)


@given(games(min_players=3, max_players=7), st.integers(0, 10_000))
def test_monte_carlo_mean_within_hoeffding_error(game: Game, seed: int) -> None:
    lo, hi = gain_range(game)
    s, delta = 400, 1e-6
    sample = sample_gains(game, s, rng=seed)
    error = np.abs(sample.gains.mean(axis=0) - exact_shapley(game)).max()
    bound = (hi - lo) * math.sqrt(math.log(2 * game.n_players / delta) / (2 * s))
    assert 0.0 <= error <= bound + 1e-12


def test_truncation_stops_walks_and_zeros_unvisited_gains() -> None:
    # Player 0 carries all the value; once it is in, the prefix equals v(full).
    weights = np.zeros(8)
    weights[0] = 1.0
    game = AdditiveGame(weights)
    sample = sample_gains(game, 30, rng=4, truncation_tol=1e-6)
    positions = np.argmax(sample.permutations == 0, axis=1)
    expected_truncated = positions < 6  # stops unless player 0 came in one of the last 2 slots
    assert_array_equal(sample.truncated, expected_truncated)
    assert sample.n_truncated == int(expected_truncated.sum()) > 0
    assert_allclose(sample.gains[:, 0, 0], 1.0)
    assert_allclose(sample.gains[:, 1:, 0], 0.0)
    full_cost = 30 * 7 + 2
    expected_cost = 2 + int(np.minimum(positions + 1, 7).sum())
    assert sample.n_evaluations == expected_cost < full_cost


def test_budget_is_a_hard_cap() -> None:
    game = AdditiveGame(np.ones(11))
    sample = sample_gains(game, 100, rng=0, budget=75)
    assert sample.n_evaluations <= 75
    assert sample.gains.shape[0] == (75 - 2) // 10 == 7
    pairs = sample_gains(AdditiveGame(np.ones(11)), 100, rng=0, budget=75, antithetic=True)
    assert pairs.gains.shape[0] == 6
    with pytest.raises(ValueError, match="cannot even cover"):
        sample_gains(AdditiveGame(np.ones(3)), 5, rng=0, budget=1)


def test_budget_with_truncation_admits_more_walks() -> None:
    weights = np.zeros(11)
    weights[0] = 1.0
    plain = sample_gains(AdditiveGame(weights), 100, rng=0, budget=200)
    truncated = sample_gains(AdditiveGame(weights), 100, rng=0, budget=200, truncation_tol=1e-6)
    assert plain.n_evaluations <= 200 and truncated.n_evaluations <= 200
    assert truncated.gains.shape[0] > plain.gains.shape[0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"truncation_tol": 1.5}, "truncation_tol"),
        ({"budget": -1}, "budget"),
    ],
)
def test_bad_sampler_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sample_gains(AdditiveGame(np.ones(3)), 4, rng=0, **kwargs)
