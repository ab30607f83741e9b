"""NAS-Bench-201 conversions against the shared table, and the NB201 networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rdnas_space import (
    NB201_PRIMITIVES,
    NB201Network,
    NB201Supernet,
    NB201Table,
    arch_to_ops,
    code_to_ops,
    count_parameters,
    ops_to_arch,
    ops_to_code,
)

OPTIMUM = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@pytest.fixture(scope="module")
def table() -> NB201Table:
    return NB201Table.from_csv()


def test_known_rows(table: NB201Table) -> None:
    assert table.arch_of(0) == ("|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|"
                                "skip_connect~2|")
    assert table.accuracy["cifar10"][0] == pytest.approx(85.86333333333334)
    best = int(np.argmax(table.accuracy["cifar10"]))
    assert table.accuracy["cifar10"][best] == pytest.approx(94.37333333333333)
    assert table.accuracy["cifar10"][table.index_of(OPTIMUM)] == pytest.approx(94.37, abs=0.005)


def test_conversions_agree_with_the_table_on_random_indices(table: NB201Table) -> None:
    rng = np.random.default_rng(0)
    for index in rng.choice(len(table.archs), size=100, replace=False):
        arch = table.arch_of(int(index))
        ops = arch_to_ops(arch)
        assert ops_to_arch(ops) == arch
        assert table.index_of(ops) == index == table.index_of(arch)
        assert code_to_ops(ops_to_code(ops)) == ops
    grid = table.by_code("cifar10")
    assert grid.shape == (5,) * 6
    assert grid[arch_to_ops(OPTIMUM)] == pytest.approx(94.37, abs=0.005)
    assert grid.mean() == pytest.approx(table.accuracy["cifar10"].mean())


def test_every_cell_appears_once(table: NB201Table) -> None:
    codes = {ops_to_code(arch_to_ops(a)) for a in table.archs}
    assert len(codes) == 5**6


@pytest.mark.parametrize("bad", ["", "|nor_conv_3x3~0|", "|nor_conv_3x3~1|+|none~0|none~1|+|none~0|none~1|none~2|",
                                 "|conv_7x7~0|+|none~0|none~1|+|none~0|none~1|none~2|"])
def test_malformed_arch_strings(bad: str) -> None:
    with pytest.raises(ValueError):
        arch_to_ops(bad)


def test_bad_table_files(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        NB201Table.from_csv(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="missing columns"):
        NB201Table.from_csv(bad)


def test_network_from_arch_string_and_supernet_derive() -> None:
    torch.manual_seed(0)
    net = NB201Network(OPTIMUM, channels=4, n_per_stage=1)
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    full = NB201Network(OPTIMUM)
    assert 0.9e6 < count_parameters(full) < 1.6e6
    sup = NB201Supernet(channels=4, n_per_stage=1)
    with torch.no_grad():
        sup.alpha_cell.zero_()
        for e, o in enumerate(arch_to_ops(OPTIMUM)):
            sup.alpha_cell[e, o] = 1.0
    assert sup.derive() == OPTIMUM
    assert sup.alpha_shape == (6, len(NB201_PRIMITIVES))
