"""Seconds per search epoch of a preset, split into weight training, attack and scoring.

Runs one post-warm-up epoch of the preset (weight training with the attack, then
one ROSE round per branch) on the embedded CIFAR-10 subset and prints the time
split and the coalition evaluations per second.  As a baseline in the same
process, it then plays the first branch's game (``normal``, or ``cell`` with
``--nb201``) for one antithetic pair of walks with one coalition per forward
pass (``coalition_batch=1``) against the preset's batched evaluation.

``--contenders`` runs the epoch once per contender, one after the other, each on a fresh searcher with the
same seed (issue #15): ``library`` (every layer on the library's kernel, ``rdnas_space.library_kernels()``),
``rewrites`` (today's eager default) and ``compiled`` (``--set compile=true``: ``rdnas_space.compile_regions``
with inductor, on an empty inductor cache; its first epoch includes the compile time, and it runs a second
epoch, whose time is the steady state: the difference is the compile time, with the graphs each epoch
compiled).  Epochs are minutes long, so contenders are not interleaved: the ratios carry the machine's drift
between them.

``--nb201`` does the same for the NAS-Bench-201 presets (one ``cell`` game; ``rdnas-search nb201``).
``--set KEY=VALUE`` overrides any search option (as ``rdnas-search run --set``).

Usage: python tools/bench/search_bench.py [--preset cpu|smoke] [--seed 0] [--nb201] [--set KEY=VALUE ...]
                                          [--contenders library,rewrites,compiled]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rdnas_search import ConfigError, Searcher, SupernetGame, apply_overrides, nb201_preset, search_preset
from rdnas_space import compile_counters, library_kernels
from rose_estimator import RoseConfig, RoseEstimator

CONTENDERS = ("library", "rewrites", "compiled")


def _epochs(cfg, contender: str, tmp: str) -> tuple[Searcher, list[tuple[str, dict, dict, float, int]]]:
    """Post-warm-up epochs of a fresh searcher (two when compiled): (searcher, [(label, training log, scoring
    log, wall seconds, graphs compiled)])."""
    run_cfg = apply_overrides(cfg, {"compile": contender == "compiled"})
    rows = []
    with library_kernels() if contender == "library" else contextlib.nullcontext():
        t0 = time.perf_counter()
        searcher = Searcher(run_cfg, Path(tmp) / contender)
        for epoch in range(2 if contender == "compiled" else 1):
            graphs = compile_counters()["graphs"]
            train = searcher.train_epoch(epoch)
            score = searcher.score_epoch(epoch)
            label = contender if epoch == 0 else f"{contender}, epoch 2"
            rows.append((label, train, score, time.perf_counter() - t0, compile_counters()["graphs"] - graphs))
            t0 = time.perf_counter()
    return searcher, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nb201", action="store_true", help="the NAS-Bench-201 presets (rdnas-search nb201)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a search option")
    parser.add_argument("--contenders", default="rewrites",
                        help=f"comma-separated, from {', '.join(CONTENDERS)} (default: rewrites)")
    args = parser.parse_args()
    contenders = tuple(args.contenders.split(","))
    if any(c not in CONTENDERS for c in contenders) or len(set(contenders)) < len(contenders):
        parser.error(f"--contenders takes distinct names from {', '.join(CONTENDERS)}")
    try:
        preset = nb201_preset(args.preset) if args.nb201 else search_preset(args.preset)
        sets = dict(s.split("=", 1) for s in args.set if "=" in s)
        if len(sets) < len(args.set):
            parser.error("--set takes KEY=VALUE")
        cfg = apply_overrides(preset, {**sets, "warmup_epochs": 0, "seed": args.seed, "progress": False})
    except ConfigError as exc:
        parser.error(str(exc))
    print(f"# search_bench ({platform.machine()}, CPU, {torch.get_num_threads()} threads, torch {torch.__version__})\n")
    size = (f"{cfg.cells_per_stage} cells per stage" if args.nb201 else f"{cfg.n_cells} positions")
    attack = f"PGD-{cfg.attack_steps}" if cfg.adversarial else "clean"
    images = f"{cfg.n_score}+{cfg.n_score}" if cfg.adversarial else f"{cfg.n_score}"
    print(f"preset `{cfg.preset}`{' (nb201)' if args.nb201 else ''}: supernet C={cfg.channels}, {size}, "
          f"{cfg.n_train} training images ({cfg.path_sampling} path sampling), {attack}, S={cfg.n_permutations} "
          f"walks, {images} scoring images, coalition batch {cfg.coalition_batch}"
          f"{', overrides ' + ', '.join(args.set) if args.set else ''}\n")
    with tempfile.TemporaryDirectory() as tmp:
        if "compiled" in contenders:  # an empty inductor cache: the compile time is a first run's
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(Path(tmp) / "inductor")
        rows, searcher = [], None
        for contender in contenders:
            searcher, epochs = _epochs(cfg, contender, tmp)
            rows += epochs
        print("| contender | weight training s | attack (training) s | attack (scoring sample) s "
              f"| ROSE scoring ({len(searcher.net.branches)} branch(es)) s | **epoch s** | graphs compiled "
              f"| evaluations/s | epoch ratio to {contenders[0]} |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        base = rows[0][3]
        for label, train, score, total, graphs in rows:
            print(f"| {label} | {train['time_train_s']:.1f} | {train['time_attack_s']:.1f} "
                  f"| {score['time_score_attack_s']:.1f} | {score['time_score_s']:.1f} | **{total:.1f}** | {graphs} "
                  f"| {score['evaluations'] / score['time_score_s']:.1f} | {base / total:.2f}x |")
        if "compiled" in contenders:
            first, second = (r[3] for r in rows if r[0].startswith("compiled"))
            print(f"\ncompile time (first compiled epoch less the second): {first - second:.0f} s")
        label, train, score, total, _ = rows[-1 if "compiled" not in contenders else -2]
        print(f"\nshares of the `{label}` epoch: training {100 * train['time_train_s'] / total:.0f}%, attacks "
              f"{100 * (train['time_attack_s'] + score['time_score_attack_s']) / total:.0f}%, scoring "
              f"{100 * score['time_score_s'] / total:.0f}%\n")

        x, y, x_adv, _ = searcher._score_sample(1)
        searcher.net.eval()
        rates = {}
        for batch in (1, cfg.coalition_batch):
            game = SupernetGame(searcher.net, searcher.net.branches[0], x, y, x_adv, cfg.value_metric)
            t0 = time.perf_counter()
            RoseEstimator(RoseConfig(n_groups=1)).approximate(
                game, 2, rng=np.random.default_rng(args.seed), batch_size=batch, antithetic=True)
            rates[batch] = game.n_evaluations / (time.perf_counter() - t0)
        print(f"| coalitions per forward ({contenders[-1]} supernet) | evaluations/s | ratio |")
        print("|---:|---:|---:|")
        for batch, rate in rates.items():
            print(f"| {batch} | {rate:.1f} | {rate / rates[1]:.2f}x |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory (max RSS) {peak:.0f} MiB")


if __name__ == "__main__":
    main()
