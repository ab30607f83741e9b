"""Sweep small CPU convolutions for crashes, hangs and wrong results (issue #11, "Known upstream issues").

Every case is one convolution shape (input and output channels, kernel, stride, dilation, groups) run in one
memory layout (channels_last or NCHW), with one thread count, in one pass:

- ``fwd``: forward under ``torch.no_grad()``;
- ``xgrad``: forward and the input gradient only (weight frozen);
- ``wgrad``: forward and the weight gradient only (input without gradient);

each ``--iters`` times on a ``[20, C_in, 32, 32]`` input, checked against a float64 NCHW reference.

Cases run in worker subprocesses (``OMP_NUM_THREADS`` set per worker), one case after another; the parent
gives each case ``--timeout`` seconds.  A worker that dies (SIGSEGV, SIGABRT) or stops answering marks its
case as ``crash`` or ``hang`` and is replaced by a new one that goes on with the next case, so a whole sweep
finishes whatever the kernels do.  ``--repeats`` runs every group that many times (the 2-thread failure
is a race that passes some of the time).

    .venv/bin/python tools/conv_sweep.py --out runs/conv-sweep          # about 15 minutes on 2 cores

writes ``sweep.jsonl`` (one record per case and repeat), ``danger.md`` and ``danger.json`` (the failing
shapes; ``packages/rdnas-space/tests/data/conv_danger_set.json`` is a copy), and prints
the danger set.  ``--guarded`` routes every convolution through :func:`rdnas_space.conv.conv2d`, the
project's guard, instead of ``torch.nn.functional.conv2d``: its danger set must be empty.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import select
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

PASSES = ("fwd", "xgrad", "wgrad")
LAYOUTS = ("channels_last", "nchw")


@dataclass(frozen=True)
class Shape:
    """One convolution: ``Conv2d(c_in, c_out, kernel, stride, padding=dilation * (kernel // 2), dilation, groups)``."""

    c_in: int
    c_out: int
    kernel: int
    stride: int
    dilation: int = 1
    groups: int = 1

    def label(self) -> str:
        extra = "" if self.groups == 1 else f" groups={self.groups}"
        extra += "" if self.dilation == 1 else f" dilation={self.dilation}"
        return f"{self.c_in}->{self.c_out} {self.kernel}x{self.kernel} stride {self.stride}{extra}"


def shapes(max_channels: int = 8) -> list[Shape]:
    """Dense convolutions with 1..max_channels in and out, 1x1/3x3/5x5/7x7 kernels, stride 1 and 2; depthwise
    convolutions (the separable and dilated operations) with 1..max_channels channels."""
    out = [Shape(ci, co, k, s) for ci, co, k, s in itertools.product(range(1, max_channels + 1),
                                                                      range(1, max_channels + 1), (1, 3), (1, 2))]
    out += [Shape(ci, 1, k, 1) for ci in (1, 2) for k in (5, 7)]  # spatial attention maps (CBAM, ECAM)
    out += [Shape(c, c, k, s, d, c) for c, k, s, d in itertools.product(range(2, max_channels + 1), (3, 5), (1, 2),
                                                                         (1, 2))]
    return out


def wide_shapes(max_channels: int = 40) -> list[Shape]:
    """Strided dense convolutions with up to ``max_channels`` inputs: how far the danger set reaches."""
    return [Shape(ci, co, k, 2) for ci, co, k in itertools.product(range(1, max_channels + 1), (1, 2, 3, 8, 16, 24),
                                                                    (1, 3))]


def _cases(family: str, max_channels: int) -> list[tuple[Shape, str, str]]:
    family_shapes = shapes(max_channels) if family == "small" else wide_shapes(max_channels)
    return [(sh, layout, p) for sh in family_shapes for layout in LAYOUTS for p in PASSES]


def _run_case(shape: Shape, layout: str, pass_: str, iters: int, guarded: bool) -> float:
    """Run one case in this process; the largest relative error against the float64 NCHW reference."""
    import torch

    conv = torch.nn.functional.conv2d
    if guarded:
        from rdnas_space.conv import conv2d as conv
    gen = torch.Generator().manual_seed(0)
    x64 = torch.rand(20, shape.c_in, 32, 32, generator=gen, dtype=torch.float64)
    w64 = torch.randn(shape.c_out, shape.c_in // shape.groups, shape.kernel, shape.kernel, generator=gen,
                      dtype=torch.float64)
    kw = {"stride": shape.stride, "padding": shape.dilation * (shape.kernel // 2), "dilation": shape.dilation,
          "groups": shape.groups}
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    x = x64.float().contiguous(memory_format=fmt)
    w = w64.float().contiguous(memory_format=fmt)
    x64.requires_grad_(pass_ == "xgrad")
    w64.requires_grad_(pass_ == "wgrad")
    ref = torch.nn.functional.conv2d(x64, w64, **kw)
    if pass_ != "fwd":
        ref.sum().backward()
    expected = {"fwd": ref.detach(), "xgrad": x64.grad, "wgrad": w64.grad}[pass_]
    err = 0.0
    for _ in range(iters):
        xi, wi = x.detach().requires_grad_(pass_ == "xgrad"), w.detach().requires_grad_(pass_ == "wgrad")
        with torch.set_grad_enabled(pass_ != "fwd"):
            y = conv(xi, wi, **kw)
            if pass_ != "fwd":
                y.sum().backward()
        got = {"fwd": y.detach(), "xgrad": xi.grad, "wgrad": wi.grad}[pass_]
        scale = float(expected.abs().max()) or 1.0
        err = max(err, float((got.double() - expected).abs().max()) / scale)
    return err


def _worker(args: argparse.Namespace) -> int:
    cases = _cases(args.family, args.max_channels)
    for i in range(args.start, len(cases) if args.only is None else args.only + 1):
        shape, layout, pass_ = cases[i]
        if layout != args.layout or pass_ != args.pass_ or (args.only is not None and i != args.only):
            continue
        print(f"BEGIN {i}", flush=True)
        err = _run_case(shape, layout, pass_, args.iters, args.guarded)
        print(f"END {i} {err!r}", flush=True)
    return 0


def _run_worker(start: int, only: int | None, threads: int, layout: str, pass_: str, args: argparse.Namespace
                ) -> tuple[list[tuple[int, float]], int | None, str | None]:
    """One worker from case ``start`` (or case ``only`` alone): finished ``(case, error)`` pairs, then the case
    it died or stuck on and how (``None, None`` when it reached the end)."""
    cmd = [sys.executable, __file__, "--worker", "--start", str(start), "--layout", layout, "--pass", pass_,
           "--iters", str(args.iters), "--max-channels", str(args.max_channels), "--family", args.family]
    cmd += ["--only", str(only)] if only is not None else []
    cmd += ["--guarded"] if args.guarded else []
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True, bufsize=1)
    done: list[tuple[int, float]] = []
    current: int | None = None
    deadline = time.monotonic() + args.timeout + 30  # the first case also pays for importing torch
    while True:
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            proc.kill()
            proc.wait()
            return done, current, "hang"
        line = proc.stdout.readline()
        if not line:
            rc = proc.wait()
            if rc == 0:
                return done, None, None
            return done, current, f"crash (signal {-rc})" if rc < 0 else f"crash (exit {rc})"
        word, idx, *rest = line.split()
        if word == "BEGIN":
            current, deadline = int(idx), time.monotonic() + args.timeout
        else:
            done.append((int(idx), float(rest[0])))
            current = None


def _sweep_group(threads: int, layout: str, pass_: str, args: argparse.Namespace, log) -> list[dict]:
    """Run every case of one (threads, layout, pass) group, replacing dead or stuck workers.

    A case on which a worker died or stuck is run again alone in a fresh worker: heap corruption can surface in
    a later case than the one that caused it, so only a failure that reproduces alone is charged to the case
    (one that does not is recorded as ``ok-alone``, with the first outcome kept in ``first``).
    """
    cases = _cases(args.family, args.max_channels)
    todo = [i for i, (_, lay, p) in enumerate(cases) if lay == layout and p == pass_]
    records: list[dict] = []

    def emit(i: int, status: str, err: float | None, first: str | None = None) -> None:
        records.append({**_record(cases, i, threads, status, err), "first": first})
        log.write(json.dumps(records[-1]) + "\n")
        log.flush()

    start = todo[0]
    while True:
        done, stuck, how = _run_worker(start, None, threads, layout, pass_, args)
        for i, err in done:
            emit(i, "ok" if err <= args.rtol else "wrong", err)
        if stuck is None and how is None:
            break
        if stuck is None:  # died between cases: charge the next one
            stuck = next(i for i in todo if i > (done[-1][0] if done else start - 1))
        alone, _, how_alone = _run_worker(stuck, stuck, threads, layout, pass_, args)
        if how_alone is not None:
            emit(stuck, how_alone, None, how)
        else:
            err = alone[0][1]
            emit(stuck, ("ok-alone" if err <= args.rtol else "wrong"), err, how)
        later = [i for i in todo if i > stuck]
        if not later:
            break
        start = later[0]
    return records


def _record(cases, i: int, threads: int, status: str, err: float | None) -> dict:
    shape, layout, pass_ = cases[i]
    return {"case": i, **asdict(shape), "layout": layout, "pass": pass_, "threads": threads, "status": status,
            "rel_err": err}


def asdict_key(shape: Shape) -> tuple[int, ...]:
    """Sort key of a shape: grouping, kernel, stride, output then input channels, dilation."""
    return (shape.groups, shape.kernel, shape.stride, shape.c_out, shape.c_in, shape.dilation)


def danger_set(records: list[dict]) -> dict[Shape, set[str]]:
    """Shapes with any non-ok record, and what went wrong (``layout/pass/threads: status``)."""
    bad: dict[Shape, set[str]] = {}
    for r in records:
        if r["status"] not in ("ok", "ok-alone"):
            shape = Shape(r["c_in"], r["c_out"], r["kernel"], r["stride"], r["dilation"], r["groups"])
            bad.setdefault(shape, set()).add(f"{r['layout']}/{r['pass']}/{r['threads']}t: {r['status'].split()[0]}")
    return bad


def _markdown(bad: dict[Shape, set[str]], n_cases: int, args: argparse.Namespace, seconds: float) -> str:
    import torch

    lines = [f"# Convolution sweep: torch {torch.__version__}, threads {args.threads}, {args.repeats} repeat(s), "
             f"{'guarded (rdnas_space.conv)' if args.guarded else 'plain torch.nn.functional.conv2d'}, "
             f"{args.family} shapes up to {args.max_channels} channels, passes {args.passes}, "
             f"layouts {args.layouts}", "",
             f"{n_cases} cases per repeat and thread count, {seconds:.0f} s.  Failing shapes: {len(bad)}.", ""]
    if bad:
        lines += ["| shape | failures (layout/pass/threads: status) |", "|---|---|"]
        for shape in sorted(bad, key=asdict_key):
            lines.append(f"| {shape.label()} | {', '.join(sorted(bad[shape]))} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/conv-sweep", help="output directory")
    p.add_argument("--threads", default="1,2", help="comma-separated OMP thread counts")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--iters", type=int, default=3, help="convolutions per case inside one worker")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds before a case counts as a hang")
    p.add_argument("--rtol", type=float, default=1e-4, help="relative error above which a result is wrong")
    p.add_argument("--family", choices=("small", "wide"), default="small",
                   help="small: every shape with 1..max-channels in and out; wide: strided convolutions with up "
                        "to max-channels inputs")
    p.add_argument("--max-channels", type=int, default=None, help="8 for small, 40 for wide")
    p.add_argument("--passes", default=",".join(PASSES), help="comma-separated subset of fwd,xgrad,wgrad")
    p.add_argument("--layouts", default=",".join(LAYOUTS), help="comma-separated subset of channels_last,nchw")
    p.add_argument("--guarded", action="store_true", help="run through rdnas_space.conv.conv2d")
    p.add_argument("--seed", type=int, default=0, help="unused: the inputs are drawn from a fixed generator")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--only", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--layout", default=None, help=argparse.SUPPRESS)
    p.add_argument("--pass", dest="pass_", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.max_channels is None:
        args.max_channels = 8 if args.family == "small" else 40
    if args.worker:
        return _worker(args)
    try:
        threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        p.error(f"--threads takes comma-separated integers, got {args.threads!r}")
    if args.repeats < 1 or args.iters < 1 or args.timeout <= 0 or min(threads) < 1:
        p.error("--repeats, --iters, --timeout and every thread count must be positive")
    passes, layouts = args.passes.split(","), args.layouts.split(",")
    if not set(passes) <= set(PASSES) or not set(layouts) <= set(LAYOUTS):
        p.error(f"--passes takes a subset of {','.join(PASSES)} and --layouts a subset of {','.join(LAYOUTS)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    records: list[dict] = []
    with (out / "sweep.jsonl").open("w") as log:
        for rep, t, layout, pass_ in itertools.product(range(args.repeats), threads, layouts, passes):
            group = _sweep_group(t, layout, pass_, args, log)
            records += group
            n_bad = sum(r["status"] != "ok" for r in group)
            print(f"repeat {rep + 1} threads {t} {layout:13s} {pass_:5s}: {len(group)} cases, {n_bad} failing",
                  flush=True)
    bad = danger_set(records)
    n_cases = sum(lay in layouts and p in passes for _, lay, p in _cases(args.family, args.max_channels))
    text = _markdown(bad, n_cases, args, time.monotonic() - t0)
    import torch

    danger = {"torch": torch.__version__, "family": args.family, "max_channels": args.max_channels,
              "threads": threads, "repeats": args.repeats,
              "shapes": [{**asdict(sh), "failures": sorted(bad[sh])} for sh in sorted(bad, key=asdict_key)]}
    for name, content in (("danger.md", text), ("danger.json", json.dumps(danger, indent=1) + "\n")):
        tmp = out / f".{name}.tmp"
        tmp.write_text(content)
        tmp.replace(out / name)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
