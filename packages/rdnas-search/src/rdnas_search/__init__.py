"""rdnas-search: Robust dual-branch neural architecture search (RDNAS) with ROSE operation scoring.

Status: package skeleton; its contents land with the issue that fills it.
"""

__version__ = "0.1.0"
