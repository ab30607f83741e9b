"""NAS-Bench-201 lookup: the CSV source against the real table, the API adapter against a stand-in, the tabular game."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rdnas_search.nb201 import APIBenchmark, NB201TableGame, TableBenchmark, open_benchmark
from rdnas_space import NB201_PRIMITIVES, NB201Table, arch_to_ops

OPTIMUM = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
ROW0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"


@pytest.fixture(scope="module")
def bench() -> TableBenchmark:
    return open_benchmark()


def test_csv_lookups_against_known_rows(bench: TableBenchmark) -> None:
    assert bench.index_of(ROW0) == 0
    assert bench.test_accuracy(ROW0) == pytest.approx(85.86333333333334)
    assert bench.test_accuracy(ROW0, "cifar100") == pytest.approx(52.913333294677734)
    assert bench.test_accuracy(ROW0, "ImageNet16-120") == pytest.approx(26.6333332739936)
    top = bench.summary(OPTIMUM)
    assert top["test_accuracy"] == pytest.approx(94.37333333333333) == top["optimum"]
    assert top["percentile"] == pytest.approx(100.0) and top["regret"] == pytest.approx(0.0)
    assert bench.valid_accuracy(OPTIMUM) is None and "test accuracy only" in top["note"]
    low = bench.summary(ROW0)
    assert 0.0 < low["percentile"] < 100.0


def test_benchmark_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_benchmark(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="missing columns"):
        open_benchmark(bad)
    with pytest.raises(FileNotFoundError):
        open_benchmark(tmp_path / "NAS-Bench-201.pth")
    with pytest.raises(ValueError, match="unknown NAS-Bench-201 dataset"):
        open_benchmark().test_accuracy(OPTIMUM, "imagenet")


class StandInAPI:
    """Implements the NASBench201API calls the adapter uses, over the CSV (valid = test - 1)."""

    def __init__(self, table: NB201Table) -> None:
        self.table = table

    def __len__(self) -> int:
        return len(self.table.archs)

    def query_index_by_arch(self, arch: str) -> int:
        return self.table.index_of(arch)

    def get_more_info(self, index: int, dataset: str, hp: str = "12", is_random: bool = True) -> dict:
        assert hp == "200" and is_random is False
        base = "cifar10" if dataset == "cifar10-valid" else dataset
        acc = float(self.table.accuracy[base][index])
        return {"test-accuracy": acc, "valid-accuracy": acc - 1.0}


def test_api_adapter_with_a_stand_in(bench: TableBenchmark) -> None:
    api = APIBenchmark(StandInAPI(bench.table))
    assert api.test_accuracy(ROW0) == pytest.approx(bench.test_accuracy(ROW0))
    assert api.valid_accuracy(OPTIMUM) == pytest.approx(94.37333333333333 - 1.0)
    summary = api.summary(OPTIMUM)
    assert summary["percentile"] == pytest.approx(100.0) and summary["index"] == bench.index_of(OPTIMUM)


def test_table_game_values(bench: TableBenchmark) -> None:
    game = NB201TableGame(bench.table)
    acc = bench.table.accuracy["cifar10"]
    assert game.n_players == 30
    np.testing.assert_allclose(game.full_value, [acc.mean()], rtol=1e-12)
    none_cell = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    np.testing.assert_allclose(game.empty_value, [bench.test_accuracy(none_cell)], rtol=1e-12)
    coalition = np.ones((1, 30), dtype=bool)
    coalition[0, 0 * 5 + NB201_PRIMITIVES.index("avg_pool_3x3")] = False  # no avg_pool on edge 0
    coalition[0, 5 * 5 : 6 * 5] = False  # edge 5 empty -> only none
    ops = np.array([arch_to_ops(a) for a in bench.table.archs])
    keep = (ops[:, 0] != NB201_PRIMITIVES.index("avg_pool_3x3")) & (ops[:, 5] == NB201_PRIMITIVES.index("none"))
    np.testing.assert_allclose(game.value(coalition)[0], [acc[keep].mean()], rtol=1e-12)
    best = np.zeros(30)
    for e, o in enumerate(arch_to_ops(OPTIMUM)):
        best[e * 5 + o] = 1.0
    assert NB201TableGame.derive(best) == OPTIMUM
