"""Candidate operations of the DARTS and NAS-Bench-201 spaces, in name registries.

Definitions follow the original DARTS code (Liu et al., 2019) and NAS-Bench-201
(Dong & Yang, 2020).  Every builder has the signature
``builder(C_in, C_out, stride, affine) -> nn.Module``; ``affine=False`` is what the
search networks use for BatchNorm.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .batchnorm import BatchNorm2d
from .conv import Conv2d

__all__ = [
    "DARTS_OPS",
    "NB201_OPS",
    "DARTS_PRIMITIVES",
    "NB201_PRIMITIVES",
    "OpBuilder",
    "ReLUConvBN",
    "DilConv",
    "SepConv",
    "Identity",
    "Zero",
    "FactorizedReduce",
    "Pool",
    "build_op",
    "max_pool_3x3",
    "avg_pool_3x3",
]

OpBuilder = Callable[[int, int, int, bool], nn.Module]


class _PreActivated(nn.Sequential):
    """A sequence whose first module is a ReLU.

    :meth:`forward_from_relu` runs the rest on an input that is already
    ``relu(x)``, so a cell can compute the ReLU of a node once and share it among
    all the operations reading that node.
    """

    starts_with_relu = True

    def forward_from_relu(self, xr: torch.Tensor) -> torch.Tensor:
        for module in list(self)[1:]:
            xr = module(xr)
        return xr


class ReLUConvBN(_PreActivated):
    """ReLU -> Conv(k) -> BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True,
                 dilation: int = 1) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, dilation=dilation, bias=False),
            BatchNorm2d(c_out, affine=affine),
        )


class DilConv(_PreActivated):
    """ReLU -> depthwise dilated conv -> pointwise conv -> BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int,
                 affine: bool = True) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            Conv2d(c_in, c_in, kernel, stride, padding, dilation=dilation, groups=c_in, bias=False),
            Conv2d(c_in, c_out, 1, bias=False),
            BatchNorm2d(c_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two stacked ReLU -> depthwise -> pointwise -> BN blocks (the first carries the stride)."""

    starts_with_relu = True

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True) -> None:
        super().__init__(
            DilConv(c_in, c_in, kernel, stride, padding, 1, affine),
            DilConv(c_in, c_out, kernel, 1, padding, 1, affine),
        )

    def forward_from_relu(self, xr: torch.Tensor) -> torch.Tensor:
        return self[1](self[0].forward_from_relu(xr))


class Identity(nn.Module):
    """Skip connection."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    """The ``none`` operation: zeros of the output shape."""

    def __init__(self, stride: int, c_out: int | None = None) -> None:
        super().__init__()
        self.stride = stride
        self.c_out = c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x[:, :, :: self.stride, :: self.stride]
        if self.c_out is not None and self.c_out != x.shape[1]:
            shape = (out.shape[0], self.c_out, out.shape[2], out.shape[3])
            return out.new_zeros(shape)
        return out.mul(0.0)


class FactorizedReduce(nn.Module):
    """Stride-2 skip: ReLU, two offset 1x1 stride-2 convs, concatenated, then BN.

    The two paths give ``ceil(c_out / 2)`` and ``floor(c_out / 2)`` channels (DARTS halves an even
    ``c_out``); with ``c_out = 1`` only the first path exists (``conv_2`` is None).
    """

    starts_with_relu = True

    def __init__(self, c_in: int, c_out: int, affine: bool = True) -> None:
        super().__init__()
        if c_out < 1:
            raise ValueError(f"FactorizedReduce needs at least one output channel, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = Conv2d(c_in, c_out // 2, 1, stride=2, bias=False) if c_out > 1 else None
        self.bn = BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_from_relu(self.relu(x))

    def forward_from_relu(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv_2 is None:
            return self.bn(self.conv_1(x))
        y = x[:, :, 1:, 1:]
        if x.shape[-1] % 2 or x.shape[-2] % 2:  # odd sizes: pad so both halves match
            y = nn.functional.pad(y, (0, x.shape[-1] % 2, 0, x.shape[-2] % 2))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(y)], dim=1))


def max_pool_3x3(x: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """3x3 max pooling with padding 1, as two separable passes of elementwise maxima.

    Equal to ``F.max_pool2d(x, 3, stride, 1)``, but much faster on CPU for the small
    channel counts of search networks (the library kernel is slow there).  When a
    gradient is needed the library kernel is used: the backward of elementwise
    maxima costs far more than the forward saves.
    """
    if torch.is_grad_enabled() and x.requires_grad:
        return nn.functional.max_pool2d(x, 3, stride, 1)
    p = nn.functional.pad(x, (1, 1, 1, 1), value=float("-inf"))
    rows = torch.maximum(torch.maximum(p[:, :, :, :-2], p[:, :, :, 1:-1]), p[:, :, :, 2:])
    out = torch.maximum(torch.maximum(rows[:, :, :-2], rows[:, :, 1:-1]), rows[:, :, 2:])
    return out if stride == 1 else out[:, :, ::stride, ::stride]


def avg_pool_3x3(x: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """3x3 average pooling with padding 1, excluding the padding from the count.

    Equal to ``F.avg_pool2d(x, 3, stride, 1, count_include_pad=False)``, which it is on a channels_last input
    (the library kernel is two to three times faster there than separable sums, forward and backward, at
    the search networks' sizes on CPU); on NCHW inputs, where the library kernel is the slower one, as
    separable sums.
    """
    if x.dim() == 4 and x.shape[1] > 1 and x.is_contiguous(memory_format=torch.channels_last):
        return nn.functional.avg_pool2d(x, 3, stride, 1, count_include_pad=False)
    h, w = x.shape[-2:]
    p = nn.functional.pad(x, (1, 1, 1, 1))
    rows = p[:, :, :, :-2] + p[:, :, :, 1:-1] + p[:, :, :, 2:]
    total = rows[:, :, :-2] + rows[:, :, 1:-1] + rows[:, :, 2:]
    count_h = torch.full((h,), 3.0, dtype=x.dtype, device=x.device)
    count_w = torch.full((w,), 3.0, dtype=x.dtype, device=x.device)
    count_h[0] -= 1
    count_h[-1] -= 1
    count_w[0] -= 1
    count_w[-1] -= 1
    out = total / (count_h[:, None] * count_w[None, :])
    return out if stride == 1 else out[:, :, ::stride, ::stride]


class Pool(nn.Module):
    """3x3 max or average pooling (average excludes padding), optionally a 1x1 conv first
    when the channel count changes (NAS-Bench-201)."""

    def __init__(self, mode: str, c_in: int, c_out: int, stride: int, affine: bool = True) -> None:
        super().__init__()
        self.pre = None if c_in == c_out else ReLUConvBN(c_in, c_out, 1, 1, 0, affine)
        self.mode, self.stride = mode, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x if self.pre is None else self.pre(x)
        return max_pool_3x3(x, self.stride) if self.mode == "max" else avg_pool_3x3(x, self.stride)


def _skip(c_in: int, c_out: int, stride: int, affine: bool) -> nn.Module:
    if stride == 1 and c_in == c_out:
        return Identity()
    if stride == 2:
        return FactorizedReduce(c_in, c_out, affine)
    return ReLUConvBN(c_in, c_out, 1, 1, 0, affine)


DARTS_OPS: dict[str, OpBuilder] = {
    "none": lambda ci, co, s, a: Zero(s, co),
    "max_pool_3x3": lambda ci, co, s, a: Pool("max", ci, co, s, a),
    "avg_pool_3x3": lambda ci, co, s, a: Pool("avg", ci, co, s, a),
    "skip_connect": _skip,
    "sep_conv_3x3": lambda ci, co, s, a: SepConv(ci, co, 3, s, 1, a),
    "sep_conv_5x5": lambda ci, co, s, a: SepConv(ci, co, 5, s, 2, a),
    "dil_conv_3x3": lambda ci, co, s, a: DilConv(ci, co, 3, s, 2, 2, a),
    "dil_conv_5x5": lambda ci, co, s, a: DilConv(ci, co, 5, s, 4, 2, a),
}
"""The eight DARTS primitives, in the order of the original code."""

NB201_OPS: dict[str, OpBuilder] = {
    "none": lambda ci, co, s, a: Zero(s, co),
    "skip_connect": _skip,
    "nor_conv_1x1": lambda ci, co, s, a: ReLUConvBN(ci, co, 1, s, 0, a),
    "nor_conv_3x3": lambda ci, co, s, a: ReLUConvBN(ci, co, 3, s, 1, a),
    "avg_pool_3x3": lambda ci, co, s, a: Pool("avg", ci, co, s, a),
}
"""The five NAS-Bench-201 operations, in the benchmark's order."""

DARTS_PRIMITIVES: tuple[str, ...] = tuple(DARTS_OPS)
NB201_PRIMITIVES: tuple[str, ...] = tuple(NB201_OPS)

_REGISTRIES = {"darts": DARTS_OPS, "nb201": NB201_OPS}


def build_op(space: str, name: str, c_in: int, c_out: int, stride: int = 1, affine: bool = True) -> nn.Module:
    """Build operation ``name`` of ``space`` (``"darts"`` or ``"nb201"``)."""
    if space not in _REGISTRIES:
        raise ValueError(f"unknown space {space!r}; choose one of {sorted(_REGISTRIES)}")
    ops = _REGISTRIES[space]
    if name not in ops:
        raise ValueError(f"unknown {space} operation {name!r}; choose one of {list(ops)}")
    return ops[name](c_in, c_out, stride, affine)
