"""Run directories across commands (issue #33): no command writes into another's results, two writers into one
directory cannot both write, files get the umask's mode, and the README's search -> train -> eval pipeline runs
verbatim (no data flags for the evaluation)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from advbench.rundir import RunDirBusy, RunKindError, claim_run_dir, run_kind

BIN = Path(sys.executable).parent


def _cli(*args: str, cwd: Path | None = None, umask: int | None = None, timeout: float = 240
         ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    pre = (lambda: os.umask(umask)) if umask is not None else None
    return subprocess.run([str(BIN / args[0]), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=pre)


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def nb201_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nb") / "nb201"
    proc = _cli("rdnas-search", "nb201", "--preset", "smoke", "--runs", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def test_claims_record_the_kind_and_refuse_other_kinds(tmp_path: Path) -> None:
    run = tmp_path / "a"
    with claim_run_dir(run, "search"):
        (run / "config.json").write_text("{}")
    assert run_kind(run) == "search" and json.loads((run / "run.json").read_text()) == {"kind": "search"}
    with pytest.raises(RunKindError, match="holds a search run; a training run needs a directory of its own"):
        with claim_run_dir(run, "training"):
            pass
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("mine")
    with pytest.raises(RunKindError, match="not empty and holds no run"):
        with claim_run_dir(tmp_path / "b", "eval"):
            pass
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["notes.txt"]  # nothing written
    with pytest.raises(RunKindError, match="not a training run directory: nothing to resume"):
        with claim_run_dir(tmp_path / "c", "training", resume=True):
            pass
    assert not (tmp_path / "c").exists()


def test_a_held_directory_is_refused_to_a_second_writer(tmp_path: Path) -> None:
    run = tmp_path / "r"
    with claim_run_dir(run, "eval"):
        code = ("import sys\nfrom advbench.rundir import claim_run_dir, RunDirBusy\ntry:\n"
                f"    with claim_run_dir({str(run)!r}, 'eval'):\n        sys.exit(0)\n"
                "except RunDirBusy as e:\n    print(e)\n    sys.exit(2)\n")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and "in use by another process" in proc.stdout
    with claim_run_dir(run, "eval"):  # released when the holder's block ended
        pass
    assert issubclass(RunDirBusy, RunKindError)


@pytest.mark.slow
def test_no_command_writes_into_another_commands_directory(nb201_dir: Path, tmp_path: Path) -> None:
    before = _snapshot(nb201_dir)
    attempts = [
        ("rdnas-search", "run", "--resume", str(nb201_dir)),
        ("rdnas-search", "run", "--preset", "smoke", "--out", str(nb201_dir)),
        ("rdnas-search", "train", "--preset", "smoke", "--genotype", "random:0", "--out", str(nb201_dir)),
        ("rdnas-search", "report", str(nb201_dir)),
        ("advbench", "eval", "--model", str(tmp_path / "missing.pt"), "--out", str(nb201_dir)),
        ("rdnas-search", "nb201", "--resume", str(nb201_dir / "run0-seed0")),
    ]
    for args in attempts:
        proc = _cli(*args)
        assert proc.returncode == 2, (args, proc.stderr[-1500:])
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, (args, proc.stderr)
    assert _snapshot(nb201_dir) == before
    proc = _cli("rdnas-search", "run", "--preset", "smoke", "--set", "space=nb201", "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and "rdnas-search nb201" in proc.stderr and not (tmp_path / "x").exists()


@pytest.mark.slow
def test_two_concurrent_writers_one_wins_and_its_results_are_complete(tmp_path: Path) -> None:
    out = tmp_path / "shared"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([str(BIN / "rdnas-search"), "nb201", "--preset", "smoke", "--runs", "1", "--seed",
                               str(seed), "--out", str(out)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for seed in (0, 7)]
    results = [(p.wait(timeout=240), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert len(loser.strip().splitlines()) == 1 and ("in use by another process" in loser or "already holds" in loser)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["finished"] and summary["runs"] == 1
    runs = [d.name for d in out.iterdir() if d.is_dir() and d.name.startswith("run")]
    assert runs == [f"run0-seed{json.loads((out / 'config.json').read_text())['config']['seed']}"]


@pytest.mark.slow
@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_files_come_out_with_the_umasks_mode(umask: int, mode: int, tmp_path: Path) -> None:
    out = tmp_path / "nb"
    proc = _cli("rdnas-search", "nb201", "--preset", "smoke", "--runs", "1", "--out", str(out), umask=umask)
    assert proc.returncode == 0, proc.stderr[-1500:]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 8
    modes = {str(p.relative_to(out)): oct(p.stat().st_mode & 0o777) for p in files}
    assert set(modes.values()) == {oct(mode)}, modes


@pytest.mark.slow
def test_the_readme_pipeline_runs_verbatim(tmp_path: Path) -> None:
    """rdnas-search README: run -> train --genotype runs/search-*/genotype.json -> advbench eval --model (no data
    flags: the checkpoint says where its data came from)."""
    steps = [("rdnas-search", "run", "--preset", "smoke"),
             ("rdnas-search", "train", "--genotype", "runs/search-smoke-seed0/genotype.json", "--preset", "smoke"),
             ("advbench", "eval", "--model", "runs/train-smoke-seed0/model.pt", "--suite", "whitebox",
              "--skip-autoattack", "--n-examples", "16", "--no-progress")]
    for args in steps:
        proc = _cli(*args, cwd=tmp_path, timeout=280)
        assert proc.returncode == 0, (args, proc.stderr[-2000:])
    evals = list((tmp_path / "advbench-out").iterdir())
    assert len(evals) == 1 and evals[0].name.startswith("model-")
    results = json.loads((evals[0] / "results.json").read_text())
    assert results["data"]["n_examples"] == 16 and results["config"]["dataset"] is None
    assert results["model"]["trained_on"] == "archive"
    again = _cli(*steps[2], cwd=tmp_path)  # a second evaluation gets a directory of its own
    assert again.returncode == 0 and len(list((tmp_path / "advbench-out").iterdir())) == 2
    forced = _cli(*steps[2], "--out", str(evals[0]), cwd=tmp_path)
    assert forced.returncode == 2 and "--force" in forced.stderr
