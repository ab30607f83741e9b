"""rdnas-search: the robust dual-branch architecture search (RDNAS Algorithm 1) and final adversarial training.

    from rdnas_search import search_preset, run_search
    outcome = run_search(search_preset("cpu"), "runs/search")
    print(outcome.genotype)

    from rdnas_search import nb201_preset, run_nb201, NB201Options
    table5 = run_nb201(nb201_preset("cpu"), "runs/nb201", NB201Options(runs=3))
    print(table5.summary["test_accuracy"])

Command line: ``rdnas-search run | train | nb201``.
"""

__version__ = "0.1.0"

from .config import (
    NB201_PRESETS,
    SEARCH_PRESETS,
    TRAIN_PRESETS,
    ConfigError,
    SearchConfig,
    TrainConfig,
    apply_overrides,
    load_overrides,
    nb201_preset,
    search_preset,
    train_preset,
)
from .game import SupernetGame
from .nb201 import APIBenchmark, NB201TableGame, TableBenchmark, open_benchmark
from .nb201_search import NB201Options, NB201Outcome, run_nb201
from .search import NonFiniteLossError, RunDirError, Searcher, SearchOutcome, run_search, update_alpha
from .searchdata import load_search_pool, search_split

__all__ = ["NB201_PRESETS", "SEARCH_PRESETS", "TRAIN_PRESETS", "APIBenchmark", "ConfigError", "NB201Options",
           "NB201Outcome", "NB201TableGame", "NonFiniteLossError", "RunDirError", "SearchConfig", "SearchOutcome",
           "Searcher",
           "SupernetGame", "TableBenchmark", "TrainConfig", "apply_overrides", "load_overrides", "load_search_pool",
           "nb201_preset", "open_benchmark", "run_nb201", "run_search", "search_preset", "search_split",
           "train_preset", "update_alpha", "__version__"]
