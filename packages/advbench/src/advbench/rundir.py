"""Run directories: every command that writes results claims its directory through :func:`claim_run_dir`.

A run directory records its kind (``run.json``: ``search``, ``training``, ``nb201``, ``eval``, ``transfer``,
``reproduce``, ...), so that no command writes into another command's results:

- a directory holding a run of another kind is refused, with one line naming that kind;
- a non-empty directory that is no run at all is refused (nothing of the user's is overwritten);
- a directory made before kinds were recorded is recognised by the files its command writes;
- the claim holds an exclusive lock (``.lock``, :func:`fcntl.flock`) for the writer's lifetime, so a second
  writer into the same directory gets one line (:class:`RunDirBusy`) and writes nothing; the operating system
  drops the lock when the process ends, however it ends.

This is the lowest package every writer uses (rdnas-search builds on advbench); the atomic file writes that
runs use live beside it in :mod:`advbench.files`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

from .files import atomic_write_text, check_output_dir

__all__ = ["RunDirBusy", "RunKindError", "check_run_dir", "claim_run_dir", "run_kind", "MARKER", "LOCK"]

MARKER = "run.json"
LOCK = ".lock"
_IGNORED = {MARKER, LOCK}
# files by which a directory written before kinds were recorded is recognised (first match wins)
_LEGACY = (("train_config.json", "training"), ("jobs.jsonl", "reproduce"), ("jobs", "reproduce"),
           ("results.json", "eval"), ("runs.jsonl", "nb201"), ("checkpoint.pt", "search"))


class RunKindError(ValueError):
    """A directory that holds something other than a run of the kind a command writes."""


class RunDirBusy(RunKindError):
    """Another process holds the directory's lock."""


def run_kind(path: str | os.PathLike[str]) -> str | None:
    """The kind of run ``path`` holds (``None``: no run, or not a directory)."""
    p = Path(path)
    if not p.is_dir():
        return None
    marker = p / MARKER
    if marker.is_file():
        try:
            return str(json.loads(marker.read_text())["kind"])
        except (OSError, ValueError, KeyError, TypeError):
            return "unknown"
    config = p / "config.json"
    if config.is_file():
        try:
            data = json.loads(config.read_text())
        except (OSError, ValueError):
            data = {}
        if isinstance(data, dict) and str(data.get("format", "")).startswith("rdnas-nb201"):
            return "nb201"
        if isinstance(data, dict) and "config" in data:
            return "search"
    for name, kind in _LEGACY:
        if (p / name).exists():
            return kind
    return None


def check_run_dir(path: str | os.PathLike[str], kind: str, *, resume: bool = False) -> Path:
    """The checks of :func:`claim_run_dir` without creating or locking anything (a command runs them before its
    slow validation, and claims the directory after it, so that a failed start leaves nothing behind)."""
    p = Path(path)
    _check(p, kind, resume)
    return p


def _a(kind: str) -> str:
    return f"{'an' if kind[0] in 'aeino' else 'a'} {kind}"  # an nb201, an eval, a search, a train


def _check(p: Path, kind: str, resume: bool) -> None:
    found = run_kind(p)
    if found is not None and found != kind:
        raise RunKindError(f"{p} holds {_a(found)} run; {_a(kind)} run needs a directory of its own")
    if resume and found is None:
        raise RunKindError(f"{p} is not {_a(kind)} run directory: nothing to resume")
    if found is None and p.is_dir() and any(c.name not in _IGNORED for c in p.iterdir()):
        raise RunKindError(f"{p} is not empty and holds no run; give a new or empty directory as --out")


@contextlib.contextmanager
def claim_run_dir(path: str | os.PathLike[str], kind: str, *, resume: bool = False, main: bool = True,
                  option: str = "--out") -> Iterator[Path]:
    """Check, create and lock ``path`` as a run directory of ``kind`` for the duration of the ``with`` block.

    Args:
        path: the run directory (created if missing).
        kind: what the command writes there.
        resume: the command continues a run it finds there (it must be one of ``kind``).
        main: only the writing process (rank 0 under torchrun) creates and locks; the other ranks only check.
        option: the command-line option that named the directory, for the messages.

    Raises:
        RunKindError: another kind of run, or a non-empty directory that is no run; RunDirBusy: another
        process is writing there; OutputPathError: the path is a file.
    """
    p = check_output_dir(path, option)
    if str(path) == "":
        raise RunKindError(f"{option} is empty; give a directory")
    _check(p, kind, resume)
    if not main:
        yield p
        return
    p.mkdir(parents=True, exist_ok=True)
    fd = os.open(p / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirBusy(f"{p} is in use by another process (it holds {p / LOCK}); wait for it to finish or "
                             "give another --out") from None
        _check(p, kind, resume)  # the winner of a race sees what the other writer left
        if not (p / MARKER).is_file():
            atomic_write_text(p / MARKER, json.dumps({"kind": kind}) + "\n")
        yield p
    finally:
        os.close(fd)  # releases the lock
