"""Cross-package flows: rdnas-space networks through advbench's registry and checkpoints."""

from __future__ import annotations

import torch
from advbench import CheckpointInfo, build_model, list_models, load_checkpoint, save_checkpoint
from rdnas_space import NB201Table, Supernet, SupernetConfig


def test_rdnas_space_networks_are_advbench_models(tmp_path) -> None:
    assert {"rdnas_genotype", "nb201"} <= set(list_models())
    torch.manual_seed(0)
    genotype = Supernet(SupernetConfig(channels=2, n_cells=3)).derive()
    kwargs = {"num_classes": 10, "genotype": genotype.to_dict(), "channels": 4, "n_cells": 3, "dual": True}
    net = build_model("rdnas_genotype", **kwargs).eval()
    info = CheckpointInfo(arch="rdnas_genotype", arch_kwargs=kwargs, mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2))
    model, back = load_checkpoint(save_checkpoint(tmp_path / "g.pt", net, info))
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net((x - 0.5) / 0.2))
    assert back.arch_kwargs["genotype"] == genotype.to_dict()


def test_nb201_network_from_the_table_loads_in_advbench(tmp_path) -> None:
    table = NB201Table.from_csv()
    arch = table.arch_of(int(table.accuracy["cifar10"].argmax()))
    net = build_model("nb201", num_classes=10, arch=arch, channels=4, n_per_stage=1).eval()
    info = CheckpointInfo(arch="nb201", arch_kwargs={"num_classes": 10, "arch": arch, "channels": 4, "n_per_stage": 1})
    model, _ = load_checkpoint(save_checkpoint(tmp_path / "n.pt", net, info))
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x))
