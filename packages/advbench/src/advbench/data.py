"""Datasets as tensors of images in [0, 1], with a decode cache and deterministic subsets.

Sources:

- ``cifar10``, ``cifar100``, ``svhn``: torchvision (``download=True`` only where
  the network allows; otherwise the files must be under ``root``);
- ``imagefolder``: a directory of class sub-folders (Tiny-ImageNet, the extracted
  CIFAR-10 JPEG archive); ``root/<split>`` is used when it exists;
- ``archive``: a ``.tar.gz`` holding an ImageFolder tree per split (read without
  extracting, e.g. ``../shared/data/cifar10-jpeg.tar.gz``);
- ``npz``: a file with arrays ``x`` (uint8 NHWC or float NCHW in [0, 1]), ``y`` and
  optionally ``classes``.

Decoded datasets are cached as tensors (``torch.save``, loaded with
``weights_only=True``) under ``cache_dir``.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .files import atomic_torch_save

__all__ = ["TensorData", "DataError", "load_dataset", "subset", "DATASETS", "default_cache_dir"]

DATASETS = ("cifar10", "cifar100", "svhn", "imagefolder", "archive", "npz")


class DataError(ValueError):
    """A dataset that is missing or malformed."""


@dataclass
class TensorData:
    """Images ``x`` (float ``[N, C, H, W]`` in [0, 1]), labels ``y`` (long ``[N]``) and class names."""

    x: torch.Tensor
    y: torch.Tensor
    classes: list[str]
    name: str = ""

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.classes)


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _content_name(name: str, classes: list[str]) -> str:
    """The dataset a file holds: an archive, image folder or npz of the CIFAR-10 classes is ``cifar10``."""
    if name in ("archive", "imagefolder", "npz") and tuple(classes) == CIFAR10_CLASSES:
        return "cifar10"
    return name


def default_cache_dir() -> Path:
    """``$ADVBENCH_CACHE`` or ``~/.cache/advbench``."""
    return Path(os.environ.get("ADVBENCH_CACHE", Path.home() / ".cache" / "advbench"))


def subset(data: TensorData, n: int | None, seed: int = 0, balanced: bool = False) -> TensorData:
    """A deterministic subset of ``n`` examples chosen by ``seed`` (all, in order, when n is None).

    With ``balanced=True`` every class contributes ``n // num_classes`` examples.
    """
    if n is None or n >= len(data):
        return data
    if n < 1:
        raise DataError(f"--n-examples must be positive, got {n}")
    gen = np.random.default_rng(seed)
    labels = data.y.numpy()
    if balanced:
        per_class = n // data.num_classes
        picks = [gen.permutation(np.flatnonzero(labels == c))[:per_class] for c in range(data.num_classes)]
        idx = np.sort(np.concatenate(picks))
    else:
        idx = np.sort(gen.permutation(len(data))[:n])
    t = torch.from_numpy(idx)
    return TensorData(data.x[t], data.y[t], data.classes, data.name)


def load_dataset(name: str, root: str | os.PathLike[str] | None = None, split: str = "test", *,
                 download: bool = False, cache_dir: str | os.PathLike[str] | None = None) -> TensorData:
    """Load a whole split as tensors (see the module docstring for the sources).

    Raises:
        DataError: unknown name, or the data is not where ``root`` says (the message
            says where to put it).
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if split not in ("train", "test"):
        raise DataError(f"split must be 'train' or 'test', got {split!r}")
    if name in ("imagefolder", "archive", "npz") and root is None:
        raise DataError(f"dataset {name!r} needs --data-root (a {'file' if name != 'imagefolder' else 'directory'})")
    root_path = Path(root) if root is not None else default_cache_dir() / "downloads"
    if name == "npz":  # already arrays: nothing to decode, nothing to cache
        x, y, classes = _npz(root_path)
        return TensorData(x, y, classes, _content_name(name, classes))
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = _cache_key(name, root_path, split)
    cached = cache / f"{name}-{split}-{key}.pt"
    if cached.is_file():
        blob = torch.load(cached, map_location="cpu", weights_only=True)
        classes = list(blob["classes"])
        return TensorData(blob["x"].float().div_(255.0), blob["y"].long(), classes, _content_name(name, classes))
    x_uint8, y, classes = _decode(name, root_path, split, download)
    atomic_torch_save({"x": x_uint8, "y": y, "classes": classes}, cached)
    return TensorData(x_uint8.float().div_(255.0), y.long(), classes, _content_name(name, classes))


def _cache_key(name: str, root: Path, split: str) -> str:
    """The decode cache's key: the source's path and content signature (every file's path, size and mtime), so
    that an edited folder or archive is decoded again (a changed directory mtime is not enough: editing a file
    inside a class folder does not change the root's)."""
    digest = hashlib.sha1(f"{name}|{root.resolve()}|{split}".encode())
    if root.is_file():
        st = root.stat()
        digest.update(f"|{st.st_size}|{st.st_mtime_ns}".encode())
    elif root.is_dir():
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for f in sorted(filenames):
                path = os.path.join(dirpath, f)
                st = os.stat(path)
                digest.update(f"|{os.path.relpath(path, root)}|{st.st_size}|{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:12]


def _decode(name: str, root: Path, split: str, download: bool) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    if name in ("cifar10", "cifar100", "svhn"):
        return _torchvision(name, root, split, download)
    if name == "imagefolder":
        return _imagefolder(root, split)
    return _archive(root, split)


def _torchvision(name: str, root: Path, split: str, download: bool) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    from torchvision import datasets

    try:
        if name == "svhn":
            ds = datasets.SVHN(str(root), split=split, download=download)
            x = torch.from_numpy(ds.data)  # already NCHW uint8
            y = torch.from_numpy(ds.labels.astype(np.int64))
            return x, y, [str(i) for i in range(10)]
        cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
        ds = cls(str(root), train=split == "train", download=download)
    except RuntimeError:
        folder = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python", "svhn": f"{split}_32x32.mat"}[name]
        raise DataError(f"{name} not found under {root}: put {folder} there (pass --data-root DIR), "
                        "or allow the download where the network permits") from None
    x = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))
    return x, torch.as_tensor(ds.targets, dtype=torch.long), list(ds.classes)


def _decode_image(data: bytes, name: str | os.PathLike[str] = "image") -> np.ndarray:
    """One image as uint8 HWC RGB; a file that does not decode is a :class:`DataError` naming it."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as exc:
        reason = str(exc).split(" <_io.")[0].strip() or type(exc).__name__
        raise DataError(f"cannot decode the image {name} ({reason}): replace or remove it") from None


def _stack(images: list[np.ndarray], labels: list[int], classes: list[str], where: Path
           ) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    if not images:
        raise DataError(f"no images found in {where}")
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise DataError(f"images in {where} have different sizes {sorted(shapes)[:3]}; resize them first")
    x = torch.from_numpy(np.stack(images).transpose(0, 3, 1, 2).copy())
    return x, torch.tensor(labels, dtype=torch.long), classes


def _imagefolder(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    base = root / split if (root / split).is_dir() else root
    if not base.is_dir():
        raise DataError(f"image folder {base} does not exist: point --data-root at a directory of class folders")
    classes = sorted(d.name for d in base.iterdir() if d.is_dir())
    images, labels = [], []
    for label, cls in enumerate(classes):
        for f in sorted((base / cls).iterdir()):
            if f.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp", ".webp"):
                images.append(_decode_image(f.read_bytes(), f))
                labels.append(label)
    return _stack(images, labels, classes, base)


def _archive(path: Path, split: str) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    if not path.is_file():
        raise DataError(f"archive {path} does not exist: pass the .tar.gz with --data-root")
    found: dict[str, list[tuple[str, bytes]]] = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                parts = member.name.strip("./").split("/")
                if member.isfile() and len(parts) == 3 and parts[0] == split:
                    fh = tar.extractfile(member)
                    if fh is not None:
                        found.setdefault(parts[1], []).append((parts[2], fh.read()))
    except (tarfile.TarError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0].rstrip(":") if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path} is not a readable .tar archive ({reason})") from None
    classes = sorted(found)
    images, labels = [], []
    for label, cls in enumerate(classes):
        for fname, blob in sorted(found[cls]):
            images.append(_decode_image(blob, f"{path}:{split}/{cls}/{fname}"))
            labels.append(label)
    return _stack(images, labels, classes, path / split)


def _npz(path: Path) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    if not path.is_file():
        raise DataError(f"npz file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            x, y = f["x"], f["y"]
            classes = [str(c) for c in f["classes"]] if "classes" in f else None
    except (KeyError, ValueError, OSError) as exc:
        raise DataError(f"{path} must be an .npz with arrays 'x' and 'y' ({exc})") from None
    if x.ndim != 4 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise DataError(f"{path}: x must be [N, H, W, C] or [N, C, H, W] and y [N], got {x.shape}, {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: labels y must be integers, got {y.dtype} (class indices 0..C-1)")
    nchw = x.transpose(0, 3, 1, 2) if x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3) else x
    if x.dtype == np.uint8:
        t = torch.from_numpy(np.ascontiguousarray(nchw)).float().div_(255.0)
    elif np.issubdtype(x.dtype, np.floating):
        t = torch.from_numpy(np.ascontiguousarray(nchw, dtype=np.float32))
        if t.numel() and not bool(torch.isfinite(t).all()):
            raise DataError(f"{path}: images contain NaN or infinite pixels")
        if t.numel() and (t.min() < 0 or t.max() > 1):
            raise DataError(f"{path}: float images must lie in [0, 1]; normalisation belongs inside the model")
    else:
        raise DataError(f"{path}: images x must be uint8 (0..255) or float (0..1), got {x.dtype}")
    n_classes = len(classes) if classes is not None else (int(y.max()) + 1 if y.size else 0)
    if y.size and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise DataError(f"{path}: labels must lie in 0..{n_classes - 1}"
                        f"{' (the classes array has ' + str(n_classes) + ' names)' if classes is not None else ''}, "
                        f"got {int(y.min())}..{int(y.max())}")
    return t, torch.from_numpy(y.astype(np.int64)), classes or [str(i) for i in range(n_classes)]
