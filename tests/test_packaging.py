"""Release quality (issue #13): the four packages build, carry their license and type marker, install
non-editable into fresh environments, and each README's first example runs there.

rose-estimator is installed alone into a fresh venv with no torch (its promised standalone use), and the tests
shipped in its sdist run there.  The torch packages are installed non-editable into a second venv that reuses
this environment's third-party packages (torch, numpy, ...) through a ``.pth`` line: the editable installs of
this checkout are not visible there, so every import comes from the built wheels.
"""

from __future__ import annotations

import email
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"rose-estimator": "rose_estimator", "rdnas-space": "rdnas_space", "advbench": "advbench",
            "rdnas-search": "rdnas_search"}
PINS = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text().splitlines()
            if "==" in line and not line.startswith("#"))


def _run(*cmd: str | Path, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ""})
    assert proc.returncode == 0, f"{cmd}: {proc.stdout[-1500:]}\n{proc.stderr[-2500:]}"
    return proc


def _first_example(package: str) -> str:
    text = (ROOT / "packages" / package / "README.md").read_text()
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


def _version(module: str, package: str) -> str:
    init = (ROOT / "packages" / package / "src" / module / "__init__.py").read_text()
    return re.search(r'__version__ = "([^"]+)"', init).group(1)


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    for package in PACKAGES:
        _run(sys.executable, "-c", "import sys; from setuptools import build_meta as b; out = sys.argv[1]; "
             "b.build_wheel(out); b.build_sdist(out)", out, cwd=ROOT / "packages" / package)  # builds rewrite argv
    return out


def _venv(tmp_path: Path) -> Path:
    """A fresh virtual environment under ``tmp_path``; its python."""
    venv.create(tmp_path / "venv", with_pip=True)
    return tmp_path / "venv" / "bin" / "python"


def _run_first_example(py: Path, package: str, work: Path) -> None:
    """Run ``package``'s README first example as ``example.py`` in a new folder ``work``."""
    work.mkdir()
    (work / "example.py").write_text(_first_example(package))
    _run(py, "example.py", cwd=work, timeout=600)


def _wheel(dist: Path, module: str) -> Path:
    return next(dist.glob(f"{module}-*.whl"))


@pytest.mark.slow
def test_wheels_and_sdists_carry_license_types_and_metadata(dist: Path) -> None:
    license_text = (ROOT / "LICENSE").read_text()
    for package, module in PACKAGES.items():
        assert (ROOT / "packages" / package / "LICENSE").read_text() == license_text
        version = _version(module, package)
        with zipfile.ZipFile(_wheel(dist, module)) as whl:
            names = whl.namelist()
            info = f"{module}-{version}.dist-info"
            assert f"{module}/py.typed" in names and f"{info}/licenses/LICENSE" in names
            meta = email.message_from_string(whl.read(f"{info}/METADATA").decode())
        assert meta["Version"] == version and meta["License-Expression"] == "MIT"
        assert "RDNAS toolkit contributors" in meta["Author"]
        assert "Typing :: Typed" in meta.get_all("Classifier")
        assert "../" not in meta.get_payload(), f"{package}'s README links into the repository"
        with tarfile.open(dist / f"{module}-{version}.tar.gz") as sdist:
            members = {m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name}
        assert "LICENSE" in members
    assert {"tests/conftest.py", "tests/rose_strategies.py", "tests/test_stats.py"} <= {
        m.split("/", 1)[1] for m in tarfile.open(dist / f"rose_estimator-{_version('rose_estimator', 'rose-estimator')}"
                                                            ".tar.gz").getnames() if "/" in m}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_rose_estimator_alone_without_torch(dist: Path, tmp_path: Path) -> None:
    py = _venv(tmp_path)
    _run(py, "-m", "pip", "install", "--quiet", _wheel(dist, "rose_estimator"), f"numpy=={PINS['numpy']}",
         f"scipy=={PINS['scipy']}", f"pytest=={PINS['pytest']}", f"hypothesis=={PINS['hypothesis']}", timeout=600)
    assert subprocess.run([py, "-c", "import torch"], capture_output=True).returncode != 0
    work = tmp_path / "work"
    _run_first_example(py, "rose-estimator", work)
    assert (work / "attribution.json").is_file()
    _run(py, "-m", "rose_estimator.demo", "--permutations", "8", "--groups", "2", cwd=work)
    with tarfile.open(dist / f"rose_estimator-{_version('rose_estimator', 'rose-estimator')}.tar.gz") as sdist:
        sdist.extractall(tmp_path / "sdist", filter="data")
    unpacked = next((tmp_path / "sdist").iterdir())
    _run(py, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests", cwd=unpacked, timeout=600)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_torch_packages_install_from_wheels_and_their_examples_run(dist: Path, tmp_path: Path) -> None:
    py = _venv(tmp_path)
    site = Path(_run(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    (site / "_project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(py, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         *[_wheel(dist, m) for m in PACKAGES.values()])
    where = _run(py, "-c", "import rose_estimator, rdnas_space, advbench, rdnas_search as m; "
                 "print('\\n'.join(x.__file__ for x in (rose_estimator, rdnas_space, advbench, m)))").stdout
    assert all(line.startswith(str(site)) for line in where.split()), where
    for package in ("rdnas-space", "advbench", "rdnas-search"):
        _run_first_example(py, package, tmp_path / package)
    assert (tmp_path / "rdnas-space" / "genotype.json").is_file()
    assert (tmp_path / "rdnas-search" / "runs" / "smoke" / "DONE").is_file()
