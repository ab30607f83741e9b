"""The NAS-Bench-201 surrogate game: its values, its fitted distortion, and the search dynamics run on it."""

from __future__ import annotations

import numpy as np
import pytest
from rdnas_search import apply_overrides, nb201_preset
from rdnas_search.nb201 import TableBenchmark, open_benchmark
from rdnas_search.surrogate import SurrogateGame, SurrogateNoise, fit_distortion, surrogate_search
from rdnas_space import NB201_PRIMITIVES, arch_to_ops, ops_to_arch
from scipy import stats

OPTIMUM = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@pytest.fixture(scope="module")
def bench() -> TableBenchmark:
    return open_benchmark()


def test_values_are_expected_accuracies_of_the_masked_mixture(bench: TableBenchmark) -> None:
    grid = bench.table.by_code("cifar10")
    ops = arch_to_ops(OPTIMUM)
    peaked = np.full((6, 5), -30.0)
    peaked[np.arange(6), list(ops)] = 30.0
    only_optimum = np.zeros((1, 6, 5), dtype=bool)
    only_optimum[0, np.arange(6), list(ops)] = True
    game = SurrogateGame(grid, peaked)
    assert game.value(only_optimum.reshape(1, -1))[0, 0] == pytest.approx(bench.test_accuracy(OPTIMUM), abs=1e-6)
    none = ops_to_arch((NB201_PRIMITIVES.index("none"),) * 6)
    assert game.value(np.zeros((1, 30), dtype=bool))[0, 0] == pytest.approx(bench.test_accuracy(none))
    # uniform alpha, everything present: the mean over cells drawn uniformly per edge
    uniform = SurrogateGame(grid, np.zeros((6, 5)))
    assert uniform.value(np.ones((1, 30), dtype=bool))[0, 0] == pytest.approx(grid.mean())
    # masking an op moves its mass to none: one edge holding only its none player
    one = np.ones((6, 5), dtype=bool)
    one[0] = False
    expected = grid[NB201_PRIMITIVES.index("none")].mean()
    assert uniform.value(one.reshape(1, -1))[0, 0] == pytest.approx(expected)


def test_the_fitted_distortion_gives_the_asked_rank_agreement(bench: TableBenchmark) -> None:
    grid = bench.table.by_code("cifar100")
    sigma = fit_distortion(grid, 0.3)
    rng = np.random.default_rng(5)
    flat = grid.reshape(-1)
    taus = []
    for _ in range(40):
        idx = rng.choice(flat.size, 100, replace=False)
        taus.append(stats.kendalltau(flat[idx], flat[idx] + sigma * rng.standard_normal(100)).statistic)
    assert np.mean(taus) == pytest.approx(0.3, abs=0.04)
    with pytest.raises(ValueError, match="target_tau"):
        fit_distortion(grid, 1.5)


def test_surrogate_searches_are_seeded_and_find_good_cells_without_noise(bench: TableBenchmark) -> None:
    grid = bench.table.by_code("cifar10")
    cfg = nb201_preset("cpu")
    clean = [bench.test_accuracy(surrogate_search(cfg, grid, SurrogateNoise(), s), "cifar10") for s in range(3)]
    # the walks' own sampling noise stays (15 rounds of 6 walks), but every cell lands in the top 10%
    assert min(clean) > 92.5 and np.mean(clean) > 93.0
    assert np.mean(bench.all_test_accuracies("cifar10") < min(clean)) > 0.9
    noisy = SurrogateNoise(persistent=5.0, per_round=5.0)
    first = surrogate_search(cfg, grid, noisy, 11)
    assert surrogate_search(cfg, grid, noisy, 11) == first  # the same seed, the same walks and distortions
    other = surrogate_search(apply_overrides(cfg, {"scorer": "mc"}), grid, noisy, 11)
    assert isinstance(other, str) and other.count("~") == 6
