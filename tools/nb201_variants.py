"""Run NAS-Bench-201 search variants on selection seeds and record what each scores on the selection column.

The protocol of issue #12: settings are chosen on a column that is not reported (CIFAR-100 by default) and on
seeds that no reported run uses (100 and up), and every variant tried is recorded.  A variants file is TOML,
one table per variant, of ``rdnas-search nb201`` options (the ``cpu`` nb201 preset plus these overrides)::

    [baseline]
    [momentum]
    score_momentum = 0.8
    eta = 0.1

    .venv/bin/python tools/nb201_variants.py tools/nb201_variants.toml --only momentum --seeds 100,101,102

Each (variant, seed) is one ``run_nb201`` run in ``OUT/VARIANT/seedS`` (skipped when finished, resumed when
not), then diagnosed (:mod:`rdnas_search.diagnose`, every validation image, the selection column).  One JSON
line per run goes to ``OUT/variants.jsonl``, and ``OUT/variants.md`` is rewritten with one row per variant:
mean and spread over its seeds of the selection column, the diagnostic's tau and the search time.  Only the
selection column is printed or tabulated.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from rdnas_search import NB201Options, apply_overrides, nb201_preset, run_nb201
from rdnas_search.diagnose import DiagnoseOptions, diagnose


def _row(name: str, overrides: dict[str, Any], records: list[dict[str, Any]]) -> str:
    accs = [r["accuracy"] for r in records]
    mean = statistics.fmean(accs)
    spread = statistics.pstdev(accs) if len(accs) > 1 else 0.0

    def avg(key: str) -> float:
        return statistics.fmean(r.get(key, float("nan")) for r in records)

    settings = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "(preset)"
    return (f"| {name} | {settings} | {len(records)} | {mean:.2f} ± {spread:.2f} | {avg('percentile'):.1f} | "
            f"{avg('tau'):.3f} | {avg('top_k'):.2f} | {avg('marginal_tau'):.3f} | {avg('marginal_edges'):.1f} | "
            f"{avg('marginal_cell_accuracy'):.2f} | {avg('players_tau'):.3f} | {avg('edges'):.1f} | "
            f"{avg('seconds'):.0f} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("variants", help="TOML file: one table of nb201 options per variant")
    p.add_argument("--only", default=None, help="comma-separated variant names (default: all)")
    p.add_argument("--seeds", default="100,101,102", help="comma-separated selection seeds (100 and up)")
    p.add_argument("--dataset", default="cifar100", help="selection column (never the reported cifar10)")
    p.add_argument("--out", default="runs/nb201-variants")
    p.add_argument("--cells", type=int, default=100, help="cells the diagnostic samples")
    args = p.parse_args(argv)
    try:
        variants = tomllib.loads(Path(args.variants).read_text())
        seeds = [int(s) for s in args.seeds.split(",")]
    except (OSError, tomllib.TOMLDecodeError, ValueError) as exc:
        p.error(str(exc).splitlines()[0])
    if args.dataset == "cifar10" or min(seeds) < 100:
        p.error("choose on the selection column and seeds: not cifar10, seeds of 100 and up")
    names = args.only.split(",") if args.only else list(variants)
    unknown = [n for n in names if n not in variants]
    if unknown:
        p.error(f"unknown variant(s) {unknown}; the file has {list(variants)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "variants.jsonl"
    for name in names:
        for seed in seeds:
            run_dir = out / name / f"seed{seed}"
            if any(r["variant"] == name and r["seed"] == seed for r in _read(log)):
                continue
            cfg = apply_overrides(nb201_preset("cpu"), {**variants[name], "seed": seed, "progress": False})
            t0 = time.perf_counter()
            outcome = run_nb201(cfg, run_dir, NB201Options(runs=1, dataset=args.dataset),
                                resume=(run_dir / "config.json").is_file())
            run = outcome.runs[0]
            diag = diagnose(run_dir, DiagnoseOptions(n_cells=args.cells, seed=0, dataset=args.dataset,
                                                     images="val"))[0]
            players = diag["players"][1] if len(diag["players"]) > 1 else diag["players"][0]
            record = {"variant": name, "overrides": variants[name], "seed": seed, "dataset": args.dataset,
                      "arch": run["arch"], "accuracy": run["test_accuracy"], "percentile": run["percentile"],
                      "seconds": run["search_time_s"], "wall_s": time.perf_counter() - t0,
                      "tau": diag["cells"]["kendall_tau"], "rho": diag["cells"]["spearman_rho"],
                      "top_k": diag["cells"]["top_k_overlap"], "players_tau": players["kendall_tau"],
                      "edges": players["edges_agreeing"], "marginal_tau": diag["marginals"]["kendall_tau"],
                      "marginal_edges": diag["marginals"]["edges_agreeing"],
                      "marginal_cell_accuracy": diag["marginals"]["argmax_cell_accuracy"]}
            with log.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
            print(f"{name} seed {seed}: {args.dataset} {record['accuracy']:.2f} (percentile "
                  f"{record['percentile']:.1f}), tau {record['tau']:.3f}, {record['seconds']:.0f} s: {run['arch']}",
                  flush=True)
    records = _read(log)
    lines = [f"Selection column: {args.dataset} test accuracy; seeds {args.seeds}.", "",
             "| variant | settings | runs | accuracy (mean ± std) | percentile | cells tau | top-10 overlap "
             "| marginals tau | marginal edges | marginal cell acc | players tau | edges as oracle | search s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in dict.fromkeys(r["variant"] for r in records):
        rows = [r for r in records if r["variant"] == name]
        lines.append(_row(name, rows[0]["overrides"], rows))
    (out / "variants.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def _read(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.is_file() else []


if __name__ == "__main__":
    sys.exit(main())
