"""Per-coalition batch statistics: a stacked coalition pass equals each coalition normalised on its own."""

from __future__ import annotations

import copy

import pytest
import torch
from rdnas_space import (
    BatchNorm2d,
    NB201Supernet,
    Supernet,
    SupernetConfig,
    group_batch_statistics,
    library_kernels,
    to_channels_last,
)
from torch import nn


def _batch_statistics_only(net: nn.Module) -> nn.Module:
    """A copy whose BatchNorm layers never track running statistics: each forward normalises by its batch."""
    ref = copy.deepcopy(net).train()
    for m in ref.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.track_running_stats, m.running_mean, m.running_var, m.num_batches_tracked = False, None, None, None
    return ref


def _trained(net: nn.Module) -> nn.Module:
    """Running statistics far from a fresh layer's (so using them instead of batch statistics shows)."""
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(8, 3, 16, 16) * 3)
    return net.eval()


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("kind", ["nb201", "darts"])
def test_stacked_coalitions_equal_each_coalition_on_its_own_batch(kind: str, layout: str) -> None:
    torch.manual_seed(0)
    net = NB201Supernet(4, 1) if kind == "nb201" else Supernet(SupernetConfig(channels=2, n_cells=3))
    net = _trained(net)
    branch = net.branches[0]
    x = torch.rand(5, 3, 16, 16)
    coalitions = torch.rand(4, *net.alpha_shape) < 0.6
    if layout == "channels_last":
        net, x = to_channels_last(net), x.contiguous(memory_format=torch.channels_last)
    before = copy.deepcopy(net.state_dict())
    with group_batch_statistics(len(x)):
        shared = net.forward_coalitions(x, branch, coalitions)  # the shared-work path: groups of 5 after masking
        naive = super(type(net), net).forward_coalitions(x, branch, coalitions)  # stacked 4 x 5 from the start
    alone = _batch_statistics_only(net)
    want = torch.stack([alone(x, {branch: coalitions[i]}) for i in range(len(coalitions))])
    torch.testing.assert_close(shared, want, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(naive, want, rtol=1e-4, atol=1e-5)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # running statistics untouched
    with torch.no_grad():
        running = net.forward_coalitions(x, branch, coalitions)
    assert (running - want).abs().max() > 1e-2  # the running statistics would have given other values


def test_outside_the_context_it_is_torch_batchnorm() -> None:
    torch.manual_seed(0)
    ours, theirs = BatchNorm2d(3, affine=True), nn.BatchNorm2d(3, affine=True)
    with torch.no_grad():
        ours.weight.uniform_(0.5, 2), ours.bias.uniform_(-1, 1)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(6, 3, 4, 4) * 2 + 1
    torch.testing.assert_close(ours(x), theirs(x))  # training mode: batch statistics, running ones updated
    torch.testing.assert_close(ours.running_mean, theirs.running_mean)
    ours.eval(), theirs.eval()
    torch.testing.assert_close(ours(x), theirs(x))
    with group_batch_statistics(3):  # two groups of three, each by its own statistics, affine applied
        got = ours(x)
    for g in (slice(0, 3), slice(3, 6)):
        mean = x[g].mean(dim=(0, 2, 3), keepdim=True)
        var = x[g].var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        want = (x[g] - mean) / torch.sqrt(var + ours.eps) * ours.weight.view(1, -1, 1, 1) + ours.bias.view(1, -1, 1, 1)
        torch.testing.assert_close(got[g], want, rtol=1e-5, atol=1e-5)


def test_a_batch_that_does_not_split_into_groups_is_refused() -> None:
    with group_batch_statistics(4), pytest.raises(ValueError, match="groups of 4"):
        BatchNorm2d(2)(torch.rand(6, 2, 3, 3))
    with pytest.raises(ValueError, match="at least one sample"), group_batch_statistics(0):
        pass


@pytest.mark.parametrize("channels", [1, 4, 8, 12, 16])
@pytest.mark.parametrize("affine", [False, True])
def test_narrow_channels_last_batch_norm_equals_torch(channels: int, affine: bool) -> None:
    """The NCHW detour of narrow channels_last layers (batch statistics) changes nothing but speed: output,
    layout, gradients and running statistics match ``nn.BatchNorm2d``'s; eval mode is the library's own."""
    torch.manual_seed(0)
    ours, ref = BatchNorm2d(channels, affine=affine), nn.BatchNorm2d(channels, affine=affine)
    if affine:
        with torch.no_grad():
            ours.weight.normal_(), ours.bias.normal_()
        ref.load_state_dict(ours.state_dict())
    x = (torch.randn(6, channels, 10, 10) * 3 + 1).contiguous(memory_format=torch.channels_last).requires_grad_()
    out, expected = ours(x), ref(x)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, expected)
    grad = torch.randn_like(out)
    params = [x, *ours.parameters()]
    for o, r in zip(torch.autograd.grad(out, params, grad), torch.autograd.grad(expected, [x, *ref.parameters()], grad),
                    strict=True):
        torch.testing.assert_close(o, r, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.running_mean, ref.running_mean)
    torch.testing.assert_close(ours.running_var, ref.running_var)
    ours.eval(), ref.eval()
    torch.testing.assert_close(ours(x), ref(x))


def test_library_kernels_turns_the_detour_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside ``library_kernels()`` a narrow channels_last layer calls the library with its channels_last input."""
    seen = []
    real = nn.functional.batch_norm

    def spy(x, *args, **kwargs):
        seen.append(x.is_contiguous())
        return real(x, *args, **kwargs)

    monkeypatch.setattr(nn.functional, "batch_norm", spy)
    layer = BatchNorm2d(4).train()
    x = torch.randn(2, 4, 6, 6).contiguous(memory_format=torch.channels_last)
    layer(x)
    with library_kernels():
        layer(x)
    assert seen == [True, False]
