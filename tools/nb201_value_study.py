"""Which coalition value lets ROSE find good NAS-Bench-201 cells on a given trained supernet?

Offline study for issue #12.  On the frozen supernet of a search run (``checkpoint.pt``), every value setting
plays the same game for ``--walks`` antithetic walks on ``--images`` validation images, and its per-player
ROSE scores and Monte-Carlo Shapley estimates are compared with the tabular game's long-run Shapley values on
the selection column (never the reported CIFAR-10 column): Kendall tau over the 30 players, the edges whose best
op agrees, and the selection-column accuracy of the per-edge argmax cell.

Settings: the masked mixture (with and without renormalised weights) or single paths drawn from the
coalition, valued by accuracy or negative cross-entropy, at uniform or at the run's alpha.

    .venv/bin/python tools/nb201_value_study.py RUN_DIR --walks 10 --images 100

Prints a markdown table and writes ``RUN_DIR/value_study.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch
from rdnas_search.diagnose import rank_agreement, tabular_shapley
from rdnas_search.game import SupernetGame
from rdnas_search.nb201 import open_benchmark
from rdnas_search.search import CHECKPOINT, Searcher, load_run_config, load_search_checkpoint, player_scores
from rdnas_space import ops_to_arch
from rose_estimator import RoseConfig, RoseEstimator


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir")
    p.add_argument("--walks", type=int, default=10, help="antithetic walks per setting (even)")
    p.add_argument("--images", type=int, default=100, help="validation images valuing a coalition")
    p.add_argument("--dataset", default="cifar100", help="selection column (not the reported cifar10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", default=None, help="one setting, as VALUE,RENORMALISED,METRIC (mixture,false,neg_ce)")
    p.add_argument("--alpha", choices=("uniform", "run"), default="uniform",
                   help="mixture weights: uniform, or the run's final alpha")
    args = p.parse_args(argv)
    if args.dataset == "cifar10":
        p.error("choose on a selection column, not the reported cifar10")
    run = Path(args.run_dir)
    cfg = load_run_config(run)
    searcher = Searcher(cfg, run)
    searcher.load_state_dict(load_search_checkpoint(run / CHECKPOINT))
    net = searcher.net.eval()
    if args.alpha == "uniform":
        with torch.no_grad():
            net.alpha_cell.zero_()
    x, y, _, _ = searcher._score_sample(searcher.epoch - 1, args.images)
    bench = open_benchmark()
    oracle = tabular_shapley(bench, args.dataset, 2000)
    rows = []
    for coalition_value, renorm, metric in itertools.product(("mixture", "paths"), (False, True),
                                                             ("accuracy", "neg_ce")):
        if coalition_value == "paths" and not renorm:
            continue  # single paths weigh their op by 1
        if args.only and args.only.lower() != f"{coalition_value},{str(renorm).lower()},{metric}":
            continue
        net.renormalize_masked = renorm
        priority = torch.rand((y.shape[0], 6, 5), generator=torch.Generator().manual_seed(args.seed))
        game = SupernetGame(net, "cell", x, y, None, metric, net.primitives,
                            priority if coalition_value == "paths" else None)
        t0 = time.perf_counter()
        result = RoseEstimator(RoseConfig(beta=cfg.beta, l1=cfg.l1, l2=cfg.l2, n_groups=1)).approximate(
            game, args.walks, rng=args.seed, batch_size=10, antithetic=True)
        seconds = time.perf_counter() - t0
        for name, scores in (("ROSE", player_scores(result, "rose")),
                             ("MC mean of raw gains", result.gains[:, :, 0].mean(axis=0))):
            choice = np.asarray(scores).reshape(6, 5).argmax(axis=1)
            arch = ops_to_arch(tuple(int(o) for o in choice))
            rows.append({"value": coalition_value, "renormalised": renorm, "metric": metric, "estimate": name,
                         "tau": rank_agreement(np.asarray(scores), oracle, 1)["kendall_tau"],
                         "edges": int((choice == oracle.reshape(6, 5).argmax(1)).sum()), "cell": arch,
                         "accuracy": bench.test_accuracy(arch, args.dataset), "seconds": seconds})
            print(json.dumps(rows[-1]), flush=True)
    lines = [f"Run `{run}`, alpha {args.alpha}, {args.walks} walks on {args.images} images; column {args.dataset}.",
             "", "| value | renormalised | metric | estimate | players tau | edges as oracle | cell accuracy | s |",
             "|---|---|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r['value']} | {r['renormalised']} | {r['metric']} | {r['estimate']} | {r['tau']:.3f} | "
              f"{r['edges']} | {r['accuracy']:.2f} | {r['seconds']:.0f} |" for r in rows]
    print("\n".join(lines))
    (run / "value_study.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
