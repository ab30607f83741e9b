"""rose-estimator: robust Monte-Carlo Shapley attribution (ROSE, RDNAS paper Section 3.4).

Framework-agnostic (numpy/scipy only).  Define a :class:`Game` (or wrap a
function with :class:`FunctionGame`), then::

    from rose_estimator import FunctionGame, RoseEstimator
    game = FunctionGame(my_value, n_players=10)
    result = RoseEstimator(beta=0.3, n_groups=5).approximate(game, n_permutations=100, rng=0)
    print(result.ranking())
"""

from .estimator import RoseEstimator
from .exact import all_coalitions, exact_shapley
from .game import FunctionGame, Game
from .games import AdditiveGame, AirportGame, GloveGame, NoisyGame, UnanimityGame, WeightedVotingGame
from .result import STANDARDIZE, RoseConfig, RoseResult
from .sampler import GainSample, Sharding, contiguous_block, draw_permutations, sample_gains
from .stats import (
    combine_scores,
    confidence_radius,
    group_assignment,
    group_means,
    iqr_fences,
    median_of_means,
    outlier_score,
    player_groups,
    standardize,
    unit_stderr,
)
from .window import RoseWindow, WindowScore

__version__ = "0.1.0"

__all__ = [
    "AdditiveGame",
    "AirportGame",
    "FunctionGame",
    "GainSample",
    "Game",
    "GloveGame",
    "NoisyGame",
    "RoseConfig",
    "RoseEstimator",
    "RoseResult",
    "RoseWindow",
    "STANDARDIZE",
    "WindowScore",
    "Sharding",
    "UnanimityGame",
    "WeightedVotingGame",
    "all_coalitions",
    "combine_scores",
    "confidence_radius",
    "contiguous_block",
    "draw_permutations",
    "exact_shapley",
    "group_assignment",
    "group_means",
    "iqr_fences",
    "median_of_means",
    "outlier_score",
    "player_groups",
    "sample_gains",
    "standardize",
    "unit_stderr",
]
