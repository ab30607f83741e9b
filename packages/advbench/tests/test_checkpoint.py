"""Checkpoints: round trip, refusing pickle payloads, raw state dicts, the registry."""

from __future__ import annotations

import importlib.resources
import os
import pickle

import pytest
import torch
from advbench import (
    CheckpointError,
    CheckpointInfo,
    build_model,
    list_models,
    load_checkpoint,
    predict,
    save_checkpoint,
    subset,
)


def test_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    net = build_model("small_cnn", num_classes=10, width=8)
    info = CheckpointInfo(arch="small_cnn", arch_kwargs={"num_classes": 10, "width": 8}, mean=(0.5, 0.5, 0.5),
                          std=(0.25, 0.25, 0.25), dataset="cifar10", classes=[str(i) for i in range(10)],
                          provenance={"command": "test"})
    path = save_checkpoint(tmp_path / "m.pt", net, info)
    model, back = load_checkpoint(path)
    assert back.arch == "small_cnn" and back.arch_kwargs == info.arch_kwargs and back.classes == info.classes
    assert back.provenance["command"] == "test" and "created" in back.provenance
    x = torch.rand(4, 3, 32, 32)
    net.eval()
    torch.testing.assert_close(model(x), net((x - 0.5) / 0.25))
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_pickle_payload_is_refused(tmp_path) -> None:
    path = tmp_path / "evil.pt"
    with open(path, "wb") as fh:
        pickle.dump({"format": "advbench-checkpoint/1", "state_dict": _Evil()}, fh)
    with pytest.raises(CheckpointError, match="is not a checkpoint"):  # a bare pickle: torch.load refuses it
        load_checkpoint(path)
    torch.save({"model": _Evil()}, tmp_path / "evil2.pt")
    with pytest.raises(CheckpointError, match=r"refuses to unpickle \(posix.system\)"):
        load_checkpoint(tmp_path / "evil2.pt")


def test_not_a_checkpoint(tmp_path) -> None:
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="is not a checkpoint"):
        load_checkpoint(tmp_path / "text.pt")
    torch.save({"format": "advbench-checkpoint/1", "w": torch.zeros(4096)}, tmp_path / "whole.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "whole.pt").read_bytes()[:3000])
    with pytest.raises(CheckpointError, match="truncated or damaged"):
        load_checkpoint(tmp_path / "cut.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"a": 1}, tmp_path / "dict.pt")
    with pytest.raises(CheckpointError, match="neither an advbench checkpoint"):
        load_checkpoint(tmp_path / "dict.pt", arch="small_cnn")


def test_raw_state_dict_needs_arch_and_must_fit(tmp_path) -> None:
    net = build_model("small_cnn", width=8)
    torch.save(net.state_dict(), tmp_path / "raw.pt")
    with pytest.raises(CheckpointError, match="--arch"):
        load_checkpoint(tmp_path / "raw.pt")
    model, info = load_checkpoint(tmp_path / "raw.pt", arch="small_cnn", arch_kwargs={"width": 8})
    assert info.provenance["source"] == "raw state_dict"
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(tmp_path / "raw.pt", arch="resnet18")


def test_pyautoattack_example_model_loads_as_raw_resnet18(cifar_test) -> None:
    path = importlib.resources.files("pyautoattack") / "examples" / "model_test.pt"
    model, info = load_checkpoint(str(path), arch="resnet18")
    data = subset(cifar_test, 300, seed=0)
    acc = float((predict(model, data.x) == data.y).float().mean())
    assert 0.75 <= acc <= 1.0  # a trained CIFAR-10 ResNet-18 (about 84% on the JPEG copy of the test set)


def test_registry() -> None:
    names = list_models()
    assert {"resnet18", "preact_resnet18", "densenet121", "wrn34_10", "small_cnn"} <= set(names)
    with pytest.raises(ValueError, match="unknown architecture 'vgg99'"):
        build_model("vgg99")
    sizes = {n: sum(p.numel() for p in build_model(n).parameters()) / 1e6
             for n in ("resnet18", "preact_resnet18", "densenet121")}
    assert 11.0 < sizes["resnet18"] < 11.3 and 11.0 < sizes["preact_resnet18"] < 11.3
    assert 6.8 < sizes["densenet121"] < 7.1
    wrn = sum(p.numel() for p in build_model("wrn34_10").parameters()) / 1e6
    assert 46.0 < wrn < 46.3
