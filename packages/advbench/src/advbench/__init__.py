"""advbench: Adversarial attacks and robustness evaluation suites for image classifiers.

Status: package skeleton; its contents land with the issue that fills it.
"""

__version__ = "0.1.0"
