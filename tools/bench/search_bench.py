"""Seconds per search epoch of a preset, split into weight training, attack and scoring.

Runs one post-warm-up epoch of the preset (weight training with the attack, then
one ROSE round per branch) on the embedded CIFAR-10 subset and prints the time
split and the coalition evaluations per second.  As a baseline in the same
process, it then plays the same ``normal``-branch game for one antithetic pair of
walks with one coalition per forward pass (``coalition_batch=1``) against the
preset's batched evaluation.

Usage: python tools/bench/search_bench.py [--preset cpu|smoke] [--seed 0]
"""

from __future__ import annotations

import argparse
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rdnas_search import Searcher, SupernetGame, apply_overrides, search_preset
from rose_estimator import RoseConfig, RoseEstimator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cfg = apply_overrides(search_preset(args.preset), {"warmup_epochs": 0, "seed": args.seed, "progress": False})
    print(f"# search_bench ({platform.machine()}, CPU, {torch.get_num_threads()} threads, torch {torch.__version__})\n")
    print(f"preset `{cfg.preset}`: supernet C={cfg.channels}, {cfg.n_cells} positions, {cfg.n_train} training "
          f"images, PGD-{cfg.attack_steps}, S={cfg.n_permutations} walks, {cfg.n_score}+{cfg.n_score} scoring "
          f"images, coalition batch {cfg.coalition_batch}\n")
    with tempfile.TemporaryDirectory() as tmp:
        searcher = Searcher(cfg, Path(tmp))
        t0 = time.perf_counter()
        train = searcher.train_epoch(0)
        score = searcher.score_epoch(0)
        total = time.perf_counter() - t0
        print("| phase | seconds | share |")
        print("|---|---:|---:|")
        parts = {"weight training": train["time_train_s"], "attack (training)": train["time_attack_s"],
                 "attack (scoring sample)": score["time_score_attack_s"], "ROSE scoring (3 branches)":
                 score["time_score_s"]}
        for name, sec in parts.items():
            print(f"| {name} | {sec:.1f} | {100 * sec / total:.0f}% |")
        print(f"| **epoch** | **{total:.1f}** | |\n")
        print(f"coalition evaluations: {score['evaluations']} in {score['time_score_s']:.1f} s = "
              f"{score['evaluations'] / score['time_score_s']:.1f} per second\n")

        x, y, x_adv, _ = searcher._score_sample(1)
        searcher.net.eval()
        rates = {}
        for batch in (1, cfg.coalition_batch):
            game = SupernetGame(searcher.net, "normal", x, y, x_adv, cfg.value_metric)
            t0 = time.perf_counter()
            RoseEstimator(RoseConfig(n_groups=1)).approximate(
                game, 2, rng=np.random.default_rng(args.seed), batch_size=batch, antithetic=True)
            rates[batch] = game.n_evaluations / (time.perf_counter() - t0)
        print("| coalitions per forward | evaluations/s | ratio |")
        print("|---:|---:|---:|")
        for batch, rate in rates.items():
            print(f"| {batch} | {rate:.1f} | {rate / rates[1]:.2f}x |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory (max RSS) {peak:.0f} MiB")


if __name__ == "__main__":
    main()
