"""Every operation and cell: shapes at stride 1 and 2, gradients to weights and alpha."""

from __future__ import annotations

import pytest
import torch
from rdnas_space import (
    DARTS_PRIMITIVES,
    NB201_PRIMITIVES,
    Cell,
    DualBranchSearchCell,
    NB201Cell,
    NB201SearchCell,
    SearchCell,
    build_op,
)
from rdnas_space.ops import FactorizedReduce


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize(("space", "name"), [("darts", n) for n in DARTS_PRIMITIVES] +
                         [("nb201", n) for n in NB201_PRIMITIVES])
def test_op_shapes_and_gradients(space: str, name: str, stride: int) -> None:
    torch.manual_seed(0)
    op = build_op(space, name, 8, 8, stride, affine=True)
    x = torch.randn(2, 8, 16, 16, requires_grad=True)
    y = op(x)
    assert y.shape == (2, 8, 16 // stride, 16 // stride)
    if name == "none":
        assert torch.count_nonzero(y) == 0
        return
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for p in op.parameters():
        assert p.grad is not None


def test_preactivated_forward_matches_full_forward() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 8, 16, 16)
    for name in ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"):
        op = build_op("darts", name, 8, 8, 2, affine=False).eval()
        torch.testing.assert_close(op.forward_from_relu(torch.relu(x)), op(x))
    fr = FactorizedReduce(8, 8).eval()
    torch.testing.assert_close(fr.forward_from_relu(torch.relu(x)), fr(x))


def test_factorized_reduce_odd_sizes_and_channels() -> None:
    assert FactorizedReduce(4, 6)(torch.randn(1, 4, 7, 7)).shape == (1, 6, 4, 4)
    odd = FactorizedReduce(4, 5)
    assert (odd.conv_1.out_channels, odd.conv_2.out_channels) == (3, 2)
    assert odd(torch.randn(2, 4, 8, 8)).shape == (2, 5, 4, 4)
    single = FactorizedReduce(3, 1).eval()
    assert single.conv_2 is None
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(single(x), single.bn(single.conv_1(torch.relu(x))))
    with pytest.raises(ValueError, match="at least one output channel"):
        FactorizedReduce(4, 0)


def test_unknown_op() -> None:
    with pytest.raises(ValueError, match="unknown darts operation 'conv_7x7'"):
        build_op("darts", "conv_7x7", 4, 4)
    with pytest.raises(ValueError, match="unknown space"):
        build_op("nasnet", "none", 4, 4)


@pytest.mark.parametrize(("reduction", "reduction_prev"), [(False, False), (True, False), (False, True)])
def test_search_cell_shapes_and_gradients(reduction: bool, reduction_prev: bool) -> None:
    torch.manual_seed(0)
    cell = SearchCell(DARTS_PRIMITIVES, 12, 10, 8, reduction, reduction_prev)
    alpha = torch.zeros(14, 8, requires_grad=True)
    s0 = torch.randn(2, 12, 16 if reduction_prev else 8, 16 if reduction_prev else 8)
    s1 = torch.randn(2, 10, 8, 8)
    out = cell(s0, s1, torch.softmax(alpha, -1))
    size = 4 if reduction else 8
    assert out.shape == (2, 32, size, size)
    out.square().mean().backward()
    assert alpha.grad is not None and alpha.grad.abs().sum() > 0
    assert all(p.grad is not None for p in cell.parameters())


def test_dual_branch_cell_gradients_reach_both_alphas() -> None:
    torch.manual_seed(0)
    cell = DualBranchSearchCell(DARTS_PRIMITIVES, 8, 8, 4, False, "eca")
    a_n = torch.zeros(14, 8, requires_grad=True)
    a_r = torch.zeros(14, 8, requires_grad=True)
    out = cell(torch.randn(2, 8, 8, 8), torch.randn(2, 8, 8, 8), torch.softmax(a_n, -1), torch.softmax(a_r, -1))
    assert out.shape == (2, 16, 8, 8)
    out.square().mean().backward()
    assert a_n.grad.abs().sum() > 0 and a_r.grad.abs().sum() > 0
    assert cell.fusion.reduce[1].weight.grad is not None


@pytest.mark.parametrize("reduction", [False, True])
def test_derived_cell_shapes(reduction: bool) -> None:
    ops = [("sep_conv_3x3", 0), ("skip_connect", 1), ("max_pool_3x3", 0), ("dil_conv_5x5", 2),
           ("avg_pool_3x3", 1), ("sep_conv_5x5", 3), ("dil_conv_3x3", 4), ("skip_connect", 0)]
    cell = Cell(ops, [2, 3, 4, 5], 12, 10, 8, reduction, False)
    out = cell(torch.randn(2, 12, 8, 8), torch.randn(2, 10, 8, 8), drop_prob=0.2)
    assert out.shape == (2, 32, 4 if reduction else 8, 4 if reduction else 8)
    out.sum().backward()
    assert cell.ops[0][0][1].weight.grad is not None


def test_nb201_cells() -> None:
    torch.manual_seed(0)
    alpha = torch.zeros(6, 5, requires_grad=True)
    cell = NB201SearchCell(8)
    out = cell(torch.randn(2, 8, 8, 8), torch.softmax(alpha, -1))
    assert out.shape == (2, 8, 8, 8)
    out.square().mean().backward()
    assert alpha.grad.abs().sum() > 0
    derived = NB201Cell(8, (3, 3, 1, 0, 4, 2))
    assert derived(torch.randn(2, 8, 8, 8)).shape == (2, 8, 8, 8)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [(8, 8), (7, 9), (1, 1)])
def test_fast_pools_equal_torch_pools(stride: int, size: tuple[int, int], layout: torch.memory_format) -> None:
    from rdnas_space.ops import avg_pool_3x3, max_pool_3x3

    x = torch.randn(2, 3, *size).contiguous(memory_format=layout).requires_grad_(True)
    ref_max = torch.nn.functional.max_pool2d(x, 3, stride, 1)
    with torch.no_grad():  # the separable path (with gradients the library kernel is used)
        torch.testing.assert_close(max_pool_3x3(x, stride), ref_max.detach())
    torch.testing.assert_close(max_pool_3x3(x, stride), ref_max)
    fast_avg = avg_pool_3x3(x, stride)
    torch.testing.assert_close(fast_avg, torch.nn.functional.avg_pool2d(x, 3, stride, 1, count_include_pad=False))
    (g_fast,) = torch.autograd.grad(fast_avg.sum(), x)
    (g_ref,) = torch.autograd.grad(torch.nn.functional.avg_pool2d(x, 3, stride, 1, count_include_pad=False).sum(), x)
    torch.testing.assert_close(g_fast, g_ref)
