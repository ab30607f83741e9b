"""Scorer variants on the NAS-Bench-201 surrogate game (rdnas_search.surrogate): many paired seeds in minutes.

Each variant (a TOML table of settings over the nb201 cpu preset, as in tools/nb201_replay.toml) runs the
search's scoring dynamics on the surrogate for every seed; the seeds give every variant the same walks and
the same distortions, so the comparison with ``--reference`` is paired.  The distortion is fitted so that the
surrogate's cell values rank cells with ``--tau`` (the real supernet diagnostic's Kendall tau, about 0.3 on the
selection seeds) against the chosen column, split between a persistent and a per-round part by ``--share``::

    .venv/bin/python tools/nb201_surrogate.py tools/nb201_replay.toml --seeds 100 --dataset cifar100
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
from nb201_paired import HEADER, _line, paired_summary
from rdnas_search import apply_overrides, nb201_preset
from rdnas_search.nb201 import open_benchmark
from rdnas_search.surrogate import SurrogateNoise, fit_distortion, surrogate_search


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("variants", type=Path, help="TOML: one table of settings per variant")
    p.add_argument("--only", default=None, help="comma-separated variant names (default: all)")
    p.add_argument("--reference", default=None, help="variant compared against (default: the first)")
    p.add_argument("--seeds", type=int, default=100, help="paired seeds (first: --first-seed)")
    p.add_argument("--first-seed", type=int, default=1000)
    p.add_argument("--dataset", default="cifar100", help="column of the game and of the score (selection: cifar100)")
    p.add_argument("--tau", type=float, default=0.3,
                   help="Kendall tau of the distorted cell values (1: no distortion, the benchmark's own values)")
    p.add_argument("--share", type=float, default=0.5, help="share of the distortion's variance that persists")
    args = p.parse_args(argv)
    variants = tomllib.loads(args.variants.read_text())
    if args.only:
        variants = {k: v for k, v in variants.items() if k in args.only.split(",")}
    reference = args.reference or next(iter(variants))
    bench = open_benchmark()
    grid = bench.table.by_code(args.dataset)
    sigma = 0.0 if args.tau >= 1.0 else fit_distortion(grid, args.tau)  # tau 1: the exact tabular values
    noise = SurrogateNoise(persistent=sigma * np.sqrt(args.share), per_round=sigma * np.sqrt(1 - args.share))
    print(f"surrogate on {args.dataset}: distortion sd {sigma:.2f} points for tau {args.tau} "
          f"({noise.persistent:.2f} persistent, {noise.per_round:.2f} per round); {args.seeds} seeds from "
          f"{args.first_seed}\n")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    acc: dict[str, list[float]] = {}
    for name, overrides in variants.items():
        t0 = time.perf_counter()
        cfg = apply_overrides(nb201_preset("cpu"), overrides)
        acc[name] = [bench.test_accuracy(surrogate_search(cfg, grid, noise, s), args.dataset) for s in seeds]
        print(f"{name}: {np.mean(acc[name]):.2f} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    print("\n".join(HEADER))
    for name in variants:
        s = paired_summary(acc[reference], acc[name])
        settings = ", ".join(f"{k}={v}" for k, v in variants[name].items()) or "(preset)"
        print(_line(f"{name}: {settings}", s))
        print(json.dumps({"variant": name, "settings": variants[name], "noise": noise.__dict__, **s}),
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
