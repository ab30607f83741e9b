"""The decode cache follows the content it decodes, and a file that does not decode is named."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from advbench import DataError, load_dataset
from PIL import Image


def _folder(root: Path, per_class: int = 3) -> Path:
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (root / "test" / cls).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(root / "test" / cls / f"{i}.png")
    return root


def test_an_edited_folder_is_decoded_again(tmp_path: Path) -> None:
    root, cache = _folder(tmp_path / "imgs"), tmp_path / "cache"
    assert len(load_dataset("imagefolder", root, "test", cache_dir=cache)) == 6
    root_mtime = root.stat().st_mtime_ns
    (root / "test" / "dog" / "2.png").unlink()  # inside a class folder: the root's mtime does not change
    os.utime(root, ns=(root_mtime, root_mtime))
    assert len(load_dataset("imagefolder", root, "test", cache_dir=cache)) == 5
    bad = root / "test" / "cat" / "1.png"
    bad.write_bytes(bad.read_bytes()[:20])  # a truncated image
    with pytest.raises(DataError, match=r"cannot decode the image .*cat/1\.png"):
        load_dataset("imagefolder", root, "test", cache_dir=cache)


def test_npz_labels_and_layouts_are_checked(tmp_path: Path) -> None:
    x = np.random.default_rng(1).random((4, 8, 8, 3)).astype(np.float32)  # float images, channels last
    np.savez(tmp_path / "ok.npz", x=x, y=np.array([0, 1, 2, 1]))
    data = load_dataset("npz", tmp_path / "ok.npz")
    assert tuple(data.x.shape) == (4, 3, 8, 8) and data.num_classes == 3
    for name, y, extra, match in [("neg", [0, -1, 1, 1], {}, "labels must lie in 0..1"),
                                  ("big", [0, 1, 5, 1], {"classes": np.array(["a", "b", "c"])}, "0..2"),
                                  ("float", [0.0, 1.0, 1.5, 0.0], {}, "must be integers")]:
        np.savez(tmp_path / f"{name}.npz", x=x, y=np.array(y), **extra)
        with pytest.raises(DataError, match=match):
            load_dataset("npz", tmp_path / f"{name}.npz")
