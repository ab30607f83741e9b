"""Child process of the fault-injection tests: an ``rdnas-search run`` that can kill itself at its k-th event.

Events are counted by wrapping library calls, never by changing the library:

- ``train``: an SGD step of the supernet's weights;
- ``score``: a batch of coalition evaluations of a ROSE game;
- ``checkpoint``: a checkpoint write, killed half way through the bytes (the temporary file is left behind);
- ``write``: any other atomic write (log, report, plots, marker), killed after the temporary file is complete
  and before the rename.

``--kill-at EVENT:K`` sends SIGKILL to the process at the K-th EVENT; ``--count FILE`` writes the counts of a
whole run; ``--fsize BYTES`` caps the size of any file the process writes (``ulimit -f``), so a large write
fails as it would on a full disk.  The remaining arguments go to ``rdnas-search``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import signal
import sys


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--kill-at", default=None)
    p.add_argument("--count", default=None)
    p.add_argument("--fsize", type=int, default=None)
    args, rest = p.parse_known_args()
    if args.fsize is not None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (args.fsize, args.fsize))
    import advbench.files as files
    import rdnas_search.search as search
    import torch
    from rdnas_search.cli import main as cli

    counts = {"train": 0, "score": 0, "checkpoint": 0, "write": 0}
    event, _, k = (args.kill_at or ":0").partition(":")
    target = (event, int(k))

    def hit(name: str) -> bool:
        counts[name] += 1
        return (name, counts[name]) == target

    def die() -> None:
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    sgd_step = torch.optim.SGD.step

    def step(self, *a, **kw):
        if hit("train"):
            die()
        return sgd_step(self, *a, **kw)

    torch.optim.SGD.step = step
    value_function = search.SupernetGame.value_function

    def value(self, coalitions):
        if hit("score"):
            die()
        return value_function(self, coalitions)

    search.SupernetGame.value_function = value
    torch_save = torch.save

    def save(obj, f, *a, **kw):
        if hasattr(f, "write") and hit("checkpoint"):
            buf = io.BytesIO()
            torch_save(obj, buf, *a, **kw)
            f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
            f.flush()
            die()
        return torch_save(obj, f, *a, **kw)

    torch.save = save
    replace = files.os.replace

    def rename(src, dst):
        if not str(dst).endswith(".pt") and hit("write"):
            die()
        return replace(src, dst)

    files.os.replace = rename
    rc = cli(rest)
    if args.count:
        with open(args.count, "w") as fh:
            json.dump(counts, fh)
    return rc


if __name__ == "__main__":
    sys.exit(main())
