"""Result object: statistics wiring, incremental updates, JSON round trip, estimator errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from rose_estimator import (
    AdditiveGame,
    FunctionGame,
    RoseConfig,
    RoseEstimator,
    RoseResult,
    UnanimityGame,
    median_of_means,
    outlier_score,
    sample_gains,
    standardize,
)


def _two_metric_game() -> FunctionGame:
    base = UnanimityGame(6, [[0, 1], [2], [3, 4], [5]], [1.0, 0.2, 2.0, -0.5])
    return FunctionGame(
        lambda c: np.c_[base.value(c)[:, 0], c[:, 0] * 1.0 - c[:, 5]],
        6,
        n_metrics=2,
        vectorized=True,
        metric_names=["clean", "adv"],
    )


def test_result_matches_the_pure_functions() -> None:
    cfg = RoseConfig(beta=0.3, l1=1.2, l2=2.0, n_groups=4, metric_weights=(0.25, 0.75))
    game = _two_metric_game()
    res = RoseEstimator(cfg).approximate(game, 20, rng=1, antithetic=True)
    z = standardize(res.gains)
    v, above, below = outlier_score(z, 1.2, 2.0)
    m = median_of_means(z, res.unit_ids, 4)
    assert_allclose(res.m, m)
    assert_allclose(res.v, v)
    assert_array_equal(res.n_above, above)
    assert_array_equal(res.n_below, below)
    assert_allclose(res.score, ((0.7 * m + 0.3 * v) @ np.array([0.25, 0.75])))
    assert_allclose(res.mc_mean, res.gains.mean(axis=0))
    assert res.group_means.shape == (4, 6, 2)
    assert res.n_evaluations == 20 * 5 + 2
    assert res.ranking()[0] in game.player_names


def test_incremental_update_equals_one_shot() -> None:
    est = RoseEstimator(n_groups=3)
    game = _two_metric_game()
    gen = np.random.default_rng(9)
    first = est.approximate(game, 6, rng=gen)
    grown = est.update(first, game, 9, rng=gen)
    one_shot = est.approximate(_two_metric_game(), 15, rng=np.random.default_rng(9))
    assert_allclose(grown.gains, one_shot.gains)
    assert_allclose(grown.score, one_shot.score)
    assert grown.n_permutations == 15
    assert grown.n_evaluations == first.n_evaluations + 9 * 5


def test_json_round_trip(tmp_path) -> None:
    res = RoseEstimator(n_groups=2).approximate(_two_metric_game(), 8, rng=0, antithetic=True)
    path = tmp_path / "rose.json"
    res.to_json(path)
    data = json.loads(path.read_text())
    assert data["format"] == "rose-result/1" and data["metric_names"] == ["clean", "adv"]
    back = RoseResult.from_json(path)
    for name in ("score", "m", "v", "mc_mean", "mc_stderr", "radius", "group_means", "gains"):
        assert_allclose(getattr(back, name), getattr(res, name), equal_nan=True)
    assert back.config == res.config and back.n_evaluations == res.n_evaluations
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_stderr_and_radius() -> None:
    res = RoseEstimator(n_groups=5, gain_bound=2.0, delta=0.1, beta=0.0).approximate(
        AdditiveGame(np.arange(5.0)), 20, rng=0
    )
    assert_allclose(res.mc_stderr, 0.0, atol=1e-12)  # additive: every walk gives the exact value
    assert_allclose(res.radius, 2.0 * np.sqrt(8 * np.log(2 / 0.1) / 4))


def test_not_a_result_file(tmp_path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{oops")
    with pytest.raises(ValueError, match="not valid JSON"):
        RoseResult.from_json(bad)
    bad.write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="not a ROSE result"):
        RoseResult.from_json(bad)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"beta": 1.2}, "beta"),
        ({"l1": -1.0}, "non-negative"),
        ({"l2": -0.5}, "non-negative"),
        ({"n_groups": 0}, "n_groups"),
        ({"delta": 1.0}, "delta"),
    ],
)
def test_bad_config(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RoseConfig(**kwargs)


def test_fewer_permutations_than_groups() -> None:
    with pytest.raises(ValueError, match="fewer than G=5"):
        RoseEstimator(n_groups=5).approximate(AdditiveGame(np.ones(4)), 8, rng=0, antithetic=True)
    sample = sample_gains(AdditiveGame(np.ones(4)), 3, rng=0)
    with pytest.raises(ValueError, match="at least G=4"):
        RoseResult.from_sample(sample, RoseConfig(n_groups=4), list("abcd"), ["m0"])
