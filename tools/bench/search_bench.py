"""Seconds per search epoch of a preset, split into weight training, attack and scoring.

Runs one post-warm-up epoch of the preset (weight training with the attack, then
one ROSE round per branch) on the embedded CIFAR-10 subset and prints the time
split and the coalition evaluations per second.  As a baseline in the same
process, it then plays the first branch's game (``normal``, or ``cell`` with
``--nb201``) for one antithetic pair of walks with one coalition per forward
pass (``coalition_batch=1``) against the preset's batched evaluation.

``--nb201`` does the same for the NAS-Bench-201 presets (one ``cell`` game; ``rdnas-search nb201``).

Usage: python tools/bench/search_bench.py [--preset cpu|smoke] [--seed 0] [--nb201]
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
from rdnas_search import Searcher, SupernetGame, apply_overrides, nb201_preset, search_preset
from rose_estimator import RoseConfig, RoseEstimator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nb201", action="store_true", help="the NAS-Bench-201 presets (rdnas-search nb201)")
    args = parser.parse_args()
    preset = nb201_preset(args.preset) if args.nb201 else search_preset(args.preset)
    cfg = apply_overrides(preset, {"warmup_epochs": 0, "seed": args.seed, "progress": False})
    print(f"# search_bench ({platform.machine()}, CPU, {torch.get_num_threads()} threads, torch {torch.__version__})\n")
    size = (f"{cfg.cells_per_stage} cells per stage" if args.nb201 else f"{cfg.n_cells} positions")
    attack = f"PGD-{cfg.attack_steps}" if cfg.adversarial else "clean"
    images = f"{cfg.n_score}+{cfg.n_score}" if cfg.adversarial else f"{cfg.n_score}"
    print(f"preset `{cfg.preset}`{' (nb201)' if args.nb201 else ''}: supernet C={cfg.channels}, {size}, "
          f"{cfg.n_train} training images ({cfg.path_sampling} path sampling), {attack}, S={cfg.n_permutations} "
          f"walks, {images} scoring images, coalition batch {cfg.coalition_batch}\n")
    with tempfile.TemporaryDirectory() as tmp:
        searcher = Searcher(cfg, Path(tmp))
        t0 = time.perf_counter()
        train = searcher.train_epoch(0)
        score = searcher.score_epoch(0)
        total = time.perf_counter() - t0
        print("| phase | seconds | share |")
        print("|---|---:|---:|")
        parts = {"weight training": train["time_train_s"], "attack (training)": train["time_attack_s"],
                 "attack (scoring sample)": score["time_score_attack_s"],
                 f"ROSE scoring ({len(searcher.net.branches)} branch(es))": score["time_score_s"]}
        for name, sec in parts.items():
            print(f"| {name} | {sec:.1f} | {100 * sec / total:.0f}% |")
        print(f"| **epoch** | **{total:.1f}** | |\n")
        print(f"coalition evaluations: {score['evaluations']} in {score['time_score_s']:.1f} s = "
              f"{score['evaluations'] / score['time_score_s']:.1f} per second\n")

        x, y, x_adv, _ = searcher._score_sample(1)
        searcher.net.eval()
        rates = {}
        for batch in (1, cfg.coalition_batch):
            game = SupernetGame(searcher.net, searcher.net.branches[0], x, y, x_adv, cfg.value_metric)
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
