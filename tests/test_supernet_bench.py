"""The supernet benchmark: its smoke preset runs and its tables are consistent; its compiled-ops contender
computes what eager does."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from rdnas_space import Supernet, SupernetConfig, compile_counters, to_channels_last
from rdnas_space.ops import SepConv

BENCH = Path(__file__).resolve().parents[1] / "tools" / "bench" / "supernet_bench.py"


def _rows(text: str, heading: str) -> list[list[str]]:
    """Data rows of the markdown table that follows ``heading``."""
    lines = text.split(heading, 1)[1].splitlines()
    first = next(i for i, ln in enumerate(lines) if ln.startswith("|"))
    table = []
    for ln in lines[first:]:
        if not ln.startswith("|"):
            break
        table.append(ln)
    return [[cell.strip() for cell in ln.strip("|").split("|")] for ln in table[2:]]


@pytest.mark.slow
def test_smoke_preset_tables() -> None:
    out = subprocess.run([sys.executable, str(BENCH), "--preset", "smoke", "--rounds", "3", "--contenders",
                          "library,rewrites"], capture_output=True, text=True, timeout=600, check=True).stdout
    assert "Median over 3 alternating rounds of 1 step each" in out
    (train,) = _rows(out, "## Training step")
    c, cells, ref, contig, ours, median, spread = train
    assert (c, cells) == ("4", "3")
    assert all(float(v) > 0 for v in (ref, contig, ours))
    low, high = (float(v) for v in re.fullmatch(r"([\d.]+)-([\d.]+)x", spread).groups())
    assert low <= float(median.rstrip("x")) <= high
    coalition = _rows(out, "## Coalition evaluation")
    assert [r[2] for r in coalition] == ["normal", "reduce"]
    for row in coalition:
        separate, grouped, ratio = float(row[3]), float(row[5]), float(row[6].rstrip("x"))
        assert abs(ratio - grouped / separate) <= 0.02 * ratio + 0.01
    (precision,) = _rows(out, "## Precision")
    assert precision[:2] == ["4", "3"]
    fp32, bf16, median, spread = float(precision[2]), float(precision[3]), precision[4], precision[5]
    low, high = (float(v) for v in re.fullmatch(r"([\d.]+)-([\d.]+)x", spread).groups())
    assert fp32 > 0 and bf16 > 0 and low <= float(median.rstrip("x")) <= high
    assert 0 < float(precision[9]) < 0.05  # bf16 logits within 5% of fp32's: autocast was on, and mild
    kernels = _rows(out, "## Kernels")
    assert [r[:3] for r in kernels] == [["2", "3", "step"], ["2", "3", "coalitions"]]
    for row in kernels:
        library, rewrites = float(row[3]), float(row[4])
        median, low, high = (float(v) for v in re.fullmatch(r"([\d.]+)x \(([\d.]+)-([\d.]+)x\)", row[5]).groups())
        assert library > 0 and rewrites > 0 and low <= median <= high
        assert row[6:] == ["-", "-"]  # nothing compiled
    assert re.search(r"peak memory \(max RSS\) \d+ MiB", out)


@pytest.mark.slow
def test_one_section_runs_alone() -> None:
    out = subprocess.run([sys.executable, str(BENCH), "--preset", "smoke", "--rounds", "1", "--only", "precision"],
                         capture_output=True, text=True, timeout=600, check=True).stdout
    assert "## Precision" in out and "## Training step" not in out and "## Coalition evaluation" not in out


def test_unknown_contenders_are_refused() -> None:
    proc = subprocess.run([sys.executable, str(BENCH), "--preset", "smoke", "--contenders", "library,fast"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "--contenders takes distinct names from library, rewrites, compiled" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_rounds_must_be_positive() -> None:
    proc = subprocess.run([sys.executable, str(BENCH), "--preset", "smoke", "--rounds", "0"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert "--rounds must be at least 1" in proc.stderr
    assert "Traceback" not in proc.stderr


def _bench_module():
    spec = importlib.util.spec_from_file_location("supernet_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_compiled_operations_match_eager() -> None:
    """The ``compiled-ops`` contender computes what the eager supernet computes: the training step's loss and
    gradients, and a stacked coalition pass (whose batch norms use per-coalition statistics)."""
    bench = _bench_module()
    nets = []
    for _ in range(2):
        torch.manual_seed(0)
        nets.append(to_channels_last(Supernet(SupernetConfig(channels=2, n_cells=3)).train()))
    eager, compiled = nets[0], bench._compile_operations(nets[1], backend="aot_eager")
    assert sum(isinstance(m, SepConv) for m in compiled.modules()) > 0
    x = torch.rand(6, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (6,))
    graphs0 = compile_counters()["graphs"]
    losses = [torch.nn.functional.cross_entropy(net(x), y) for net in (eager, compiled)]
    for loss in losses:
        loss.backward()
    torch.testing.assert_close(losses[1], losses[0])
    for (name, p_eager), p_compiled in zip(eager.named_parameters(), compiled.parameters(), strict=True):
        torch.testing.assert_close(p_compiled.grad, p_eager.grad, msg=name)
    coalitions = bench._random_coalitions(eager, 4, 0)
    with torch.no_grad():
        outs = [net.eval().forward_coalitions(x, "normal", coalitions) for net in (eager, compiled)]
    torch.testing.assert_close(outs[1], outs[0])
    assert 0 < compile_counters()["graphs"] - graphs0 <= 32  # one graph per geometry and mode, not per instance
