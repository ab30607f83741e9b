"""Monte-Carlo permutation sampling of marginal gains.

Each sampled permutation pi of the P players is *walked*: the prefixes
``{}, {pi_1}, {pi_1, pi_2}, ..., all`` are evaluated (P + 1 evaluations, of which
the empty and the full coalition are cached by the game) and player ``pi_t`` is
credited with the marginal gain ``v(prefix_t) - v(prefix_{t-1})`` (eq. 15 of the
paper, positive when the player helps).  The coalitions of many walks are sent
to the game together, up to ``batch_size`` rows per call.

All randomness is drawn up front from ``rng`` (an ``int`` seed or a
:class:`numpy.random.Generator`), never from global state, so the same seed
gives the same permutations, the same order of evaluations and hence the same
gains whatever ``batch_size`` is.

A group of workers can share one call (:class:`Sharding`): every worker draws
the same permutations from the same seed, evaluates its own contiguous block of
the work, and the blocks are gathered back in order, so every worker ends with
the gains a single worker would have computed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .game import Game

__all__ = ["GainSample", "Sharding", "sample_gains", "draw_permutations", "contiguous_block"]


def contiguous_block(n_units: int, rank: int, world_size: int) -> tuple[int, int]:
    """Worker ``rank``'s block ``[lo, hi)`` of ``n_units`` units split into ``world_size`` contiguous blocks
    whose sizes differ by at most one (the first ``n_units % world_size`` blocks are the larger)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in a group of {world_size} workers")
    base, extra = divmod(n_units, world_size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


@dataclass(frozen=True)
class Sharding:
    """How a group of workers splits the walks of one :func:`sample_gains` call; the caller supplies both halves.

    The estimator never talks to other workers itself, so it stays free of any framework: pass
    ``torch.distributed`` (or MPI, or threads) in through these two functions.

    Attributes:
        shard: ``shard(n) -> (lo, hi)``, this worker's contiguous block of ``n`` work units; every worker must
            get a different block and the blocks, in worker order, must tile ``range(n)``
            (:func:`contiguous_block` does this).
        gather: ``gather(part) -> whole``, the concatenation along axis 0 of every worker's ``part`` in worker
            order, returned on every worker (an all-gather).
    """

    shard: Callable[[int], tuple[int, int]]
    gather: Callable[[NDArray[np.float64]], NDArray[np.float64]]


@dataclass
class GainSample:
    """Marginal gains of a batch of permutation walks.

    Attributes:
        gains: ``[S, P, K]``; ``gains[s, i, k]`` is player i's gain in walk s, metric k.
        permutations: ``[S, P]`` player order of each walk.
        unit_ids: ``[S]`` sampling unit of each walk: equal ids mark an antithetic
            pair (a permutation and its reverse), which grouping never splits.
        truncated: ``[S]`` True where the walk stopped early (unvisited gains are 0).
        n_evaluations: game evaluations spent on this sample (cache hits excluded).
    """

    gains: NDArray[np.float64]
    permutations: NDArray[np.int64]
    unit_ids: NDArray[np.int64]
    truncated: NDArray[np.bool_]
    n_evaluations: int

    @property
    def n_truncated(self) -> int:
        """Number of walks stopped early by truncation."""
        return int(self.truncated.sum())


def draw_permutations(
    n_players: int, n_permutations: int, rng: int | np.random.Generator, antithetic: bool = False
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Draw ``n_permutations`` permutations and their unit ids.

    With ``antithetic=True`` permutations come in pairs ``(pi, reversed(pi))`` sharing a
    unit id, so ``n_permutations`` must be even.
    """
    gen = np.random.default_rng(rng)
    if antithetic:
        if n_permutations % 2:
            raise ValueError(f"antithetic sampling needs an even number of permutations, got {n_permutations}")
        half = np.stack([gen.permutation(n_players) for _ in range(n_permutations // 2)]) if n_permutations else None
        if half is None:
            return np.zeros((0, n_players), np.int64), np.zeros(0, np.int64)
        perms = np.empty((n_permutations, n_players), dtype=np.int64)
        perms[0::2] = half
        perms[1::2] = half[:, ::-1]
        return perms, np.repeat(np.arange(n_permutations // 2), 2)
    perms = np.stack([gen.permutation(n_players) for _ in range(n_permutations)]) if n_permutations else (
        np.zeros((0, n_players), np.int64)
    )
    return perms.astype(np.int64), np.arange(n_permutations)


def sample_gains(
    game: Game,
    n_permutations: int,
    *,
    rng: int | np.random.Generator = 0,
    batch_size: int = 256,
    antithetic: bool = False,
    truncation_tol: float | None = None,
    budget: int | None = None,
    sharding: Sharding | None = None,
) -> GainSample:
    """Walk ``n_permutations`` random permutations of ``game`` and return the gains.

    Args:
        game: the game to sample.
        n_permutations: number of walks S (even when ``antithetic``).
        rng: seed or generator for the permutations.
        batch_size: maximum number of coalitions per call of ``game.value``.
        antithetic: pair every permutation with its reverse (variance reduction).
        truncation_tol: if set, stop a walk once for every metric
            ``|v(full) - v(prefix)| <= truncation_tol * |v(full) - v(empty)|``; the
            remaining players get gain 0 and the walk is marked truncated.
        budget: hard cap on evaluations spent by this call (including the empty and
            full coalition when they are not cached yet).  Walks are admitted in
            rounds only while their worst-case cost (P - 1 evaluations) fits; with
            ``antithetic`` whole pairs are admitted.  Fewer than ``n_permutations``
            walks may be returned.
        sharding: split the work over a group of workers (:class:`Sharding`).  Without
            truncation the units are the ``batch_size`` chunks of coalitions, so every
            worker sends the game the very batches a single worker would and the result
            is bit-identical to an unsharded call; with ``truncation_tol`` the units are
            walks (identical as long as the game's values do not depend on which other
            coalitions share a batch).  ``n_evaluations`` counts as a single worker
            would (each worker also evaluates the empty and full coalitions itself).

    Raises:
        ValueError: on a non-positive ``batch_size``, a negative ``n_permutations`` or
            ``budget``, a ``truncation_tol`` outside ``[0, 1)``, or ``budget`` with ``sharding``.
    """
    for name, value in (("batch_size", batch_size), ("n_permutations", n_permutations), ("budget", budget)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))):
            raise ValueError(f"{name} must be a whole number, got {value!r}")
    if not isinstance(rng, np.random.Generator) and (isinstance(rng, bool) or not isinstance(rng, (int, np.integer))
                                                     or rng < 0):
        raise ValueError(f"rng must be a non-negative integer seed or a numpy Generator, got {rng!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if n_permutations < 0:
        raise ValueError(f"n_permutations must be non-negative, got {n_permutations}")
    if truncation_tol is not None and not 0.0 <= truncation_tol < 1.0:
        raise ValueError(f"truncation_tol must lie in [0, 1), got {truncation_tol}")
    if budget is not None and budget < 0:
        raise ValueError(f"budget must be non-negative, got {budget}")
    if budget is not None and sharding is not None:
        raise ValueError("budget and sharding cannot be combined: a budget is spent by one worker")

    n_players, n_metrics = game.n_players, game.n_metrics
    perms, unit_ids = draw_permutations(n_players, n_permutations, rng, antithetic)
    start = game.n_evaluations
    sharded_evaluations = own_walk_evaluations = 0
    if budget is not None and budget < (game._empty is None) + (game._full is None):
        raise ValueError(f"budget {budget} cannot even cover v(empty) and v(full); raise the budget")
    v_empty, v_full = game.empty_value, game.full_value

    step_cost = max(n_players - 1, 0)
    n_done = 0
    gains_parts: list[NDArray[np.float64]] = []
    trunc_parts: list[NDArray[np.bool_]] = []
    while n_done < n_permutations:
        todo = n_permutations - n_done
        if budget is not None and step_cost > 0:
            todo = min(todo, (budget - (game.n_evaluations - start)) // step_cost)
            if antithetic:
                todo -= todo % 2
        if todo <= 0:
            break
        chunk = perms[n_done : n_done + todo]
        if sharding is not None:
            before = game.n_evaluations
            if truncation_tol is None:
                g, t = _walk_flat(game, chunk, v_empty, v_full, batch_size, sharding)
            else:
                lo, hi = sharding.shard(len(chunk))
                g, t = _walk_lockstep(game, chunk[lo:hi], v_empty, v_full, batch_size, truncation_tol)
                g, t = sharding.gather(g), sharding.gather(t.astype(np.float64)).astype(bool)
            own_walk_evaluations += game.n_evaluations - before
            sharded_evaluations += int(sharding.gather(np.array([game.n_evaluations - before], np.float64)).sum())
        elif truncation_tol is None:
            g, t = _walk_flat(game, chunk, v_empty, v_full, batch_size)
        else:
            g, t = _walk_lockstep(game, chunk, v_empty, v_full, batch_size, truncation_tol)
        gains_parts.append(g)
        trunc_parts.append(t)
        n_done += todo

    gains = np.concatenate(gains_parts) if gains_parts else np.zeros((0, n_players, n_metrics))
    truncated = np.concatenate(trunc_parts) if trunc_parts else np.zeros(0, dtype=bool)
    # sharded: this worker's own empty/full evaluations plus every worker's share of the walks
    n_evaluations = game.n_evaluations - start - own_walk_evaluations + sharded_evaluations
    return GainSample(
        gains=gains,
        permutations=perms[:n_done],
        unit_ids=unit_ids[:n_done],
        truncated=truncated,
        n_evaluations=n_evaluations,
    )


def _ranks(perms: NDArray[np.int64]) -> NDArray[np.int64]:
    """Position of every player in every permutation (inverse permutations)."""
    ranks = np.empty_like(perms)
    rows = np.arange(perms.shape[0])[:, None]
    ranks[rows, perms] = np.arange(perms.shape[1])[None, :]
    return ranks


def _credit(perms: NDArray[np.int64], prefix_values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Turn prefix values ``[S, P + 1, K]`` into per-player gains ``[S, P, K]``."""
    steps = np.diff(prefix_values, axis=1)
    gains = np.empty_like(steps)
    rows = np.arange(perms.shape[0])[:, None]
    gains[rows, perms] = steps
    return gains


def _walk_flat(
    game: Game,
    perms: NDArray[np.int64],
    v_empty: NDArray[np.float64],
    v_full: NDArray[np.float64],
    batch_size: int,
    sharding: Sharding | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Evaluate every inner prefix of every walk, walk-major, in chunks of ``batch_size``.

    With ``sharding`` this worker evaluates its block of the chunks and the values are gathered in chunk order.
    """
    n_walks, n_players = perms.shape
    prefix = np.empty((n_walks, n_players + 1, game.n_metrics))
    prefix[:, 0] = v_empty
    prefix[:, n_players] = v_full
    inner = n_players - 1
    if inner > 0:
        ranks = _ranks(perms)
        total = n_walks * inner
        first, last = 0, -(-total // batch_size)
        if sharding is not None:
            first, last = sharding.shard(last)
        values = [np.zeros((0, game.n_metrics))]
        for chunk in range(first, last):
            idx = np.arange(chunk * batch_size, min((chunk + 1) * batch_size, total))
            walk, size = idx // inner, idx % inner + 1
            values.append(game.value(ranks[walk] < size[:, None]))
        flat = np.concatenate(values)
        if sharding is not None:
            flat = sharding.gather(flat)
        prefix[:, 1:n_players] = flat.reshape(n_walks, inner, game.n_metrics)
    return _credit(perms, prefix), np.zeros(n_walks, dtype=bool)


def _walk_lockstep(
    game: Game,
    perms: NDArray[np.int64],
    v_empty: NDArray[np.float64],
    v_full: NDArray[np.float64],
    batch_size: int,
    tol: float,
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Advance all walks one player at a time so each can stop once truncation applies."""
    n_walks, n_players = perms.shape
    ranks = _ranks(perms)
    prefix = np.empty((n_walks, n_players + 1, game.n_metrics))
    prefix[:, 0] = v_empty
    active = np.ones(n_walks, dtype=bool)
    truncated = np.zeros(n_walks, dtype=bool)
    threshold = tol * np.abs(v_full - v_empty)
    for size in range(1, n_players):
        rows = np.flatnonzero(active)
        if rows.size == 0:
            break
        for lo in range(0, rows.size, batch_size):
            sel = rows[lo : lo + batch_size]
            prefix[sel, size] = game.value(ranks[sel] < size)
        if size == n_players - 1:
            break  # the last step reaches the cached full coalition for free
        done = (np.abs(v_full - prefix[rows, size]) <= threshold).all(axis=1)
        stop = rows[done]
        prefix[stop, size + 1 :] = prefix[stop, size][:, None, :]
        truncated[stop] = True
        active[stop] = False
    prefix[active, n_players] = v_full
    return _credit(perms, prefix), truncated
