"""Supernet structure, parameter groups, the derive rule, fusion variants, networks, measurement."""

from __future__ import annotations

import pytest
import torch
from rdnas_space import (
    DARTS_PRIMITIVES,
    FUSIONS,
    PUBLISHED_GENOTYPES,
    Genotype,
    GenotypeNetwork,
    NetworkConfig,
    Supernet,
    SupernetConfig,
    count_flops,
    count_parameters,
    derive_cell,
    eca_kernel_size,
    random_genotype,
)


def test_layout_alphas_and_parameter_groups() -> None:
    net = Supernet(SupernetConfig(channels=4, n_cells=6))
    assert net.reduction_positions == (2, 4)
    assert set(net.alphas()) == {"normal", "reduce", "robust"}
    assert all(a.shape == (14, 8) for a in net.arch_parameters())
    weights = list(net.weight_parameters())
    assert len(weights) + 3 == len(list(net.parameters()))
    assert not {id(p) for p in weights} & {id(a) for a in net.arch_parameters()}
    single = Supernet(SupernetConfig(channels=4, n_cells=6, dual=False))
    assert set(single.alphas()) == {"normal", "reduce"}
    assert single.derive().robust is None


def _hand_alpha() -> torch.Tensor:
    """Logits where the intended choice per node is unambiguous."""
    none, skip, sep3, dil5 = (DARTS_PRIMITIVES.index(n) for n in ("none", "skip_connect", "sep_conv_3x3",
                                                                   "dil_conv_5x5"))
    a = torch.zeros(14, 8)
    a[:, none] = 10.0  # 'none' is strongest everywhere but must be ignored
    # node 0 (edges 0, 1): both kept; sep3 on s0, skip on s1
    a[0, sep3], a[1, skip] = 3.0, 2.0
    # node 1 (edges 2, 3, 4): keep edge 4 (n0, dil5) then edge 2 (s0, sep3)
    a[2, sep3], a[3, skip], a[4, dil5] = 2.0, 1.0, 4.0
    # node 2 (edges 5..8): keep edge 8 (n1) and edge 6 (s1)
    a[6, skip], a[8, sep3] = 2.5, 3.5
    # node 3 (edges 9..13): keep edge 13 (n2, dil5) and edge 9 (s0, skip)
    a[9, skip], a[13, dil5] = 1.5, 5.0
    return a


def test_derive_rule_on_hand_built_alpha() -> None:
    genes = derive_cell(torch.softmax(_hand_alpha(), -1), DARTS_PRIMITIVES)
    assert genes == [("sep_conv_3x3", 0), ("skip_connect", 1), ("dil_conv_5x5", 2), ("sep_conv_3x3", 0),
                     ("sep_conv_3x3", 3), ("skip_connect", 1), ("dil_conv_5x5", 4), ("skip_connect", 0)]
    net = Supernet(SupernetConfig(channels=4, n_cells=3))
    with torch.no_grad():
        net.alpha_normal.copy_(_hand_alpha())
        net.alpha_robust.copy_(_hand_alpha().flip(0))
    g = net.derive()
    assert g.normal == genes and g.normal_concat == [2, 3, 4, 5]
    assert g.robust is not None and g.robust != g.normal
    g.validate()


def test_genotype_round_trips(tmp_path) -> None:
    g = Supernet(SupernetConfig(channels=4, n_cells=3)).derive()
    path = tmp_path / "genotype.json"
    g.to_json(path)
    assert Genotype.from_json(path) == g
    assert Genotype.parse(g.to_darts()) == g
    for published in PUBLISHED_GENOTYPES.values():
        assert Genotype.parse(published.to_darts()) == published
        assert Genotype.from_dict(published.to_dict()) == published


def test_genotype_parse_accepts_darts_text_and_rejects_code() -> None:
    text = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), "
            "('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], "
            "normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
            "('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
            "('avg_pool_3x3', 0)], reduce_concat=range(2, 6))")
    g = Genotype.parse(text)
    assert g.normal_concat == [2, 3, 4, 5] and g.reduce[-1] == ("avg_pool_3x3", 0)
    with pytest.raises(ValueError, match="unsupported expression"):
        Genotype.parse("Genotype(normal=__import__('os').system('true'), normal_concat=[], reduce=[], "
                       "reduce_concat=[])")
    with pytest.raises(ValueError, match="cannot read state 5"):
        Genotype.parse("Genotype(normal=[('skip_connect', 5), ('skip_connect', 0)], normal_concat=[2], "
                       "reduce=[('skip_connect', 0), ('skip_connect', 1)], reduce_concat=[2])")
    with pytest.raises(ValueError, match="unknown operation"):
        Genotype(normal=[("conv_9x9", 0), ("skip_connect", 1)], normal_concat=[2],
                 reduce=[("skip_connect", 0), ("skip_connect", 1)], reduce_concat=[2])


def test_bad_genotype_files(tmp_path) -> None:
    bad = tmp_path / "g.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a genotype"):
        Genotype.from_json(bad)
    bad.write_text('{"normal": []}')
    with pytest.raises(ValueError, match="not a genotype"):
        Genotype.from_json(bad)
    with pytest.raises(ValueError, match="does not exist"):
        Genotype.from_json(tmp_path / "missing.json")


def test_random_genotypes_are_seeded_valid_and_cover_the_space() -> None:
    assert random_genotype(3) == random_genotype(3)
    drawn = [random_genotype(seed) for seed in range(200)]
    assert len({g.to_darts() for g in drawn}) == 200
    ops, inputs_of_last_node = set(), set()
    for g in drawn:
        assert g.is_dual
        for cell in (g.normal, g.reduce, g.robust):
            assert len(cell) == 8
            for node in range(4):
                (_, a), (_, b) = cell[2 * node : 2 * node + 2]
                assert a != b and 0 <= a < node + 2 and 0 <= b < node + 2  # two distinct earlier states
            ops |= {op for op, _ in cell}
            inputs_of_last_node |= {idx for _, idx in cell[6:]}
    assert ops == set(DARTS_PRIMITIVES) - {"none"}  # every op the derive rule can pick, never none
    assert inputs_of_last_node == set(range(5))
    single = random_genotype(0, dual=False)
    assert not single.is_dual and single.normal == random_genotype(0).normal
    with pytest.raises(ValueError, match="non-negative"):
        random_genotype(-1)


@pytest.mark.parametrize(("name", "published_m"), [("darts_v2", 3.3), ("pdarts", 3.4), ("advrush", 4.2)])
def test_published_genotypes_match_published_sizes(name: str, published_m: float) -> None:
    net = GenotypeNetwork(PUBLISHED_GENOTYPES[name],
                          NetworkConfig(channels=36, n_cells=20, dual=False, auxiliary=True))
    params_m = count_parameters(net) / 1e6
    assert abs(params_m - published_m) / published_m <= 0.05


@pytest.mark.parametrize(("channels", "k"), [(16, 3), (32, 3), (64, 3), (128, 5), (256, 5), (512, 5), (1024, 5),
                                             (4096, 7)])
def test_eca_kernel_sizes(channels: int, k: int) -> None:
    assert eca_kernel_size(channels) == k


@pytest.mark.parametrize("fusion", FUSIONS)
def test_each_fusion_builds_and_trains_one_step(fusion: str) -> None:
    torch.manual_seed(0)
    net = Supernet(SupernetConfig(channels=4, n_cells=3, fusion=fusion))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y = torch.rand(4, 3, 16, 16), torch.randint(0, 10, (4,))
    before = [p.detach().clone() for p in net.cells[0].fusion.parameters()]
    loss = torch.nn.functional.cross_entropy(net(x), y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    after = list(net.cells[0].fusion.parameters())
    assert any(not torch.equal(b, a) for b, a in zip(before, after, strict=True))


def test_genotype_network_dual_aux_and_drop_path() -> None:
    torch.manual_seed(0)
    g = Supernet(SupernetConfig(channels=4, n_cells=3)).derive()
    net = GenotypeNetwork(g, NetworkConfig(channels=8, n_cells=6, auxiliary=True, drop_path_prob=0.2))
    logits, aux = net(torch.rand(2, 3, 32, 32))
    assert logits.shape == aux.shape == (2, 10)
    net.eval()
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="robust cell"):
        GenotypeNetwork(PUBLISHED_GENOTYPES["darts_v2"], NetworkConfig(dual=True))


def test_paper_network_size_and_flops() -> None:
    g = Supernet(SupernetConfig(channels=4, n_cells=3)).derive()
    net = GenotypeNetwork(g, NetworkConfig(channels=32, n_cells=12))
    assert len(net.cells) == 12 and net.reduction_positions == (4, 8)
    flops = count_flops(net)
    assert flops > 2 * count_parameters(net)  # convolutions reuse each weight at many positions
    conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
    assert count_flops(torch.nn.Sequential(conv)) == 2 * 8 * 3 * 9 * 32 * 32


def test_channels_last_matches_contiguous() -> None:
    torch.manual_seed(0)
    net = Supernet(SupernetConfig(channels=4, n_cells=3)).eval()
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        ref = net(x)
        net_cl = net.to(memory_format=torch.channels_last)
        out = net_cl(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_bad_configs() -> None:
    with pytest.raises(ValueError, match="unknown fusion"):
        SupernetConfig(fusion="se")
    with pytest.raises(ValueError, match="n_cells"):
        SupernetConfig(n_cells=2)
    with pytest.raises(ValueError, match="unknown DARTS primitives"):
        SupernetConfig(primitives=("none", "conv_9x9"))
