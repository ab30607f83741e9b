"""ROSE attribution demo (``python -m rose_estimator.demo``).

Attributes the output of a small fixed model with feature interactions to its 10
input features (features outside a coalition are set to a baseline), under noisy
evaluations, and compares plain Monte-Carlo Shapley and ROSE with the exact
values.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from numpy.typing import NDArray
from scipy.stats import kendalltau

from . import FunctionGame, NoisyGame, RoseEstimator, exact_shapley


def _model(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """A fixed nonlinear model: linear terms, two interactions, a saturating output."""
    w = np.array([2.0, -1.0, 0.5, 1.5, 0.0, 0.8, -0.3, 1.0, 0.2, -0.6])
    z = x @ w + 1.5 * x[:, 0] * x[:, 3] - 1.0 * x[:, 1] * x[:, 7]
    return 10.0 * np.tanh(z / 4.0)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; bad input prints one line to stderr and returns 2."""
    parser = _Parser(prog="python -m rose_estimator.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="seed of the permutations and the noise")
    parser.add_argument("--permutations", type=int, default=60, help="number of permutation walks S (even)")
    parser.add_argument("--groups", type=int, default=6, help="median-of-means groups G")
    parser.add_argument("--repeats", type=int, default=20,
                        help="seeds of the comparison over draws (seed, seed + 1, ...); 0: one draw only")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.seed < 0:
        return _fail("--seed must be a non-negative integer, got " + str(args.seed))
    if args.repeats < 0:
        return _fail(f"--repeats must be a non-negative integer, got {args.repeats}")
    if args.permutations < 2 or args.permutations % 2:
        return _fail(f"--permutations must be an even number of at least 2 (antithetic pairs), got {args.permutations}")
    try:
        _demo(args)
    except (ValueError, TypeError) as exc:
        return _fail(str(exc).splitlines()[0])
    return 0


def _fail(message: str) -> int:
    print(f"python -m rose_estimator.demo: error: {message}", file=sys.stderr)
    return 2


def _games(seed: int) -> tuple[FunctionGame, NoisyGame, NDArray[np.float64], NDArray[np.float64]]:
    names = [f"x{i}" for i in range(10)]
    x = np.array([1.0, 0.5, -1.0, 1.2, 3.0, 0.7, -0.4, 1.1, 0.3, -0.9])
    baseline = np.zeros_like(x)

    def value(coalitions: NDArray[np.bool_]) -> NDArray[np.float64]:
        return _model(np.where(coalitions, x[None, :], baseline[None, :]))

    clean = FunctionGame(value, n_players=10, vectorized=True, player_names=names)
    noisy = NoisyGame(clean, scale=0.3, df=1.5, rng=seed)
    return clean, noisy, exact_shapley(clean)[:, 0], x


def _taus(args: argparse.Namespace, seed: int) -> tuple[float, float]:
    _, noisy, exact, _ = _games(seed)
    result = RoseEstimator(n_groups=args.groups).approximate(noisy, n_permutations=args.permutations, rng=seed,
                                                             antithetic=True)
    return kendalltau(exact, result.mc_mean[:, 0]).statistic, kendalltau(exact, result.score).statistic


def _demo(args: argparse.Namespace) -> None:
    clean, noisy, exact, _ = _games(args.seed)
    names = clean.player_names
    result = RoseEstimator(n_groups=args.groups).approximate(
        noisy, n_permutations=args.permutations, rng=args.seed, antithetic=True
    )
    full, empty = clean.value(np.ones((1, 10), bool))[0, 0], clean.value(np.zeros((1, 10), bool))[0, 0]
    print(f"ROSE attribution of f(x) = {full:.3f} (baseline {empty:.3f})")
    print(f"noisy game (Student-t df=1.5 noise), S={result.n_permutations}, G={args.groups}, "
          f"{result.n_evaluations} evaluations\n")
    print(f"{'feature':>8} {'exact':>8} {'MC mean':>8} {'ROSE':>8} {'v':>6} {'trig+':>5} {'trig-':>5}")
    for i in np.argsort(-exact):
        print(
            f"{names[i]:>8} {exact[i]:8.3f} {result.mc_mean[i, 0]:8.3f} {result.score[i]:8.3f} "
            f"{result.v[i, 0]:6.2f} {result.n_above[i, 0]:5d} {result.n_below[i, 0]:5d}"
        )
    tau_mc = kendalltau(exact, result.mc_mean[:, 0]).statistic
    tau_rose = kendalltau(exact, result.score).statistic
    print(f"\nKendall tau with the exact ranking, this draw (seed {args.seed}): MC mean {tau_mc:.3f}, ROSE "
          f"{tau_rose:.3f}")
    if args.repeats:
        taus = np.array([_taus(args, args.seed + r) for r in range(args.repeats)])
        diff = taus[:, 1] - taus[:, 0]
        half = 1.96 * diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
        print(f"over {args.repeats} draws (seeds {args.seed}..{args.seed + args.repeats - 1}, the same walks and "
              f"noise for both): MC mean {taus[:, 0].mean():.3f} +- {taus[:, 0].std():.3f}, ROSE "
              f"{taus[:, 1].mean():.3f} +- {taus[:, 1].std():.3f}; ROSE - MC {diff.mean():+.3f} "
              f"(95% interval +-{half:.3f}), ROSE ahead in {int((diff > 0).sum())}, behind in "
              f"{int((diff < 0).sum())}")


if __name__ == "__main__":
    raise SystemExit(main())
