"""Game contract: validation, counting, caching, the callable adapter."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from rose_estimator import AdditiveGame, FunctionGame, Game


def test_scalar_callable_adapter_and_counter() -> None:
    game = FunctionGame(lambda c: (c.sum(), 2.0 * c[0]), n_players=3, n_metrics=2, metric_names=["a", "b"])
    out = game.value(np.array([[True, False, True], [False, True, False]]))
    assert_allclose(out, [[2.0, 2.0], [1.0, 0.0]])
    assert game.n_evaluations == 2
    assert game.metric_names == ["a", "b"]


def test_empty_and_full_are_cached() -> None:
    game = AdditiveGame([1.0, 2.0, 3.0])
    assert_allclose(game.full_value, [6.0])
    assert_allclose(game.empty_value, [0.0])
    _ = game.full_value, game.empty_value
    assert game.n_evaluations == 2


def test_nan_names_the_offending_coalition() -> None:
    def value(c):
        return np.where(c[:, 1] & c[:, 2], np.nan, c.sum(axis=1))

    game = FunctionGame(value, 3, vectorized=True, player_names=["conv", "pool", "skip"])
    with pytest.raises(ValueError, match=r"non-finite value \[nan\] for coalition \['pool', 'skip'\]"):
        game.value(np.array([[True, False, False], [False, True, True]]))
    inf_game = FunctionGame(lambda c: np.inf, 2)
    with pytest.raises(ValueError, match="non-finite"):
        inf_game.value(np.ones((1, 2), bool))


@pytest.mark.parametrize(
    ("coalitions", "message"),
    [
        (np.ones((2, 4), bool), r"shape \[m, 3\]"),
        (np.ones(3, bool), r"shape \[m, 3\]"),
        (np.full((1, 3), 2), "boolean"),
    ],
)
def test_bad_coalitions(coalitions: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AdditiveGame([1.0, 2.0, 3.0]).value(coalitions)


def test_wrong_output_shape_is_reported() -> None:
    game = FunctionGame(lambda c: np.zeros((c.shape[0], 3)), 2, n_metrics=2, vectorized=True)
    with pytest.raises(ValueError, match=r"expected \[1, 2\]"):
        game.value(np.ones((1, 2), bool))


def test_bad_game_construction() -> None:
    with pytest.raises(ValueError, match="n_players"):
        AdditiveGame([])
    with pytest.raises(ValueError, match="player_names"):
        Game(3, player_names=["a"])
    with pytest.raises(NotImplementedError):
        Game(2).value(np.ones((1, 2), bool))
