"""``rdnas-search run | train``: thin command lines over :mod:`rdnas_search.search` and :mod:`rdnas_search.train`.

Settings come from a preset, then a TOML/YAML file (``--config``), then
``--set KEY=VALUE`` and the dedicated flags; the resolved config is printed in
full at the start and saved with the run.  Bad input prints one line and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from advbench import CheckpointError, DataError

from .config import ConfigError, apply_overrides, load_overrides, search_preset, train_preset
from .search import RunDirError, run_search
from .train import run_train

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="cpu", help="paper, cpu (default) or smoke")
    p.add_argument("--config", default=None, help="TOML or YAML file of option = value overrides")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any option")
    p.add_argument("--out", default=None, help="run directory")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue an interrupted run")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N")
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
                       help="genotype.json, a published genotype (darts_v2, pdarts, advrush) or an advbench arch")
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = load_overrides(args.config) if args.config else {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value
    flags = {"seed": args.seed, "device": args.device, "dataset": args.dataset, "data_root": args.data_root,
             "epochs": args.epochs}
    for name in ("space", "fusion", "scorer", "beta", "l1", "l2"):
        flags[name] = getattr(args, name, None)
    out.update({k: v for k, v in flags.items() if v is not None})
    if getattr(args, "no_adv", False):
        out["adversarial"] = False
    if args.no_progress:
        out["progress"] = False
    return out


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rdnas-search``."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    target = args.resume or args.out
    try:
        if args.command == "run":
            if args.resume:
                print(f"resuming {args.resume}", flush=True)
                outcome = run_search(search_preset("cpu"), args.resume, resume=True)
            else:
                cfg = apply_overrides(search_preset(args.preset), _overrides(args))
                out = target = args.out or f"runs/search-{cfg.preset}-seed{cfg.seed}"
                print(json.dumps({"config": asdict(cfg), "out": out}, indent=2), flush=True)
                outcome = run_search(cfg, out)
            print(f"genotype: {outcome.genotype.to_darts() if outcome.genotype else '(not finished)'}")
            print(f"wrote {outcome.run_dir}/report.md")
        else:
            if args.resume:
                print(f"resuming {args.resume}", flush=True)
                outcome = run_train(args.genotype or "", train_preset("cpu"), args.resume, resume=True)
            else:
                if not args.genotype:
                    raise ConfigError("train needs --genotype (or --resume RUN_DIR)")
                cfg = apply_overrides(train_preset(args.preset), _overrides(args))
                out = target = args.out or f"runs/train-{cfg.preset}-seed{cfg.seed}"
                print(json.dumps({"config": asdict(cfg), "genotype": args.genotype, "out": out}, indent=2),
                      flush=True)
                outcome = run_train(args.genotype, cfg, out)
            print(f"wrote {outcome.model_path} and {outcome.run_dir}/report.md")
    except (ConfigError, RunDirError, DataError, CheckpointError, ValueError, FileNotFoundError) as exc:
        print(f"rdnas-search: error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rdnas-search: interrupted; the last completed epoch is checkpointed: resume with --resume {target}",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
