"""The data layer: the shared JPEG archive, ImageFolder, npz, subsets, caching, missing data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from advbench import DataError, load_dataset, subset
from PIL import Image

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def test_archive_splits(cifar_train, cifar_test) -> None:
    assert cifar_train.x.shape == (50_000, 3, 32, 32) and cifar_test.x.shape == (10_000, 3, 32, 32)
    assert cifar_test.classes == CIFAR10_CLASSES
    assert torch.equal(torch.bincount(cifar_test.y), torch.full((10,), 1000))
    assert 0.0 <= float(cifar_test.x.min()) and float(cifar_test.x.max()) <= 1.0
    assert 0.4 < float(cifar_test.x.mean()) < 0.55  # natural images, not zeros or noise


def test_cache_gives_identical_tensors(cifar_archive, data_cache, cifar_test) -> None:
    again = load_dataset("archive", cifar_archive, "test", cache_dir=data_cache)
    assert torch.equal(again.x, cifar_test.x) and torch.equal(again.y, cifar_test.y)
    assert any(p.name.startswith("archive-test-") for p in data_cache.iterdir())


def test_subsets_are_deterministic_and_balanced(cifar_test) -> None:
    a, b, c = subset(cifar_test, 100, seed=4), subset(cifar_test, 100, seed=4), subset(cifar_test, 100, seed=5)
    assert torch.equal(a.x, b.x) and not torch.equal(a.x, c.x)
    balanced = subset(cifar_test, 100, seed=0, balanced=True)
    assert torch.equal(torch.bincount(balanced.y, minlength=10), torch.full((10,), 10))
    assert subset(cifar_test, None) is cifar_test


def test_imagefolder_and_npz(tmp_path) -> None:
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / "imgs" / "test" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(tmp_path / "imgs" / "test" / cls /
                                                                                  f"{i}.png")
    data = load_dataset("imagefolder", tmp_path / "imgs", "test", cache_dir=tmp_path / "cache")
    assert data.classes == ["cat", "dog"] and data.x.shape == (6, 3, 8, 8) and data.y.tolist() == [0, 0, 0, 1, 1, 1]
    x = rng.integers(0, 255, (5, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x=x, y=np.array([0, 1, 2, 1, 0]), classes=np.array(["a", "b", "c"]))
    npz = load_dataset("npz", tmp_path / "d.npz")
    assert npz.classes == ["a", "b", "c"]
    torch.testing.assert_close(npz.x[2], torch.from_numpy(x[2]).permute(2, 0, 1).float() / 255)


@pytest.mark.parametrize(
    ("name", "root", "message"),
    [
        ("cifar10", "EMPTY", "cifar10 not found under"),
        ("svhn", "EMPTY", "svhn not found under"),
        ("imagefolder", None, "needs --data-root"),
        ("archive", "EMPTY/missing.tar.gz", "does not exist"),
        ("npz", "EMPTY/missing.npz", "does not exist"),
        ("mnist", "EMPTY", "unknown dataset"),
    ],
)
def test_missing_data_gives_one_line_errors(tmp_path, name, root, message) -> None:
    root_path = None if root is None else str(root).replace("EMPTY", str(tmp_path))
    with pytest.raises(DataError, match=message):
        load_dataset(name, root_path, "test", cache_dir=tmp_path / "cache")
