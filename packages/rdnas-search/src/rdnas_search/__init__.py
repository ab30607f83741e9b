"""rdnas-search: the robust dual-branch architecture search (RDNAS Algorithm 1) and final adversarial training.

    from rdnas_search import search_preset, run_search
    outcome = run_search(search_preset("cpu"), "runs/search")
    print(outcome.genotype)

Command line: ``rdnas-search run | train | nb201``.
"""

__version__ = "0.1.0"

from .config import (
    SEARCH_PRESETS,
    TRAIN_PRESETS,
    ConfigError,
    SearchConfig,
    TrainConfig,
    apply_overrides,
    load_overrides,
    search_preset,
    train_preset,
)
from .game import SupernetGame
from .search import RunDirError, Searcher, SearchOutcome, run_search, update_alpha
from .searchdata import load_search_pool, search_split

__all__ = ["SEARCH_PRESETS", "TRAIN_PRESETS", "ConfigError", "RunDirError", "SearchConfig", "SearchOutcome",
           "Searcher", "SupernetGame", "TrainConfig", "apply_overrides", "load_overrides", "load_search_pool",
           "run_search", "search_preset", "search_split", "train_preset", "update_alpha", "__version__"]
