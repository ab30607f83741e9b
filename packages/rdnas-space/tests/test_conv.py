"""The convolution guard (issue #11): the measured danger set never reaches oneDNN's faulty kernel.

``data/conv_danger_set.json`` is the ``danger.json`` that ``tools/conv_sweep.py`` wrote for this project's
torch pin (docs/results.md, "Known upstream issues").  Work that could crash or hang runs in a subprocess
with a timeout (the ``run_isolated`` fixture), so a regression fails the test instead of taking the test run
down or stalling it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from rdnas_space import (
    DARTS_V2,
    Conv2d,
    Genotype,
    GenotypeNetwork,
    NB201Network,
    NB201Supernet,
    NetworkConfig,
    Supernet,
    SupernetConfig,
    conv2d,
    conv_is_hazardous,
    guard_convolutions,
    library_kernels,
    to_channels_last,
)
from torch import nn

DANGER = json.loads((Path(__file__).parent / "data" / "conv_danger_set.json").read_text())
SHAPES = [(s["c_in"], s["c_out"], s["kernel"], s["stride"], s["dilation"], s["groups"]) for s in DANGER["shapes"]]


_DANGER_SCRIPT = """
import json, sys, torch
from rdnas_space import conv2d
shapes = json.loads(sys.argv[1])
worst = 0.0
for ci, co, k, s, d, g in shapes:
    gen = torch.Generator().manual_seed(ci * 100 + co)
    x64 = torch.rand(20, ci, 32, 32, generator=gen, dtype=torch.float64, requires_grad=True)
    w64 = torch.randn(co, ci // g, k, k, generator=gen, dtype=torch.float64, requires_grad=True)
    kw = dict(stride=s, padding=d * (k // 2), dilation=d, groups=g)
    torch.nn.functional.conv2d(x64, w64, **kw).square().sum().backward()
    for _ in range(3):
        x = x64.detach().float().contiguous(memory_format=torch.channels_last).requires_grad_()
        w = w64.detach().float().contiguous(memory_format=torch.channels_last).requires_grad_()
        y = conv2d(x, w, **kw)
        assert y.is_contiguous(memory_format=torch.channels_last)
        y.square().sum().backward()
        for got, ref in ((w.grad, w64.grad), (x.grad, x64.grad)):
            worst = max(worst, float((got.double() - ref).abs().max() / ref.abs().max().clamp_min(1e-12)))
print(json.dumps({"cases": len(shapes), "worst_rel_err": worst}))
"""


@pytest.mark.parametrize("threads", [1, 2])
def test_every_dangerous_shape_runs_correctly_through_the_guard(threads: int, run_isolated) -> None:
    assert len(SHAPES) == 60  # the measured set: 1x1 stride-2 convolutions from 2..7 channels into 1..8, 16, 24
    out = run_isolated(_DANGER_SCRIPT, threads, timeout=240, args=[json.dumps(SHAPES)])
    assert out["cases"] == len(SHAPES)
    assert out["worst_rel_err"] < 1e-4


def _grids() -> list[tuple[int, int, int, int]]:
    """The dense shapes both sweeps ran: 1..8 in and out at stride 1 and 2, and 1..40 in at stride 2."""
    small = [(ci, co, k, s) for ci in range(1, 9) for co in range(1, 9) for k in (1, 3) for s in (1, 2)]
    wide = [(ci, co, k, 2) for ci in range(1, 41) for co in (1, 2, 3, 8, 16, 24) for k in (1, 3)]
    return sorted(set(small + wide))


def test_hazard_predicate_matches_the_measured_set() -> None:
    """Over every dense shape the sweeps ran, the predicate flags exactly the measured shapes, and only for a
    channels_last CPU input whose weight gradient is needed."""
    for c_in, c_out, kernel, stride in _grids():
        w = torch.zeros(c_out, c_in, kernel, kernel, requires_grad=True)
        x = torch.zeros(2, c_in, 8, 8)
        cl = x.contiguous(memory_format=torch.channels_last)
        measured = (c_in, c_out, kernel, stride, 1, 1) in SHAPES
        assert conv_is_hazardous(cl, w, stride) == measured, (c_in, c_out, kernel, stride)
        if c_in > 1:  # a 1-channel input is both layouts at once
            assert not conv_is_hazardous(x, w, stride)
            assert conv_is_hazardous(cl[:, :, 1:, 1:], w, stride) == measured  # a strided channels_last view
        assert not conv_is_hazardous(cl, w.detach(), stride)
        with torch.no_grad():
            assert not conv_is_hazardous(cl, w, stride)


@pytest.mark.parametrize("kernel", [3, 5])
def test_bf16_dilated_depthwise_weight_gradients_are_right_through_the_guard(kernel: int) -> None:
    """DARTS' dil_conv in bf16 autocast on channels_last: the guard's weight gradient matches an fp32 NCHW
    reference to bfloat16 accuracy (oneDNN's own kernel returns values near 1e34, inf or NaN here)."""
    torch.manual_seed(0)
    pad = kernel - 1
    for c in (2, 4, 16):
        conv = to_channels_last(Conv2d(c, c, kernel, padding=pad, dilation=2, groups=c, bias=False))
        x = torch.relu(torch.randn(8, c, 32, 32)).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert conv_is_hazardous(x, conv.weight, 1, c, 2)
            assert not conv_is_hazardous(x, conv.weight, 1, c, 1)  # undilated depthwise is fine
            nchw = torch.contiguous_format
            assert not conv_is_hazardous(x.clone(memory_format=nchw), conv.weight.clone(memory_format=nchw), 1, c,
                                         2)  # NCHW is fine
            out = conv(x)
        assert out.dtype == torch.bfloat16 and out.is_contiguous(memory_format=torch.channels_last)
        g = torch.randn(out.shape)
        out.backward(g.to(out.dtype))
        w = conv.weight.detach().contiguous().requires_grad_()
        (nn.functional.conv2d(x.contiguous(), w, None, 1, pad, 2, c) * g).sum().backward()
        assert float((conv.weight.grad - w.grad).abs().max() / w.grad.abs().max()) < 0.05, c
        assert not conv_is_hazardous(x, conv.weight, 1, c, 2)  # fp32, outside autocast


def test_guarded_convolution_equals_the_library_one() -> None:
    torch.manual_seed(0)
    plain = nn.Conv2d(6, 4, 1, stride=2, bias=True)
    guarded = Conv2d(6, 4, 1, stride=2, bias=True)
    guarded.load_state_dict(plain.state_dict())
    x = torch.randn(4, 6, 9, 9)
    ref = plain(x)
    ref.square().sum().backward()
    to_channels_last(guarded)
    xc = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    out = guarded(xc)
    assert out.is_contiguous(memory_format=torch.channels_last)
    out.square().sum().backward()
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(guarded.weight.grad, plain.weight.grad)
    torch.testing.assert_close(guarded.bias.grad, plain.bias.grad)
    assert xc.grad.shape == x.shape
    w = torch.randn(3, 6, 3, 3)
    torch.testing.assert_close(conv2d(x, w, None, 1, 1), nn.functional.conv2d(x, w, None, 1, 1))


def test_guard_convolutions_converts_plain_modules_in_place() -> None:
    model = nn.Sequential(nn.Conv2d(3, 5, 1, stride=2), nn.BatchNorm2d(5), nn.Conv2d(5, 2, 3, padding=1))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert guard_convolutions(model) is model
    assert all(type(m) is Conv2d for m in (model[0], model[2]))
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    to_channels_last(model)
    assert model[2].weight.is_contiguous(memory_format=torch.channels_last)


def _dual_genotype() -> Genotype:
    return Genotype(normal=DARTS_V2.normal, normal_concat=DARTS_V2.normal_concat, reduce=DARTS_V2.reduce,
                    reduce_concat=DARTS_V2.reduce_concat, robust=DARTS_V2.normal, robust_concat=DARTS_V2.normal_concat)


def test_no_plain_conv2d_in_any_network_of_the_space() -> None:
    """Every convolution module of rdnas-space goes through the guard, whatever layout a user picks."""
    nets = [Supernet(SupernetConfig(channels=2, n_cells=3)), Supernet(SupernetConfig(channels=2, n_cells=3,
                                                                                      fusion="cbam")),
            NB201Supernet(2, 1), GenotypeNetwork(_dual_genotype(), NetworkConfig(channels=2, n_cells=3,
                                                                                  auxiliary=True)),
            NB201Network("|nor_conv_1x1~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_3x3~1|skip_connect~2|",
                         channels=2, n_per_stage=1)]
    for net in nets:
        plain = [name for name, m in net.named_modules() if isinstance(m, nn.Conv2d) and type(m) is not Conv2d]
        assert not plain, plain


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("size", [(32, 32), (15, 15), (7, 9)])
def test_dilated_depthwise_rewrites_equal_the_library_convolution(size: tuple[int, int], kernel: int, stride: int,
                                                                  layout: str) -> None:
    """DARTS' ``dil_conv`` (dilation 2, padding 2 * (k - 1) / 2 * 2) through the exact rewrites: the same output,
    layout and gradients (input, weight, bias) as ``F.conv2d``, to float tolerance."""
    torch.manual_seed(0)
    c, pad = 6, kernel - 1
    x = torch.randn(5, c, *size)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    w = torch.randn(c, 1, kernel, kernel)
    if layout == "channels_last":  # the strides .to(memory_format=torch.channels_last) gives a module's weight
        w = torch.randn(c, kernel, kernel, 1).permute(0, 3, 1, 2)
    w.requires_grad_()
    b = torch.randn(c, requires_grad=True)
    ref = nn.functional.conv2d(x, w, b, stride, pad, 2, c)
    out = conv2d(x, w, b, stride, pad, 2, c)
    assert out.shape == ref.shape
    assert out.is_contiguous(memory_format=torch.channels_last) == ref.is_contiguous(memory_format=torch.channels_last)
    grad = torch.randn_like(ref)
    grads = torch.autograd.grad(out, (x, w, b), grad)
    for r, o in zip(torch.autograd.grad(ref, (x, w, b), grad), grads, strict=True):
        torch.testing.assert_close(o, r, rtol=1e-5, atol=1e-4)
    assert grads[1].stride() == w.stride()  # DDP's gradient buckets expect the weight's strides
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_dilated_depthwise_convolutions_of_the_space_take_the_rewrites() -> None:
    """A dil_conv that needs a gradient is routed to a rewrite on CPU; forward-only, CUDA, bf16, undilated and
    grouped-but-not-depthwise convolutions are not."""
    from rdnas_space.conv import _dilated_depthwise_rewrite as route

    x = torch.randn(2, 8, 16, 16).contiguous(memory_format=torch.channels_last).requires_grad_()
    w = torch.randn(8, 1, 3, 3, requires_grad=True)
    assert route(x, w, 2, 2, 2, 8) == "stride2"
    assert route(x, torch.randn(8, 1, 5, 5), 2, 4, 2, 8) == "stride2"
    assert route(x, w, 1, 2, 2, 8) == "backward"
    with torch.no_grad():  # the library's forward passes are fast: nothing to rewrite
        assert route(x, w, 1, 2, 2, 8) is None and route(x, w, 2, 2, 2, 8) is None
    assert route(x, w, 1, 1, 1, 8) is None  # undilated
    assert route(x, torch.randn(4, 2, 3, 3), 1, 2, 2, 4) is None  # grouped, not depthwise
    assert route(x.bfloat16(), w.bfloat16(), 1, 2, 2, 8) is None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert route(x, w, 1, 2, 2, 8) is None
    with library_kernels():
        assert route(x, w, 2, 2, 2, 8) is None and route(x, w, 1, 2, 2, 8) is None
    assert route(x, w, 1, 2, 2, 8) == "backward"
    net = to_channels_last(Supernet(SupernetConfig(channels=4, n_cells=3)))
    dilated = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.dilation[0] > 1]
    assert dilated and all(isinstance(m, Conv2d) for m in dilated)
