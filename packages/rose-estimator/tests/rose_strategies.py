"""Game strategies and helpers shared by the rose-estimator tests (on pytest's pythonpath)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from rose_estimator import (
    AdditiveGame,
    AirportGame,
    Game,
    GloveGame,
    UnanimityGame,
    WeightedVotingGame,
    all_coalitions,
)

weights_st = st.floats(min_value=-5.0, max_value=5.0, allow_nan=False, allow_infinity=False)


@st.composite
def games(draw: st.DrawFn, min_players: int = 2, max_players: int = 8) -> Game:
    """Any of the synthetic games with known structure, on 2..8 players."""
    n = draw(st.integers(min_players, max_players))
    kind = draw(st.sampled_from(["additive", "unanimity", "voting", "glove", "airport"]))
    if kind == "additive":
        return AdditiveGame(draw(st.lists(weights_st, min_size=n, max_size=n)))
    if kind == "unanimity":
        carriers = draw(
            st.lists(st.sets(st.integers(0, n - 1), min_size=1, max_size=n), min_size=1, max_size=4)
        )
        coef = draw(st.lists(weights_st, min_size=len(carriers), max_size=len(carriers)))
        return UnanimityGame(n, [sorted(c) for c in carriers], coef)
    if kind == "voting":
        w = draw(st.lists(st.integers(1, 9), min_size=n, max_size=n))
        quota = draw(st.integers(1, sum(w)))
        return WeightedVotingGame(w, quota)
    if kind == "glove":
        return GloveGame(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    return AirportGame(draw(st.lists(st.floats(0.0, 10.0, allow_nan=False), min_size=n, max_size=n)))


def gain_range(game: Game) -> tuple[float, float]:
    """Exact smallest and largest marginal gain ``v(S + i) - v(S)`` over all S and i."""
    n = game.n_players
    coalitions = all_coalitions(n)
    values = game.value(coalitions)[:, 0]
    codes = np.arange(2**n)
    lo, hi = np.inf, -np.inf
    for i in range(n):
        without = codes[(codes >> i) & 1 == 0]
        diff = values[without | (1 << i)] - values[without]
        lo, hi = min(lo, diff.min()), max(hi, diff.max())
    return float(lo), float(hi)
