"""Paired comparisons of NAS-Bench-201 searches: real runs seed by seed, or replays of saved rounds.

Two modes, both on the column you name (choose settings on ``cifar100``, the selection column; report
``cifar10``), both printing a markdown table and one JSON line per comparison:

``runs A B``: two ``rdnas-search nb201`` directories searched on the same seeds (the same walks and images in
each seed's first round).  Per seed, the accuracy of each derived cell and the difference B - A; then the
mean difference with its 95% t-interval, and each side's mean and spread::

    .venv/bin/python tools/nb201_paired.py runs runs/sel/mc runs/sel/rose --dataset cifar100

``replay VARIANTS.toml DIR...``: every variant (a TOML table of replay settings, as ``rdnas-search replay
--set`` takes them) re-scores the saved rounds of every seeded run in the nb201 directories (no training:
no feedback of alpha on the game, so a ranking of statistics on the same gains, not a search result); each
variant is compared with ``--reference`` (default: the first table) on the same runs::

    .venv/bin/python tools/nb201_paired.py replay tools/nb201_replay.toml runs/sel/rose runs/sel/mc
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
from rdnas_search.nb201 import open_benchmark
from rdnas_search.replay import replay_runs
from scipy import stats


def paired_summary(a: list[float], b: list[float]) -> dict[str, Any]:
    """Mean of ``b - a`` with its 95% t-interval, wins, and each side's mean and population std."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    d = y - x
    n = d.size
    out: dict[str, Any] = {"n": int(n), "mean_a": float(x.mean()), "std_a": float(x.std()),
                           "mean_b": float(y.mean()), "std_b": float(y.std()), "mean_diff": float(d.mean()),
                           "b_better": int((d > 0).sum()), "ties": int((d == 0).sum()), "a_better": int((d < 0).sum())}
    if n >= 2:
        half = float(stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n))
        out["ci95"] = [out["mean_diff"] - half, out["mean_diff"] + half]
    return out


def _runs(path: Path) -> dict[int, dict[str, Any]]:
    """Every finished seeded run of an nb201 directory (``runs.jsonl``, or its runs' ``cell.json`` while it is
    still running), keyed by seed."""
    if (path / "runs.jsonl").is_file():
        lines = (path / "runs.jsonl").read_text().splitlines()
        return {int(r["seed"]): r for r in map(json.loads, filter(None, lines))}
    bench = open_benchmark()
    out = {}
    for d in path.glob("run*-seed*"):
        if (d / "DONE").is_file():
            arch = json.loads((d / "cell.json").read_text())["arch"]
            out[int(d.name.rpartition("seed")[2])] = {"arch": arch, "accuracies": {
                c: bench.test_accuracy(arch, c) for c in ("cifar10", "cifar100", "ImageNet16-120")}}
    return out


def compare_runs(dir_a: Path, dir_b: Path, dataset: str) -> dict[str, Any]:
    """Seed-by-seed accuracies of two nb201 directories on their common seeds."""
    a, b = _runs(dir_a), _runs(dir_b)
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise SystemExit(f"nb201_paired: {dir_a} and {dir_b} have no seed in common")
    acc_a = [a[s]["accuracies"][dataset] for s in seeds]
    acc_b = [b[s]["accuracies"][dataset] for s in seeds]
    return {"a": str(dir_a), "b": str(dir_b), "dataset": dataset, "seeds": seeds, "acc_a": acc_a, "acc_b": acc_b,
            **paired_summary(acc_a, acc_b)}


def _line(name: str, s: dict[str, Any]) -> str:
    ci = f"[{s['ci95'][0]:+.2f}, {s['ci95'][1]:+.2f}]" if "ci95" in s else "-"
    return (f"| {name} | {s['n']} | {s['mean_b']:.2f} ± {s['std_b']:.2f} | {s['mean_a']:.2f} ± {s['std_a']:.2f} | "
            f"{s['mean_diff']:+.2f} | {ci} | {s['b_better']}/{s['ties']}/{s['a_better']} |")


HEADER = ["| contender (B) | seeds | B mean ± std | reference (A) mean ± std | B - A | 95% CI | B better/tie/A better"
          " |",
          "|---|---:|---:|---:|---:|---|---|"]


def replay_variants(variants: dict[str, dict[str, Any]], dirs: list[Path], dataset: str, reference: str
                    ) -> dict[str, dict[str, Any]]:
    """Every variant's derived cell and its accuracy on every run of ``dirs``, compared with ``reference``."""
    bench = open_benchmark()
    accs: dict[str, list[float]] = {}
    for name, overrides in variants.items():
        accs[name] = [bench.test_accuracy(r.derived, dataset) for d in dirs for r in replay_runs(d, overrides)]
    return {name: {"settings": variants[name], "acc": accs[name],
                   **paired_summary(accs[reference], accs[name])} for name in variants}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("runs", help="two nb201 directories on the same seeds")
    r.add_argument("a", type=Path, help="the reference (A)")
    r.add_argument("b", type=Path, nargs="+", help="contenders (B), each compared with A")
    r.add_argument("--dataset", default="cifar100")
    v = sub.add_parser("replay", help="replay variants on the saved rounds of nb201 directories")
    v.add_argument("variants", type=Path, help="TOML: one table of replay settings per variant")
    v.add_argument("dirs", type=Path, nargs="+")
    v.add_argument("--dataset", default="cifar100")
    v.add_argument("--reference", default=None, help="variant compared against (default: the first)")
    args = p.parse_args(argv)
    print(f"column: {args.dataset}\n")
    print("\n".join(HEADER))
    if args.mode == "runs":
        for b in args.b:
            s = compare_runs(args.a, b, args.dataset)
            print(_line(f"{b} vs {args.a}", s))
            print(json.dumps(s), file=sys.stderr)
        return 0
    variants = tomllib.loads(args.variants.read_text())
    reference = args.reference or next(iter(variants))
    if reference not in variants:
        print(f"nb201_paired: no variant {reference!r} in {args.variants}", file=sys.stderr)
        return 2
    for name, s in replay_variants(variants, args.dirs, args.dataset, reference).items():
        settings = ", ".join(f"{k}={val}" for k, val in s["settings"].items()) or "(the runs' own)"
        print(_line(f"{name}: {settings}", s))
        print(json.dumps({"variant": name, **s}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
