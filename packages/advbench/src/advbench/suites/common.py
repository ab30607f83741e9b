"""What every evaluation suite shares: batched accuracy under an attack, model size, sanity checks."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from tqdm.auto import tqdm

from ..attacks import Attack, predict
from ..device import to_device
from ..distributed import DistContext, all_gather_array, batch_block, current_group, sharded

__all__ = ["SanityCheck", "accuracy_under", "adversarial_predictions", "model_size", "non_increasing",
           "large_eps_check", "LARGE_EPS"]


@dataclass
class SanityCheck:
    """One plausibility check of a robustness evaluation (failing ones are flagged in reports)."""

    name: str
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


def adversarial_predictions(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: Attack | None,
                            batch_size: int = 128, desc: str = "", progress: bool = True) -> torch.Tensor:
    """Predicted labels on ``attack``'s adversarial examples (clean inputs when attack is None).

    Inside :func:`~advbench.distributed.sharded` each rank attacks its block of whole batches and the labels
    are gathered in image order: the batches, hence every seeded random start, are those of one process.
    """
    device = next(model.parameters()).device
    group = current_group()
    lo, hi = (0, x.shape[0]) if group is None else batch_block(x.shape[0], batch_size, group)
    preds = [torch.zeros(0, dtype=torch.long)]
    shown = progress and (group is None or group.is_main)
    with sharded(DistContext()):  # an attack run on this rank's batch must not shard it again
        for i in tqdm(range(lo, hi, batch_size), desc=desc, leave=False, disable=not shown):
            j = min(i + batch_size, hi)
            xb, yb = to_device(x[i:j], device), to_device(y[i:j], device)
            xa = xb if attack is None else attack(model, xb, yb)
            preds.append(predict(model, xa).cpu())
    mine = torch.cat(preds)
    return mine if group is None else torch.from_numpy(all_gather_array(mine, group))


def accuracy_under(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: Attack | None,
                   batch_size: int = 128, desc: str = "", progress: bool = True) -> float:
    """Accuracy (%) of ``model`` on the attack's adversarial examples."""
    pred = adversarial_predictions(model, x, y, attack, batch_size, desc, progress)
    return 100.0 * int((pred == y.cpu()).sum()) / len(y) if len(y) else float("nan")  # exact: no float32 mean


def model_size(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """Parameter count and FLOPs (a multiply-add counts 2) of one forward pass on ``input_shape``."""
    params = sum(p.numel() for p in model.parameters())
    was_training = model.training
    model.eval()
    try:
        x = torch.zeros(input_shape, device=next(model.parameters()).device)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(x)
        flops = int(counter.get_total_flops())
    finally:
        model.train(was_training)
    return {"params": params, "flops": flops}


def non_increasing(values: list[float], tolerance: float) -> bool:
    """Whether each value is at most the previous one plus ``tolerance``."""
    return all(b <= a + tolerance for a, b in zip(values, values[1:], strict=False))



LARGE_EPS = 64 / 255
"""The radius of the "near 0 at a large eps" check (PGD-20, step eps / 8)."""


def large_eps_check(model: nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int, batch_size: int,
                    progress: bool, threshold: float = 5.0) -> tuple[float, SanityCheck]:
    """PGD-20 at eps = 64/255 must bring accuracy near 0; if not, gradients are probably masked."""
    from ..attacks import PGD
    from ..threat import ThreatModel

    attack = PGD(ThreatModel(eps=LARGE_EPS, step=LARGE_EPS / 8, steps=20), seed=seed)
    acc = accuracy_under(model, x, y, attack, batch_size, "PGD-20 @ 64/255", progress)
    check = SanityCheck("near 0 at a large eps", acc <= threshold,
                        f"PGD-20 accuracy at eps 64/255 is {acc:.2f}% (expected <= {threshold}%)")
    return acc, check
