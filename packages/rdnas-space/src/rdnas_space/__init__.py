"""rdnas-space: search spaces for robust NAS (RDNAS paper Section 3.2).

DARTS and NAS-Bench-201 operations, mixed edges with coalition masks, DARTS and
dual-branch cells with ECA fusion, supernets exposing named alpha tensors,
networks from genotypes, parameter/FLOP counts and drawings::

    from rdnas_space import Supernet, SupernetConfig
    net = Supernet(SupernetConfig(channels=16, n_cells=5))
    logits = net(images, masks={"normal": mask})   # mask: bool [14, 8] or [B, 14, 8]
    genotype = net.derive()
"""

from .base import SupernetBase
from .batchnorm import BatchNorm2d, group_batch_statistics
from .cells import Cell, DualBranchCell, DualBranchSearchCell, SearchCell, edge_endpoints, n_edges
from .compiled import REGION_TYPES, compile_counters, compile_regions
from .conv import Conv2d, conv2d, conv_is_hazardous, guard_convolutions, library_kernels, to_channels_last
from .draw import draw_cell, draw_genotype, plot_alpha_heatmaps
from .fusion import ECA, FUSIONS, Fusion, eca_kernel_size
from .genotype import ADVRUSH, DARTS_V2, PDARTS, PUBLISHED_GENOTYPES, Genotype, random_genotype
from .measure import count_flops, count_parameters
from .mixed import MixedOp
from .nb201 import (
    NB201_EDGES,
    NB201Cell,
    NB201Network,
    NB201SearchCell,
    NB201Supernet,
    NB201Table,
    arch_to_ops,
    code_to_ops,
    default_table_path,
    ops_to_arch,
    ops_to_code,
    sample_cells,
)
from .network import GenotypeNetwork, NetworkConfig
from .normalize import CIFAR10_MEAN, CIFAR10_STD, Normalize
from .ops import DARTS_OPS, DARTS_PRIMITIVES, NB201_OPS, NB201_PRIMITIVES, build_op
from .supernet import BRANCHES, Supernet, SupernetConfig, derive_cell

__version__ = "0.1.0"

__all__ = [
    "ADVRUSH", "BRANCHES", "BatchNorm2d", "CIFAR10_MEAN", "CIFAR10_STD", "Cell", "Conv2d", "DARTS_OPS",
    "DARTS_PRIMITIVES", "DARTS_V2", "DualBranchCell", "DualBranchSearchCell", "ECA", "FUSIONS", "Fusion",
    "Genotype", "GenotypeNetwork", "MixedOp", "NB201Cell", "NB201Network", "NB201SearchCell", "NB201Supernet",
    "NB201Table", "NB201_EDGES", "NB201_OPS", "NB201_PRIMITIVES", "NetworkConfig", "Normalize", "PDARTS",
    "PUBLISHED_GENOTYPES", "REGION_TYPES", "SearchCell", "Supernet", "SupernetBase", "SupernetConfig",
    "arch_to_ops", "build_op", "code_to_ops", "compile_counters", "compile_regions", "conv2d", "conv_is_hazardous",
    "count_flops", "count_parameters", "default_table_path",
    "derive_cell", "draw_cell", "draw_genotype", "eca_kernel_size", "edge_endpoints", "group_batch_statistics",
    "guard_convolutions", "library_kernels", "n_edges", "ops_to_arch", "ops_to_code", "plot_alpha_heatmaps",
    "random_genotype", "sample_cells", "to_channels_last",
]
