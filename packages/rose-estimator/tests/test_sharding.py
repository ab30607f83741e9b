"""Sharded sampling: a group of workers (threads here) gets the single-worker result bit for bit."""

from __future__ import annotations

import copy
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal
from rose_estimator import (
    AdditiveGame,
    FunctionGame,
    Game,
    RoseEstimator,
    Sharding,
    contiguous_block,
    sample_gains,
)
from rose_strategies import games


class _ThreadGroup:
    """An all-gather between threads: the same contract a torch.distributed group fulfils."""

    def __init__(self, world_size: int) -> None:
        self.world_size = world_size
        self.barrier = threading.Barrier(world_size)
        self.slots: list[np.ndarray | None] = [None] * world_size

    def sharding(self, rank: int) -> Sharding:
        def gather(part: np.ndarray) -> np.ndarray:
            self.slots[rank] = part
            self.barrier.wait()
            whole = np.concatenate(self.slots)
            self.barrier.wait()  # nobody overwrites a slot before everyone has read it
            return whole

        return Sharding(shard=lambda n: contiguous_block(n, rank, self.world_size), gather=gather)


def _run_group(world_size: int, make_game, call):
    """``call(game, sharding)`` on every worker of a thread group, each with its own copy of the game."""
    group = _ThreadGroup(world_size)
    with ThreadPoolExecutor(world_size) as pool:
        futures = [pool.submit(call, make_game(), group.sharding(r)) for r in range(world_size)]
        return [f.result(timeout=60) for f in futures]


def _hashed_value(coalitions: np.ndarray) -> np.ndarray:
    """A rugged deterministic game: the value depends on the coalition only, never on its batch."""
    codes = coalitions.astype(np.int64) @ (1 << np.arange(coalitions.shape[1], dtype=np.int64))
    return np.stack([np.sin(codes * 0.7) + coalitions.sum(1), np.cos(codes * 1.3)], axis=1)


@pytest.mark.parametrize("n_units,world", [(0, 1), (1, 3), (7, 2), (10, 3), (10, 4), (3, 5)])
def test_contiguous_blocks_tile_the_range(n_units: int, world: int) -> None:
    blocks = [contiguous_block(n_units, r, world) for r in range(world)]
    covered = [i for lo, hi in blocks for i in range(lo, hi)]
    assert covered == list(range(n_units))
    sizes = [hi - lo for lo, hi in blocks]
    assert max(sizes) - min(sizes) <= 1


def test_contiguous_block_rejects_a_rank_outside_the_group() -> None:
    with pytest.raises(ValueError, match="rank 2"):
        contiguous_block(5, 2, 2)


@settings(max_examples=25, deadline=None)
@given(game=games(), world=st.integers(1, 4), n_perm=st.integers(0, 12), batch=st.integers(1, 40),
       seed=st.integers(0, 2**16))
def test_sharded_gains_equal_single_worker_gains(game: Game, world: int, n_perm: int, batch: int, seed: int) -> None:
    single = sample_gains(copy.deepcopy(game), n_perm, rng=seed, batch_size=batch)
    results = _run_group(world, lambda: copy.deepcopy(game),
                         lambda g, sh: sample_gains(g, n_perm, rng=seed, batch_size=batch, sharding=sh))
    for sample in results:
        assert_array_equal(sample.gains, single.gains)
        assert_array_equal(sample.permutations, single.permutations)
        assert_array_equal(sample.unit_ids, single.unit_ids)
        assert sample.n_evaluations == single.n_evaluations


class _RecordingGame(FunctionGame):
    def __init__(self) -> None:
        super().__init__(_hashed_value, n_players=9, n_metrics=2, vectorized=True)
        self.batches: list[bytes] = []

    def value_function(self, coalitions: np.ndarray) -> np.ndarray:
        self.batches.append(coalitions.tobytes())
        return super().value_function(coalitions)


def test_workers_send_the_game_exactly_the_single_worker_batches() -> None:
    single = _RecordingGame()
    sample_gains(single, 10, rng=3, batch_size=7)
    games_used: list[_RecordingGame] = []

    def make() -> _RecordingGame:
        games_used.append(_RecordingGame())
        return games_used[-1]

    _run_group(3, make, lambda g, sh: sample_gains(g, 10, rng=3, batch_size=7, sharding=sh))
    inner = single.batches[2:]  # the first two calls are v(empty) and v(full), which every worker makes
    assert sum((g.batches[2:] for g in games_used), []) == inner
    assert all(len(g.batches[2:]) in (len(inner) // 3, len(inner) // 3 + 1) for g in games_used)


@pytest.mark.parametrize("antithetic,truncation", [(False, None), (True, None), (False, 0.05), (True, 0.2)])
def test_sharded_rose_result_is_bit_identical(antithetic: bool, truncation: float | None) -> None:
    make = lambda: FunctionGame(_hashed_value, n_players=12, n_metrics=2, vectorized=True)  # noqa: E731
    est = RoseEstimator(n_groups=4)
    kwargs = {"rng": 11, "batch_size": 16, "antithetic": antithetic, "truncation_tol": truncation}
    single = est.approximate(make(), 24, **kwargs).to_dict()
    for result in _run_group(2, make, lambda g, sh: est.approximate(g, 24, sharding=sh, **kwargs)):
        assert result.to_dict() == single


def test_budget_and_sharding_are_refused_together() -> None:
    sharding = Sharding(shard=lambda n: (0, n), gather=lambda a: a)
    with pytest.raises(ValueError, match="budget and sharding"):
        sample_gains(AdditiveGame([1.0, 2.0]), 4, budget=10, sharding=sharding)
