"""Fixtures shared by every package's tests: the read-only data in ../shared/data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
SHARED_DATA = ROOT.parent / "shared" / "data"

# pytest-xdist runs the suite in one worker per core (pyproject's addopts); each worker then gets its share of
# the cores as threads, set before torch starts its thread pool, so the workers do not oversubscribe the CPU.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1 and "OMP_NUM_THREADS" not in os.environ:
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // _WORKERS))


def pytest_configure(config: pytest.Config) -> None:
    """Keep advbench's decode cache inside one temporary directory for the whole session.

    The xdist controller makes it before it starts the workers, which inherit it and share the cache (its
    writes are atomic, so two workers decoding the same split at once is harmless).
    """
    if "PYTEST_XDIST_WORKER" not in os.environ or "ADVBENCH_CACHE" not in os.environ:
        os.environ["ADVBENCH_CACHE"] = tempfile.mkdtemp(prefix="advbench-cache-")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout (CI provides it; tests never download)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data not found at {SHARED_DATA}: the tests need ../shared/data beside the checkout")
    return SHARED_DATA


@pytest.fixture(scope="session")
def cifar_archive(shared_data: Path) -> Path:
    """The CIFAR-10 JPEG ImageFolder archive."""
    return shared_data / "cifar10-jpeg.tar.gz"


@pytest.fixture(scope="session")
def data_cache() -> Path:
    """The per-session decode cache (tests never write outside temporary directories)."""
    return Path(os.environ["ADVBENCH_CACHE"])


@pytest.fixture(scope="session")
def cifar_train(cifar_archive: Path, data_cache: Path):
    """CIFAR-10 training split (50,000 images) decoded from the archive, as tensors."""
    from advbench import load_dataset

    return load_dataset("archive", cifar_archive, "train", cache_dir=data_cache)


@pytest.fixture(scope="session")
def cifar_test(cifar_archive: Path, data_cache: Path):
    """CIFAR-10 test split (10,000 images) decoded from the archive, as tensors."""
    from advbench import load_dataset

    return load_dataset("archive", cifar_archive, "test", cache_dir=data_cache)


def _run_isolated(code: str, threads: int = 1, timeout: float = 120.0, args: list[str] | None = None) -> dict:
    """Run ``code`` in a fresh interpreter with ``OMP_NUM_THREADS=threads``; its last stdout line, as JSON.

    A crash or a hang fails the calling test (with the end of what the child wrote to stderr) instead of
    taking the test process down or stalling it.
    """
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    try:
        proc = subprocess.run([sys.executable, "-c", code, *(args or [])], env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the child process hung for {timeout:.0f} s at {threads} thread(s)")
    if proc.returncode != 0:
        pytest.fail(f"the child process failed with code {proc.returncode} at {threads} thread(s): "
                    f"{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def run_isolated() -> Callable[..., dict]:
    """:func:`_run_isolated`: run a script in a subprocess with a thread count and a timeout."""
    return _run_isolated
