"""Throughput of the dual-branch supernet: training steps and coalition evaluation.

1. Training step (forward, backward, SGD step on the weights, batch 32, 32x32
   inputs) of ``rdnas_space.Supernet`` in channels_last memory format against a
   straightforward reference written here with the original DARTS operations
   (``nn.MaxPool2d``/``nn.AvgPool2d`` + BN, each op applying its own ReLU) and a
   loop over every operation of every edge (``sum(w * op(x))``, ``none``
   included), contiguous memory, same cells and fusion.
2. Coalition evaluation: k random coalitions of one branch scored on a
   validation batch, by ``Supernet.forward_coalitions`` (one pass; work that does
   not depend on the coalition is shared) and by naive stacking (the batch
   repeated k times with per-sample masks), against k separate masked passes.

3. Precision: the channels_last training step and ``forward_coalitions`` under bfloat16 autocast
   (``precision=bf16``) against float32, with the largest difference in logits between the two.
4. Kernels (issue #15): the channels_last training step and ``forward_coalitions`` at the cpu search preset's
   widths, three ways: ``library`` (every layer on the library's kernel, ``rdnas_space.library_kernels()``:
   rdnas-space before its CPU rewrites), ``rewrites`` (today's eager default: the exact rewrites of dilated
   depthwise convolutions and narrow batch norm) and ``compiled`` (``rdnas_space.compile_regions`` with
   inductor, what ``--set compile=true`` does, on an empty inductor cache) and ``compiled-ops`` (the
   rewrites, with every ``sep_conv`` operation compiled on its own: the smallest region, a few seconds to
   compile; the other operations keep their eager rewrites, which inductor's graphs would lose).  A compiled
   contender's first call of each kind is timed on its own: its excess over the eager first call is the
   compile time, shown beside the steady-state speed and the calls needed to pay it back.

All are timed in the same process; ratios > 1 mean rdnas-space (or bf16) is faster.
Training steps are timed in alternating rounds (a few steps of each contender
per round), because the speed of a shared machine drifts by tens of percent over
a minute: each round's ratio compares contenders under the same conditions, and
the table gives the median over rounds with the range of the per-round ratios.
Usage: python tools/bench/supernet_bench.py [--preset cpu|smoke] [--seed 0] [--rounds N]
                                           [--only layout|coalitions|precision|kernels]
                                           [--contenders library,rewrites,compiled,compiled-ops]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Callable

import torch
from advbench import autocast_for
from rdnas_space import (
    DARTS_PRIMITIVES,
    Fusion,
    Normalize,
    Supernet,
    SupernetBase,
    SupernetConfig,
    compile_counters,
    compile_regions,
    library_kernels,
    to_channels_last,
)
from rdnas_space.cells import edge_endpoints
from rdnas_space.compiled import RECOMPILE_LIMIT
from rdnas_space.ops import FactorizedReduce, ReLUConvBN, SepConv
from torch import nn

PRESETS = {
    "cpu": {"sizes": [(8, 5), (16, 5)], "precision_sizes": [(4, 5), (8, 5)], "kernel_sizes": [(4, 5), (8, 5)],
            "batch": 32, "rounds": 5, "steps": 2, "k": 8, "val_batch": 32},
    "smoke": {"sizes": [(4, 3)], "precision_sizes": [(4, 3)], "kernel_sizes": [(2, 3)], "batch": 8, "rounds": 2,
              "steps": 1, "k": 4, "val_batch": 8},
}
SECTIONS = ("layout", "coalitions", "precision", "kernels")
KERNEL_CONTENDERS = ("library", "rewrites", "compiled", "compiled-ops")
COMPILED = ("compiled", "compiled-ops")
CPU = torch.device("cpu")


def _ref_op(name: str, c: int, stride: int) -> nn.Module:
    """The original DARTS search operations (nn pooling layers followed by BN, each op with its own ReLU)."""

    def relu_conv(k: int, s: int, p: int, d: int = 1, groups: int = 1, c_out: int | None = None) -> list[nn.Module]:
        return [nn.ReLU(), nn.Conv2d(c, c, k, s, p, dilation=d, groups=c, bias=False),
                nn.Conv2d(c, c_out or c, 1, bias=False), nn.BatchNorm2d(c_out or c, affine=False)]

    if name == "none":
        return _RefZero(stride)
    if name == "max_pool_3x3":
        return nn.Sequential(nn.MaxPool2d(3, stride, 1), nn.BatchNorm2d(c, affine=False))
    if name == "avg_pool_3x3":
        return nn.Sequential(nn.AvgPool2d(3, stride, 1, count_include_pad=False), nn.BatchNorm2d(c, affine=False))
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c, False)
    k = int(name[-1])
    if name.startswith("sep"):
        return nn.Sequential(*relu_conv(k, stride, k // 2), *relu_conv(k, 1, k // 2))
    return nn.Sequential(*relu_conv(k, stride, k - 1, d=2))


class _RefZero(nn.Module):
    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class _RefMixedOp(nn.Module):
    def __init__(self, c: int, stride: int) -> None:
        super().__init__()
        self.ops = nn.ModuleList(_ref_op(n, c, stride) for n in DARTS_PRIMITIVES)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return sum(w * op(x) for w, op in zip(weights, self.ops, strict=True))


class _RefCell(nn.Module):
    def __init__(self, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool) -> None:
        super().__init__()
        self.reduction = reduction
        self.pre0 = FactorizedReduce(c_pp, c, False) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0, False)
        self.pre1 = ReLUConvBN(c_p, c, 1, 1, 0, False)
        self.edges = nn.ModuleList(_RefMixedOp(c, 2 if reduction and s < 2 else 1) for s, _ in edge_endpoints())
        self.out_channels = 4 * c

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        offset = 0
        for _ in range(4):
            states.append(sum(self.edges[offset + j](h, weights[offset + j]) for j, h in enumerate(states)))
            offset += len(states) - 1
        return torch.cat(states[-4:], dim=1)


class _RefDualCell(nn.Module):
    def __init__(self, c_pp: int, c_p: int, c: int, reduction_prev: bool) -> None:
        super().__init__()
        self.normal = _RefCell(c_pp, c_p, c, False, reduction_prev)
        self.robust = _RefCell(c_pp, c_p, c, False, reduction_prev)
        self.out_channels = self.normal.out_channels
        self.fusion = Fusion("eca", self.out_channels)

    def forward(self, s0, s1, w_normal, w_robust):
        return self.fusion(self.normal(s0, s1, w_normal), self.robust(s0, s1, w_robust))


class _RefSupernet(nn.Module):
    """The reference: same architecture as rdnas_space.Supernet, written the plain DARTS way."""

    def __init__(self, c: int, n_cells: int) -> None:
        super().__init__()
        self.normalize = Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))
        self.stem = nn.Sequential(nn.Conv2d(3, 3 * c, 3, padding=1, bias=False), nn.BatchNorm2d(3 * c))
        c_pp, c_p, c_curr = 3 * c, 3 * c, c
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(n_cells):
            reduction = i in (n_cells // 3, 2 * n_cells // 3)
            if reduction:
                c_curr *= 2
                cell: nn.Module = _RefCell(c_pp, c_p, c_curr, True, reduction_prev)
            else:
                cell = _RefDualCell(c_pp, c_p, c_curr, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, cell.out_channels
        self.classifier = nn.Linear(c_p, 10)
        self.alphas = nn.ParameterList(nn.Parameter(1e-3 * torch.randn(14, 8)) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wn, wr, wred = (torch.softmax(a, -1) for a in self.alphas)
        s0 = s1 = self.stem(self.normalize(x))
        for cell in self.cells:
            out = cell(s0, s1, wred) if isinstance(cell, _RefCell) else cell(s0, s1, wn, wr)
            s0, s1 = s1, out
        return self.classifier(s1.mean(dim=(2, 3)))


_naive = SupernetBase.forward_coalitions  # stacking the batch k times, no sharing


def _time_rounds(fns: dict[str, Callable[[], None]], rounds: int, steps: int) -> dict[str, list[float]]:
    """Seconds per call of each function, one entry per round; every round runs ``steps`` calls of each in turn."""
    for fn in fns.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                fn()
            times[name].append((time.perf_counter() - t0) / steps)
    return times


def _time(fn: Callable[[], None], repeats: int) -> float:
    """Seconds per call of ``fn`` after one warm-up call."""
    return _time_rounds({"fn": fn}, 1, repeats)["fn"][0]


def _train_step_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor, precision: str = "fp32"
                   ) -> Callable[[], None]:
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast_for(CPU, precision):
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return step


def _random_coalitions(net: SupernetBase, k: int, seed: int) -> torch.Tensor:
    """``k`` coalitions of uniformly drawn sizes, as a ROSE walk visits them: bool ``[k, E, O]``."""
    gen = torch.Generator().manual_seed(seed)
    sizes = torch.randint(0, net.n_players + 1, (k,), generator=gen)
    order = torch.stack([torch.randperm(net.n_players, generator=gen) for _ in range(k)])
    return (torch.argsort(order, dim=1) < sizes[:, None]).reshape(k, *net.alpha_shape)


def _coalitions_fn(net: SupernetBase, x: torch.Tensor, coalitions: torch.Tensor, precision: str
                   ) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad(), autocast_for(CPU, precision):
            net.forward_coalitions(x, "normal", coalitions)

    return run


def _precision_section(p: dict, rounds: int, seed: int) -> None:
    """bf16 autocast against fp32 on the channels_last supernet: training step and coalition evaluation."""
    k, vb = p["k"], p["val_batch"]
    print(f"\n## Precision: bf16 autocast against fp32, channels_last (training images/s, batch {p['batch']}; "
          f"coalitions/s, {k} on {vb} images)\n")
    print(f"Median over {rounds} alternating rounds; ratio = fp32 time / bf16 time, per round; logit gap = the "
          "largest |bf16 - fp32| logit of the first batch, relative to the largest fp32 logit.\n")
    print("| C | cells | fp32 step | bf16 step | step ratio (median) | step ratio (range) | fp32 coalitions "
          "| bf16 coalitions | coalition ratio (median) | logit gap |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c, n_cells in p["precision_sizes"]:
        x = torch.rand(p["batch"], 3, 32, 32).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (p["batch"],))
        nets = {}
        for precision in ("fp32", "bf16"):
            torch.manual_seed(seed)
            nets[precision] = to_channels_last(Supernet(SupernetConfig(channels=c, n_cells=n_cells)).train())
        with torch.no_grad():
            ref = nets["fp32"].eval()(x)
            with autocast_for(CPU, "bf16"):
                low = nets["bf16"].eval()(x).float()
        gap = float((low - ref).abs().max() / ref.abs().max())
        steps = {prec: _train_step_fn(net.train(), x, y, prec) for prec, net in nets.items()}
        t_step = _time_rounds(steps, rounds, p["steps"])
        net = nets["fp32"].eval()
        xv = x[:vb]
        coalitions = _random_coalitions(net, k, seed)

        t_coal = _time_rounds({prec: _coalitions_fn(net, xv, coalitions, prec) for prec in ("fp32", "bf16")},
                              rounds, 1)
        step_ratios = [a / b for a, b in zip(t_step["fp32"], t_step["bf16"], strict=True)]
        coal_ratios = [a / b for a, b in zip(t_coal["fp32"], t_coal["bf16"], strict=True)]
        b = p["batch"]
        print(f"| {c} | {n_cells} | {b / statistics.median(t_step['fp32']):.1f} "
              f"| {b / statistics.median(t_step['bf16']):.1f} | {statistics.median(step_ratios):.2f}x "
              f"| {min(step_ratios):.2f}-{max(step_ratios):.2f}x | {k / statistics.median(t_coal['fp32']):.2f} "
              f"| {k / statistics.median(t_coal['bf16']):.2f} | {statistics.median(coal_ratios):.2f}x | {gap:.3f} |")


def _in_library_kernels(fn: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        with library_kernels():
            fn()

    return run


def _first_call(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _compile_operations(net: nn.Module, backend: str = "inductor") -> nn.Module:
    """Compile the ``forward_from_relu`` of every ``sep_conv`` of ``net`` on its own (the ``compiled-ops``
    contender); instances of one geometry share a graph.  Returns ``net``."""
    import torch._dynamo.config as dynamo_config

    dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, RECOMPILE_LIMIT)
    for module in net.modules():
        if isinstance(module, SepConv):
            module.forward_from_relu = torch.compile(module.forward_from_relu, backend=backend)
    return net


def _ratio_cells(base: list[float], other: list[float]) -> str:
    ratios = [b / o for b, o in zip(base, other, strict=True)]
    return f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}x)"


def _kernels_section(p: dict, rounds: int, seed: int, contenders: tuple[str, ...]) -> None:
    """The training step and coalition evaluation: library kernels, today's rewrites, regional compile."""
    k, vb, b = p["k"], p["val_batch"], p["batch"]
    print(f"\n## Kernels: {', '.join(contenders)} (channels_last; training images/s at batch {b}, coalitions/s "
          f"for {k} on {vb} images)\n")
    print(f"Median over {rounds} alternating rounds; ratios against `library` per round, with their range. Compile s: "
          "each compiled contender's first call less the eager first call, on an empty inductor cache (several "
          "compiled contenders: in the order of --contenders, separated by /); pays back after: the calls its "
          "steady-state saving needs to repay that.\n")
    ratio_columns = [f"{c} / library" for c in contenders if c != "library"]
    columns = " | ".join(contenders + tuple(ratio_columns))
    print(f"| C | cells | measure | {columns} | compile s | pays back after |")
    print("|---:|---:|---|" + "---:|" * (len(contenders) + len(ratio_columns) + 2))
    for c, n_cells in p["kernel_sizes"]:
        x = torch.rand(b, 3, 32, 32).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (b,))
        nets = {}
        for name in contenders:
            torch.manual_seed(seed)
            nets[name] = to_channels_last(Supernet(SupernetConfig(channels=c, n_cells=n_cells)).train())
            if name == "compiled":
                compile_regions(nets[name])
            elif name == "compiled-ops":
                _compile_operations(nets[name])
        coalitions = _random_coalitions(nets[contenders[0]], k, seed)
        for measure in ("step", "coalitions"):
            fns = {}
            for name, net in nets.items():
                fn = (_train_step_fn(net.train(), x, y) if measure == "step"
                      else _coalitions_fn(net.eval(), x[:vb], coalitions, "fp32"))
                fns[name] = _in_library_kernels(fn) if name == "library" else fn
            graphs0 = compile_counters()["graphs"]
            first = {name: _first_call(fn) for name, fn in fns.items()}
            graphs = compile_counters()["graphs"] - graphs0
            times = _time_rounds(fns, rounds, p["steps"] if measure == "step" else 1)
            units = b if measure == "step" else k
            rates = " | ".join(f"{units / statistics.median(times[n]):.2f}" for n in contenders)
            ratios = " | ".join(_ratio_cells(times["library"], times[n]) if "library" in times else "-"
                                for n in contenders if n != "library")
            costs, paybacks = [], []
            eager = "rewrites" if "rewrites" in first else contenders[0]
            for name in (n for n in COMPILED if n in first):
                cost = max(first[name] - first[eager], 0.0)
                saving = statistics.median(times[eager]) - statistics.median(times[name])
                costs.append(f"{cost:.0f}")
                paybacks.append(f"{cost / saving:.0f} calls" if saving > 0 else "never")
            compile_s = f"{' / '.join(costs)} ({graphs} graphs)" if costs else "-"
            payback = " / ".join(paybacks) or "-"
            print(f"| {c} | {n_cells} | {measure} | {rates} | {ratios} | {compile_s} | {payback} |", flush=True)


def _layout_section(p: dict, rounds: int, seed: int) -> None:
    """Training step of rdnas-space (contiguous, channels_last) against the plain DARTS reference."""
    print(f"## Training step, batch {p['batch']}, 32x32 (images/s)\n")
    steps = f"{p['steps']} step" + ("s" if p["steps"] > 1 else "")
    print(f"Median over {rounds} alternating rounds of {steps} each; ratio = reference / rdnas-space "
          "channels_last, per round.\n")
    print("| C | cells | reference (DARTS loop, contiguous) | rdnas-space, contiguous | rdnas-space, channels_last "
          "| ratio (median) | ratio (range over rounds) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for c, n_cells in p["sizes"]:
        x = torch.rand(p["batch"], 3, 32, 32)
        y = torch.randint(0, 10, (p["batch"],))
        x_cl = x.contiguous(memory_format=torch.channels_last)
        torch.manual_seed(seed)
        ref = _RefSupernet(c, n_cells).train()
        torch.manual_seed(seed)
        contig = Supernet(SupernetConfig(channels=c, n_cells=n_cells)).train()
        torch.manual_seed(seed)
        ours = to_channels_last(Supernet(SupernetConfig(channels=c, n_cells=n_cells)).train())
        times = _time_rounds({"ref": _train_step_fn(ref, x, y), "contig": _train_step_fn(contig, x, y),
                              "ours": _train_step_fn(ours, x_cl, y)}, rounds, p["steps"])
        ratios = [r / o for r, o in zip(times["ref"], times["ours"], strict=True)]
        b = p["batch"]
        tput = {name: b / statistics.median(t) for name, t in times.items()}
        print(f"| {c} | {n_cells} | {tput['ref']:.1f} | {tput['contig']:.1f} | {tput['ours']:.1f} "
              f"| {statistics.median(ratios):.2f}x | {min(ratios):.2f}-{max(ratios):.2f}x |")


def _coalition_section(p: dict, seed: int) -> None:
    """k coalitions by separate passes, naive stacking and ``forward_coalitions``."""
    k, vb = p["k"], p["val_batch"]
    print(f"\n## Coalition evaluation: {k} coalitions on {vb} images, channels_last (coalitions/s)\n")
    print("| C | cells | branch | k separate passes | naive stacking | forward_coalitions | ratio to separate |")
    print("|---:|---:|---|---:|---:|---:|---:|")
    for c, n_cells in p["sizes"]:
        net = to_channels_last(Supernet(SupernetConfig(channels=c, n_cells=n_cells)).eval())
        xv = torch.rand(vb, 3, 32, 32).contiguous(memory_format=torch.channels_last)
        coalitions = _random_coalitions(net, k, seed)
        for branch in ("normal", "reduce"):
            with torch.no_grad():
                t_sep = _time(lambda b=branch, n=net, x=xv, cs=coalitions: [n(x, {b: c}) for c in cs], 2)
                t_naive = _time(lambda b=branch, n=net, x=xv, cs=coalitions: _naive(n, x, b, cs), 2)
                t_grouped = _time(lambda b=branch, n=net, x=xv, cs=coalitions: n.forward_coalitions(x, b, cs), 2)
            print(f"| {c} | {n_cells} | {branch} | {k / t_sep:.2f} | {k / t_naive:.2f} | {k / t_grouped:.2f} "
                  f"| {t_sep / t_grouped:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=None, help="alternating timing rounds (default: preset)")
    parser.add_argument("--only", choices=SECTIONS, default=None, help="run one section (default: all)")
    parser.add_argument("--contenders", default=",".join(KERNEL_CONTENDERS),
                        help="the kernels section's contenders, comma-separated (default: all four)")
    args = parser.parse_args()
    contenders = tuple(args.contenders.split(","))
    if not contenders or any(c not in KERNEL_CONTENDERS for c in contenders) or len(set(contenders)) < len(contenders):
        parser.error(f"--contenders takes distinct names from {', '.join(KERNEL_CONTENDERS)}")
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")
    p = PRESETS[args.preset]
    rounds = args.rounds or p["rounds"]
    torch.manual_seed(args.seed)
    threads = torch.get_num_threads()
    print(f"# supernet_bench ({platform.machine()}, CPU, {threads} threads, torch {torch.__version__})\n")
    sections = [args.only] if args.only else list(SECTIONS)
    if "layout" in sections:
        _layout_section(p, rounds, args.seed)
    if "coalitions" in sections:
        _coalition_section(p, args.seed)
    if "precision" in sections:
        _precision_section(p, rounds, args.seed)
    if "kernels" in sections:
        compiling = any(c in COMPILED for c in contenders)
        cache = tempfile.TemporaryDirectory() if compiling else contextlib.nullcontext()
        with cache as cache_dir:
            if cache_dir:  # an empty inductor cache: the compile time is a first run's
                os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache_dir
            _kernels_section(p, rounds, args.seed, contenders)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory (max RSS) {peak:.0f} MiB")


if __name__ == "__main__":
    main()
