"""One process against two on torch.distributed (gloo, one thread each): scoring, PGD-20 evaluation, training.

The parent launches the same three workloads under ``torchrun`` with 1 and then 2 processes (one after the
other, so they never share the cores) and prints the wall time of each, the speed-up (1-process time / 2-process
time), the parallel efficiency (speed-up / 2) and the peak resident memory of every rank:

- scoring: one ROSE round (6 antithetic walks of the 30-player NB201 game, 100 clean images, 10 coalitions a
  batch) on the cpu-preset NB201 supernet, walks sharded (:func:`rdnas_search.distributed.rose_sharding`);
- eval: advbench's PGD-20 accuracy of a SmallCNN (width 16) on 256 images, batches of 32 sharded;
- train: one DDP epoch of the cpu-preset NB201 supernet on 512 images, batches of 64 split between the ranks.

Usage: python tools/bench/distributed_bench.py [--seed 0] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _worker(out: str, seed: int, repeats: int) -> None:
    import numpy as np
    import torch
    from advbench import PGD, Classifier, ThreatModel, build_model
    from advbench.distributed import all_gather_array, barrier, init_distributed, sharded
    from advbench.suites.common import accuracy_under
    from rdnas_search.config import nb201_preset
    from rdnas_search.distributed import local_share, loss_scale, rose_sharding, sync_buffers, wrap_ddp
    from rdnas_search.game import SupernetGame
    from rdnas_search.search import build_supernet
    from rose_estimator import RoseEstimator

    ctx, device = init_distributed("cpu")
    cfg = nb201_preset("cpu")
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.rand(512, 3, 32, 32, generator=gen), torch.randint(0, 10, (512,), generator=gen)
    torch.manual_seed(seed)
    net = build_supernet(cfg, 10)
    for a in net.arch_parameters():
        a.requires_grad_(False)
    ddp = wrap_ddp(net, ctx, device)
    opt = torch.optim.SGD(net.weight_parameters(), lr=0.025, momentum=0.9)
    model = Classifier(build_model("small_cnn", num_classes=10, width=16), (0.5,) * 3, (0.25,) * 3).eval()

    def scoring() -> None:
        net.eval()
        game = SupernetGame(net, "cell", x[: cfg.n_score], y[: cfg.n_score], None, cfg.value_metric, net.primitives)
        RoseEstimator(n_groups=cfg.n_groups).approximate(game, cfg.n_permutations, rng=np.random.default_rng(seed),
                                                         batch_size=cfg.coalition_batch, antithetic=True,
                                                         sharding=rose_sharding(ctx))

    def evaluation() -> None:
        with sharded(ctx):
            accuracy_under(model, x[:256], y[:256], PGD(ThreatModel(eps=8 / 255, step=2 / 255, steps=20), seed), 32,
                           progress=False)

    def training() -> None:
        net.train()
        for i in range(0, 512, 64):
            share = local_share(64, ctx)
            xb, yb = x[i : i + 64][share], y[i : i + 64][share]
            loss = torch.nn.functional.cross_entropy(ddp(xb), yb)
            opt.zero_grad()
            (loss * loss_scale(len(yb), 64, ctx)).backward()
            opt.step()
        sync_buffers(net, ctx)

    times = {}
    for name, fn in (("scoring", scoring), ("eval", evaluation), ("train", training)):
        best = float("inf")
        for _ in range(repeats):
            barrier(ctx)
            t0 = time.perf_counter()
            fn()
            barrier(ctx)
            best = min(best, time.perf_counter() - t0)
        times[name] = best
    peak = all_gather_array([resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024], ctx).tolist()
    if ctx.is_main:
        Path(out).write_text(json.dumps({"times": times, "peak_mib": peak}))


def _launch(n: int, seed: int, repeats: int, out: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(n), "--rdzv-backend", "c10d",
           "--rdzv-endpoint", "localhost:0", __file__, "--worker", str(out), "--seed", str(seed),
           "--repeats", str(repeats)]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2, help="timed repetitions per workload (the best counts)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.seed, args.repeats)
        return
    import torch

    print(f"# distributed_bench ({platform.machine()}, CPU, {os.cpu_count()} cores, gloo, 1 thread per rank, "
          f"torch {torch.__version__})\n")
    with tempfile.TemporaryDirectory() as tmp:
        one = _launch(1, args.seed, args.repeats, Path(tmp) / "one.json")
        two = _launch(2, args.seed, args.repeats, Path(tmp) / "two.json")
    print("| workload | 1 process (s) | 2 processes (s) | speed-up | efficiency |")
    print("|---|---:|---:|---:|---:|")
    for name, what in (("scoring", "ROSE round, NB201 cpu preset"), ("eval", "advbench PGD-20, 256 images"),
                       ("train", "DDP epoch, 512 images")):
        t1, t2 = one["times"][name], two["times"][name]
        print(f"| {name} ({what}) | {t1:.2f} | {t2:.2f} | {t1 / t2:.2f}x | {t1 / t2 / 2:.0%} |")
    print(f"\npeak memory per rank (MiB): 1 process {one['peak_mib'][0]:.0f}; "
          f"2 processes {', '.join(f'{m:.0f}' for m in two['peak_mib'])}")


if __name__ == "__main__":
    main()
