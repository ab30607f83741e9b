"""Exact Shapley values by enumerating all 2^P coalitions (ground truth for small games)."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from .game import Game

__all__ = ["exact_shapley", "all_coalitions"]

MAX_EXACT_PLAYERS = 22


def all_coalitions(n_players: int) -> NDArray[np.bool_]:
    """All ``2^P`` coalitions as bool ``[2^P, P]``; row r holds the bits of integer r."""
    codes = np.arange(2**n_players, dtype=np.int64)
    return ((codes[:, None] >> np.arange(n_players)[None, :]) & 1).astype(bool)


def exact_shapley(game: Game, batch_size: int = 65536) -> NDArray[np.float64]:
    """Shapley values ``[P, K]`` of ``game`` by full enumeration.

    ``phi_i = sum_{S not containing i} |S|! (P-|S|-1)! / P! * (v(S + i) - v(S))``.
    Costs ``2^P`` evaluations; refused above 22 players.
    """
    n = game.n_players
    if n > MAX_EXACT_PLAYERS:
        raise ValueError(f"exact enumeration needs 2^{n} evaluations; use at most {MAX_EXACT_PLAYERS} players")
    codes = np.arange(2**n, dtype=np.int64)
    values = np.empty((codes.size, game.n_metrics))
    for lo in range(0, codes.size, batch_size):
        chunk = codes[lo : lo + batch_size]
        values[lo : lo + chunk.size] = game.value(((chunk[:, None] >> np.arange(n)[None, :]) & 1).astype(bool))
    sizes = np.bitwise_count(codes).astype(np.int64)
    weights = np.array([math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)])
    phi = np.empty((n, game.n_metrics))
    for i in range(n):
        without = codes[(codes >> i) & 1 == 0]
        w = weights[sizes[without]]
        phi[i] = w @ (values[without | (1 << i)] - values[without])
    return phi
