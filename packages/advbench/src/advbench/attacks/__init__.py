"""Attacks behind one interface: ``attack(model, x, y) -> x_adv`` (torchattacks style)."""

from .autoattack import APGDCE, STANDARD_ATTACKS, AutoAttack, AutoAttackResult, run_autoattack
from .base import Attack, predict, project
from .fgsm import FGSM
from .pgd import PGD, PGDResult, pgd_train
from .transfer import transfer_accuracy

__all__ = ["APGDCE", "Attack", "AutoAttack", "AutoAttackResult", "FGSM", "PGD", "PGDResult", "STANDARD_ATTACKS",
           "pgd_train", "predict", "project", "run_autoattack", "transfer_accuracy"]
