"""Checkpoints that carry their architecture, loaded without unpickling arbitrary objects.

A checkpoint is a dict of plain types and tensors written with ``torch.save`` and
read with ``torch.load(..., weights_only=True)``:

    format: "advbench-checkpoint/1"
    arch, arch_kwargs: registered builder name and its keyword arguments
    state_dict: the bare network's weights
    mean, std: input normalisation (inputs are images in [0, 1])
    dataset, classes: what the classifier was trained on
    data_root: where that data was read from (a local archive, folder or .npz; absent for downloads)
    provenance: free-form strings (creator, date, versions, command, ...)

A plain ``state_dict`` file (no ``format`` key) loads too when the caller names
the architecture (``--arch``).
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .files import atomic_torch_save
from .models import Classifier, build_model

__all__ = ["CheckpointInfo", "save_checkpoint", "load_checkpoint", "CheckpointError", "FORMAT", "atomic_torch_save",
           "safe_load", "load_weights"]

FORMAT = "advbench-checkpoint/1"


class CheckpointError(ValueError):
    """A file that cannot be used as a model checkpoint."""


@dataclass
class CheckpointInfo:
    """Everything a checkpoint says besides the weights."""

    arch: str
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    dataset: str = "unknown"
    classes: list[str] = field(default_factory=list)
    provenance: dict[str, str] = field(default_factory=dict)
    data_root: str | None = None

    @property
    def num_classes(self) -> int:
        return int(self.arch_kwargs.get("num_classes", len(self.classes) or 10))


def load_weights(module: nn.Module, state: dict[str, Any], what: str) -> None:
    """``module.load_state_dict(state)``, or a one-line :class:`CheckpointError` starting with ``what`` that
    counts the missing, unexpected and mis-shaped tensors and names the first of each."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(own[k].shape)]
    parts = [f"{len(v)} {name} (first: {v[0]})" for name, v in (("missing", missing), ("unexpected", unexpected),
                                                                  ("of another shape", shapes)) if v]
    if parts:
        raise CheckpointError(f"{what}: " + "; ".join(parts))
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{what}: {' '.join(str(exc).split())[:300]}") from None


def save_checkpoint(path: str | os.PathLike[str], net: nn.Module, info: CheckpointInfo) -> Path:
    """Write ``net``'s weights (a bare network or a :class:`Classifier`) with ``info``, atomically."""
    bare = net.net if isinstance(net, Classifier) else net
    provenance = {"created": datetime.now(UTC).isoformat(timespec="seconds"),
                  "torch": str(torch.__version__), **{k: str(v) for k, v in info.provenance.items()}}
    payload = {
        "format": FORMAT,
        "arch": info.arch,
        "arch_kwargs": info.arch_kwargs,
        "state_dict": {k: v.detach().cpu() for k, v in bare.state_dict().items()},
        "mean": [float(m) for m in info.mean],
        "std": [float(s) for s in info.std],
        "dataset": info.dataset,
        "data_root": info.data_root,
        "classes": list(info.classes),
        "provenance": provenance,
    }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(payload, target)
    return target


def safe_load(path: str | os.PathLike[str]) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, with every failure as one :class:`CheckpointError`.

    Tensors, containers and plain values load; anything that would need unpickling an arbitrary object is
    refused.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory; give the model file (for a training run: "
                              f"{path / 'model.pt'})")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # protocol notes on foreign pickles
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"[Uu]nsupported GLOBAL (\S+)|Unsupported global: GLOBAL (\S+)", str(exc))
        if found:
            name = found.group(1) or found.group(2)
            raise CheckpointError(f"{path} holds objects that a safe load refuses to unpickle ({name}): "
                                  "save tensors and plain containers only") from None
        raise CheckpointError(f"{path} is not a checkpoint (torch.load cannot read it)") from None
    except Exception as exc:  # torch.load raises many types on non-checkpoint bytes
        text = str(exc)
        if "central directory" in text or "PytorchStreamReader" in text or "zip archive" in text:
            raise CheckpointError(f"{path} is truncated or damaged (its zip archive is incomplete)") from None
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        raise CheckpointError(f"{path} is not a checkpoint ({first[:100]})") from None


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    arch: str | None = None,
    arch_kwargs: dict[str, Any] | None = None,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
    device: torch.device | str = "cpu",
) -> tuple[Classifier, CheckpointInfo]:
    """Load a model for evaluation.

    An advbench checkpoint needs nothing else; a raw state dict needs ``arch``
    (and optionally ``arch_kwargs``, ``mean``, ``std``; default: no normalisation).

    Raises:
        CheckpointError: the file is missing, not a checkpoint, holds objects that
            would need unpickling, or its weights do not fit the architecture.
    """
    p = Path(path)
    data = safe_load(p)
    if not isinstance(data, dict):
        raise CheckpointError(f"{p} is not a checkpoint: expected a dict, found {type(data).__name__}")
    if data.get("format") == FORMAT:
        missing = [k for k in ("arch", "mean", "std", "state_dict") if k not in data]
        if missing:
            raise CheckpointError(f"{p} is an advbench checkpoint without its {', '.join(missing)} entr"
                                  f"{'y' if len(missing) == 1 else 'ies'}: re-save it with save_checkpoint")
        info = CheckpointInfo(arch=str(data["arch"]), arch_kwargs=dict(data.get("arch_kwargs", {})),
                              mean=tuple(data["mean"]), std=tuple(data["std"]), dataset=str(data.get("dataset", "")),
                              classes=list(data.get("classes", [])), provenance=dict(data.get("provenance", {})),
                              data_root=None if data.get("data_root") is None else str(data["data_root"]))
        state = data["state_dict"]
        if arch is not None and arch != info.arch:
            raise CheckpointError(f"{p} holds a {info.arch!r} model, not {arch!r}")
    elif "format" in data:
        raise CheckpointError(f"{p} has unknown checkpoint format {data['format']!r}")
    else:
        state = data.get("state_dict", data) if isinstance(data.get("state_dict"), dict) else data
        if not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise CheckpointError(f"{p} is neither an advbench checkpoint nor a state dict of tensors")
        if arch is None:
            raise CheckpointError(f"{p} is a raw state dict: name its architecture with --arch")
        info = CheckpointInfo(arch=arch, arch_kwargs=dict(arch_kwargs or {}), mean=tuple(mean or (0.0, 0.0, 0.0)),
                              std=tuple(std or (1.0, 1.0, 1.0)), provenance={"source": "raw state_dict"})
    net = build_model(info.arch, **info.arch_kwargs)
    load_weights(net, state, f"{p}: weights do not fit architecture {info.arch!r}")
    model = Classifier(net, info.mean, info.std).to(device).eval()
    return model, info
