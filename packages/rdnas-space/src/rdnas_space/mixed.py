"""The mixed edge (eq. 2) with coalition masks.

``out = sum_o w_o * m_o * o(x)`` where ``w = softmax(alpha)`` and ``m`` is a
coalition mask over the edge's operations: ``None`` (all present), one mask
``[O]`` for the whole batch, or one mask per sample ``[B, O]`` so that many
coalitions are evaluated in a single forward pass over a batch stacked once per
coalition.  A masked operation contributes nothing; the remaining weights are
not renormalised unless ``renormalize=True``.  Computation is skipped wherever
the mask is known to zero an operation: the ``none`` operation is never run
(it contributes 0), an operation absent from the whole batch is not run, and an
operation present in at most half of the samples runs on those samples alone
(above half, gathering and scattering costs more than the computation it saves,
so the operation runs on the whole batch with weight 0 where it is absent).

With ``dense = True`` none of that is skipped: every operation but ``none`` runs
on every sample and the mask only multiplies the weights, so no Python branch
depends on the mask's values.  The compiled regions of
:mod:`rdnas_space.compiled` need this: one graph then serves every coalition.
"""

from __future__ import annotations

import torch
from torch import nn

from .batchnorm import BatchNorm2d
from .ops import build_op

__all__ = ["MixedOp", "EdgeMask"]

EdgeMask = torch.Tensor | None


def _gather(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``x[idx]`` keeping channels_last layout (index_select would return NCHW and slow every op after it)."""
    out = x.index_select(0, idx)
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        out = out.contiguous(memory_format=torch.channels_last)
    return out


class MixedOp(nn.Module):
    """A softmax mixture of candidate operations on one edge.

    Args:
        space: ``"darts"`` or ``"nb201"`` (the op registry).
        primitives: names of the candidate operations, in alpha's column order.
        c_in, c_out, stride: edge geometry.
        affine: BatchNorm affine flag (False in search networks).
    """

    def __init__(self, space: str, primitives: tuple[str, ...], c_in: int, c_out: int, stride: int,
                 affine: bool = False) -> None:
        super().__init__()
        self.primitives = tuple(primitives)
        self.stride, self.c_out = stride, c_out
        self.ops = nn.ModuleList(self._build(space, name, c_in, c_out, stride, affine) for name in primitives)
        self._active = [i for i, name in enumerate(primitives) if name != "none"]
        self._preact = [getattr(op, "starts_with_relu", False) for op in self.ops]
        self.dense = False

    @staticmethod
    def _build(space: str, name: str, c_in: int, c_out: int, stride: int, affine: bool) -> nn.Module:
        """The op; in the DARTS space a pooling op gets a BatchNorm without affine, as in the DARTS search code."""
        op = build_op(space, name, c_in, c_out, stride, affine)
        if space == "darts" and "pool" in name:
            op = nn.Sequential(op, BatchNorm2d(c_out, affine=False))
        return op

    def _out_shape(self, x: torch.Tensor, batch: int) -> tuple[int, int, int, int]:
        h = (x.shape[2] + self.stride - 1) // self.stride
        w = (x.shape[3] + self.stride - 1) // self.stride
        return batch, self.c_out, h, w

    def _run(self, i: int, x: torch.Tensor, xr: torch.Tensor | None) -> torch.Tensor:
        if self._preact[i]:
            return self.ops[i].forward_from_relu(torch.relu(x) if xr is None else xr)
        return self.ops[i](x)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, mask: EdgeMask = None,
                xr: torch.Tensor | None = None, renormalize: bool = False) -> torch.Tensor:
        """Mix the operations.

        Args:
            x: input ``[B, C, H, W]``.
            weights: mixture weights ``[O]`` (softmax of this edge's alpha).
            mask: ``None``, bool ``[O]`` or bool ``[B, O]``.
            xr: ``relu(x)`` if the caller already has it (shared among the edge's ops).
            renormalize: rescale the present weights to sum 1 (per sample).
        """
        if self.dense:
            return self._forward_dense(x, weights, mask, xr, renormalize)
        if mask is None:
            out = None
            for i in self._active:
                y = weights[i] * self._run(i, x, xr)
                out = y if out is None else out + y
            return out if out is not None else x.new_zeros(self._out_shape(x, x.shape[0]))
        if mask.dim() == 1:
            return self._forward_shared(x, weights, mask, xr, renormalize)
        return self._forward_per_sample(x, weights, mask, xr, renormalize)

    def _check_sample_mask(self, mask: torch.Tensor, batch: int) -> None:
        if mask.shape != (batch, len(self.ops)):
            raise ValueError(f"per-sample mask must have shape [{batch}, {len(self.ops)}], got {tuple(mask.shape)}")

    def _forward_dense(self, x: torch.Tensor, weights: torch.Tensor, mask: EdgeMask, xr: torch.Tensor | None,
                       renormalize: bool) -> torch.Tensor:
        """Every operation on every sample, weighted by ``w * m`` (a mask's values never steer control flow)."""
        if mask is None:
            w = weights
        else:
            if mask.dim() == 2:
                self._check_sample_mask(mask, x.shape[0])
            w = weights * mask.to(weights.dtype)
            if renormalize:
                w = w / w.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)
        out = None
        for i in self._active:
            wi = w[..., i] if w.dim() == 1 else w[:, i, None, None, None]
            y = wi * self._run(i, x, xr)
            out = y if out is None else out + y
        return out if out is not None else x.new_zeros(self._out_shape(x, x.shape[0]))

    def _forward_shared(self, x: torch.Tensor, weights: torch.Tensor, mask: torch.Tensor,
                        xr: torch.Tensor | None, renormalize: bool) -> torch.Tensor:
        present = mask.detach().cpu().tolist()
        w = weights * mask.to(weights.dtype)
        if renormalize:
            w = w / w.sum().clamp_min(torch.finfo(w.dtype).tiny)
        out = None
        for i in self._active:
            if present[i]:
                y = w[i] * self._run(i, x, xr)
                out = y if out is None else out + y
        return out if out is not None else x.new_zeros(self._out_shape(x, x.shape[0]))

    def _forward_per_sample(self, x: torch.Tensor, weights: torch.Tensor, mask: torch.Tensor,
                            xr: torch.Tensor | None, renormalize: bool) -> torch.Tensor:
        batch = x.shape[0]
        self._check_sample_mask(mask, batch)
        m = mask.to(weights.dtype)
        w = weights[None, :] * m  # [B, O]
        if renormalize:
            w = w / w.sum(dim=1, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)
        counts = mask.sum(dim=0).cpu().tolist()
        # the weighted outputs' type: float32 weights keep the sum in float32 when ops run in bf16 (autocast)
        out = x.new_zeros(self._out_shape(x, batch), dtype=torch.promote_types(x.dtype, w.dtype))
        for i in self._active:
            if counts[i] == 0:
                continue
            if counts[i] * 2 > batch:  # (mostly) present: run on all, zero weight where absent
                out.addcmul_(w[:, i, None, None, None], self._run(i, x, xr))
                continue
            idx = mask[:, i].nonzero().squeeze(1)
            xi = _gather(x, idx)
            xri = None if xr is None else _gather(xr, idx)
            y = w.index_select(0, idx)[:, i, None, None, None] * self._run(i, xi, xri)
            out.index_add_(0, idx, y)
        return out

    def forward_groups(self, x: torch.Tensor, weights: torch.Tensor, group_mask: torch.Tensor,
                       xr: torch.Tensor | None = None, renormalize: bool = False) -> torch.Tensor:
        """Evaluate k coalitions on a *shared* input: ``x`` ``[B, ...]``, ``group_mask`` bool ``[k, O]``.

        Each operation present in any coalition runs once on the B samples; the
        outputs are then mixed per coalition with ``w * mask[k]``.  Returns
        ``[k * B, ...]`` (coalition-major), equal to stacking x k times and using
        per-sample masks, at a fraction of the cost.
        """
        k = group_mask.shape[0]
        w = weights[None, :] * group_mask.to(weights.dtype)  # [k, O]
        if renormalize:
            w = w / w.sum(dim=1, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)
        if self.dense:
            used = self._active
        else:
            present = group_mask.any(dim=0).cpu().tolist()
            used = [i for i in self._active if present[i]]
        if not used:
            return x.new_zeros(self._out_shape(x, k * x.shape[0]))
        ys = torch.stack([self._run(i, x, xr) for i in used])  # [U, B, C, H, W]
        out = torch.einsum("ku,ubchw->kbchw", w[:, used], ys)
        return out.reshape(k * x.shape[0], *out.shape[2:])
