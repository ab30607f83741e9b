"""Parameter counts and FLOPs (via ``torch.utils.flop_counter``), as reported in the paper's Table 1."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_parameters", "count_flops"]


def count_parameters(model: nn.Module, exclude: tuple[str, ...] = ("auxiliary", "alpha_")) -> int:
    """Trainable parameters, excluding names containing any of ``exclude``.

    The default leaves out the auxiliary head and architecture parameters, as
    DARTS-style papers do when they quote model sizes.
    """
    return sum(p.numel() for name, p in model.named_parameters() if not any(tag in name for tag in exclude))


@torch.no_grad()
def count_flops(model: nn.Module, input_shape: tuple[int, ...] = (1, 3, 32, 32)) -> int:
    """Floating-point operations of one eval-mode forward pass (a multiply-add counts 2).

    Divide by 2 for multiply-accumulates (the "FLOPs" of many NAS papers).
    """
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters())
        x = torch.zeros(input_shape, device=param.device, dtype=param.dtype)
        with FlopCounterMode(display=False) as counter:
            model(x)
        return int(counter.get_total_flops())
    finally:
        model.train(was_training)
