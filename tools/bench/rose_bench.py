"""Benchmark of the rose-estimator: accuracy at a fixed evaluation budget, and speed.

For each synthetic game and each estimator, ``--reps`` independent runs spend the
same budget of evaluations; the table reports the RMSE against the exact Shapley
values (value units), the mean Kendall tau of the estimated ranking with the
exact one, and both as ratios to plain Monte-Carlo run in the same process.
ROSE's score lives on the standardised scale, so its error column uses the
median-of-means of the raw gains (the same grouping, in value units) while its
tau uses the ROSE score itself.  The last section times the statistics for
S = 1,000 permutations and P = 1,000 players.

Usage: python tools/bench/rose_bench.py [--budget 2000] [--reps 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import platform
import resource
import time
from collections.abc import Callable

import numpy as np
from rose_estimator import (
    AdditiveGame,
    AirportGame,
    Game,
    NoisyGame,
    RoseConfig,
    RoseResult,
    UnanimityGame,
    WeightedVotingGame,
    exact_shapley,
    median_of_means,
    sample_gains,
)
from scipy.stats import kendalltau

N_PLAYERS = 12


def _games(seed: int) -> dict[str, tuple[Callable[[int], Game], Game]]:
    """Per game: a factory taking a noise seed, and the noise-free game for the exact values."""
    rng = np.random.default_rng(seed)
    carriers = [sorted(rng.choice(N_PLAYERS, size=int(rng.integers(1, 5)), replace=False)) for _ in range(10)]
    coef = rng.normal(size=10)
    weights = rng.integers(1, 10, size=N_PLAYERS)
    costs = rng.uniform(0, 10, size=N_PLAYERS)
    linear = np.linspace(0.0, 1.1, N_PLAYERS)
    unanimity = UnanimityGame(N_PLAYERS, carriers, coef)
    voting = WeightedVotingGame(weights, weights.sum() // 2 + 1)
    airport = AirportGame(costs)
    return {
        "unanimity sum (10 carriers)": (lambda s: unanimity, unanimity),
        "weighted voting": (lambda s: voting, voting),
        "airport": (lambda s: airport, airport),
        "additive + t(1.2) noise": (
            lambda s: NoisyGame(AdditiveGame(linear), scale=0.05, df=1.2, rng=s),
            AdditiveGame(linear),
        ),
    }


def _estimates(game: Game, budget: int, seed: int, n_groups: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(value-unit estimate, ranking score) of each method at the given budget."""
    walks = (budget - 2) // (N_PLAYERS - 1)
    walks -= walks % 2
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    plain = sample_gains(game, walks, rng=seed)
    out["plain MC"] = (plain.gains.mean(axis=0)[:, 0],) * 2
    anti = sample_gains(game, walks, rng=seed, antithetic=True)
    out["antithetic"] = (anti.gains.mean(axis=0)[:, 0],) * 2
    trunc = sample_gains(game, 10 * walks, rng=seed, truncation_tol=0.05, budget=budget - 2)
    out["truncated (tol 0.05)"] = (trunc.gains.mean(axis=0)[:, 0],) * 2
    res = RoseResult.from_sample(anti, RoseConfig(n_groups=n_groups), game.player_names, game.metric_names)
    mom = median_of_means(anti.gains, anti.unit_ids, n_groups)[:, 0]
    out[f"ROSE (antithetic, G={n_groups})"] = (mom, res.score)
    return out


def _accuracy_section(budget: int, reps: int, seed: int) -> None:
    print(f"## Accuracy at a budget of {budget} evaluations ({reps} runs per cell, P = {N_PLAYERS})\n")
    print("| game | method | RMSE | RMSE / plain | Kendall tau | tau - plain |")
    print("|---|---|---:|---:|---:|---:|")
    for name, (make, clean) in _games(seed).items():
        exact = exact_shapley(clean)[:, 0]
        errors: dict[str, list[float]] = {}
        taus: dict[str, list[float]] = {}
        for rep in range(reps):
            for method, (est, rank) in _estimates(make(10_000 + rep), budget, seed + rep, 8).items():
                errors.setdefault(method, []).append(float(np.sqrt(np.mean((est - exact) ** 2))))
                tau = kendalltau(exact, rank).statistic
                taus.setdefault(method, []).append(0.0 if np.isnan(tau) else float(tau))
        base_err, base_tau = np.mean(errors["plain MC"]), np.mean(taus["plain MC"])
        for method in errors:
            err, tau = np.mean(errors[method]), np.mean(taus[method])
            print(f"| {name} | {method} | {err:.4f} | {err / base_err:.2f} | {tau:.3f} | {tau - base_tau:+.3f} |")
    print()


def _nb201_section(budget: int, reps: int, seed: int) -> None:
    """Real-data test bed: the NAS-Bench-201 tabular game (30 players, values from the CIFAR-10 column)."""
    try:
        from rdnas_search.nb201 import NB201TableGame, open_benchmark
    except ImportError:
        print("## NAS-Bench-201 tabular game: skipped (rdnas-search not installed)\n")
        return
    bench = open_benchmark()
    game = NB201TableGame(bench.table)
    ref_walks = 4000
    reference = sample_gains(game, ref_walks, rng=seed + 999, antithetic=True).gains.mean(axis=0)[:, 0]
    print(f"## NAS-Bench-201 tabular game (30 players, CIFAR-10 column): budget {budget} evaluations, {reps} runs\n")
    print(f"Reference: {ref_walks} antithetic walks ({ref_walks * 29 + 2} evaluations); its derived cell "
          f"scores {bench.test_accuracy(NB201TableGame.derive(reference)):.2f} (optimum "
          f"{bench.all_test_accuracies().max():.2f}).\n")
    print("| method | RMSE vs reference | RMSE / plain | Kendall tau | derived cell accuracy (mean, min) |")
    print("|---|---:|---:|---:|---:|")
    walks = (budget - 2) // 29
    walks -= walks % 2
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for rep in range(reps):
        g = NB201TableGame(bench.table)
        plain = sample_gains(g, walks, rng=seed + rep)
        anti = sample_gains(g, walks, rng=seed + rep, antithetic=True)
        trunc = sample_gains(g, 10 * walks, rng=seed + rep, truncation_tol=0.05, budget=budget - 2)
        rose = RoseResult.from_sample(anti, RoseConfig(n_groups=4), g.player_names, g.metric_names)
        estimates = {
            "plain MC": (plain.gains.mean(axis=0)[:, 0],) * 2,
            "antithetic": (anti.gains.mean(axis=0)[:, 0],) * 2,
            "truncated (tol 0.05)": (trunc.gains.mean(axis=0)[:, 0],) * 2,
            "ROSE (antithetic, G=4)": (median_of_means(anti.gains, anti.unit_ids, 4)[:, 0], rose.score),
        }
        for name, (est, rank) in estimates.items():
            err = float(np.sqrt(np.mean((est - reference) ** 2)))
            tau = float(kendalltau(reference, rank).statistic)
            acc = bench.test_accuracy(NB201TableGame.derive(rank))
            rows.setdefault(name, []).append((err, tau, acc))
    base = np.mean([r[0] for r in rows["plain MC"]])
    for name, vals in rows.items():
        err, tau = np.mean([v[0] for v in vals]), np.mean([v[1] for v in vals])
        accs = [v[2] for v in vals]
        print(f"| {name} | {err:.4f} | {err / base:.2f} | {tau:.3f} | {np.mean(accs):.2f}, {np.min(accs):.2f} |")
    print()


def _speed_section(seed: int) -> None:
    print("## Time to compute the ROSE statistics (S = 1,000, P = 1,000)\n")
    print("| K metrics | seconds (best of 3) | plain mean only | ratio |")
    print("|---:|---:|---:|---:|")
    rng = np.random.default_rng(seed)
    for k in (1, 2):
        gains = rng.standard_t(2.0, size=(1000, 1000, k))
        ids = np.arange(1000)
        best = best_mean = np.inf
        for _ in range(3):
            t0 = time.perf_counter()
            RoseResult(RoseConfig(n_groups=10), [str(i) for i in range(1000)], [f"m{j}" for j in range(k)],
                       gains, ids, 0, 0)
            best = min(best, time.perf_counter() - t0)
            t0 = time.perf_counter()
            gains.mean(axis=0)
            best_mean = min(best_mean, time.perf_counter() - t0)
        print(f"| {k} | {best:.3f} | {best_mean:.4f} | {best / best_mean:.0f}x |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nb201-budget", type=int, default=600, help="evaluations per run on the NB201 game")
    args = parser.parse_args()
    print(f"# rose_bench ({platform.processor() or platform.machine()}, CPU, numpy {np.__version__})\n")
    t0 = time.perf_counter()
    _accuracy_section(args.budget, args.reps, args.seed)
    _nb201_section(args.nb201_budget, args.reps, args.seed)
    _speed_section(args.seed)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"total {time.perf_counter() - t0:.1f} s, peak memory (max RSS) {peak:.0f} MiB")


if __name__ == "__main__":
    main()
