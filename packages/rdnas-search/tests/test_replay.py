"""The replay (re-scoring a run's saved rounds), the search's scoring options (eq. 16 per edge, a window of
rounds, the equal step), and their agreement with each other."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from advbench.distributed import DistContext
from rdnas_search import ConfigError, RunDirError, apply_overrides, nb201_preset, run_search
from rdnas_search.cli import main
from rdnas_search.replay import replay_run, replay_runs
from rdnas_search.scoring import scale_step
from rdnas_search.search import CHECKPOINT, Searcher, load_search_checkpoint

# a smoke NB201 search with 3 scoring rounds, so that momentum and the window of rounds matter
_SHORT = {"epochs": 4, "warmup_epochs": 1, "n_permutations": 4, "n_groups": 2, "score_momentum": 0.8,
          "value_metric": "neg_ce"}
VARIANTS = {
    "preset": {},
    "window-edge-rms": {"rose_window": 2, "standardize": "edge", "step_scale": "rms", "beta": 0.5},
    "mc-mean-score": {"scorer": "mc", "derive": "mean_score", "eta": 0.3},
}


@pytest.fixture(scope="module", params=list(VARIANTS))
def finished(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    cfg = apply_overrides(nb201_preset("smoke"), {**_SHORT, **VARIANTS[request.param]})
    run = tmp_path_factory.mktemp(f"replay-{request.param}") / "run"
    outcome = run_search(cfg, run)
    assert outcome.finished
    return run, outcome.genotype


def test_a_replay_with_the_runs_own_settings_derives_its_cell(finished: tuple[Path, str]) -> None:
    run, cell = finished
    result = replay_run(run)
    assert result.derived == cell
    assert result.rounds == 3
    final = load_search_checkpoint(run / CHECKPOINT)["model"]["alpha_cell"].double().numpy()
    # the recovered start plus the recomputed steps lands on the run's own alpha (float32 rounding apart)
    np.testing.assert_allclose(result.alphas["cell"], final, atol=1e-5)
    assert json.loads((run / "cell.json").read_text())["arch"] == cell


def test_a_replay_of_other_statistics_moves_alpha_otherwise(finished: tuple[Path, str]) -> None:
    run, _ = finished
    own = replay_run(run)
    other = replay_run(run, {"scorer": "rose" if own.config.scorer == "mc" else "mc", "eta": "0.7"})
    assert other.config.eta == pytest.approx(0.7)
    assert not np.allclose(other.alphas["cell"], own.alphas["cell"])


def test_replay_refuses_what_it_cannot_replay(finished: tuple[Path, str], tmp_path: Path) -> None:
    run, _ = finished
    with pytest.raises(ConfigError, match="cannot change epochs"):
        replay_run(run, {"epochs": 9})
    with pytest.raises(RunDirError, match="no config.json"):
        replay_run(tmp_path)
    with pytest.raises(RunDirError, match="not a directory"):
        replay_runs(tmp_path / "missing")


def test_replay_cli_prints_every_runs_cell_and_accuracy(finished: tuple[Path, str],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    run, cell = finished
    assert main(["replay", str(run), "--json"]) == 0
    record = json.loads(capsys.readouterr().out.strip())
    assert record["derived"] == cell and 10.0 <= record["accuracy"]["cifar10"] <= 94.4
    assert main(["replay", str(run), "--set", "epochs=3"]) == 2
    assert "cannot change epochs" in capsys.readouterr().err


def _one_round_delta(overrides: dict[str, object], tmp_path: Path) -> torch.Tensor:
    cfg = apply_overrides(nb201_preset("smoke"), {"warmup_epochs": 0, "n_permutations": 4, "n_groups": 2,
                                                  "value_metric": "neg_ce",
                                                  **overrides})
    searcher = Searcher(cfg, tmp_path, DistContext())
    before = searcher.net.alpha_cell.detach().clone()
    searcher.score_epoch(0)
    delta = searcher.net.alpha_cell.detach() - before
    return delta - delta.mean(dim=-1, keepdim=True)  # what the softmax sees (the first shift also centres alpha)


@pytest.mark.parametrize("standardize", ["all", "edge"])
def test_equal_step_moves_rose_and_mc_by_the_same_norm(standardize: str, tmp_path: Path) -> None:
    deltas = {s: _one_round_delta({"scorer": s, "step_scale": "rms", "standardize": standardize, "eta": 0.2},
                                  tmp_path / s) for s in ("rose", "mc")}
    rose, mc = (float(d.norm()) for d in deltas.values())
    assert rose == pytest.approx(mc, rel=1e-5)
    assert rose == pytest.approx(0.2 * np.sqrt(30), rel=1e-5)  # eta times sqrt(players): unit RMS per entry
    assert not torch.allclose(deltas["rose"], deltas["mc"])  # same size, different directions
    plain = {s: float(_one_round_delta({"scorer": s, "eta": 0.2}, tmp_path / f"plain-{s}").norm())
             for s in ("rose", "mc")}
    assert plain["rose"] != pytest.approx(plain["mc"], rel=1e-3)  # without it the two step sizes differ


def test_scale_step_gives_unit_rms_after_centring() -> None:
    score = torch.tensor([[1.0, 2.0, 6.0], [0.0, 0.0, 3.0]])
    scaled = scale_step(score, "rms")
    centred = scaled - scaled.mean(dim=-1, keepdim=True)
    assert float(centred.pow(2).mean()) == pytest.approx(1.0)
    assert torch.equal(scale_step(score, "none"), score)
    assert torch.equal(scale_step(torch.ones(2, 3), "rms"), torch.ones(2, 3))  # nothing to scale


def test_window_and_commitments_are_refused_together() -> None:
    with pytest.raises(ConfigError, match="rose_window"):
        apply_overrides(nb201_preset("smoke"), {"rose_window": 2, "commit_every": 1})
    with pytest.raises(ConfigError, match="standardize"):
        apply_overrides(nb201_preset("smoke"), {"standardize": "edges"})
