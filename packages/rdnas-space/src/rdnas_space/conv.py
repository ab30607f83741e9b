"""The one door every convolution of the project goes through: a guard around two oneDNN bugs on CPU.

Known upstream issues (``docs/results.md``, "Known upstream issues"), both in torch 2.14.1's CPU build and
both in the weight gradient of a channels_last convolution:

- oneDNN's ``jit_1x1`` backward-weights kernel corrupts the heap when the convolution is 1x1 with stride 2 and
  2 to 7 input channels (less than one of oneDNN's 8-channel blocks), whatever the output channels.  At one
  OpenMP thread the process aborts ("double free or corruption") or segfaults; at two it often spins forever;
  sometimes it only returns a wrong weight gradient.  ``tools/conv_sweep.py`` measures the set.
- in bfloat16 (``precision=bf16``), oneDNN's ``jit_bf16`` backward-weights kernel returns garbage (values
  near 1e34, inf or NaN) for depthwise convolutions with dilation 2 (DARTS' ``dil_conv``) on inputs of some
  widths (29-32 and 48 measured), at one thread and at two.

The forward pass and the input gradient are not affected, nor is any NCHW convolution.

:func:`conv2d` runs exactly those convolutions in NCHW (input and weight made contiguous, the output put
back in channels_last), and every other convolution as ``torch.nn.functional.conv2d`` does.  Every
convolution module of rdnas-space is a :class:`Conv2d`, which calls it; :func:`to_channels_last` converts any
model (an advbench ResNet as well) to channels_last and routes its plain ``nn.Conv2d`` modules through the
same guard, so no convolution the project runs can reach the bad kernel.

The same door holds two exact rewrites of DARTS' dilated depthwise convolutions (``dil_conv``) on CPU in
float32, where oneDNN has no direct kernel for their gradients and falls back to im2col and GEMM, several
times slower than the forward pass (docs/results.md, "Where the supernet's step goes"):

- stride 2 with an even padding reads only the even rows and columns of its input, so it *is* a stride-1,
  undilated convolution of ``x[:, :, ::2, ::2]`` with half the padding (:func:`_dilated_stride2`), whose
  gradients oneDNN computes with its direct depthwise kernels;
- stride 1 with "same" padding keeps oneDNN's forward, and its backward is written with fast kernels
  (:class:`_DilatedDepthwise`): the input gradient is the same dilated convolution of the output gradient with
  the kernel flipped, and each weight's gradient is the sum of the output gradient times the input shifted by
  that weight's offset.

Both apply only when a gradient is needed (training, attacks); without one the library's forward is faster.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

import torch
from torch import nn

__all__ = ["Conv2d", "conv2d", "conv_is_hazardous", "to_channels_last", "guard_convolutions", "library_kernels",
           "rewrites_enabled"]

_REWRITES: ContextVar[bool] = ContextVar("rdnas_space_cpu_rewrites", default=True)


@contextmanager
def library_kernels() -> Iterator[None]:
    """Within the block, the CPU rewrites of this module and of :class:`~rdnas_space.BatchNorm2d` are off and
    every layer runs the library's own kernel (the guard of the faulty kernels stays on): the baseline of the
    benchmarks, and a way to rule the rewrites out when a result looks wrong."""
    token = _REWRITES.set(False)
    try:
        yield
    finally:
        _REWRITES.reset(token)


def rewrites_enabled() -> bool:
    """Whether the CPU rewrites are on (they are, outside :func:`library_kernels`)."""
    return _REWRITES.get()

_BLOCK = 8
"""oneDNN's input-channel block on AVX2/AVX-512 (weights ``ABcd8b8a``): inputs of 2 to 7 channels fail."""


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[-1]))


def _has_nchw_strides(t: torch.Tensor) -> bool:
    """Exactly the strides of a fresh NCHW tensor.  ``is_contiguous()`` ignores the strides of size-1 dims,
    so a 1x1 weight moved to channels_last (strides ``(C, 1, C, C)``) passes it, yet torch reads its strides
    as channels_last and picks the channels_last kernel."""
    expected, step = [], 1
    for size in reversed(t.shape):
        expected.append(step)
        step *= max(size, 1)
    return t.stride() == tuple(reversed(expected))


def _as_nchw(t: torch.Tensor) -> torch.Tensor:
    return t if _has_nchw_strides(t) else t.clone(memory_format=torch.contiguous_format)


def _runs_in_bf16(x: torch.Tensor) -> bool:
    return x.dtype == torch.bfloat16 or (torch.is_autocast_enabled("cpu")
                                         and torch.get_autocast_dtype("cpu") == torch.bfloat16)


def conv_is_hazardous(x: torch.Tensor, weight: torch.Tensor, stride: int | tuple[int, ...] = 1,
                      groups: int = 1, dilation: int | tuple[int, ...] = 1) -> bool:
    """Whether ``conv2d(x, weight, stride=stride, groups=groups, dilation=dilation)`` would run a faulty oneDNN
    kernel.

    Only a CPU convolution whose input or weight does not have NCHW strides (channels_last, or a strided view
    of it such as ``FactorizedReduce``'s offset slice: torch sends both to the channels_last kernel) and whose
    weight gradient will be computed can be, and then when it is either
    - 1x1 with a stride above 1, no grouping and 2 to 7 input channels (measured: stride 2, any of 1 to 24
      output channels; 1 and 8 to 40 input channels are safe), or
    - grouped with a dilation above 1 and run in bfloat16 (an input of that type or CPU autocast to it).
    """
    if x.device.type != "cpu" or x.dim() != 4 or not (torch.is_grad_enabled() and weight.requires_grad):
        return False
    c_in = weight.shape[1]
    narrow_1x1 = (groups == 1 and weight.shape[2:] == (1, 1) and max(_pair(stride)) >= 2
                  and 2 <= c_in < _BLOCK)
    dilated_bf16 = groups > 1 and max(_pair(dilation)) > 1 and _runs_in_bf16(x)
    if not (narrow_1x1 or dilated_bf16):
        return False
    return not (_has_nchw_strides(x) and _has_nchw_strides(weight))


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           stride: int | tuple[int, ...] = 1, padding: int | str | tuple[int, ...] = 0,
           dilation: int | tuple[int, ...] = 1, groups: int = 1) -> torch.Tensor:
    """``torch.nn.functional.conv2d`` that never reaches the faulty kernel (:func:`conv_is_hazardous`).

    A hazardous convolution runs on NCHW copies of its input and weight; its output is returned in
    channels_last when the input had its channels innermost, so the layout of the network is kept.  Dilated
    depthwise convolutions on CPU take the exact rewrites of the module docstring.
    """
    rewrite = _dilated_depthwise_rewrite(x, weight, stride, padding, dilation, groups)
    if rewrite == "stride2":
        return _dilated_stride2(x, weight, bias, padding)
    if rewrite == "backward":
        y = _DilatedDepthwise.apply(x, weight, _pair(padding)[0], _pair(dilation)[0])
        return y if bias is None else y + bias.view(1, -1, 1, 1)
    if not conv_is_hazardous(x, weight, stride, groups, dilation):
        return nn.functional.conv2d(x, weight, bias, stride, padding, dilation, groups)
    y = nn.functional.conv2d(_as_nchw(x), _as_nchw(weight), bias, stride, padding, dilation, groups)
    return y.contiguous(memory_format=torch.channels_last) if x.stride(1) == 1 else y


def _dilated_depthwise_rewrite(x: torch.Tensor, weight: torch.Tensor, stride: int | tuple[int, ...],
                               padding: int | str | tuple[int, ...], dilation: int | tuple[int, ...],
                               groups: int) -> str | None:
    """Which exact rewrite a convolution takes: ``"stride2"``, ``"backward"`` (stride 1) or None (the library's
    convolution).  Only float32 depthwise convolutions on CPU that need a gradient, with a square kernel, equal
    dilations above 1 and equal integer paddings qualify: without gradients the library's forward is faster
    (measured: the stride-2 rewrite's forward alone is up to 5x slower, its forward and backward 3-8x faster)."""
    if (not _REWRITES.get() or x.device.type != "cpu" or x.dim() != 4 or x.dtype != torch.float32
            or weight.dtype != torch.float32
            or isinstance(padding, str) or groups == 1 or groups != x.shape[1] or weight.shape[0] != groups
            or weight.shape[1] != 1 or weight.shape[2] != weight.shape[3] or _runs_in_bf16(x)):
        return None
    (s_h, s_w), (d_h, d_w), (p_h, p_w) = _pair(stride), _pair(dilation), _pair(padding)
    if d_h != d_w or d_h < 2 or p_h != p_w:
        return None
    if not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)):
        return None  # the library's forward passes are fast: only the gradients are worth rewriting
    k = weight.shape[-1]
    if (s_h, s_w) == (2, 2) and d_h == 2 and p_h % 2 == 0:
        h, w = x.shape[-2:]
        native = [(n + 2 * p_h - d_h * (k - 1) - 1) // 2 + 1 for n in (h, w)]
        subsampled = [(n + 1) // 2 + p_h - k + 1 for n in (h, w)]
        return "stride2" if native == subsampled else None
    if (s_h, s_w) == (1, 1) and 2 * p_h == d_h * (k - 1):
        return "backward"
    return None


def _dilated_stride2(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                     padding: int | tuple[int, ...]) -> torch.Tensor:
    """A stride-2, dilation-2 depthwise convolution with even padding ``p``: every tap reads an even row and
    column, so it equals the undilated stride-1 convolution of the even rows and columns with padding p/2."""
    p = _pair(padding)[0] // 2
    y = nn.functional.conv2d(x[:, :, ::2, ::2], weight, bias, 1, p, 1, x.shape[1])
    return y.contiguous(memory_format=torch.channels_last) if x.stride(1) == 1 and x.shape[1] > 1 else y


class _DilatedDepthwise(torch.autograd.Function):
    """A stride-1 dilated depthwise convolution with "same" padding, with a backward of fast kernels.

    oneDNN computes this convolution's gradients with im2col and GEMM (several times its forward's cost).
    Here the input gradient is the forward convolution of the output gradient with the flipped kernel (for
    stride 1 and same padding the transposed convolution is that), and the gradient of weight ``(c, a, b)``
    is ``sum(g[:, c] * x_pad[:, c, a*d : a*d + H, b*d : b*d + W])`` (one product and sum per tap, vectorised
    over channels in channels_last).
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, weight: torch.Tensor, padding: int,
                dilation: int) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.padding, ctx.dilation = padding, dilation
        return nn.functional.conv2d(x, weight, None, 1, padding, dilation, x.shape[1])

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
                 ) -> tuple[torch.Tensor | None, torch.Tensor | None, None, None]:
        x, weight = ctx.saved_tensors
        p, d = ctx.padding, ctx.dilation
        c, k = x.shape[1], weight.shape[-1]
        if x.stride(1) == 1 and x.shape[1] > 1:
            grad = grad.contiguous(memory_format=torch.channels_last)
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = nn.functional.conv2d(grad, weight.flip(2, 3), None, 1, p, d, c)
        if ctx.needs_input_grad[1]:
            h, w = x.shape[-2:]
            padded = nn.functional.pad(x, (p, p, p, p))
            taps = [(grad * padded[:, :, a * d : a * d + h, b * d : b * d + w]).sum(dim=(0, 2, 3))
                    for a in range(k) for b in range(k)]
            grad_w = torch.empty_like(weight).copy_(torch.stack(taps, dim=1).view(weight.shape))  # its strides
        return grad_x, grad_w, None, None


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` whose convolution goes through :func:`conv2d` (same parameters, same state dict)."""

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor,  # noqa: A002 (torch's name)
                      bias: torch.Tensor | None) -> torch.Tensor:
        if self.padding_mode != "zeros":
            return super()._conv_forward(input, weight, bias)
        return conv2d(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)


M = TypeVar("M", bound=nn.Module)


def guard_convolutions(model: M) -> M:
    """Route every plain ``nn.Conv2d`` of ``model`` through :func:`conv2d`, in place; returns ``model``.

    The modules keep their parameters, buffers and hooks: only their class becomes :class:`Conv2d`, which
    adds no state.  Subclasses of ``nn.Conv2d`` with a forward of their own are left as they are.
    """
    for module in model.modules():
        if type(module) is nn.Conv2d:
            module.__class__ = Conv2d
    return model


def to_channels_last(model: M) -> M:
    """``model.to(memory_format=torch.channels_last)`` with every convolution guarded; returns ``model``."""
    return guard_convolutions(model).to(memory_format=torch.channels_last)
