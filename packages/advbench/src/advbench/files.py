"""Writing results so that nothing already written is lost: atomic, durable writes and output-path checks.

Every file is written to a temporary file beside its target, flushed and fsync'ed, renamed over the target,
and then the directory is fsync'ed, so a crash or a kill leaves either the old file or the new one, never
half a file.  Temporary files are named ``.NAME.XXXX.tmp`` and a kill can leave one behind:
:func:`remove_orphans` deletes them when a run resumes.  :func:`check_output_dir` refuses an ``--out`` that
cannot become a directory before anything is computed or written.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["atomic_write", "atomic_write_text", "atomic_torch_save", "check_output_dir", "remove_orphans",
           "OutputPathError", "umask_mode"]

_SUFFIX = ".tmp"


class OutputPathError(ValueError):
    """An output path that cannot be a directory (it is a file, or lies under one)."""


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # a platform without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], Any]) -> Path:
    """Call ``write(fh)`` on a temporary binary file, make it durable and rename it to ``path``.

    On any failure (a full disk, a file-size limit, an interrupt) the temporary file is removed and ``path``
    keeps its previous content.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=_SUFFIX, dir=target.parent)
    try:
        os.fchmod(fd, umask_mode())  # mkstemp makes 0600; a result file gets the mode open() would give it
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return target


def umask_mode(mode: int = 0o666) -> int:
    """``mode`` less the process's umask: the mode a plain ``open(path, "w")`` gives a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return mode & ~mask


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and durably."""
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save(obj)`` to ``path`` atomically and durably."""
    import torch

    return atomic_write(path, lambda fh: torch.save(obj, fh))


def remove_orphans(directory: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files a killed writer left in ``directory`` (``.NAME.XXXX.tmp``); returns them."""
    d = Path(directory)
    orphans = [p for p in d.glob(f".*{_SUFFIX}") if p.is_file()] if d.is_dir() else []
    for p in orphans:
        p.unlink(missing_ok=True)
    return orphans


def check_output_dir(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """``path`` as a directory that exists or can be created; an :class:`OutputPathError` otherwise.

    Creates nothing: it only checks that neither ``path`` nor any of its parents is a file.
    """
    p = Path(path)
    for candidate in (p, *p.parents):
        if candidate.exists() and not candidate.is_dir():
            where = "is a file" if candidate == p else f"lies under the file {candidate}"
            raise OutputPathError(f"{option} {p} {where}; give a directory")
    return p
