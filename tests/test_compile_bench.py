"""The compile benchmark refuses bad arguments with one line (its runs take minutes: docs/results.md has one)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "tools" / "bench" / "compile_bench.py"


@pytest.mark.parametrize(("args", "message"), [(["--rounds", "0"], "--rounds must be at least 1"),
                                               (["--seed", "-1"], "--seed must be a non-negative integer"),
                                               (["--preset", "gpu"], "invalid choice"),
                                               (["--contenders", "eager,fast"], "unknown contender(s) fast")])
def test_bad_arguments_are_refused_before_anything_compiles(args: list[str], message: str) -> None:
    proc = subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
