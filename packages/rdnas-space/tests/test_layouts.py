"""One training step of both supernets and of a derived network at channels 1-8, in both layouts (issue #11).

Each network kind runs in a subprocess with a timeout at one and at two OpenMP threads, where the unguarded
channels_last kernel aborted or hung.  The channels_last step must give the NCHW step's loss (to 1e-4) and
the direction of every parameter's gradient (cosine similarity above 0.98; parameters whose gradient norm is
below 1e-3 of the largest are skipped).  An entry-wise bound would not do: a ReLU or max-pool near a tie
flips under float32 rounding, BatchNorm spreads the change over whole tensors, and a relative input
perturbation of 1e-6 alone moves the float64 gradients of these networks to a cosine of 0.992 (up to 1.5e-2
of the largest entry; docs/results.md).  A broken kernel's gradients are far off in direction.
"""

from __future__ import annotations

import pytest

_STEP_SCRIPT = """
import json, sys, torch
from torch import nn
from rdnas_space import (DARTS_V2, Genotype, GenotypeNetwork, NB201Supernet, NetworkConfig, Supernet,
                         SupernetConfig, to_channels_last)

def build(kind, c):
    if kind == "darts_supernet":
        return Supernet(SupernetConfig(channels=c, n_cells=3))
    if kind == "nb201_supernet":
        return NB201Supernet(c, 1)
    g = Genotype(normal=DARTS_V2.normal, normal_concat=DARTS_V2.normal_concat,
                 reduce=[("skip_connect", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("sep_conv_3x3", 1),
                         ("skip_connect", 0), ("dil_conv_3x3", 2), ("skip_connect", 1), ("avg_pool_3x3", 3)],
                 reduce_concat=DARTS_V2.reduce_concat, robust=DARTS_V2.normal, robust_concat=DARTS_V2.normal_concat)
    return GenotypeNetwork(g, NetworkConfig(channels=c, n_cells=3))

def step(net, x, y):
    net.train()
    loss = nn.functional.cross_entropy(net(x), y)
    loss.backward()
    return float(loss.detach()), {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}

worst, steps = 1.0, 0  # worst: the lowest cosine similarity of a parameter's gradients in the two layouts
for c in range(1, 9):
    torch.manual_seed(c)
    x, y = torch.rand(8, 3, 32, 32), torch.randint(0, 10, (8,))
    torch.manual_seed(0)
    ref_loss, ref_grads = step(build(sys.argv[1], c), x, y)
    torch.manual_seed(0)
    net = to_channels_last(build(sys.argv[1], c))
    loss, grads = step(net, x.contiguous(memory_format=torch.channels_last), y)
    assert abs(loss - ref_loss) <= 1e-4 * max(1.0, abs(ref_loss)), (c, loss, ref_loss)
    assert grads.keys() == ref_grads.keys() and grads, c
    top = max(float(g.norm()) for g in ref_grads.values())
    for name, g in grads.items():
        ref = ref_grads[name]
        if float(ref.norm()) > 1e-3 * top:  # negligible gradients have no direction worth comparing
            worst = min(worst, float(torch.nn.functional.cosine_similarity(g.flatten(), ref.flatten(), dim=0)))
    steps += 2
print(json.dumps({"steps": steps, "worst_cosine": worst}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("kind", ["darts_supernet", "nb201_supernet", "derived_network"])
def test_training_step_at_every_small_width_in_both_layouts(kind: str, threads: int, run_isolated) -> None:
    out = run_isolated(_STEP_SCRIPT, threads, timeout=300, args=[kind])
    assert out["steps"] == 16
    assert out["worst_cosine"] > 0.98
