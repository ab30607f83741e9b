"""The ROSE estimator: sample permutation walks of a game, then score every player."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .game import Game
from .result import RoseConfig, RoseResult
from .sampler import Sharding, sample_gains

__all__ = ["RoseEstimator"]


def _check_game(game: object) -> None:
    if not isinstance(game, Game):
        raise TypeError(f"game must be a rose_estimator.Game (subclass it, or wrap a function in FunctionGame), "
                        f"got {type(game).__name__}")


class RoseEstimator:
    """Robust Outlier-aware Shapley Estimator (paper Section 3.4).

    Example:
        >>> est = RoseEstimator(beta=0.3, l1=1.2, l2=2.0, n_groups=5)
        >>> res = est.approximate(game, n_permutations=50, rng=0)  # doctest: +SKIP
        >>> res.ranking()[:3]  # doctest: +SKIP

    Args:
        config: a :class:`RoseConfig`; keyword overrides are applied on top of it.
    """

    def __init__(self, config: RoseConfig | None = None, **overrides: Any) -> None:
        if config is not None and not isinstance(config, RoseConfig):
            raise TypeError(f"config must be a RoseConfig, got {type(config).__name__}")
        unknown = sorted(set(overrides) - set(RoseConfig.__dataclass_fields__))
        if unknown:
            raise TypeError(f"unknown RoseConfig option(s) {unknown}; known: {sorted(RoseConfig.__dataclass_fields__)}")
        self.config = replace(config or RoseConfig(), **overrides)

    def approximate(
        self,
        game: Game,
        n_permutations: int,
        *,
        rng: int | np.random.Generator = 0,
        batch_size: int = 256,
        antithetic: bool = False,
        truncation_tol: float | None = None,
        budget: int | None = None,
        sharding: Sharding | None = None,
        player_groups: ArrayLike | None = None,
    ) -> RoseResult:
        """Walk ``n_permutations`` permutations of ``game`` and score its players.

        Sampling options are those of :func:`~rose_estimator.sampler.sample_gains`; with ``sharding`` a group
        of workers shares the walks and every worker gets the result a single worker would have.
        ``player_groups`` labels the players for ``standardize="group"`` (for example the edge of each
        (edge, operation) player).
        """
        _check_game(game)
        self._check_enough(n_permutations, antithetic)
        sample = sample_gains(
            game,
            n_permutations,
            rng=rng,
            batch_size=batch_size,
            antithetic=antithetic,
            truncation_tol=truncation_tol,
            budget=budget,
            sharding=sharding,
        )
        units = int(np.unique(sample.unit_ids).size)
        if units < self.config.n_groups:
            per_walk = max(game.n_players - 1, 1)
            needed = per_walk * self.config.n_groups * (1 + antithetic) + 2
            raise ValueError(f"budget={budget} evaluations admitted {units} sampling unit(s), fewer than the "
                             f"G={self.config.n_groups} median-of-means groups: a walk costs up to {per_walk} "
                             f"evaluations, so raise the budget to about {needed} or lower n_groups")
        return RoseResult.from_sample(sample, self.config, game.player_names, game.metric_names, player_groups)

    def update(
        self,
        result: RoseResult,
        game: Game,
        n_permutations: int,
        *,
        rng: int | np.random.Generator,
        batch_size: int = 256,
        antithetic: bool = False,
        truncation_tol: float | None = None,
        budget: int | None = None,
        sharding: Sharding | None = None,
    ) -> RoseResult:
        """Add ``n_permutations`` more walks to ``result`` and rescore.

        Pass a :class:`numpy.random.Generator` that carries on from the previous
        call (or a fresh seed) so the new permutations are not repeats.
        """
        _check_game(game)
        if result.player_names != game.player_names:
            raise ValueError("the result was computed for other players than this game's")
        sample = sample_gains(
            game,
            n_permutations,
            rng=rng,
            batch_size=batch_size,
            antithetic=antithetic,
            truncation_tol=truncation_tol,
            budget=budget,
            sharding=sharding,
        )
        return result.extend(sample)

    def _check_enough(self, n_permutations: int, antithetic: bool) -> None:
        if isinstance(n_permutations, bool) or not isinstance(n_permutations, (int, np.integer)):
            raise ValueError(f"n_permutations must be a whole number, got {n_permutations!r}")
        units = n_permutations // 2 if antithetic else n_permutations
        if units < self.config.n_groups:
            raise ValueError(
                f"S={n_permutations} permutations give {units} sampling units, fewer than "
                f"G={self.config.n_groups} median-of-means groups: raise S or lower n_groups"
            )
