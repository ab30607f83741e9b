"""NAS-Bench-201 lookup: one interface over the compact CSV table and the official API, and the tabular game.

Sources:

- the compact table ``nb201_test_acc_200ep.csv`` (``../shared/data/nb201/``): test
  accuracy after 200 epochs on CIFAR-10, CIFAR-100 and ImageNet16-120 for all
  15,625 cells; it has **no validation accuracy** (``valid_accuracy`` says so);
- the official benchmark file through the ``nas-bench-201`` package
  (``NASBench201API``), when the user has the ``.pth``; it has both.

The tabular game scores the 30 (edge, op) players of the NB201 cell with no
training at all: the value of a coalition is the mean benchmark accuracy of every
cell whose operation on each edge belongs to the coalition; an edge the
coalition leaves empty can only hold ``none`` (a masked edge contributes nothing,
which is what ``none`` is).  The full coalition's value is the table mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from rdnas_space import NB201_EDGES, NB201_PRIMITIVES, NB201Table, arch_to_ops, ops_to_arch
from rose_estimator import Game

__all__ = ["NB201Benchmark", "TableBenchmark", "APIBenchmark", "open_benchmark", "NB201TableGame",
           "NB201_DATASETS"]

NB201_DATASETS = ("cifar10", "cifar100", "ImageNet16-120")


def _check_dataset(dataset: str) -> None:
    if dataset not in NB201_DATASETS:
        raise ValueError(f"unknown NAS-Bench-201 dataset {dataset!r}; choose one of {', '.join(NB201_DATASETS)}")


class NB201Benchmark(Protocol):
    """What the NB201 mode asks of a benchmark source."""

    name: str

    def test_accuracy(self, arch: str, dataset: str = "cifar10") -> float: ...

    def valid_accuracy(self, arch: str, dataset: str = "cifar10") -> float | None: ...

    def all_test_accuracies(self, dataset: str = "cifar10") -> np.ndarray: ...


def _rank_stats(bench: NB201Benchmark, arch: str, dataset: str) -> dict[str, Any]:
    accs = bench.all_test_accuracies(dataset)
    acc = bench.test_accuracy(arch, dataset)
    best = int(np.argmax(accs))
    return {"test_accuracy": acc, "percentile": 100.0 * float((accs <= acc).mean()),
            "optimum": float(accs[best]), "regret": float(accs[best] - acc)}


class TableBenchmark:
    """The compact CSV table (test accuracy only)."""

    name = "csv"
    no_valid = "the compact NB201 table holds test accuracy only; validation accuracy needs the official .pth"

    def __init__(self, path: str | Path | None = None) -> None:
        self.table = NB201Table.from_csv(path)

    def test_accuracy(self, arch: str, dataset: str = "cifar10") -> float:
        _check_dataset(dataset)
        return float(self.table.accuracy[dataset][self.table.index_of(arch)])

    def valid_accuracy(self, arch: str, dataset: str = "cifar10") -> float | None:
        _check_dataset(dataset)
        return None

    def all_test_accuracies(self, dataset: str = "cifar10") -> np.ndarray:
        _check_dataset(dataset)
        return self.table.accuracy[dataset]

    def index_of(self, arch: str) -> int:
        return self.table.index_of(arch)

    def summary(self, arch: str, dataset: str = "cifar10") -> dict[str, Any]:
        """Accuracy, percentile among all 15,625 cells, optimum and regret of ``arch``."""
        return {"arch": arch, "index": self.index_of(arch), **_rank_stats(self, arch, dataset),
                "valid_accuracy": None, "note": self.no_valid}


class APIBenchmark:
    """Adapter over the official ``NASBench201API`` object (``nas_201_api``).

    Uses ``query_index_by_arch``, ``get_more_info(index, dataset, hp='200', is_random=False)``
    and ``len(api)``; test accuracy of ``cifar10`` is read from the ``cifar10`` entry
    (train on train+valid) and validation accuracy from ``cifar10-valid``, as the
    benchmark's authors do.
    """

    name = "api"

    def __init__(self, api: Any) -> None:
        self.api = api
        self._cache: dict[str, np.ndarray] = {}

    def _info(self, arch: str, dataset: str) -> dict[str, Any]:
        index = self.api.query_index_by_arch(ops_to_arch(arch_to_ops(arch)))
        if index is None or index < 0:
            raise ValueError(f"architecture {arch} is not in the benchmark")
        return self.api.get_more_info(index, dataset, hp="200", is_random=False)

    def test_accuracy(self, arch: str, dataset: str = "cifar10") -> float:
        _check_dataset(dataset)
        return float(self._info(arch, dataset)["test-accuracy"])

    def valid_accuracy(self, arch: str, dataset: str = "cifar10") -> float | None:
        _check_dataset(dataset)
        key = "cifar10-valid" if dataset == "cifar10" else dataset
        info = self._info(arch, key)
        return float(info.get("valid-accuracy", info.get("valtest-accuracy")))

    def all_test_accuracies(self, dataset: str = "cifar10") -> np.ndarray:
        _check_dataset(dataset)
        if dataset not in self._cache:
            self._cache[dataset] = np.array([
                float(self.api.get_more_info(i, dataset, hp="200", is_random=False)["test-accuracy"])
                for i in range(len(self.api))])
        return self._cache[dataset]

    def summary(self, arch: str, dataset: str = "cifar10") -> dict[str, Any]:
        index = self.api.query_index_by_arch(ops_to_arch(arch_to_ops(arch)))
        return {"arch": arch, "index": int(index), **_rank_stats(self, arch, dataset),
                "valid_accuracy": self.valid_accuracy(arch, dataset), "note": ""}


def open_benchmark(path: str | Path | None = None) -> TableBenchmark | APIBenchmark:
    """A ``.csv`` (or None: the shared table) opens as :class:`TableBenchmark`; a ``.pth`` through the API.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: the file is neither, or is malformed, or the API package is not installed.
    """
    if path is None or str(path).endswith(".csv"):
        return TableBenchmark(path)
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"benchmark file {p} does not exist")
    if p.suffix != ".pth":
        raise ValueError(f"{p}: give the compact .csv table or the official NAS-Bench-201 .pth file")
    try:
        from nas_201_api import NASBench201API
    except ImportError:
        raise ValueError("reading the official .pth needs the nas-bench-201 package (pip install nas-bench-201)"
                         ) from None
    return APIBenchmark(NASBench201API(str(p), verbose=False))


class NB201TableGame(Game):
    """ROSE over the 30 (edge, op) players of the NB201 cell with values looked up in the table.

    ``v(C) = mean of acc(cell)`` over cells whose op on every edge is in C (an edge
    with no op of C holds ``none``).  Vectorised over coalitions with the table as a
    ``5^6`` array: each value is a contraction of that array with six per-edge
    indicator vectors.
    """

    def __init__(self, table: NB201Table, dataset: str = "cifar10") -> None:
        _check_dataset(dataset)
        n_ops = len(NB201_PRIMITIVES)
        names = [f"e{e}:{op}" for e in range(len(NB201_EDGES)) for op in NB201_PRIMITIVES]
        super().__init__(len(NB201_EDGES) * n_ops, 1, player_names=names, metric_names=[f"{dataset} test acc"])
        self.grid = table.by_code(dataset)
        self.none = NB201_PRIMITIVES.index("none")

    def value_function(self, coalitions: np.ndarray) -> np.ndarray:
        m = coalitions.reshape(coalitions.shape[0], len(NB201_EDGES), len(NB201_PRIMITIVES)).astype(np.float64)
        empty = m.sum(axis=2) == 0
        m[empty, self.none] = 1.0
        total = np.einsum("abcdef,ma,mb,mc,md,me,mf->m", self.grid, *[m[:, e] for e in range(6)], optimize=True)
        return total / m.sum(axis=2).prod(axis=1)

    @staticmethod
    def derive(scores: Sequence[float]) -> str:
        """The cell taking, on each edge, the op whose player scores highest."""
        s = np.asarray(scores, dtype=np.float64).reshape(len(NB201_EDGES), len(NB201_PRIMITIVES))
        return ops_to_arch(tuple(int(i) for i in s.argmax(axis=1)))
