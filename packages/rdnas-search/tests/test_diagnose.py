"""The NAS-Bench-201 ranking diagnostic: a planted supernet ranks perfectly, the smoke run's report, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from rdnas_search import SupernetGame
from rdnas_search.cli import main
from rdnas_search.config import nb201_preset
from rdnas_search.diagnose import DiagnoseOptions, cell_values, diagnose, rank_agreement, tabular_shapley
from rdnas_search.nb201 import NB201TableGame, TableBenchmark, open_benchmark
from rdnas_search.nb201_search import NB201Options, run_nb201
from rdnas_space import NB201_PRIMITIVES, ops_to_arch, sample_cells
from torch import nn

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def bench() -> TableBenchmark:
    return open_benchmark()


class PlantedSupernet(nn.Module):
    """Coalition values that equal the table: the correct class's logit of a one-op-per-edge coalition is its
    cell's benchmark accuracy as a fraction (so its negative cross-entropy rises with the accuracy, with a slope
    that float32 resolves: 0.01 points apart stay ordered)."""

    def __init__(self, bench: TableBenchmark) -> None:
        super().__init__()
        self.bench = bench
        self.alpha_shape = (6, len(NB201_PRIMITIVES))

    def forward_coalitions(self, x: torch.Tensor, branch: str, coalitions: torch.Tensor) -> torch.Tensor:
        k, n = coalitions.shape[0], x.shape[0]
        ops = coalitions.reshape(k, *self.alpha_shape).int().argmax(-1)
        acc = torch.tensor([self.bench.test_accuracy(ops_to_arch(tuple(o.tolist()))) for o in ops])
        logits = torch.zeros(k, n, 10)
        logits[:, :, 0] = acc[:, None] / 100.0  # every label is class 0
        return logits


def test_planted_supernet_ranks_cells_perfectly(bench: TableBenchmark) -> None:
    net = PlantedSupernet(bench)
    x, y = torch.zeros(4, 3, 8, 8), torch.zeros(4, dtype=torch.long)
    game = SupernetGame(net, "cell", x, y, None, "neg_ce", NB201_PRIMITIVES)
    cells = sample_cells(60, seed=3)
    assert len({tuple(c) for c in cells}) == 60 and cells.min() >= 0 and cells.max() < 5
    values = cell_values(game, cells)
    truth = np.array([bench.test_accuracy(ops_to_arch(tuple(int(o) for o in c))) for c in cells])
    agreement = rank_agreement(values, truth, top_k=10)
    assert agreement["kendall_tau"] == pytest.approx(1.0)
    assert agreement["spearman_rho"] == pytest.approx(1.0)
    assert agreement["top_k_overlap"] == 1.0
    reverse = rank_agreement(-values, truth, top_k=10)
    assert reverse["kendall_tau"] == pytest.approx(-1.0) and reverse["top_k_overlap"] == 0.0
    assert rank_agreement(np.ones(60), truth)["kendall_tau"] == 0.0  # a constant side ranks nothing


def test_tabular_oracle_picks_a_top_cell(bench: TableBenchmark) -> None:
    """The long-run Shapley values of the tabular game: efficiency, and a per-edge argmax in the top 5%."""
    phi = tabular_shapley(bench, "cifar10", walks=400, seed=0)
    game = NB201TableGame(bench.table, "cifar10")
    assert phi.sum() == pytest.approx(float(game.full_value[0] - game.empty_value[0]), abs=1e-6)
    arch = ops_to_arch(tuple(int(o) for o in phi.reshape(6, 5).argmax(axis=1)))
    assert bench.summary(arch)["percentile"] > 95.0


@pytest.fixture(scope="module")
def smoke_nb201(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("nb201-diagnose") / "run"
    run_nb201(nb201_preset("smoke"), run, NB201Options(runs=2))
    return run


@pytest.mark.slow
def test_diagnostic_on_the_smoke_preset(smoke_nb201: Path, bench: TableBenchmark) -> None:
    results = diagnose(smoke_nb201, DiagnoseOptions(n_cells=12, top_k=3, oracle_walks=40))
    assert [r["run"] for r in results] == ["run0-seed0", "run1-seed1"]
    for r in results:
        sub = smoke_nb201 / r["run"]
        saved = json.loads((sub / "diagnose.json").read_text())
        assert set(saved["cells"]) == {"kendall_tau", "spearman_rho", "top_k_overlap"}
        assert -1.0 <= saved["cells"]["kendall_tau"] <= 1.0 and 0.0 <= saved["cells"]["top_k_overlap"] <= 1.0
        assert len(saved["sampled"]) == 12
        for s in saved["sampled"]:
            assert s["accuracy"] == pytest.approx(bench.test_accuracy(ops_to_arch(tuple(s["ops"]))))
        assert [p["scores"] for p in saved["players"]] == ["last round", "mean over rounds", "final alpha"]
        assert (sub / "diagnose.png").read_bytes().startswith(PNG)
        report = (sub / "diagnose.md").read_text()
        assert "Kendall tau" in report and "Spearman rho" in report and "top-3 overlap" in report
    assert "| **mean** |" in (smoke_nb201 / "diagnose.md").read_text()


@pytest.mark.slow
def test_diagnose_cli(smoke_nb201: Path, capsys) -> None:
    assert main(["nb201", "--diagnose", str(smoke_nb201 / "run0-seed0"), "--cells", "8", "--dataset", "cifar100",
                 "--images", "val"]) == 0
    out = capsys.readouterr().out
    assert "run0-seed0: cells tau" in out
    saved = json.loads((smoke_nb201 / "run0-seed0" / "diagnose.json").read_text())
    assert saved["options"]["dataset"] == "cifar100" and saved["n_images"] == 20
    assert main(["nb201", "--diagnose", str(smoke_nb201 / "nowhere")]) == 2
    assert "holds no NAS-Bench-201 search run" in capsys.readouterr().err
