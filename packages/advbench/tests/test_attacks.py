"""Attacks: eps-ball and range, monotonicity in steps and restarts, strength on real CIFAR-10 models."""

from __future__ import annotations

import pytest
import torch
from advbench import APGDCE, FGSM, PGD, ThreatModel, parse_eps, pgd_train, predict, run_autoattack, transfer_accuracy


def _in_ball(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> None:
    assert float((x_adv - x).abs().max()) <= eps + 1e-6
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0


@pytest.mark.parametrize("eps_255", [1, 4, 8])
def test_adversarial_examples_stay_in_the_ball(clean_model, test_subset, eps_255: int) -> None:
    x, y = test_subset.x[:64], test_subset.y[:64]
    eps = eps_255 / 255
    threat = ThreatModel(eps=eps, step=eps / 4, steps=5, restarts=2)
    for attack in (FGSM(threat), PGD(threat, seed=3)):
        _in_ball(attack(clean_model, x, y), x, eps)
    _in_ball(pgd_train(clean_model, x, y, threat, torch.Generator().manual_seed(0)), x, eps)
    _in_ball(APGDCE(threat)(clean_model, x[:16], y[:16]), x[:16], eps)


def test_pgd_reaches_near_zero_on_an_undefended_model(clean_model, test_subset) -> None:
    x, y = test_subset.x, test_subset.y
    clean_acc = float((predict(clean_model, x) == y).float().mean())
    result = PGD(ThreatModel(eps=8 / 255, step=2 / 255, steps=20), seed=0).perturb(clean_model, x, y)
    robust_acc = float(result.robust.float().mean())
    assert 0.35 <= clean_acc <= 1.0  # the fixture did learn something
    assert 0.0 <= robust_acc <= 0.05
    assert torch.equal(result.robust, predict(clean_model, result.x_adv) == y)


def test_more_steps_or_restarts_never_raise_robust_accuracy(robust_model, test_subset) -> None:
    x, y = test_subset.x, test_subset.y
    base = ThreatModel(eps=8 / 255, step=2 / 255, steps=5, restarts=1)
    accs = {}
    for steps, restarts in [(5, 1), (10, 1), (20, 1), (5, 3), (20, 3)]:
        res = PGD(base.with_(steps=steps, restarts=restarts), seed=7).perturb(robust_model, x, y)
        accs[(steps, restarts)] = res.robust
    assert not (accs[(10, 1)] & ~accs[(5, 1)]).any()  # robust sets are nested, sample by sample
    assert not (accs[(20, 1)] & ~accs[(10, 1)]).any()
    assert not (accs[(5, 3)] & ~accs[(5, 1)]).any()
    assert not (accs[(20, 3)] & ~accs[(20, 1)]).any()
    counts = [int(accs[k].sum()) for k in [(5, 1), (10, 1), (20, 1)]]
    assert counts[0] >= counts[1] >= counts[2] > 0


def test_pgd_skips_samples_once_fooled(clean_model, test_subset) -> None:
    x, y = test_subset.x[:100], test_subset.y[:100]
    res = PGD(ThreatModel(eps=8 / 255, step=2 / 255, steps=20), seed=0).perturb(clean_model, x, y)
    n_correct = int((predict(clean_model, x) == y).sum())
    assert 0 < res.n_gradients < 20 * n_correct  # fooled samples stop costing gradients


def test_apgd_ce_at_least_as_strong_as_pgd20(robust_model, test_subset) -> None:
    x, y = test_subset.x, test_subset.y
    pgd = PGD(ThreatModel(eps=8 / 255, step=2 / 255, steps=20), seed=0).perturb(robust_model, x, y)
    apgd = run_autoattack(robust_model, x, y, 8 / 255, attacks=("apgd-ce",), seed=0)
    acc_pgd = 100 * float(pgd.robust.float().mean())
    acc_apgd = 100 * float(apgd.robust.float().mean())
    assert 5.0 <= acc_pgd <= 60.0  # the adversarially trained fixture keeps some robustness
    assert 0.0 <= acc_apgd <= acc_pgd + 1.0
    assert apgd.cumulative["clean"] >= apgd.cumulative["apgd-ce"]
    assert torch.equal(apgd.robust, predict(robust_model, apgd.x_adv) == y)


def test_transfer_is_weaker_than_white_box(clean_model, robust_model, test_subset) -> None:
    x, y = test_subset.x[:100], test_subset.y[:100]
    attack = PGD(ThreatModel(eps=8 / 255, step=2 / 255, steps=10), seed=0)
    white = transfer_accuracy(robust_model, robust_model, x, y, attack)
    transfer = transfer_accuracy(clean_model, robust_model, x, y, attack)
    assert 0.0 <= white <= transfer <= 1.0


@pytest.mark.parametrize(("text", "value"), [("8/255", 8 / 255), ("0.031", 0.031), ("2 / 255", 2 / 255)])
def test_parse_eps(text: str, value: float) -> None:
    assert parse_eps(text) == pytest.approx(value)


@pytest.mark.parametrize("bad", ["eight", "8/0", "-1", "300/255", "nan"])
def test_bad_eps(bad: str) -> None:
    with pytest.raises(ValueError, match="bad eps"):
        parse_eps(bad)


def test_bad_threat_models() -> None:
    with pytest.raises(ValueError, match="Linf"):
        ThreatModel(norm="L2")
    with pytest.raises(ValueError, match="restarts"):
        ThreatModel(restarts=0)
    with pytest.raises(ValueError, match="eps"):
        ThreatModel(eps=2.0)
