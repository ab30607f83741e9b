"""Fault injection (issue #13): a search killed anywhere resumes to the same result.

A smoke search (2 epochs: a warm-up, then a scoring round; 4 scoring images to keep it short) runs once
uninterrupted, counting its events (``child.py``).  It is then killed with SIGKILL at 5 seeded random events,
one of them half way through a checkpoint write, and each killed run is resumed: every one must end with the
uninterrupted run's alpha (bit for bit), genotype, report and completion marker, and no temporary file left
behind.  Broken and failed writes: ``test_write_faults.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

CHILD = Path(__file__).with_name("child.py")
RUN = ["run", "--preset", "smoke", "--set", "n_score=4", "--no-progress"]  # a warm-up and a scoring round


def child(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    try:
        return subprocess.run([sys.executable, str(CHILD), *args], env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the child hung: {args}")


def _final(run: Path) -> tuple[dict[str, torch.Tensor], str]:
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    alphas = {k: v for k, v in state["model"].items() if k.startswith("alpha_")}
    return alphas, (run / "genotype.json").read_text()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    root = tmp_path_factory.mktemp("faults")
    counts = root / "counts.json"
    proc = child("--count", str(counts), *RUN, "--out", str(root / "ref"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root / "ref", json.loads(counts.read_text())


def _kill_points(counts: dict[str, int], n: int = 5, seed: int = 2026) -> list[tuple[str, int]]:
    """n seeded kill points: one half way through a checkpoint write, the rest anywhere in the run."""
    rng = np.random.default_rng(seed)
    points = [("checkpoint", int(rng.integers(1, counts["checkpoint"] + 1)))]
    events = [e for e in ("train", "score", "write") if counts[e] > 0]
    while len(points) < n:
        e = str(rng.choice(events))
        point = (e, int(rng.integers(1, counts[e] + 1)))
        if point not in points:
            points.append(point)
    return points


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("i", range(5))
def test_killed_anywhere_a_search_resumes_to_the_same_result(reference, tmp_path: Path, i: int) -> None:
    ref, counts = reference
    assert counts["checkpoint"] == 2 and counts["train"] > 0 and counts["score"] > 0 and counts["write"] > 0
    ref_alphas, ref_genotype = _final(ref)
    event, k = _kill_points(counts)[i]
    run = tmp_path / f"{event}-{k}"
    killed = child("--kill-at", f"{event}:{k}", *RUN, "--out", str(run))
    assert killed.returncode == -9, (event, k, killed.returncode, killed.stderr[-1000:])
    resumed = child("run", "--resume", str(run), "--no-progress")
    assert resumed.returncode == 0, (event, k, resumed.stderr[-2000:])
    alphas, genotype = _final(run)
    assert alphas.keys() == ref_alphas.keys()
    assert all(torch.equal(alphas[b], ref_alphas[b]) for b in alphas), (event, k)
    assert genotype == ref_genotype, (event, k)
    assert (run / "DONE").is_file() and (run / "report.md").is_file() and (run / "alpha.png").is_file()
    assert not list(run.glob(".*.tmp")), (event, k, list(run.glob(".*.tmp")))
    again = child("run", "--resume", str(run))
    assert again.returncode == 2 and "finished run" in again.stderr

