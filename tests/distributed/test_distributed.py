"""torch.distributed (issue #14): 2 ranks on gloo, launched by torchrun, against one process.

- a sharded ROSE round equals the single-process one bit for bit (supernet game and numpy game);
- two DDP steps on 2 ranks equal one process stepping on the same global batches (BatchNorm: per-rank batch
  statistics, rank 0's running statistics);
- a sharded advbench evaluation writes the single-process ``results.json`` (per-image results gathered in order);
- a smoke search with one rank killed is restarted by torchrun (``--max-restarts 1``) and ends with the
  uninterrupted run's alpha and genotype; non-zero ranks write nothing to the run directory (``guard.py``);
- every rank leaves the group at exit (a gloo group left alive can abort a finished rank).
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).parent
pytestmark = pytest.mark.timeout(600)


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **extra}


def _torchrun(*args: str, restarts: int = 0) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--max-restarts", str(restarts),
            "--rdzv-backend", "c10d", "--rdzv-endpoint", "localhost:0", *args]


def _run(cmd: list[str], timeout: float = 420, **env: str) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(cmd, env=_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own process group: a hang is killed with every rank
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"hung: {' '.join(cmd)}")
    proc = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_sharded_rose_round_is_bit_identical(tmp_path) -> None:
    out = tmp_path / "score.json"
    _run(_torchrun(str(HERE / "worker.py"), "score", str(out)))
    result = json.loads(out.read_text())
    assert result["supernet"] and result["numpy"], result
    assert result["numpy_evaluations"] == 2 + 6 * 29  # counted as one process would: v(empty), v(full), walks


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads through Linux's /proc")
def test_ranks_leave_the_group_at_exit(tmp_path) -> None:
    """init_distributed registers an exit handler that destroys the groups.  After a DDP step, the group that
    the toolkit's collectives use has had its worker threads joined by it: a gloo worker thread that is
    still releasing a collective's Python-owned tensors in interpreter finalisation aborts the finished
    process (SIGABRT), which torchrun reports as a failed rank.  DDP keeps the world group alive, so the
    collectives must not run on it."""
    out = tmp_path / "exit.json"
    _run(_torchrun(str(HERE / "worker.py"), "exit", str(out)))
    result = json.loads(out.read_text())
    assert result["joined"] and result["left"] and result["uses_it"], result
    assert result["started"] > 0 and result["left_running"] == 0, result


def test_two_ddp_steps_equal_one_process(tmp_path) -> None:
    sys.path.insert(0, str(HERE))
    try:
        import worker
    finally:
        sys.path.remove(str(HERE))
    out = tmp_path / "ddp.pt"
    _run(_torchrun(str(HERE / "worker.py"), "ddp", str(out)))
    got = torch.load(out, weights_only=True)

    net = worker.supernet().train()  # the reference: one process, the same global batches
    opt = torch.optim.SGD(net.weight_parameters(), lr=0.1, momentum=0.9)
    x, y = worker.data(14)
    for idx in (torch.arange(0, 7), torch.arange(7, 14)):
        shares = (idx[:4], idx[4:])  # rank 0 and rank 1; each normalises with its own batch statistics
        start = copy.deepcopy({k: v for k, v in net.state_dict().items() if "running" in k or "batches" in k})
        opt.zero_grad()
        for share in reversed(shares):  # rank 0's share last: its running statistics are the ones kept
            net.load_state_dict(start, strict=False)
            loss = torch.nn.functional.cross_entropy(net(x[share]), y[share])
            (loss * len(share) / len(idx)).backward()  # DDP's mean of (share loss x share size x ranks / batch)
        opt.step()
    want = net.state_dict()
    assert set(got) == set(want)
    for key, value in want.items():
        torch.testing.assert_close(got[key], value, rtol=1e-5, atol=1e-6, msg=key)
    assert any(not torch.equal(got[k], worker.supernet().state_dict()[k]) for k in got)  # it did train


@pytest.fixture(scope="module")
def small_ckpt(tmp_path_factory, cifar_train) -> Path:
    from advbench import CheckpointInfo, Classifier, build_model, save_checkpoint, subset

    torch.manual_seed(0)
    model = Classifier(build_model("small_cnn", num_classes=10, width=8), (0.49, 0.48, 0.45), (0.25, 0.24, 0.26))
    data = subset(cifar_train, 256, 0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(3):
        for i in range(0, 256, 32):
            loss = torch.nn.functional.cross_entropy(model(data.x[i : i + 32]), data.y[i : i + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()
    info = CheckpointInfo(arch="small_cnn", arch_kwargs={"num_classes": 10, "width": 8}, mean=(0.49, 0.48, 0.45),
                          std=(0.25, 0.24, 0.26), dataset="cifar10", classes=cifar_train.classes)
    return save_checkpoint(tmp_path_factory.mktemp("dist-ckpt") / "small.pt", model.eval(), info)


def test_sharded_advbench_eval_writes_the_single_process_results(small_ckpt, cifar_archive, tmp_path) -> None:
    args = ["eval", "--model", str(small_ckpt), "--dataset", "archive", "--data-root", str(cifar_archive),
            "--n-examples", "40", "--batch-size", "8", "--suite", "all", "--no-progress"]
    _run(_torchrun("-m", "advbench", *args, "--out", str(tmp_path / "two")))
    _run([sys.executable, "-m", "advbench", *args, "--out", str(tmp_path / "one")])
    one, two = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("one", "two"))
    for r in (one, two):
        del r["created"], r["config"]["out"]
    assert two == one
    acc = one["suites"][0]["accuracy"]
    assert acc["autoattack"] <= acc["pgd20"] < acc["clean"]  # some images are right, and attacks flip some


def _rank_pid(parent: int, rank: int) -> int | None:
    """The pid of the torchrun worker of ``rank`` (a child of ``parent``), from /proc."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            env = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and f"RANK={rank}".encode() in env:
            return int(entry.name)
    return None


SEARCH = ["rdnas_search", "run", "--preset", "smoke", "--set", "n_score=4", "--no-progress"]


def _search(run: Path, log: Path, kill_rank_after_checkpoint: bool) -> str:
    """A 2-rank smoke search (rank 1 killed once the first checkpoint exists, if asked); torchrun's stderr."""
    cmd = _torchrun(str(HERE / "guard.py"), *SEARCH, "--out", str(run), restarts=1)
    err_file = run.with_suffix(".stderr")
    with open(err_file, "w") as err, open(run.with_suffix(".stdout"), "w") as out:  # files: pipes would fill up
        proc = subprocess.Popen(cmd, env=_env(GUARD_DIR=str(run), GUARD_LOG=str(log)), stdout=out, stderr=err,
                                start_new_session=True)  # its own process group: a hang is killed with every rank
        killed = False
        deadline = time.monotonic() + 420
        while kill_rank_after_checkpoint and not killed and proc.poll() is None and time.monotonic() < deadline:
            if (run / "checkpoint.pt").is_file():
                pid = _rank_pid(proc.pid, 1)
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
                    killed = True
            time.sleep(0.2)
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"the 2-rank search hung: {err_file.read_text()[-2000:]}")
    stderr = err_file.read_text()
    assert proc.returncode == 0, stderr[-3000:]
    assert killed or not kill_rank_after_checkpoint, "the run ended before rank 1 could be killed"
    return stderr


@pytest.mark.slow
def test_killed_rank_restarts_and_ends_as_uninterrupted(tmp_path) -> None:
    ref_log, kill_log = tmp_path / "ref-writes.log", tmp_path / "kill-writes.log"
    _search(tmp_path / "ref", ref_log, kill_rank_after_checkpoint=False)
    stderr = _search(tmp_path / "killed", kill_log, kill_rank_after_checkpoint=True)
    assert "exitcode: -9" in stderr  # rank 1 died of the SIGKILL, and the group still finished: torchrun restarted it
    for name in ("genotype.json", "DONE"):
        assert (tmp_path / "killed" / name).read_text() == (tmp_path / "ref" / name).read_text()
    ref, got = (torch.load(tmp_path / d / "checkpoint.pt", weights_only=True)["model"] for d in ("ref", "killed"))
    for key in (k for k in ref if k.startswith("alpha_")):
        assert torch.equal(ref[key], got[key]), key
    for log in (ref_log, kill_log):  # non-zero ranks wrote nothing to the run directory
        assert not log.exists(), log.read_text()


def test_one_process_joins_no_group(monkeypatch) -> None:
    """Without torchrun, init_distributed is rank 0 of 1: no process group, no collectives group."""
    from advbench.distributed import collective_group, init_distributed

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ctx, device = init_distributed("cpu")
    assert (ctx.rank, ctx.world_size, ctx.is_main, device.type) == (0, 1, True, "cpu")
    assert not torch.distributed.is_initialized() and collective_group() is None
