"""NASWOT: the activation kernel and score on hand-checked cases, determinism, and the nb201 harness row."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from rdnas_search.cli import main
from rdnas_search.naswot import activation_kernel, naswot_score, naswot_search
from rdnas_space import arch_to_ops
from torch import nn


def test_kernel_is_units_minus_hamming_distance() -> None:
    codes = torch.tensor([[1, 0, 1], [1, 1, 1], [0, 0, 0]])
    # Hamming distances: d(0,1) = 1, d(0,2) = 2, d(1,2) = 3; three units.
    expected = torch.tensor([[3, 2, 1], [2, 3, 0], [1, 0, 3]], dtype=torch.float64)
    torch.testing.assert_close(activation_kernel(codes), expected)


class TwoReLUs(nn.Module):
    """Pre-activations x (first ReLU) and -x (second): the codes of the second are the complements."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.ReLU(), nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a(x) + self.b(-x)


def test_score_is_the_log_determinant_of_the_summed_kernels() -> None:
    x = torch.tensor([[1.0, -1.0, 1.0], [1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]])
    # By hand: K = [[3,2,1],[2,3,0],[1,0,3]], det = 3*9 - 2*6 + 1*(-3) = 12.
    assert naswot_score(nn.Sequential(nn.ReLU()), x) == pytest.approx(math.log(12.0))
    # The complement codes have the same Hamming distances: the kernel doubles, det 8 * 12.
    assert naswot_score(TwoReLUs(), x) == pytest.approx(math.log(96.0))
    # Two images with the same code make K singular.
    assert naswot_score(nn.Sequential(nn.ReLU()), torch.ones(2, 4)) == -math.inf


def test_search_is_seeded_and_deterministic() -> None:
    x = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    a = naswot_search(x, n_cells=4, seed=3, channels=4, n_per_stage=1)
    b = naswot_search(x, n_cells=4, seed=3, channels=4, n_per_stage=1)
    assert a.cells == b.cells and a.arch == b.arch and a.score == b.score
    assert a.score == max(c["score"] for c in a.cells) and len(a.cells) == 4
    assert all(math.isfinite(c["score"]) for c in a.cells)
    other = naswot_search(x, n_cells=4, seed=4, channels=4, n_per_stage=1)
    assert [c["arch"] for c in other.cells] != [c["arch"] for c in a.cells]


@pytest.mark.slow
def test_naswot_row_of_the_nb201_harness(tmp_path: Path, capsys) -> None:
    out = tmp_path / "naswot"
    assert main(["nb201", "--preset", "smoke", "--scorer", "naswot", "--runs", "2", "--out", str(out),
                 "--set", "naswot_cells=3", "--set", "naswot_batch=8"]) == 0
    rows = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert [r["seed"] for r in rows] == [0, 1]
    for r in rows:
        record = json.loads((out / r["dir"] / "cell.json").read_text())
        assert record["scorer"] == "naswot" and len(record["cells"]) == 3
        assert record["arch"] == r["arch"] == max(record["cells"], key=lambda c: c["score"])["arch"]
        arch_to_ops(r["arch"])
    assert "NASWOT over 3 random cells" in (out / "report.md").read_text()
    assert main(["run", "--preset", "smoke", "--set", "scorer=naswot", "--out", str(tmp_path / "x")]) == 2
    assert "scores NAS-Bench-201 cells" in capsys.readouterr().err
