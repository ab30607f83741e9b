"""Regional torch.compile: the same values and gradients as eager, and a bounded number of graphs.

The graphs are traced with the ``aot_eager`` backend (dynamo and AOT autograd, without inductor's code
generation), which decides equality of the traced program and the graph count at a fraction of the cost.
"""

from __future__ import annotations

import copy

import pytest
import torch
from advbench import ThreatModel, pgd_train
from rdnas_space import MixedOp, Supernet, SupernetConfig, compile_counters, compile_regions, to_channels_last
from torch import nn

PRIMS = ("none", "skip_connect", "sep_conv_3x3", "max_pool_3x3")


@pytest.fixture
def nets() -> tuple[nn.Module, nn.Module]:
    """A fresh eager supernet and its compiled copy per test (training steps move BatchNorm's running stats)."""
    torch.manual_seed(0)
    net = to_channels_last(Supernet(SupernetConfig(channels=2, n_cells=3, n_nodes=2, primitives=PRIMS)))
    torch._dynamo.reset()
    return net, compile_regions(copy.deepcopy(net), backend="aot_eager")


def _images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 32, 32, generator=g).contiguous(memory_format=torch.channels_last)
    return x, torch.randint(0, 10, (n,), generator=g)


def _step(net: nn.Module, x: torch.Tensor, y: torch.Tensor, masks: dict) -> tuple[float, list[torch.Tensor]]:
    net.train()
    net.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(net(x, masks), y)
    loss.backward()
    # an operation eager skips has no gradient; the dense path gives it an exact zero
    return float(loss.detach()), [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in net.parameters()]


def test_compile_regions_makes_every_edge_dense(nets: tuple[nn.Module, nn.Module]) -> None:
    eager, compiled = nets
    assert all(m.dense for m in compiled.modules() if isinstance(m, MixedOp))
    assert not any(m.dense for m in eager.modules() if isinstance(m, MixedOp))
    assert list(compiled.state_dict()) == list(eager.state_dict())  # checkpoints and resume are unchanged


def test_compiled_training_step_matches_eager_with_bounded_graphs(nets: tuple[nn.Module, nn.Module]) -> None:
    eager, compiled = nets
    e, o = eager.alpha_shape
    counts = []
    for trial in range(4):
        x, y = _images(6, trial)
        g = torch.Generator().manual_seed(100 + trial)
        masks = {"normal": torch.rand(e, o, generator=g) > 0.5, "robust": torch.rand(6, e, o, generator=g) > 0.4}
        if trial % 2:  # the shared mask: eager skips absent operations, dense runs them at weight 0
            masks = {"normal": masks["normal"]}
        loss_e, grads_e = _step(eager if trial % 2 else _dense(eager), x, y, masks)
        loss_c, grads_c = _step(compiled, x, y, masks)
        assert loss_c == pytest.approx(loss_e, abs=1e-5)
        for a, b in zip(grads_e, grads_c, strict=True):
            torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4)
        counts.append(compile_counters()["graphs"])
    assert counts[-1] == counts[1]  # new coalitions of a mask kind seen before compile nothing new


def test_compiled_coalitions_and_pgd_match_eager(nets: tuple[nn.Module, nn.Module]) -> None:
    eager, compiled = nets
    eager.eval()
    compiled.eval()
    e, o = eager.alpha_shape
    x, y = _images(4, 7)
    counts = []
    with torch.no_grad():
        for trial in range(3):
            coalitions = torch.rand(3, e, o, generator=torch.Generator().manual_seed(trial)) > 0.5
            for branch in eager.branches:
                torch.testing.assert_close(compiled.forward_coalitions(x, branch, coalitions),
                                           eager.forward_coalitions(x, branch, coalitions), atol=1e-5, rtol=1e-4)
            counts.append(compile_counters()["graphs"])
    assert counts[2] == counts[0]  # every later round of new coalitions reuses the first round's graphs
    threat = ThreatModel(eps=8 / 255, step=2 / 255, steps=3)
    adv = [pgd_train(net, x, y, threat, torch.Generator().manual_seed(5)) for net in (_Head(eager), _Head(compiled))]
    torch.testing.assert_close(adv[1], adv[0], atol=1e-6, rtol=0)


def _dense(net: nn.Module) -> nn.Module:
    """An eager copy with dense edges (the compiled network's semantics under per-sample masks in training)."""
    dense = copy.deepcopy(net)
    for m in dense.modules():
        if isinstance(m, MixedOp):
            m.dense = True
    return dense


class _Head(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


_INDUCTOR_GUARD_SCRIPT = """
import json, torch
from rdnas_space import compile_regions, conv2d
compile_regions(torch.nn.Identity())  # sets the process-wide compiler options that regions need
loss = torch.compile(lambda x, w: conv2d(x, w, stride=2).square().sum())
worst = 0.0
for i in range(3):
    gen = torch.Generator().manual_seed(i)
    x64 = torch.rand(20, 4, 32, 32, generator=gen, dtype=torch.float64, requires_grad=True)
    w64 = torch.randn(8, 4, 1, 1, generator=gen, dtype=torch.float64, requires_grad=True)
    torch.nn.functional.conv2d(x64, w64, stride=2).square().sum().backward()
    x = x64.detach().float().contiguous(memory_format=torch.channels_last).requires_grad_()
    w = w64.detach().float().contiguous(memory_format=torch.channels_last).requires_grad_()
    loss(x, w).backward()
    for got, ref in ((w.grad, w64.grad), (x.grad, x64.grad)):
        worst = max(worst, float((got.double() - ref).abs().max() / ref.abs().max()))
print(json.dumps({"worst_rel_err": worst}))
"""


@pytest.mark.slow
def test_inductor_keeps_the_guarded_convolutions_off_the_faulty_kernel(run_isolated) -> None:
    """Compiled by inductor under ``compile_regions``' options, a 1x1 stride-2 convolution of 4 input channels (one
    the guard sends to NCHW) gives float64's gradients.  With inductor's layout optimisation on (its default) the
    child died with "double free or corruption": the optimisation put the convolution back in channels_last."""
    out = run_isolated(_INDUCTOR_GUARD_SCRIPT, 1, timeout=280)
    assert out["worst_rel_err"] < 1e-4
