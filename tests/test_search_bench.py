"""The search benchmark: one epoch per contender, its table consistent; bad arguments refused in one line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "tools" / "bench" / "search_bench.py"


@pytest.mark.slow
def test_smoke_epoch_table_adds_up() -> None:
    out = subprocess.run([sys.executable, str(BENCH), "--preset", "smoke", "--set", "n_permutations=2",
                          "--set", "n_score=4"], capture_output=True, text=True, timeout=600, check=True).stdout
    assert "overrides n_permutations=2, n_score=4" in out
    row = next(ln for ln in out.splitlines() if ln.startswith("| rewrites |"))
    cells = [c.strip().strip("*") for c in row.strip("|").split("|")]
    train, attack, score_attack, scoring, epoch = (float(v) for v in cells[1:6])
    assert 0 < train + attack + score_attack + scoring <= epoch  # the epoch also loads data and builds the net
    assert cells[6] == "0" and cells[8] == "1.00x"  # eager: no graphs; the first contender is the baseline
    assert re.search(r"shares of the `rewrites` epoch: training \d+%, attacks \d+%, scoring \d+%", out)


@pytest.mark.parametrize(("args", "message"), [(["--contenders", "rewrites,fast"], "--contenders takes distinct"),
                                               (["--set", "channels"], "--set takes KEY=VALUE"),
                                               (["--set", "chanels=4"], "unknown option 'chanels'")])
def test_bad_arguments_are_refused(args: list[str], message: str) -> None:
    proc = subprocess.run([sys.executable, str(BENCH), "--preset", "smoke", *args], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
