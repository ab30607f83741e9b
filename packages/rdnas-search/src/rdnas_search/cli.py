"""``rdnas-search run | train | nb201 | report | replay | reproduce``: thin command lines over
:mod:`~rdnas_search.search`, :mod:`~rdnas_search.train`, :mod:`~rdnas_search.nb201_search`,
:mod:`~rdnas_search.replay` and :mod:`~rdnas_search.reproduce`.

Settings come from a preset, then a TOML/YAML file (``--config``), then
``--set KEY=VALUE`` and the dedicated flags; the resolved config is printed in
full at the start and saved with the run.  Bad input prints one line and exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from typing import Any

from advbench import CheckpointError, DataError
from advbench.distributed import BACKENDS, launched_by_torchrun

from .config import ConfigError, apply_overrides, load_overrides, nb201_preset, search_preset, train_preset
from .diagnose import DiagnoseOptions, diagnose
from .nb201 import open_benchmark
from .nb201_search import NB201_GAMES, NB201_PARALLEL, NB201Options, run_nb201
from .replay import REPLAY_KEYS, replay_runs
from .reproduce import SCALES, list_specs, load_spec, reproduce
from .search import RunDirError, render_report, run_search
from .train import run_train

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _common(p: argparse.ArgumentParser, data: bool = True) -> None:
    p.add_argument("--preset", default="cpu", help="paper, cpu (default) or smoke")
    p.add_argument("--config", default=None, help="TOML or YAML file of option = value overrides")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any option")
    p.add_argument("--out", default=None, help="run directory")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue an interrupted run")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N (under torchrun: cuda:LOCAL_RANK)")
    p.add_argument("--dist-backend", choices=BACKENDS, default=None,
                   help="under torchrun: nccl on CUDA, gloo on CPU (auto, default), or either by name")
    if data:
        p.add_argument("--dataset", default=None)
        p.add_argument("--data-root", default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--no-progress", action="store_true")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rdnas-search", description="Robust dual-branch architecture search (RDNAS).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="search (Algorithm 1)")
    _common(run)
    run.add_argument("--space", choices=("dual", "single"), default=None)
    run.add_argument("--fusion", choices=("eca", "none", "cbam", "ecam"), default=None)
    run.add_argument("--no-adv", action="store_true", help="clean search (no adversarial training or scoring)")
    run.add_argument("--scorer", choices=("rose", "mc", "darts"), default=None)
    run.add_argument("--beta", type=float, default=None)
    run.add_argument("--l1", type=float, default=None)
    run.add_argument("--l2", type=float, default=None)
    train = sub.add_parser("train", help="adversarially train a derived network, then evaluate it")
    _common(train)
    train.add_argument("--genotype", default=None,
                       help="genotype.json, a published genotype (darts_v2, pdarts, advrush), random:SEED (a "
                            "dual-branch genotype drawn uniformly, the random baseline) or an advbench arch")
    rep = sub.add_parser("report", help="re-render a search run's derived result, plots and report.md")
    rep.add_argument("run_dir", metavar="RUN_DIR", help="a search run directory whose epochs are all done")
    nb = sub.add_parser("nb201", help="NAS-Bench-201 lookup mode: seeded searches, derived cells looked up")
    _common(nb, data=False)
    nb.add_argument("--benchmark", default=None,
                    help="compact .csv table or official .pth (default: the shared nb201_test_acc_200ep.csv)")
    nb.add_argument("--dataset", default="cifar10", help="benchmark column: cifar10 (default), cifar100, "
                    "ImageNet16-120")
    nb.add_argument("--runs", type=int, default=3, help="seeded runs (seeds S, S+1, ...)")
    nb.add_argument("--scorer", choices=("rose", "mc", "darts", "naswot"), default=None,
                    help="rose (default), mc, darts, or naswot (training-free peer: the best of random cells)")
    nb.add_argument("--game", choices=NB201_GAMES, default="supernet",
                    help="supernet (train and search, default) or table (ROSE on the benchmark itself)")
    nb.add_argument("--adversarial", action="store_true", help="add the PGD inner loop (clean by default)")
    nb.add_argument("--parallel", choices=NB201_PARALLEL, default="walks",
                    help="under torchrun: every rank on every seed (walks, default) or each rank its own seeds")
    nb.add_argument("--diagnose", default=None, metavar="RUN_DIR",
                    help="ranking diagnostic of the trained supernet(s) in RUN_DIR (an nb201 directory or one of "
                         "its runs) against the --dataset column; trains nothing")
    nb.add_argument("--cells", type=int, default=100, help="--diagnose: cells sampled (with --seed, default 0)")
    nb.add_argument("--images", choices=("score", "val"), default="score",
                    help="--diagnose: value cells on the last round's scoring images or on every validation image")
    rl = sub.add_parser("replay", help="re-score a finished search's saved rounds with other statistics (no "
                        "training) and derive what they give")
    rl.add_argument("run_dir", metavar="RUN_DIR", help="a search run directory or an nb201 directory (every run)")
    rl.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help=f"a setting to change: {', '.join(REPLAY_KEYS)}")
    rl.add_argument("--dataset", default="cifar10", help="nb201 runs: the benchmark column to look cells up in")
    rl.add_argument("--benchmark", default=None, help="nb201 runs: compact .csv table or official .pth")
    rl.add_argument("--json", action="store_true", help="print one JSON record per run instead of a table")
    rp = sub.add_parser("reproduce", help="one of the paper's experiments as resumable jobs, tables side by side")
    rp.add_argument("experiment", nargs="?", default=None, help="table1, table2, table4-9, figures5_6 (see --list)")
    rp.add_argument("--list", action="store_true", help="list the experiments and exit")
    rp.add_argument("--scale", choices=SCALES, default="cpu", help="smoke (CI), cpu (default) or paper")
    rp.add_argument("--out", default="runs/reproduce", help="reproduction directory (jobs shared between tables)")
    rp.add_argument("--seeds", type=int, default=1, help="seeds per pipeline (mean +- std over them)")
    rp.add_argument("--seed", type=int, default=0, help="first seed")
    rp.add_argument("--device", default="auto")
    rp.add_argument("--plan", action="store_true", help="print the jobs, their commands and a time estimate; "
                    "run nothing")
    return parser


def _reproduce(args: argparse.Namespace) -> None:
    if args.list or not args.experiment:
        for name in list_specs():
            print(f"{name}: {load_spec(name).title}")
        return
    if args.plan:
        planned = reproduce(args.experiment, args.scale, args.out, seeds=args.seeds, seed=args.seed,
                            device=args.device, dry_run=True)
        for job in planned["jobs"]:
            print(f"[{'done' if job['done'] else 'todo'}] {job['id']} ({job['kind']}, seed {job['seed']}): "
                  f"{job['command']}")
        print(f"{len(planned['jobs'])} jobs; {planned['estimate']}")
        return
    table = reproduce(args.experiment, args.scale, args.out, seeds=args.seeds, seed=args.seed, device=args.device)
    print(f"wrote {args.out}/{table['experiment']}.md and {args.out}/{table['experiment']}.json")


def _replay(args: argparse.Namespace) -> None:
    overrides = dict(_pairs(args.set))
    results = replay_runs(args.run_dir, overrides)
    bench = open_benchmark(args.benchmark) if results[0].config.space == "nb201" else None
    settings = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "the runs' own settings"
    if not args.json:
        print(f"replay of {len(results)} run(s) with {settings}:")
    for r in results:
        record = r.to_dict()
        if bench is not None:
            record["accuracy"] = {args.dataset: bench.test_accuracy(r.derived, args.dataset)}
        if args.json:
            record.pop("alphas")
            print(json.dumps(record))
            continue
        derived = r.derived if isinstance(r.derived, str) else r.derived.to_darts()
        acc = f"  {args.dataset} {record['accuracy'][args.dataset]:.2f}" if bench is not None else ""
        print(f"{r.run.name}: {derived}{acc}")


def _pairs(items: list[str]) -> list[tuple[str, str]]:
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        out.append((key.strip(), value))
    return out


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = load_overrides(args.config) if args.config else {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value
    flags = {"seed": args.seed, "device": args.device, "epochs": args.epochs, "dist_backend": args.dist_backend}
    if args.command != "nb201":
        flags.update(dataset=args.dataset, data_root=args.data_root)
    for name in ("space", "fusion", "scorer", "beta", "l1", "l2"):
        flags[name] = getattr(args, name, None)
    out.update({k: v for k, v in flags.items() if v is not None})
    if getattr(args, "no_adv", False):
        out["adversarial"] = False
    if getattr(args, "adversarial", False):
        out["adversarial"] = True
    if args.no_progress:
        out["progress"] = False
    return out


def _settings(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The preset (``--preset``, or a ``preset`` key of ``--config``/``--set``) and the overrides on top of it."""
    if args.out is not None and not args.out.strip():
        raise ConfigError("--out is empty; give a directory")
    overrides = _overrides(args)
    preset = str(overrides.pop("preset", args.preset))
    return preset, overrides


def _check_resume(args: argparse.Namespace) -> None:
    """``--resume`` continues a run with its saved settings: refuse settings that it would ignore."""
    given = [flag for flag, value in (("--set", args.set), ("--config", args.config), ("--out", args.out),
                                      ("--epochs", args.epochs), ("--seed", args.seed),
                                      ("--preset", args.preset != "cpu")) if value]
    if given:
        raise ConfigError(f"--resume continues a run with its saved settings; {', '.join(given)} would be ignored: "
                          "drop them, or start a new run with --out")


def _diagnose(args: argparse.Namespace) -> None:
    options = DiagnoseOptions(n_cells=args.cells, seed=args.seed or 0, dataset=args.dataset, images=args.images,
                              top_k=min(10, max(args.cells, 1)))
    for r in diagnose(args.diagnose, options):
        c, p = r["cells"], r["players"][1] if len(r["players"]) > 1 else r["players"][0]
        print(f"{r['run']}: cells tau {c['kendall_tau']:.3f}, rho {c['spearman_rho']:.3f}, "
              f"top-{options.top_k} overlap {c['top_k_overlap']:.2f}; players tau {p['kendall_tau']:.3f} "
              f"({p['scores']}), {p['edges_agreeing']}/6 edges as the oracle")
    print(f"wrote {args.diagnose}/diagnose.md")


def _nb201(args: argparse.Namespace) -> None:
    if args.diagnose:
        _diagnose(args)
        return
    if args.resume:
        _check_resume(args)
        print(f"resuming {args.resume}", flush=True)
        outcome = run_nb201(nb201_preset("cpu"), args.resume, resume=True)
    else:
        preset, overrides = _settings(args)
        cfg = apply_overrides(nb201_preset(preset), overrides)
        options = NB201Options(args.benchmark, args.dataset, args.runs, args.game, args.parallel)
        out = args.out = args.out or f"runs/nb201-{options.game}-{cfg.scorer}-seed{cfg.seed}"
        print(json.dumps({"config": asdict(cfg), "nb201": asdict(options), "out": out}, indent=2), flush=True)
        outcome = run_nb201(cfg, out, options)
    s = outcome.summary
    if outcome.runs:
        acc, pct = s["test_accuracy"], s["percentile"]
        print(f"{s['dataset']} test accuracy {acc['mean']:.2f} +- {acc['std']:.2f} (percentile {pct['mean']:.1f}) "
              f"over {s['runs']} runs; optimum {s['optimum']:.2f}")
    print(f"wrote {outcome.run_dir}/report.md")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rdnas-search`` (under torchrun, rank 0 alone prints results; errors come from any rank)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if launched_by_torchrun() and os.environ.get("RANK", "0") != "0":
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of this rank's process
    try:
        if args.command == "run":
            if args.resume:
                _check_resume(args)
                print(f"resuming {args.resume}", flush=True)
                outcome = run_search(search_preset("cpu"), args.resume, resume=True)
            else:
                preset, overrides = _settings(args)
                cfg = apply_overrides(search_preset(preset), overrides)
                if cfg.space == "nb201":
                    raise ConfigError("space=nb201 is searched by rdnas-search nb201 (it looks the cells up); "
                                      "run searches the DARTS space (dual or single)")
                out = args.out = args.out or f"runs/search-{cfg.preset}-seed{cfg.seed}"
                print(json.dumps({"config": asdict(cfg), "out": out}, indent=2), flush=True)
                outcome = run_search(cfg, out)
            print(f"genotype: {outcome.genotype.to_darts() if outcome.genotype else '(not finished)'}")
            print(f"wrote {outcome.run_dir}/report.md")
        elif args.command == "report":
            print(f"wrote {render_report(args.run_dir)}")
        elif args.command == "nb201":
            _nb201(args)
        elif args.command == "reproduce":
            _reproduce(args)
        elif args.command == "replay":
            _replay(args)
        else:
            if args.resume:
                _check_resume(args)
                print(f"resuming {args.resume}", flush=True)
                outcome = run_train(args.genotype or "", train_preset("cpu"), args.resume, resume=True)
            else:
                if not args.genotype:
                    raise ConfigError("train needs --genotype (or --resume RUN_DIR)")
                preset, overrides = _settings(args)
                cfg = apply_overrides(train_preset(preset), overrides)
                out = args.out = args.out or f"runs/train-{cfg.preset}-seed{cfg.seed}"
                print(json.dumps({"config": asdict(cfg), "genotype": args.genotype, "out": out}, indent=2),
                      flush=True)
                outcome = run_train(args.genotype, cfg, out)
            print(f"wrote {outcome.model_path} and {outcome.run_dir}/report.md")
    except (ConfigError, RunDirError, DataError, CheckpointError, ValueError, OSError) as exc:
        print(f"rdnas-search: error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        where = getattr(args, "resume", None) or getattr(args, "out", None) or getattr(args, "run_dir", "")
        print(f"rdnas-search: interrupted; the last completed epoch is checkpointed: resume with --resume {where}",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
