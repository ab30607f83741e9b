"""The search's data: 1,000 training and 500 validation images, class-balanced, drawn with the run's seed.

By default they come from the embedded pool (2,000 CIFAR-10 training images,
200 per class, stored as their original JPEG bytes; built by
``tools/build_search_subset.py`` from ``../shared/data``), so a search runs on a
fresh machine with no network.  ``dataset`` other than ``embedded`` draws from
the training split of a full dataset through advbench's data layer.
"""

from __future__ import annotations

import io
from importlib import resources

import numpy as np
import torch
from advbench import DataError, TensorData, load_dataset

__all__ = ["load_search_pool", "search_split", "crop_flip", "EMBEDDED_POOL"]

EMBEDDED_POOL = "cifar10_search_pool.npz"


def load_search_pool() -> TensorData:
    """Decode the embedded pool (2,000 images, labels, CIFAR-10 class names)."""
    from PIL import Image

    path = resources.files("rdnas_search") / "data" / EMBEDDED_POOL
    with resources.as_file(path) as p, np.load(p, allow_pickle=False) as f:
        data, offsets, labels, classes = f["data"], f["offsets"], f["labels"], [str(c) for c in f["classes"]]
    images = []
    for i in range(labels.size):
        with Image.open(io.BytesIO(data[offsets[i] : offsets[i + 1]].tobytes())) as img:
            images.append(np.asarray(img.convert("RGB"), dtype=np.uint8))
    x = torch.from_numpy(np.stack(images).transpose(0, 3, 1, 2).copy()).float().div_(255.0)
    return TensorData(x, torch.from_numpy(labels), classes, "cifar10-embedded")


def search_split(dataset: str, n_train: int, n_val: int, seed: int, data_root: str | None = None
                 ) -> tuple[TensorData, TensorData]:
    """Disjoint class-balanced training and validation sets drawn with ``seed``.

    Raises:
        DataError: the dataset is missing, or too small for the requested sizes.
    """
    pool = load_search_pool() if dataset == "embedded" else load_dataset(dataset, data_root, "train")
    n_classes = pool.num_classes
    if n_classes < 2:
        raise DataError(f"{pool.name} has {n_classes} class: a search needs at least 2 (with one class every loss "
                        "is 0 and the genotype means nothing)")
    per_train, per_val = -(-n_train // n_classes), -(-n_val // n_classes)
    gen = np.random.default_rng(seed)
    labels = pool.y.numpy()
    train_idx, val_idx = [], []
    for c in range(n_classes):
        idx = gen.permutation(np.flatnonzero(labels == c))
        if idx.size < per_train + per_val:
            raise DataError(f"{pool.name} has {idx.size} images of class {c}; the search needs "
                            f"{per_train + per_val} (lower n_train / n_val)")
        train_idx.append(idx[:per_train])
        val_idx.append(idx[per_train : per_train + per_val])
    t, v = torch.from_numpy(_round_robin(train_idx, n_train)), torch.from_numpy(_round_robin(val_idx, n_val))
    return (TensorData(pool.x[t], pool.y[t], pool.classes, pool.name),
            TensorData(pool.x[v], pool.y[v], pool.classes, pool.name))


def _round_robin(per_class: list[np.ndarray], n: int) -> np.ndarray:
    """n indices taken class by class in turn (balanced to within one), sorted."""
    out = [i for group in zip(*per_class, strict=False) for i in group][:n]
    return np.sort(np.array(out, dtype=np.int64))


def crop_flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Standard CIFAR augmentation: a random crop of the image padded by 4 zero pixels, and a random
    horizontal flip, drawn per image from ``gen``."""
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (n,), generator=gen).tolist()
    dx = torch.randint(0, 9, (n,), generator=gen).tolist()
    out = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])
    flip = torch.rand(n, generator=gen) < 0.5
    out[flip] = out[flip].flip(3)
    return out
