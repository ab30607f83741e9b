"""tools/gpu_check.py --dry-run: every step of the prepared GPU check, on the CPU at toy sizes, so that the check
cannot rot while no GPU is at hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_dry_run_passes_every_step_and_reports_its_figures(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "gpu_check.py"), "--dry-run", "--out", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    steps = report["steps"]
    assert list(steps) == ["tests", "search", "train", "eval", "torchrun"]
    assert all(s["status"] == "pass" for s in steps.values()) and report["passed"] and report["dry_run"]
    assert steps["tests"].get("skipped", 0) >= 2  # the CUDA tests exist and skip on the CPU
    search = steps["search"]["contenders"]["eager fp32"]
    assert search["images_per_s"] > 0 and search["round_evaluations"] > 0
    assert search["extrapolated_search_s"] > search["extrapolated_epoch_s"] > 0
    assert steps["train"]["contenders"]["eager fp32"]["images_per_s"] > 0
    ev = steps["eval"]
    assert set(ev["gaps"]) == {"clean", "fgsm", "pgd20", "pgd100"} and max(ev["gaps"].values()) == 0.0
    assert 0.0 <= ev["autoattack"]["accuracy"]["autoattack"] <= ev["autoattack"]["accuracy"]["clean"]
    assert ev["pgd20"]["advbench"]["images_per_s"] > 0 and ev["pgd20"]["torchattacks"]["images_per_s"] > 0
    assert steps["torchrun"]["backend"] == "gloo" and steps["torchrun"]["finished"]
    text = (tmp_path / "gpu_check.md").read_text()
    assert "dry run" in text and "| torchrun | pass |" in text and "PGD-20: advbench" in text


def test_unknown_steps_are_refused_with_one_line(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "gpu_check.py"), "--dry-run", "--only", "tests,gpu",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip() == \
        "gpu_check: unknown step(s) gpu; choose from tests, search, train, eval, torchrun"
    assert not (tmp_path / "gpu_check.json").exists()
