"""Fault injection (issue #13): a truncated checkpoint and a write that fails for lack of space.

Both start from a smoke search stopped after its first epoch (``run_search(..., stop_after=1)``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

CHILD = Path(__file__).with_name("child.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def child(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, str(CHILD), *args], env=ENV, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the child hung: {args}")


@pytest.fixture(scope="module")
def stopped(tmp_path_factory) -> Path:
    """A smoke search stopped after epoch 1 of 2 (its checkpoint is that of epoch 1)."""
    run = tmp_path_factory.mktemp("faults") / "stopped"
    proc = subprocess.run([sys.executable, "-c", (
        "import sys; from rdnas_search import run_search, search_preset, apply_overrides;"
        "cfg = apply_overrides(search_preset('smoke'), {'progress': False, 'n_score': 4});"
        "run_search(cfg, sys.argv[1], stop_after=1)"), str(run)], capture_output=True, text=True, timeout=240,
        env=ENV)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return run


def _alphas(run: Path) -> dict[str, torch.Tensor]:
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    return {k: v for k, v in state["model"].items() if k.startswith("alpha_")}


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_truncated_checkpoint_gives_one_line(stopped: Path, tmp_path: Path) -> None:
    run = tmp_path / "cut"
    run.mkdir()
    (run / "config.json").write_bytes((stopped / "config.json").read_bytes())
    data = (stopped / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(data[: len(data) // 3])
    proc = child("run", "--resume", str(run))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "truncated or damaged" in proc.stderr


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_failed_write_keeps_the_previous_checkpoint(stopped: Path, tmp_path: Path) -> None:
    # Resumed under a file-size limit below a checkpoint's size, the epoch-2 checkpoint cannot be written, as on
    # a full disk.  A copy resumed without the limit is the reference.
    run, ref = tmp_path / "limited", tmp_path / "ref"
    shutil.copytree(stopped, run)
    shutil.copytree(stopped, ref)
    before = (run / "checkpoint.pt").read_bytes()
    limited = child("--fsize", str(len(before) // 2), "run", "--resume", str(run), "--no-progress")
    assert limited.returncode == 2, limited.stderr[-2000:]
    assert limited.stderr.strip().count("\n") == 0 and "could not write" in limited.stderr
    assert "checkpoint of epoch 1 is kept" in limited.stderr
    assert (run / "checkpoint.pt").read_bytes() == before
    assert torch.load(run / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert not list(run.glob(".*.tmp"))
    for directory in (run, ref):
        assert child("run", "--resume", str(directory), "--no-progress").returncode == 0
    alphas, expected = _alphas(run), _alphas(ref)
    assert alphas.keys() == expected.keys() and all(torch.equal(alphas[k], expected[k]) for k in alphas)
    assert (run / "genotype.json").read_text() == (ref / "genotype.json").read_text()
