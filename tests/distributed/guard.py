"""Run a module as ``python -m`` would, recording every write a non-zero rank makes under a guarded directory.

``torchrun ... guard.py MODULE ARGS...`` with ``GUARD_DIR`` (the run directory) and ``GUARD_LOG`` (a file outside
it).  On ranks other than 0 an audit hook appends one line to ``GUARD_LOG`` for each open-for-writing, rename,
removal or directory creation under ``GUARD_DIR``: the test then asserts that the log is empty.
"""

from __future__ import annotations

import os
import runpy
import sys

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _under(path: object, root: str) -> bool:
    if isinstance(path, int) or path is None:
        return False
    try:
        return os.path.abspath(os.fsdecode(path)).startswith(root)
    except TypeError:
        return False


def _install(root: str, log: str) -> None:
    def hook(event: str, args: tuple) -> None:
        hit = None
        if event == "open" and _under(args[0], root):
            mode, flags = args[1], args[2]
            if (mode and any(c in mode for c in "wax+")) or (not mode and flags & _WRITE_FLAGS):
                hit = args[0]
        elif event in ("os.rename", "os.remove", "os.mkdir", "os.rmdir") and any(_under(a, root) for a in args[:2]):
            hit = args[:2]
        if hit is not None:
            with open(log, "a") as f:  # the log lies outside root: this open does not recurse into a hit
                f.write(f"rank {os.environ.get('RANK')}: {event} {hit}\n")

    sys.addaudithook(hook)


if __name__ == "__main__":
    if os.environ.get("RANK", "0") != "0":
        _install(os.path.abspath(os.environ["GUARD_DIR"]), os.environ["GUARD_LOG"])
    module, sys.argv = sys.argv[1], [sys.argv[1], *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
