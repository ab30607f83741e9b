"""Device selection, transfers and numeric precision shared by every command (``--device``, ``--precision``)."""

from __future__ import annotations

import contextlib
import warnings

import torch

__all__ = ["PRECISIONS", "autocast_for", "configure_device", "resolve_device", "to_device"]

PRECISIONS = ("fp32", "bf16")


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available, else CPU; anything else is passed to ``torch.device``.

    Raises:
        ValueError: for an unknown device string, or CUDA requested on a machine without it.
    """
    if isinstance(spec, torch.device):
        return spec
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ValueError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {spec!r} requested but CUDA is not available; use --device cpu or auto")
    return device


def autocast_for(device: torch.device, precision: str = "fp32") -> contextlib.AbstractContextManager[object]:
    """The autocast region for ``precision``: nothing for ``fp32``; bfloat16 autocast for ``bf16``.

    Inside a ``bf16`` region convolutions and matrix products run in bfloat16 while losses, softmax and the
    parameters stay float32 (PyTorch's autocast op lists), so no gradient scaling is needed.  Call
    ``backward`` outside the region, as PyTorch recommends.

    On a CPU whose oneDNN has no bfloat16 kernels (no AVX-512: ``torch.ops.mkldnn._is_mkldnn_bf16_supported()``
    is false) PyTorch falls back to its reference im2col convolutions, several times slower than fp32
    (measured: a smoke search's training 4x slower on an AVX2 EPYC), so ``bf16`` warns there.

    Raises:
        ValueError: for an unknown precision, or ``bf16`` on a CUDA device without bfloat16 support.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision == "fp32":
        return contextlib.nullcontext()
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"precision bf16 requested but {device} has no bfloat16 support; use fp32")
    if device.type == "cpu" and not _cpu_has_bf16_kernels():
        warnings.warn("precision bf16 on a CPU without oneDNN bfloat16 kernels (no AVX-512) runs PyTorch's slow "
                      "fallback convolutions; fp32 is faster here", UserWarning, stacklevel=2)
    return torch.autocast(device.type, dtype=torch.bfloat16)


def _cpu_has_bf16_kernels() -> bool:
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def configure_device(device: torch.device) -> None:
    """Backend settings for work on ``device``: on CUDA, cuDNN's autotuner (``torch.backends.cudnn.benchmark``),
    which picks the fastest convolution algorithm for each fixed input shape; nothing on CPU.

    The autotuner may pick different algorithms in different processes, so CUDA runs agree to float tolerance
    rather than bit for bit (CPU runs stay bit-identical for a seed).
    """
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` on ``device``.  A CPU tensor bound for CUDA is copied through page-locked memory without blocking,
    so the transfer overlaps the GPU's work (what ``DataLoader(pin_memory=True)`` does for each batch); on CPU
    this returns ``t`` itself."""
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)
