"""torch.compile against eager on the final adversarial training step of a derived network.

The step is what ``rdnas-search train`` repeats: PGD-k on the batch (``advbench.pgd_train``), the
forward pass on the adversarial images, cross-entropy, backward and an SGD step, on the channels_last
dual-branch network of the ``cpu`` training preset (16 channels, 5 positions) built from a random genotype
(``rdnas_space.random_genotype``).  Three contenders, each a fresh copy of the same initial weights:

- ``eager``: the network as it trains today;
- ``whole``: ``torch.compile`` of the whole network (inductor; one graph for the forward, one for each backward);
- ``cells``: regional compilation, ``rdnas_space.compile_regions`` (what ``--set compile=true`` does): each
  cell module compiled, stem and head eager.

Compile time is the first step's time less eager's first step, on an empty inductor cache (a temporary
``TORCHINDUCTOR_CACHE_DIR``) unless ``--warm-cache``; the graphs compiled are counted from dynamo's counters.
Steady-state steps are timed in alternating rounds (one step of each contender per round) and the table gives
the median over rounds of eager time / contender time, with the range; ``break-even`` is the number of steps
after which the compiled contender has paid back its compile time (``never`` when it is slower).

Usage: python tools/bench/compile_bench.py [--preset cpu|smoke] [--seed 0] [--rounds N] [--warm-cache]
       [--contenders eager,cells]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Callable

import torch
from advbench import ThreatModel, pgd_train
from rdnas_space import GenotypeNetwork, NetworkConfig, compile_regions, random_genotype, to_channels_last
from torch import nn

PRESETS = {
    # cpu: the cpu training preset's network and attack (one step with random start, radius 7/255, step 8.75/255)
    "cpu": {"channels": 16, "n_cells": 5, "batch": 64, "steps": 1, "eps": 7 / 255, "step": 8.75 / 255, "rounds": 4},
    "smoke": {"channels": 4, "n_cells": 3, "batch": 8, "steps": 1, "eps": 8 / 255, "step": 4 / 255, "rounds": 2},
}
CONTENDERS = ("eager", "whole", "cells")


def _network(p: dict, seed: int, mode: str) -> tuple[nn.Module, nn.Module]:
    """(the module to call, the network holding the parameters) for one contender."""
    torch.manual_seed(seed)
    net = to_channels_last(GenotypeNetwork(random_genotype(seed), NetworkConfig(channels=p["channels"],
                                                                               n_cells=p["n_cells"])).train())
    if mode == "whole":
        return torch.compile(net), net
    if mode == "cells":
        compile_regions(net)
    return net, net


def _step_fn(model: nn.Module, net: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel,
             seed: int) -> Callable[[], None]:
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        x_adv = pgd_train(model, x, y, threat, torch.Generator().manual_seed(seed))
        loss = nn.functional.cross_entropy(model(x_adv), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _graphs() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=None, help="alternating timing rounds (default: preset)")
    parser.add_argument("--warm-cache", action="store_true",
                        help="keep the inductor cache this machine has (default: compile from an empty one)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help=f"comma-separated subset of {', '.join(CONTENDERS)} (eager is always run)")
    args = parser.parse_args()
    contenders = ("eager", *[c for c in CONTENDERS[1:] if c in args.contenders.split(",")])
    unknown = set(args.contenders.split(",")) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contender(s) {', '.join(sorted(unknown))}; choose from {', '.join(CONTENDERS)}")
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.seed < 0:
        parser.error("--seed must be a non-negative integer")
    p = PRESETS[args.preset]
    rounds = args.rounds or p["rounds"]
    cache = None
    if not args.warm_cache:
        cache = tempfile.TemporaryDirectory(prefix="compile-bench-")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache.name
    threads = torch.get_num_threads()
    print(f"# compile_bench ({platform.machine()}, CPU, {threads} threads, torch {torch.__version__})\n")
    b = p["batch"]
    threat = ThreatModel(eps=p["eps"], step=p["step"], steps=p["steps"])
    gen = torch.Generator().manual_seed(args.seed)
    x = torch.rand(b, 3, 32, 32, generator=gen).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (b,), generator=gen)
    steps, first, graphs = {}, {}, {}
    for mode in contenders:
        model, net = _network(p, args.seed, mode)
        steps[mode] = _step_fn(model, net, x, y, threat, args.seed)
        before = _graphs()
        t0 = time.perf_counter()
        steps[mode]()
        steps[mode]()  # the second step compiles what the first did not need (the optimizer's state exists)
        first[mode] = time.perf_counter() - t0
        graphs[mode] = _graphs() - before
    times: dict[str, list[float]] = {mode: [] for mode in contenders}
    for _ in range(rounds):
        for mode in contenders:
            t0 = time.perf_counter()
            steps[mode]()
            times[mode].append(time.perf_counter() - t0)
    print(f"## Adversarial training step: PGD-{p['steps']} + forward + backward + SGD, batch {b}, "
          f"{p['channels']} channels, {p['n_cells']} positions, channels_last (images/s)\n")
    print(f"Median over {rounds} alternating rounds; ratio = eager time / contender time, per round; compile = "
          "the first two steps' time less eager's, on "
          f"{'the warm inductor cache' if args.warm_cache else 'an empty inductor cache'}.\n")
    print("| contender | graphs compiled | compile s | images/s | ratio (median) | ratio (range) | break-even steps |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    eager = statistics.median(times["eager"])
    for mode in contenders:
        ratios = [e / t for e, t in zip(times["eager"], times[mode], strict=True)]
        t = statistics.median(times[mode])
        compile_s = max(first[mode] - first["eager"], 0.0)
        if mode == "eager":
            even = "-"
        elif t < eager:
            even = f"{compile_s / (eager - t):.0f}"
        else:
            even = "never"
        print(f"| {mode} | {graphs[mode]} | {compile_s:.0f} | {b / t:.1f} | {statistics.median(ratios):.2f}x "
              f"| {min(ratios):.2f}-{max(ratios):.2f}x | {even} |")
    extra = _graphs() - sum(graphs.values())
    print(f"\ngraphs compiled during the timed rounds (recompilations): {extra}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory (max RSS) {peak:.0f} MiB")
    if cache is not None:
        cache.cleanup()


if __name__ == "__main__":
    main()
