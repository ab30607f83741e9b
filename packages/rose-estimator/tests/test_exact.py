"""Exact enumeration: closed forms and the Shapley axioms on generated games."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from rose_estimator import (
    AdditiveGame,
    AirportGame,
    FunctionGame,
    Game,
    GloveGame,
    UnanimityGame,
    WeightedVotingGame,
    exact_shapley,
)
from rose_strategies import games


def _permuted(game: Game, perm: np.ndarray) -> Game:
    """Game in which new player j plays the role of old player perm[j]."""
    inverse = np.argsort(perm)
    return FunctionGame(lambda c: game.value(c[:, inverse]), game.n_players, vectorized=True)


def _with_null_player(game: Game) -> Game:
    """The same game with an extra last player that never changes the value."""
    return FunctionGame(lambda c: game.value(c[:, :-1]), game.n_players + 1, vectorized=True)


@given(games())
def test_efficiency(game: Game) -> None:
    phi = exact_shapley(game)
    assert_allclose(phi.sum(axis=0), game.full_value - game.empty_value, atol=1e-9)


@given(games(), st.randoms(use_true_random=False))
def test_relabelling_equivariance(game: Game, rnd) -> None:
    perm = np.array(rnd.sample(range(game.n_players), game.n_players))
    phi = exact_shapley(game)
    phi_perm = exact_shapley(_permuted(game, perm))
    assert_allclose(phi_perm, phi[perm], atol=1e-9)


@given(games())
def test_null_player(game: Game) -> None:
    phi = exact_shapley(_with_null_player(game))
    assert_allclose(phi[-1], 0.0, atol=1e-9)
    assert_allclose(phi[:-1], exact_shapley(game), atol=1e-9)


@given(games(min_players=3, max_players=6), games(min_players=3, max_players=6),
       st.floats(-3, 3), st.floats(-3, 3))
def test_linearity(g1: Game, g2: Game, a: float, b: float) -> None:
    n = min(g1.n_players, g2.n_players)
    f1 = FunctionGame(lambda c: g1.value(np.pad(c, ((0, 0), (0, g1.n_players - n)))), n, vectorized=True)
    f2 = FunctionGame(lambda c: g2.value(np.pad(c, ((0, 0), (0, g2.n_players - n)))), n, vectorized=True)
    combo = FunctionGame(lambda c: a * f1.value(c) + b * f2.value(c), n, vectorized=True)
    assert_allclose(exact_shapley(combo), a * exact_shapley(f1) + b * exact_shapley(f2), atol=1e-9)


@given(st.integers(2, 8), st.integers(1, 9), st.data())
def test_symmetry(n: int, shared: int, data) -> None:
    """Players 0 and 1 are interchangeable in each game below, so their values agree."""
    w = data.draw(st.lists(st.integers(1, 9), min_size=n - 2, max_size=n - 2))
    quota = data.draw(st.integers(1, 2 * shared + sum(w)))
    costs = data.draw(st.lists(st.floats(0, 10), min_size=n - 2, max_size=n - 2))
    side = data.draw(st.booleans())
    gloves = [side, side] + data.draw(st.lists(st.booleans(), min_size=n - 2, max_size=n - 2))
    for game in (
        WeightedVotingGame([shared, shared, *w], quota),
        AirportGame([float(shared), float(shared), *costs]),
        GloveGame(gloves),
    ):
        phi = exact_shapley(game)
        assert_allclose(phi[0], phi[1], atol=1e-9)


@given(games())
def test_closed_forms(game: Game) -> None:
    if hasattr(game, "shapley_values"):
        assert_allclose(exact_shapley(game), game.shapley_values(), atol=1e-9)


def test_fourteen_players_against_closed_forms() -> None:
    rng = np.random.default_rng(3)
    additive = AdditiveGame(rng.normal(size=14))
    assert_allclose(exact_shapley(additive), additive.shapley_values(), atol=1e-9)
    unanimity = UnanimityGame(14, [[0, 3, 5], [2, 13], list(range(14))], [2.0, -1.0, 0.5])
    assert_allclose(exact_shapley(unanimity), unanimity.shapley_values(), atol=1e-9)
    airport = AirportGame(rng.uniform(0, 10, size=14))
    assert_allclose(exact_shapley(airport), airport.shapley_values(), atol=1e-9)


def test_known_glove_and_voting_values() -> None:
    # One left glove against two right gloves: the left owner gets 2/3, each right 1/6.
    assert_allclose(exact_shapley(GloveGame([True, False, False]))[:, 0], [2 / 3, 1 / 6, 1 / 6], atol=1e-12)
    # Weights (50, 49, 1), quota 51: player 0 is pivotal in 4 of 6 orders -> 2/3, the others 1/6.
    assert_allclose(
        exact_shapley(WeightedVotingGame([50, 49, 1], 51))[:, 0], [2 / 3, 1 / 6, 1 / 6], atol=1e-12
    )


def test_refuses_too_many_players() -> None:
    with pytest.raises(ValueError, match="at most 22 players"):
        exact_shapley(AdditiveGame(np.ones(23)))
