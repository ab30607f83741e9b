"""Synthetic games with known structure, for tests, benchmarks and demos.

Each game is vectorised over coalitions.  Where the Shapley value has a closed
form, ``shapley_values()`` returns it (``[P, 1]``); otherwise use
:func:`~rose_estimator.exact.exact_shapley`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .game import Game

__all__ = [
    "AdditiveGame",
    "UnanimityGame",
    "WeightedVotingGame",
    "GloveGame",
    "AirportGame",
    "NoisyGame",
]


class AdditiveGame(Game):
    """``v(S) = sum_{i in S} w_i``; the Shapley value of i is ``w_i``."""

    def __init__(self, weights: ArrayLike) -> None:
        self.weights = np.asarray(weights, dtype=np.float64)
        super().__init__(self.weights.size)

    def value_function(self, coalitions: NDArray[np.bool_]) -> NDArray[np.float64]:
        return coalitions @ self.weights

    def shapley_values(self) -> NDArray[np.float64]:
        return self.weights[:, None].copy()


class UnanimityGame(Game):
    """A sum of unanimity games: ``v(S) = sum_T c_T * [T subset of S]``.

    The Shapley value of i is ``sum_{T containing i} c_T / |T|`` (Harsanyi dividends
    split equally).  One carrier with coefficient 1 is the plain unanimity game.
    """

    def __init__(self, n_players: int, carriers: Sequence[Sequence[int]], coefficients: ArrayLike | None = None):
        super().__init__(n_players)
        self.carriers = np.zeros((len(carriers), n_players), dtype=bool)
        for row, carrier in enumerate(carriers):
            if len(carrier) == 0:
                raise ValueError("a unanimity carrier must hold at least one player")
            self.carriers[row, list(carrier)] = True
        coef = np.ones(len(carriers)) if coefficients is None else np.asarray(coefficients, dtype=np.float64)
        if coef.shape != (len(carriers),):
            raise ValueError(f"need one coefficient per carrier ({len(carriers)}), got shape {coef.shape}")
        self.coefficients = coef

    def value_function(self, coalitions: NDArray[np.bool_]) -> NDArray[np.float64]:
        missing = (~coalitions).astype(np.int64) @ self.carriers.T.astype(np.int64)
        return (missing == 0).astype(np.float64) @ self.coefficients

    def shapley_values(self) -> NDArray[np.float64]:
        share = self.coefficients / self.carriers.sum(axis=1)
        return (share @ self.carriers)[:, None]


class WeightedVotingGame(Game):
    """``v(S) = 1`` when the weights in S reach ``quota``, else 0 (Shapley-Shubik index)."""

    def __init__(self, weights: ArrayLike, quota: float) -> None:
        self.weights = np.asarray(weights, dtype=np.float64)
        self.quota = float(quota)
        super().__init__(self.weights.size)

    def value_function(self, coalitions: NDArray[np.bool_]) -> NDArray[np.float64]:
        return (coalitions @ self.weights >= self.quota).astype(np.float64)


class GloveGame(Game):
    """Players own a left or a right glove; ``v(S)`` is the number of pairs S can form."""

    def __init__(self, left: Sequence[bool]) -> None:
        self.left = np.asarray(left, dtype=bool)
        super().__init__(self.left.size)

    def value_function(self, coalitions: NDArray[np.bool_]) -> NDArray[np.float64]:
        n_left = coalitions @ self.left.astype(np.int64)
        n_right = coalitions @ (~self.left).astype(np.int64)
        return np.minimum(n_left, n_right).astype(np.float64)


class AirportGame(Game):
    """Runway cost game ``v(S) = max_{i in S} c_i`` (0 for the empty coalition).

    Shapley value (Littlechild-Owen): with costs sorted ``c_(1) <= ... <= c_(n)``, the
    player at rank k pays ``sum_{j <= k} (c_(j) - c_(j-1)) / (n - j + 1)``.
    """

    def __init__(self, costs: ArrayLike) -> None:
        self.costs = np.asarray(costs, dtype=np.float64)
        super().__init__(self.costs.size)

    def value_function(self, coalitions: NDArray[np.bool_]) -> NDArray[np.float64]:
        return np.where(coalitions, self.costs[None, :], 0.0).max(axis=1)

    def shapley_values(self) -> NDArray[np.float64]:
        n = self.costs.size
        order = np.argsort(self.costs, kind="stable")
        sorted_costs = self.costs[order]
        increments = np.diff(np.concatenate([[0.0], sorted_costs])) / (n - np.arange(n))
        phi = np.empty(n)
        phi[order] = np.cumsum(increments)
        return phi[:, None]


class NoisyGame(Game):
    """Wraps a game and adds independent heavy-tailed noise to every evaluation.

    Noise is Student-t with ``df`` degrees of freedom times ``scale`` (``df`` <= 2 has
    infinite variance), drawn from the game's own generator, so a seeded game is
    reproducible.  The noise has mean 0 (df > 1), so Shapley values are the base
    game's.  Models the noisy validation accuracy of a supernet under attack.
    """

    def __init__(self, base: Game, scale: float, df: float = 1.5, rng: int | np.random.Generator = 0) -> None:
        super().__init__(base.n_players, base.n_metrics, base.player_names, base.metric_names)
        self.base, self.scale, self.df = base, float(scale), float(df)
        self.rng = np.random.default_rng(rng)

    def value_function(self, coalitions: NDArray[np.bool_]) -> NDArray[np.float64]:
        clean = np.asarray(self.base.value(coalitions), dtype=np.float64)
        return clean + self.scale * self.rng.standard_t(self.df, size=clean.shape)
