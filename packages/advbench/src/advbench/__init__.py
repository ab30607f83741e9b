"""advbench: adversarial attacks and robustness evaluation suites (torchattacks-style interface).

    from advbench import PGD, ThreatModel, load_checkpoint
    model, info = load_checkpoint("ckpt.pt")
    x_adv = PGD(ThreatModel(eps=8/255, step=2/255, steps=20))(model, x, y)

Command line: ``advbench eval --model ckpt.pt --suite whitebox``.
"""

__version__ = "0.1.0"

from .attacks import APGDCE, FGSM, PGD, Attack, AutoAttack, pgd_train, predict, run_autoattack, transfer_accuracy
from .checkpoint import CheckpointError, CheckpointInfo, load_checkpoint, save_checkpoint
from .data import DataError, TensorData, load_dataset, subset
from .device import PRECISIONS, autocast_for, configure_device, resolve_device, to_device
from .evaluate import EvalConfig, evaluate, evaluate_transfer
from .models import Classifier, build_model, list_models, register_model
from .threat import ThreatModel, parse_eps

__all__ = ["APGDCE", "PRECISIONS", "Attack", "AutoAttack", "CheckpointError", "CheckpointInfo", "Classifier",
           "DataError", "EvalConfig", "FGSM", "PGD", "TensorData", "ThreatModel", "autocast_for", "build_model",
           "configure_device",
           "evaluate", "evaluate_transfer", "list_models", "load_checkpoint", "load_dataset", "parse_eps",
           "pgd_train", "predict", "register_model", "resolve_device", "run_autoattack", "save_checkpoint", "subset",
           "to_device", "transfer_accuracy", "__version__"]
