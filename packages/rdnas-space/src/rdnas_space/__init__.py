"""rdnas-space: PyTorch search spaces for robust NAS: DARTS and NAS-Bench-201 operations, dual-branch cells with ECA fusion, supernets with coalition masks.

Status: package skeleton; its contents land with the issue that fills it.
"""

__version__ = "0.1.0"
