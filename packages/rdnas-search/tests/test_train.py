"""Final training: a smoke run writes a checkpoint that advbench eval loads; resume and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from advbench import load_checkpoint
from advbench.cli import main as advbench_main
from rdnas_search import ConfigError, NonFiniteLossError, RunDirError, apply_overrides, train_preset
from rdnas_search.train import resolve_model_spec, run_train
from rdnas_space import random_genotype


@pytest.mark.slow
def test_smoke_train_checkpoint_loads_in_advbench(tmp_path: Path, cifar_archive: Path) -> None:
    from rdnas_space import Supernet, SupernetConfig

    genotype = tmp_path / "genotype.json"
    Supernet(SupernetConfig(channels=2, n_cells=3)).derive().to_json(genotype)
    cfg = apply_overrides(train_preset("smoke"), {"data_root": str(cifar_archive), "epochs": 2, "milestones": "[1]"})
    run = tmp_path / "train"
    partial = run_train(str(genotype), cfg, run, stop_after=1)
    assert not partial.finished and partial.model_path is None
    outcome = run_train("", cfg, run, resume=True)
    assert outcome.finished and outcome.model_path == run / "model.pt"
    model, info = load_checkpoint(outcome.model_path)
    assert info.arch == "rdnas_genotype" and info.arch_kwargs["dual"] is True and len(info.classes) == 10
    history = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    assert history[1]["lr"] == pytest.approx(0.1 * 0.1)  # decayed at the milestone
    wb = json.loads((run / "whitebox.json").read_text())
    assert 0 <= wb["accuracy"]["pgd20"] <= wb["accuracy"]["clean"] <= 100
    assert "| Clean | FGSM | PGD-20 | PGD-100 |" in (run / "report.md").read_text()
    out = tmp_path / "eval"
    rc = advbench_main(["eval", "--model", str(outcome.model_path), "--dataset", "archive", "--data-root",
                        str(cifar_archive), "--n-examples", "16", "--skip-autoattack", "--out", str(out),
                        "--no-progress"])
    assert rc == 0 and (out / "results.json").is_file()
    with pytest.raises(RunDirError, match="finished training run"):
        run_train("", cfg, run, resume=True)


@pytest.mark.slow
def test_compiled_training_matches_eager(tmp_path: Path, cifar_archive: Path, monkeypatch) -> None:
    """``--set compile=true`` on a derived network (no mixed edges): the same losses and accuracies as eager."""
    import functools

    from rdnas_search import train as train_module
    from rdnas_space import compile_regions

    monkeypatch.setattr(train_module, "compile_regions", functools.partial(compile_regions, backend="aot_eager"))
    results = []
    for compile_ in (False, True):
        cfg = apply_overrides(train_preset("smoke"), {"data_root": str(cifar_archive), "compile": compile_})
        run = tmp_path / f"compile_{compile_}"
        run_train("random:3", cfg, run)
        history = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]
        results.append((history[-1]["loss"], json.loads((run / "whitebox.json").read_text())["accuracy"]))
    assert results[1][0] == pytest.approx(results[0][0], rel=1e-4)
    assert results[1][1]["clean"] == results[0][1]["clean"]


@pytest.mark.slow
def test_a_non_finite_loss_stops_training_and_keeps_the_last_checkpoint(tmp_path: Path, cifar_archive: Path,
                                                                        monkeypatch) -> None:
    cfg = apply_overrides(train_preset("smoke"), {"data_root": str(cifar_archive), "epochs": 2, "milestones": "[1]"})
    run = tmp_path / "train"
    run_train("darts_v2", cfg, run, stop_after=1)
    before = (run / "train_checkpoint.pt").read_bytes()
    cross_entropy = torch.nn.functional.cross_entropy
    monkeypatch.setattr(torch.nn.functional, "cross_entropy", lambda *a, **kw: cross_entropy(*a, **kw) * float("nan"))
    with pytest.raises(NonFiniteLossError, match=r"at epoch 2: .* last good checkpoint \(epoch 1\)"):
        run_train("", cfg, run, resume=True)
    assert (run / "train_checkpoint.pt").read_bytes() == before
    assert not (run / "DONE").exists() and not (run / "model.pt").exists()


def test_model_specs() -> None:
    cfg = train_preset("cpu")
    arch, kwargs, _ = resolve_model_spec("advrush", cfg, 10)
    assert arch == "rdnas_genotype" and kwargs["dual"] is False and kwargs["n_cells"] == cfg.baseline_n_cells
    assert resolve_model_spec("resnet18", cfg, 10)[:2] == ("resnet18", {"num_classes": 10})
    with pytest.raises(ValueError, match="not a genotype file"):
        resolve_model_spec("nothing_like_this", cfg, 10)
    arch, kwargs, description = resolve_model_spec("random:2", cfg, 10)
    assert kwargs["dual"] is True and kwargs["channels"] == cfg.channels and description == "random genotype random:2"
    assert kwargs["genotype"] == random_genotype(2).to_dict() != resolve_model_spec("random:3", cfg, 10)[1]["genotype"]
    for bad in ("random:", "random:-1", "random:x"):
        with pytest.raises(ValueError, match="non-negative integer"):
            resolve_model_spec(bad, cfg, 10)
    with pytest.raises(ConfigError, match="fusion"):
        apply_overrides(cfg, {"fusion": "se"})


def test_paper_preset_has_the_papers_stem_and_stage_widths(tmp_path) -> None:
    """Section 4.2: a 32-channel stem, 10 dual-branch cells at 32 channels, stages doubling as in DARTS."""
    from advbench import build_model
    from rdnas_search import train_preset
    from rdnas_search.train import resolve_model_spec
    from rdnas_space import ADVRUSH, PDARTS, Genotype

    g = Genotype(normal=ADVRUSH.normal, normal_concat=ADVRUSH.normal_concat, reduce=ADVRUSH.reduce,
                 reduce_concat=ADVRUSH.reduce_concat, robust=PDARTS.normal, robust_concat=PDARTS.normal_concat)
    path = tmp_path / "g.json"
    g.to_json(path)
    arch, kwargs, _ = resolve_model_spec(str(path), train_preset("paper"), 10)
    net = build_model(arch, **kwargs)
    assert net.stem[0].out_channels == 32 and len(net.cells) == 12
    widths = [(c.normal if hasattr(c, "normal") else c).preprocess1[1].out_channels for c in net.cells]
    assert (widths[0], widths[4], widths[8]) == (32, 64, 128)  # per node: the reductions double, as in DARTS
    _, baseline, _ = resolve_model_spec("darts_v2", train_preset("paper"), 10)
    assert build_model("rdnas_genotype", **baseline).stem[0].out_channels == 108  # published baselines: 3 x 36


def test_onecycle_schedule_rises_to_the_peak_and_falls_to_near_zero() -> None:
    """``lr_schedule=onecycle``: per batch, linear up to ``lr`` at ``warmup_frac`` of the run, then linear down; the
    first and last batches train at a small positive rate; ``step`` keeps the milestone decay."""
    from rdnas_search.train import _scheduler

    cfg = apply_overrides(train_preset("cpu"), {"lr_schedule": "onecycle", "lr": 0.2, "epochs": 5})
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    sched, rates = _scheduler(opt, cfg, 10), []
    for _ in range(50):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    peak = rates.index(max(rates))
    assert max(rates) == pytest.approx(0.2) and peak == 19  # 40% of 50 batches
    assert all(a < b for a, b in zip(rates[: peak], rates[1 : peak + 1], strict=True))
    assert all(a > b for a, b in zip(rates[peak:-1], rates[peak + 1 :], strict=True))
    assert 0 < rates[0] <= 0.2 / 20 + 1e-9 and 0 < rates[-1] <= 0.2 / 30 + 1e-9
    step_cfg = apply_overrides(train_preset("cpu"), {"lr_schedule": "step", "epochs": 5, "milestones": "[4]"})
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=step_cfg.lr)
    sched = _scheduler(opt, step_cfg, 10)
    for _ in range(4):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(step_cfg.lr * step_cfg.gamma)
    with pytest.raises(ConfigError, match="lr_schedule"):
        apply_overrides(train_preset("cpu"), {"lr_schedule": "cosine"})
    with pytest.raises(ConfigError, match="warmup_frac"):
        apply_overrides(train_preset("cpu"), {"warmup_frac": 1.0})


@pytest.mark.slow
def test_clean_fraction_attacks_only_the_rest_of_each_batch(tmp_path: Path, cifar_archive: Path, monkeypatch) -> None:
    """``clean_fraction=f``: the attack sees the last ``len - round(f * len)`` images of every batch and the step
    trains on the clean head and the attacked tail; ``f=1`` never attacks (standard training)."""
    from rdnas_search import train as train_module

    seen: list[int] = []
    real = train_module.pgd_train

    def spy(model, x, y, threat, gen=None):
        seen.append(len(y))
        return real(model, x, y, threat, gen)

    monkeypatch.setattr(train_module, "pgd_train", spy)
    for fraction, expected in ((0.25, [24, 21]), (1.0, [])):  # smoke: 60 images, batches of 32 and 28
        seen.clear()
        cfg = apply_overrides(train_preset("smoke"), {"data_root": str(cifar_archive), "clean_fraction": fraction,
                                                      "n_test": 8})
        run_train("random:3", cfg, tmp_path / str(fraction))
        assert seen == expected  # the evaluation attacks with advbench's PGD, not pgd_train
        history = json.loads((tmp_path / str(fraction) / "train_log.jsonl").read_text().splitlines()[0])
        assert (history["train_adv_acc"] is None) == (fraction == 1.0)
    with pytest.raises(ConfigError, match="clean_fraction"):
        apply_overrides(train_preset("cpu"), {"clean_fraction": 1.5})
