"""The game contract: a value function over coalitions of players.

A *game* maps a batch of coalitions, given as a boolean matrix ``[m, P]`` (row r,
column i is True when player i belongs to coalition r), to a matrix of values
``[m, K]`` holding K metrics per coalition (for example clean and adversarial
accuracy).  Estimators only ever talk to a game through :meth:`Game.value`, which
checks shapes and finite values, counts evaluations, and caches the values of
the empty and the full coalition.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

MAX_PLAYERS = 1_000_000
"""The most players a game may have (a walk holds P + 1 coalitions of P booleans: 10^12 bytes at 10^6)."""

__all__ = ["Game", "FunctionGame"]


class Game:
    """Base class for cooperative games with vector-valued payoffs.

    Subclasses implement :meth:`value_function`; users call :meth:`value`.

    Args:
        n_players: number of players P.
        n_metrics: number of metrics K returned per coalition.
        player_names: optional names of the P players (default ``"0"..."P-1"``).
        metric_names: optional names of the K metrics (default ``"m0"...``).
    """

    def __init__(
        self,
        n_players: int,
        n_metrics: int = 1,
        player_names: Sequence[str] | None = None,
        metric_names: Sequence[str] | None = None,
    ) -> None:
        for name, value in (("n_players", n_players), ("n_metrics", n_metrics)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"{name} must be a whole number, got {value!r}")
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if n_players > MAX_PLAYERS:
            raise ValueError(f"n_players={n_players} is more than {MAX_PLAYERS:,}: a permutation walk evaluates P + 1 "
                             "coalitions of P booleans each; group players (features into blocks) first")
        self.n_players = int(n_players)
        self.n_metrics = int(n_metrics)
        names = [str(i) for i in range(self.n_players)] if player_names is None else list(player_names)
        if len(names) != self.n_players:
            raise ValueError(f"player_names has {len(names)} entries; the game has {self.n_players} players")
        self.player_names: list[str] = [str(n) for n in names]
        metrics = [f"m{k}" for k in range(self.n_metrics)] if metric_names is None else list(metric_names)
        if len(metrics) != self.n_metrics:
            raise ValueError(f"metric_names has {len(metrics)} entries; the game has {self.n_metrics} metrics")
        self.metric_names: list[str] = [str(n) for n in metrics]
        self.n_evaluations = 0
        self._empty: NDArray[np.float64] | None = None
        self._full: NDArray[np.float64] | None = None

    def value_function(self, coalitions: NDArray[np.bool_]) -> ArrayLike:
        """Return the values of ``coalitions`` (bool ``[m, P]``) as ``[m, K]`` or ``[m]``."""
        raise NotImplementedError("subclasses of Game implement value_function(coalitions)")

    def value(self, coalitions: ArrayLike) -> NDArray[np.float64]:
        """Evaluate a batch of coalitions, validated and counted.

        Raises:
            ValueError: when the coalitions are not a ``[m, P]`` boolean matrix, or the
                game returns a wrongly shaped array or a NaN/inf value (the message
                names the first offending coalition).
        """
        c = np.asarray(coalitions)
        if c.ndim != 2 or c.shape[1] != self.n_players:
            raise ValueError(
                f"coalitions must have shape [m, {self.n_players}] (one row per coalition), got {c.shape}"
            )
        if c.dtype != np.bool_:
            if not np.isin(c, (0, 1)).all():
                raise ValueError("coalitions must be boolean (or 0/1) masks over players")
            c = c.astype(bool)
        if c.shape[0] == 0:
            return np.zeros((0, self.n_metrics))
        raw = np.asarray(self.value_function(c), dtype=np.float64)
        if raw.ndim == 1 and self.n_metrics == 1:
            raw = raw[:, None]
        if raw.shape != (c.shape[0], self.n_metrics):
            raise ValueError(
                f"{type(self).__name__}.value_function returned shape {raw.shape}; "
                f"expected [{c.shape[0]}, {self.n_metrics}] (one row per coalition, one column per metric)"
            )
        bad = ~np.isfinite(raw).all(axis=1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            members = [self.player_names[i] for i in np.flatnonzero(c[row])]
            raise ValueError(
                f"the game returned a non-finite value {raw[row].tolist()} for coalition {members}; "
                "make the value function return finite numbers for every coalition"
            )
        self.n_evaluations += c.shape[0]
        return raw

    @property
    def empty_value(self) -> NDArray[np.float64]:
        """v(empty coalition), evaluated once and cached, shape ``[K]``."""
        if self._empty is None:
            self._empty = self.value(np.zeros((1, self.n_players), dtype=bool))[0]
        return self._empty

    @property
    def full_value(self) -> NDArray[np.float64]:
        """v(grand coalition), evaluated once and cached, shape ``[K]``."""
        if self._full is None:
            self._full = self.value(np.ones((1, self.n_players), dtype=bool))[0]
        return self._full

    def reset_cache(self) -> None:
        """Forget the cached empty and full values (call when the game itself changed)."""
        self._empty = None
        self._full = None


class FunctionGame(Game):
    """Adapter turning a Python callable into a :class:`Game`.

    Args:
        fn: either a scalar callable ``fn(coalition: bool[P]) -> float | sequence[K]``
            (``vectorized=False``, the default) or a batched one
            ``fn(coalitions: bool[m, P]) -> [m] | [m, K]`` (``vectorized=True``).
        n_players, n_metrics, player_names, metric_names: as for :class:`Game`.
    """

    def __init__(
        self,
        fn: Callable[[NDArray[np.bool_]], ArrayLike],
        n_players: int,
        n_metrics: int = 1,
        *,
        vectorized: bool = False,
        player_names: Sequence[str] | None = None,
        metric_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__(n_players, n_metrics, player_names, metric_names)
        self.fn = fn
        self.vectorized = vectorized

    def value_function(self, coalitions: NDArray[np.bool_]) -> ArrayLike:
        if self.vectorized:
            return self.fn(coalitions)
        rows = [np.atleast_1d(np.asarray(self.fn(row), dtype=np.float64)) for row in coalitions]
        return np.stack(rows).reshape(len(rows), -1)
