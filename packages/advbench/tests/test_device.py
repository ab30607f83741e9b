"""Precision regions (``--precision``): fp32 leaves PyTorch alone; bf16 autocasts convolutions, not losses."""

from __future__ import annotations

import warnings

import pytest
import torch
from advbench import PGD, ThreatModel, autocast_for, configure_device, pgd_train, predict, to_device
from torch import nn

CPU = torch.device("cpu")


def _conv_and_loss() -> tuple[torch.Tensor, torch.Tensor, nn.Conv2d]:
    conv = nn.Conv2d(3, 4, 3)
    x = torch.rand(2, 3, 8, 8)
    out = conv(x)
    loss = nn.functional.cross_entropy(out.mean((2, 3)), torch.tensor([0, 1]))
    return out, loss, conv


def test_fp32_region_changes_nothing() -> None:
    with autocast_for(CPU, "fp32"):
        assert not torch.is_autocast_enabled("cpu")
        out, loss, _ = _conv_and_loss()
    assert out.dtype == loss.dtype == torch.float32


def test_bf16_region_runs_convolutions_in_bfloat16_and_keeps_losses_and_gradients_float32() -> None:
    with autocast_for(CPU, "bf16"):
        out, loss, conv = _conv_and_loss()
    assert out.dtype == torch.bfloat16 and loss.dtype == torch.float32
    loss.backward()
    assert conv.weight.grad is not None and conv.weight.grad.dtype == torch.float32
    assert not torch.is_autocast_enabled("cpu")  # the region closes


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16"):
        autocast_for(CPU, "fp16")


def test_bf16_attacks_stay_in_the_ball_and_near_fp32_accuracy(robust_model, test_subset) -> None:
    """bf16 PGD still returns float32 images inside the eps-ball; its robust accuracy on 200 images lies within
    8 points of fp32's (a gap larger than that would mean bf16 masks the gradient)."""
    x, y = test_subset.x, test_subset.y
    threat = ThreatModel(eps=8 / 255, step=2 / 255, steps=10)
    acc = {}
    for precision in ("fp32", "bf16"):
        with autocast_for(CPU, precision):
            x_adv = PGD(threat, seed=0)(robust_model, x, y)
            x_train = pgd_train(robust_model, x, y, threat, torch.Generator().manual_seed(0))
        for adv in (x_adv, x_train):
            assert adv.dtype == torch.float32
            assert float((adv - x).abs().max()) <= threat.eps + 1e-6
        acc[precision] = 100 * float((predict(robust_model, x_adv) == y).float().mean())
    clean = 100 * float((predict(robust_model, x) == y).float().mean())
    assert acc["fp32"] < clean and acc["bf16"] < clean
    assert abs(acc["bf16"] - acc["fp32"]) <= 8.0, acc


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bf16_on_cuda() -> None:
    conv = nn.Conv2d(3, 4, 3).cuda()
    with autocast_for(torch.device("cuda"), "bf16"):
        assert conv(torch.rand(2, 3, 8, 8, device="cuda")).dtype == torch.bfloat16


def test_transfers_and_settings_leave_cpu_work_alone() -> None:
    t = torch.rand(3, 2)
    assert to_device(t, CPU) is t  # no copy, no pinning on CPU
    before = torch.backends.cudnn.benchmark
    configure_device(CPU)
    assert torch.backends.cudnn.benchmark == before


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_transfers_are_pinned_and_settings_tuned() -> None:
    cuda = torch.device("cuda")
    t = torch.rand(64, 3, 8, 8)
    moved = to_device(t, cuda)
    assert moved.device.type == "cuda" and torch.equal(moved.cpu(), t)
    configure_device(cuda)
    assert torch.backends.cudnn.benchmark



@pytest.mark.parametrize("native", [True, False])
def test_bf16_warns_only_on_a_cpu_without_bfloat16_kernels(native: bool, monkeypatch) -> None:
    from advbench import device as device_module

    monkeypatch.setattr(device_module, "_cpu_has_bf16_kernels", lambda: native)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with autocast_for(CPU, "bf16"):
            pass
        with autocast_for(CPU, "fp32"):
            pass
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == (0 if native else 1)
    assert native or "slow fallback convolutions" in messages[0]
