"""Builders that advbench finds through the ``advbench.models`` entry points (see pyproject.toml).

advbench wraps every network in its own input normalisation, so these builders
return networks with identity normalisation; checkpoints store the real one.
"""

from __future__ import annotations

from typing import Any

from .genotype import Genotype
from .nb201 import NB201Network
from .network import GenotypeNetwork, NetworkConfig

__all__ = ["build_genotype_network", "build_nb201_network"]

_IDENTITY = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}


def build_genotype_network(num_classes: int = 10, genotype: dict[str, Any] | None = None, **config: Any
                           ) -> GenotypeNetwork:
    """A :class:`GenotypeNetwork` from a genotype dict and :class:`NetworkConfig` fields."""
    if genotype is None:
        raise ValueError("rdnas_genotype needs a 'genotype' argument (a genotype dict)")
    cfg = NetworkConfig(n_classes=num_classes, **config, **_IDENTITY)
    return GenotypeNetwork(Genotype.from_dict(genotype), cfg)


def build_nb201_network(num_classes: int = 10, arch: str = "", **kwargs: Any) -> NB201Network:
    """An :class:`NB201Network` from an architecture string."""
    return NB201Network(arch, n_classes=num_classes, **kwargs, **_IDENTITY)
