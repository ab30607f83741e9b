"""``advbench eval`` and ``advbench transfer``: thin command lines over :mod:`advbench.evaluate`."""

from __future__ import annotations

import argparse
import os
import sys

from .checkpoint import CheckpointError
from .data import DATASETS, DataError
from .device import PRECISIONS
from .distributed import BACKENDS, launched_by_torchrun
from .evaluate import SUITES, EvalConfig, evaluate, evaluate_transfer
from .threat import parse_eps

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _eps(text: str) -> float:
    try:
        return parse_eps(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _step(text: str) -> float:
    try:
        return parse_eps(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("bad eps", "bad step").replace("so eps", "so the step")
                                         ) from None


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", choices=DATASETS, default=None,
                   help="default: the checkpoint's dataset (cifar10 if unknown)")
    p.add_argument("--data-root", default=None, help="dataset directory, archive or .npz file")
    p.add_argument("--split", choices=("train", "test"), default="test")
    p.add_argument("--n-examples", type=int, default=1000, help="evaluation subset size (chosen with --seed)")
    p.add_argument("--eps", type=_eps, default=8 / 255, help="Linf radius, e.g. 8/255 or 0.031")
    p.add_argument("--step", type=_step, default=2 / 255, help="PGD step size (default 2/255)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="fp32 (default, the reference) or bf16 autocast (faster on GPU; may inflate robustness)")
    p.add_argument("--arch", default=None, help="architecture of a raw state_dict file")
    p.add_argument("--out", default=None, help="output directory (default: a fresh advbench-out/<model>-<time>)")
    p.add_argument("--force", action="store_true", help="replace an earlier evaluation's results in --out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--download", action="store_true", help="let torchvision download the dataset")
    p.add_argument("--dist-backend", choices=BACKENDS, default="auto",
                   help="under torchrun: nccl on CUDA, gloo on CPU (auto), or either by name")
    p.add_argument("--no-progress", action="store_true")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="advbench", description="Adversarial robustness evaluation.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    ev = sub.add_parser("eval", help="evaluate one model")
    ev.add_argument("--model", required=True, help="advbench checkpoint, or a state_dict with --arch")
    ev.add_argument("--suite", choices=SUITES, default="whitebox")
    ev.add_argument("--skip-autoattack", action="store_true", help="whitebox without APGD-CE and AutoAttack")
    ev.add_argument("--restarts", type=int, default=5, help="sweep suite: PGD random restarts per eps (default 5)")
    _common(ev)
    tr = sub.add_parser("transfer", help="source-by-target transfer matrix (PGD-20)")
    tr.add_argument("--models", nargs="+", required=True)
    _common(tr)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; bad input prints one line to stderr and returns 2."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse already printed its one-line usage error
        return int(exc.code or 0) if exc.code not in (None, 0) else 0
    try:
        cfg = EvalConfig(suite=getattr(args, "suite", "whitebox"), dataset=args.dataset, data_root=args.data_root,
                         split=args.split, n_examples=args.n_examples, eps=args.eps, step=args.step,
                         seed=args.seed, batch_size=args.batch_size, device=args.device, out=args.out,
                         arch=args.arch, download=args.download, progress=not args.no_progress,
                         skip_autoattack=getattr(args, "skip_autoattack", False),
                         restarts=getattr(args, "restarts", 5), precision=args.precision,
                         dist_backend=args.dist_backend, force=args.force)
        if args.command == "eval":
            results = evaluate(args.model, cfg)
        else:
            results = evaluate_transfer(args.models, cfg)
    except (CheckpointError, DataError, ValueError, OSError) as exc:
        text = str(exc).strip()
        print(f"advbench: error: {text.splitlines()[0] if text else type(exc).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("advbench: interrupted", file=sys.stderr)
        return 130
    if launched_by_torchrun() and os.environ.get("RANK", "0") != "0":
        return 0  # rank 0 reports for the group
    print(f"wrote {results['out']}/results.json and {results['out']}/report.md")
    rb = results.get("robustbench") or {}
    if rb.get("clean_acc") is not None:
        aa = rb.get("autoattack_acc")
        print(f"clean {rb['clean_acc']:.2f}%" + (f", AutoAttack {aa:.2f}%" if aa is not None else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
