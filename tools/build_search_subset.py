"""Build the embedded CIFAR-10 search pool shipped with rdnas-search.

Reads the CIFAR-10 JPEG archive in ../shared/data, picks a class-balanced pool
of 200 training images per class (2,000 in all) with seed 0, and stores their
original JPEG bytes (no re-encoding) in
``packages/rdnas-search/src/rdnas_search/data/cifar10_search_pool.npz``:
``data`` (all bytes concatenated), ``offsets`` ([N + 1]), ``labels``, ``classes``,
``names`` (archive member names, for provenance).  A search draws its 1,000
training and 500 validation images from this pool with the run's seed.

Usage: python tools/build_search_subset.py [--archive PATH] [--per-class 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import tarfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ARCHIVE = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
OUT = ROOT / "packages" / "rdnas-search" / "src" / "rdnas_search" / "data" / "cifar10_search_pool.npz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, default=DEFAULT_ARCHIVE)
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    members: dict[str, list[tuple[str, bytes]]] = {}
    with tarfile.open(args.archive, "r:*") as tar:
        for m in tar:
            parts = m.name.strip("./").split("/")
            if m.isfile() and len(parts) == 3 and parts[0] == "train":
                members.setdefault(parts[1], []).append((m.name, tar.extractfile(m).read()))
    classes = sorted(members)
    rng = np.random.default_rng(args.seed)
    blobs, labels, names = [], [], []
    for label, cls in enumerate(classes):
        files = sorted(members[cls])
        for i in sorted(rng.permutation(len(files))[: args.per_class]):
            names.append(files[i][0])
            blobs.append(np.frombuffer(files[i][1], dtype=np.uint8))
            labels.append(label)
    offsets = np.concatenate([[0], np.cumsum([b.size for b in blobs])]).astype(np.int64)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, data=np.concatenate(blobs), offsets=offsets, labels=np.array(labels, dtype=np.int64),
             classes=np.array(classes), names=np.array(names))
    print(f"wrote {args.out} ({len(labels)} images, {args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
