"""BatchNorm that can normalise each coalition of a stacked batch by that coalition's own statistics.

A supernet values k coalitions in one pass over its B validation images stacked k times (or, on the
shared-work path, over B images until the first masked operation and k * B after it).  In eval mode a
BatchNorm normalises with the running statistics of the *whole* mixture it was trained as, which no longer
fit a network with operations removed: the activations of a masked sub-network are shifted and shrunk, and
every later layer sees them through the wrong statistics.  NAS-Bench-201's own weight-sharing baselines avoid
this by never tracking running statistics (``track_running_stats=False``), so that a sub-network is always
normalised by the batch it sees.

Inside :func:`group_batch_statistics` with group size B, every :class:`BatchNorm2d` splits its input
``[G * B, C, H, W]`` into its G consecutive groups of B samples and normalises each group by the mean and the
(biased) variance of its own channels, which is what ``track_running_stats=False`` gives each coalition
evaluated on its own; the running statistics are neither read nor updated.  Outside it the layer is exactly
``torch.nn.BatchNorm2d`` (same parameters, buffers and state dict).

One CPU detail: with batch statistics on a channels_last input of fewer than 16 channels (the search
networks' widths), the layer normalises an NCHW copy and returns channels_last.  The library's channels_last
kernel vectorises over channels, and below two AVX2 vectors of them it runs 1.5 to 4.5 times slower than
the copy, its backward included (docs/results.md, "Where the supernet's step goes").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from torch import nn

from .conv import rewrites_enabled

__all__ = ["BatchNorm2d", "group_batch_statistics"]

_GROUP: ContextVar[int | None] = ContextVar("rdnas_space_bn_group", default=None)


@contextmanager
def group_batch_statistics(group: int) -> Iterator[None]:
    """Within the block, :class:`BatchNorm2d` layers normalise every ``group`` consecutive samples by their own
    batch statistics (one coalition's images, in a stacked coalition pass)."""
    if group < 1:
        raise ValueError(f"a statistics group needs at least one sample, got {group}")
    token = _GROUP.set(int(group))
    try:
        yield
    finally:
        _GROUP.reset(token)


_NARROW = 16
"""Below this many channels a channels_last CPU batch norm with batch statistics runs faster in NCHW."""


def _narrow_channels_last(x: torch.Tensor) -> bool:
    return (rewrites_enabled() and x.device.type == "cpu" and x.dim() == 4 and 1 < x.shape[1] < _NARROW
            and x.stride(1) == 1 and not x.is_contiguous())


class BatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d``, or per-group batch statistics inside :func:`group_batch_statistics`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        group = _GROUP.get()
        if group is None:
            if _narrow_channels_last(x) and (self.training or not self.track_running_stats):
                return super().forward(x.contiguous()).contiguous(memory_format=torch.channels_last)
            return super().forward(x)
        n = x.shape[0]
        if n % group:
            raise ValueError(f"a batch of {n} samples does not split into statistics groups of {group}")
        out = torch.empty_like(x)  # same memory layout; each group's slice is written by the library kernel
        for start in range(0, n, group):
            out[start : start + group] = nn.functional.batch_norm(
                x[start : start + group], None, None, self.weight, self.bias, training=True, eps=self.eps)
        return out
