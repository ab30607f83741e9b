"""The command line end to end on a small fixture, and its one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from advbench import CheckpointInfo, save_checkpoint
from advbench.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, robust_model):
    path = tmp_path_factory.mktemp("ckpt") / "robust.pt"
    info = CheckpointInfo(arch="small_cnn", arch_kwargs={"num_classes": 10, "width": 16},
                          mean=tuple(robust_model.mean.flatten().tolist()),
                          std=tuple(robust_model.std.flatten().tolist()), dataset="cifar10",
                          classes=["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                                   "truck"])
    return save_checkpoint(path, robust_model, info)


@pytest.fixture(scope="module")
def archive_args(cifar_archive, data_cache):
    return ["--dataset", "archive", "--data-root", str(cifar_archive), "--no-progress"]


@pytest.mark.slow
def test_eval_all_suites_end_to_end(ckpt, archive_args, tmp_path) -> None:
    out = tmp_path / "out"
    rc = main(["eval", "--model", str(ckpt), "--suite", "all", "--n-examples", "30", "--out", str(out),
               "--seed", "3", "--restarts", "2", *archive_args])
    assert rc == 0
    results = json.loads((out / "results.json").read_text())
    white = results["suites"][0]
    assert [s["suite"] for s in results["suites"]] == ["whitebox", "sweep", "confusion"]
    acc = white["accuracy"]
    assert set(acc) == {"clean", "fgsm", "pgd20", "pgd100", "apgd_ce", "autoattack"}
    assert 0 <= acc["autoattack"] <= acc["apgd_ce"] <= acc["clean"] <= 100
    assert acc["pgd100"] <= acc["pgd20"] <= acc["fgsm"] + 100
    assert white["attacks"]["pgd20"]["steps"] == 20 and white["attacks"]["pgd20"]["step_255"] == 2.0
    assert results["robustbench"]["clean_acc"] == acc["clean"] and results["data"]["n_examples"] == 30
    sweep = results["suites"][1]
    assert [p["eps_255"] for p in sweep["points"]] == [0, 1, 2, 3, 4, 6, 8]
    assert [p["steps"] for p in sweep["points"]][1:] == [50, 40, 30, 20, 20, 20]
    assert {a["restarts"] for a in sweep["attacks"].values()} == {2}
    matrices = results["suites"][2]["matrices"]
    assert set(matrices) == {"clean", "fgsm", "pgd20"}
    assert all(np.asarray(m).sum() == 30 for m in matrices.values())
    report = (out / "report.md").read_text()
    assert "| Clean | FGSM | PGD-20 | PGD-100 | APGD-CE | AutoAttack |" in report and "sanity" in report
    for png in ("sweep.png", "confusion_clean.png", "confusion_fgsm.png", "confusion_pgd20.png"):
        assert (out / png).read_bytes().startswith(PNG)


def test_bf16_evaluation_is_recorded_and_flagged(ckpt, archive_args, tmp_path) -> None:
    """--precision bf16 is opt-in; results.json records it and the report warns that it is not the reference."""
    acc = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / precision
        assert main(["eval", "--model", str(ckpt), "--skip-autoattack", "--n-examples", "40", "--out", str(out),
                     "--precision", precision, *archive_args]) == 0
        results = json.loads((out / "results.json").read_text())
        assert results["config"]["precision"] == precision
        assert ("precision bf16" in (out / "report.md").read_text()) == (precision == "bf16")
        acc[precision] = results["suites"][0]["accuracy"]
    assert abs(acc["bf16"]["clean"] - acc["fp32"]["clean"]) <= 5.0  # 2 of 40 images
    assert abs(acc["bf16"]["pgd20"] - acc["fp32"]["pgd20"]) <= 10.0


def test_transfer_cli(ckpt, archive_args, tmp_path) -> None:
    out = tmp_path / "tr"
    rc = main(["transfer", "--models", str(ckpt), str(ckpt), "--n-examples", "40", "--out", str(out), *archive_args])
    assert rc == 0
    matrix = json.loads((out / "results.json").read_text())["suites"][0]["matrix"]
    assert list(matrix) == ["robust", "robust-1"]
    assert matrix["robust"]["robust-1"] == pytest.approx(matrix["robust"]["robust"])  # same weights
    assert (out / "transfer.png").read_bytes().startswith(PNG)
    assert "| source \\ target |" in (out / "report.md").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "--model", "missing.pt"], "does not exist"),
        (["eval", "--model", "CKPT", "--arch", "resnet18"], "holds a 'small_cnn' model"),
        (["eval", "--model", "CKPT", "--eps", "12/0"], "bad eps"),
        (["eval", "--model", "CKPT", "--dataset", "npz", "--data-root", "NPZ100"], "predicts 10 classes"),
        (["eval", "--model", "CKPT", "--dataset", "imagefolder", "--data-root", "/nonexistent"], "does not exist"),
        (["eval", "--model", "CKPT", "--suite", "sweep", "--restarts", "0"], "--restarts must be at least 1"),
        (["eval", "--model", "CKPT", "--precision", "fp16"], "invalid choice"),
        (["eval", "--model", "RAW"], "--arch"),
        (["eval", "--model", "RAW", "--arch", "unknown_net"], "unknown architecture"),
    ],
)
def test_cli_errors_are_one_line(args, message, ckpt, tmp_path, capsys) -> None:
    import torch
    from advbench import build_model

    npz = tmp_path / "d.npz"
    np.savez(npz, x=np.zeros((4, 32, 32, 3), np.uint8), y=np.arange(4) * 25)
    raw = tmp_path / "raw.pt"
    torch.save(build_model("small_cnn", width=8).state_dict(), raw)
    subst = {"CKPT": str(ckpt), "NPZ100": str(npz), "RAW": str(raw)}
    argv = [subst.get(a, a) for a in args] + ["--out", str(tmp_path / "o")]
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert message in err
    assert len(err.splitlines()) == 1 or err.startswith("usage:")
