"""Evaluation suites: whitebox (Table 1), sweep (Table 9), confusion (Figure 7), transfer (Table 2)."""

from .autoattack import run_autoattack_suite
from .common import SanityCheck, accuracy_under, model_size
from .confusion import confusion_matrix, run_confusion
from .sweep import TABLE9_SCHEDULE, run_sweep
from .transfer import run_transfer
from .whitebox import run_whitebox

__all__ = ["TABLE9_SCHEDULE", "SanityCheck", "accuracy_under", "confusion_matrix", "model_size", "run_autoattack_suite",
           "run_confusion", "run_sweep", "run_transfer", "run_whitebox"]
