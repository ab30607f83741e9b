"""Coalition masks: per-sample batches equal separate passes, zero masks zero, full masks are no-ops."""

from __future__ import annotations

import pytest
import torch
from rdnas_space import DARTS_PRIMITIVES, MixedOp, NB201Supernet, Supernet, SupernetBase, SupernetConfig


@pytest.fixture(scope="module")
def supernet() -> Supernet:
    torch.manual_seed(0)
    net = Supernet(SupernetConfig(channels=4, n_cells=4, n_classes=10))
    with torch.no_grad():
        for a in net.arch_parameters():
            a.normal_(0, 1)
    # a few training-mode passes give BatchNorm running statistics (cumulative averages, so 3 batches suffice)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(8, 3, 16, 16))
    return net.eval()


def _random_coalitions(k: int, players: tuple[int, int], seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((k, *players), generator=g) < 0.5


@pytest.mark.parametrize("branch", ["normal", "reduce", "robust"])
def test_per_sample_masks_equal_separate_passes(supernet: Supernet, branch: str) -> None:
    x = torch.rand(3, 3, 16, 16)
    coalitions = _random_coalitions(4, supernet.alpha_shape, seed=1)
    coalitions[0] = True  # full coalition
    coalitions[1] = False  # empty coalition
    with torch.no_grad():
        batched = supernet.forward_coalitions(x, branch, coalitions)
        for k in range(coalitions.shape[0]):
            separate = supernet(x, {branch: coalitions[k]})
            torch.testing.assert_close(batched[k], separate, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("branch", ["normal", "reduce", "robust"])
@pytest.mark.parametrize("k", [1, 3])
def test_shared_work_path_equals_naive_stacking(supernet: Supernet, branch: str, k: int) -> None:
    """forward_coalitions shares coalition-independent work; naive stacking does not. Same numbers."""
    x = torch.rand(2, 3, 16, 16)
    coalitions = _random_coalitions(k, supernet.alpha_shape, seed=3 + k)
    with torch.no_grad():
        grouped = supernet.forward_coalitions(x, branch, coalitions.reshape(k, -1))
        naive = SupernetBase.forward_coalitions(supernet, x, branch, coalitions)
    assert grouped.shape == (k, 2, 10)
    torch.testing.assert_close(grouped, naive, rtol=1e-4, atol=1e-5)


def test_single_cell_space_coalitions() -> None:
    torch.manual_seed(0)
    net = Supernet(SupernetConfig(channels=4, n_cells=4, dual=False)).eval()
    x = torch.rand(2, 3, 16, 16)
    coalitions = _random_coalitions(2, net.alpha_shape, seed=9)
    with torch.no_grad():
        batched = net.forward_coalitions(x, "normal", coalitions)
        for k in range(2):
            torch.testing.assert_close(batched[k], net(x, {"normal": coalitions[k]}), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="unknown branch"):
        net.forward_coalitions(x, "robust", coalitions)


def test_full_mask_equals_unmasked(supernet: Supernet) -> None:
    x = torch.rand(2, 3, 16, 16)
    full = torch.ones(supernet.alpha_shape, dtype=torch.bool)
    with torch.no_grad():
        plain = supernet(x)
        torch.testing.assert_close(supernet(x, {"normal": full, "reduce": full, "robust": full}), plain)
        per_sample = full.expand(2, *supernet.alpha_shape)
        torch.testing.assert_close(supernet(x, {"normal": per_sample}), plain, rtol=1e-5, atol=1e-6)


def test_masks_change_the_output(supernet: Supernet) -> None:
    x = torch.rand(2, 3, 16, 16)
    mask = torch.ones(supernet.alpha_shape, dtype=torch.bool)
    mask[:, DARTS_PRIMITIVES.index("sep_conv_3x3")] = False
    with torch.no_grad():
        assert not torch.allclose(supernet(x, {"normal": mask}), supernet(x), atol=1e-4)


@pytest.mark.parametrize("per_sample", [False, True])
def test_all_zero_mask_zeroes_an_edge(per_sample: bool) -> None:
    torch.manual_seed(0)
    edge = MixedOp("darts", DARTS_PRIMITIVES, 4, 4, 2).eval()
    x = torch.randn(3, 4, 8, 8)
    w = torch.softmax(torch.randn(8), 0)
    mask = torch.zeros(3, 8, dtype=torch.bool) if per_sample else torch.zeros(8, dtype=torch.bool)
    out = edge(x, w, mask)
    assert out.shape == (3, 4, 4, 4)
    assert torch.count_nonzero(out) == 0


def test_masked_op_is_not_computed() -> None:
    edge = MixedOp("darts", DARTS_PRIMITIVES, 4, 4, 1).eval()
    calls: list[int] = []
    conv = edge.ops[DARTS_PRIMITIVES.index("sep_conv_5x5")]
    orig = conv.forward_from_relu
    conv.forward_from_relu = lambda xr: (calls.append(xr.shape[0]), orig(xr))[1]
    x, w = torch.randn(4, 4, 8, 8), torch.softmax(torch.randn(8), 0)
    mask = torch.ones(4, 8, dtype=torch.bool)
    mask[:, 5] = False
    edge(x, w, mask)
    assert calls == []
    mask[1, 5] = True
    mask[3, 5] = True
    edge(x, w, mask)
    assert calls == [2]  # run on the two samples that have it, not on all four


def test_renormalized_masks_sum_to_one() -> None:
    torch.manual_seed(0)
    edge = MixedOp("darts", ("skip_connect", "none", "avg_pool_3x3"), 4, 4, 1).eval()
    x = torch.randn(2, 4, 6, 6)
    w = torch.tensor([0.2, 0.5, 0.3])
    only_skip = torch.tensor([True, False, False])
    torch.testing.assert_close(edge(x, w, only_skip, renormalize=True), x)
    torch.testing.assert_close(edge(x, w, only_skip), 0.2 * x)


def test_nb201_supernet_masks() -> None:
    torch.manual_seed(0)
    net = NB201Supernet(channels=4, n_per_stage=1).eval()
    x = torch.rand(2, 3, 16, 16)
    coalitions = _random_coalitions(3, net.alpha_shape, seed=2)
    with torch.no_grad():
        batched = net.forward_coalitions(x, "cell", coalitions.reshape(3, -1))
        for k in range(3):
            torch.testing.assert_close(batched[k], net(x, {"cell": coalitions[k]}), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="unknown branch"):
        net(x, {"normal": coalitions[0]})


def test_bad_mask_shape() -> None:
    edge = MixedOp("darts", DARTS_PRIMITIVES, 4, 4, 1)
    with pytest.raises(ValueError, match=r"shape \[2, 8\]"):
        edge(torch.randn(2, 4, 4, 4), torch.ones(8) / 8, torch.ones(3, 8, dtype=torch.bool))


@pytest.mark.parametrize("renormalize", [False, True])
@pytest.mark.parametrize("n_per_stage, k", [(1, 1), (1, 5), (2, 3)])
def test_nb201_shared_work_path_equals_naive_stacking(renormalize: bool, n_per_stage: int, k: int) -> None:
    """NB201Supernet.forward_coalitions shares the stem and the first cell's edges on its input."""
    torch.manual_seed(1)
    net = NB201Supernet(4, n_per_stage, renormalize_masked=renormalize).eval()
    with torch.no_grad():
        net.alpha_cell.normal_()
    x = torch.rand(3, 3, 16, 16)
    coalitions = _random_coalitions(k, net.alpha_shape, seed=11 + k)
    coalitions[0, 2] = False  # an empty edge: only `none` (zero) is left there
    with torch.no_grad():
        grouped = net.forward_coalitions(x, "cell", coalitions.reshape(k, -1))
        naive = SupernetBase.forward_coalitions(net, x, "cell", coalitions)
        single = net(x, {"cell": coalitions[0]})
    assert grouped.shape == (k, 3, 10)
    torch.testing.assert_close(grouped, naive, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grouped[0], single, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="unknown branch"):
        net.forward_coalitions(x, "normal", coalitions)
