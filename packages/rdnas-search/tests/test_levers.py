"""Search options measured for issue #12: single-path coalition values, path-sampled training, score momentum,
the mean-score derive rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from rdnas_search import ConfigError, Searcher, SupernetGame, apply_overrides, nb201_preset, run_search, search_preset
from rdnas_search.game import single_path_masks
from rdnas_space import NB201_PRIMITIVES, NB201Supernet, ops_to_arch
from rose_estimator import RoseConfig, RoseResult


def test_single_path_masks_draw_one_present_op_per_edge() -> None:
    gen = torch.Generator().manual_seed(0)
    coalitions = torch.rand(6, 4, 5, generator=gen) < 0.5
    coalitions[0, 1] = False  # an empty edge
    priority = torch.rand(4000, 4, 5, generator=gen)
    masks = single_path_masks(coalitions, priority)
    assert masks.shape == (6, 4000, 4, 5)
    assert (masks & ~coalitions[:, None]).sum() == 0  # only ops of the coalition
    per_edge = masks.sum(-1)
    assert torch.equal(per_edge, coalitions.any(-1)[:, None, :].expand_as(per_edge).long())
    # uniform among the present ops
    share = masks.float().mean(1)[coalitions]
    expected = (1.0 / coalitions.sum(-1, keepdim=True).expand_as(coalitions).float())[coalitions]
    torch.testing.assert_close(share, expected, atol=0.03, rtol=0)


def test_adding_an_op_changes_the_path_only_where_it_wins() -> None:
    gen = torch.Generator().manual_seed(1)
    before = torch.zeros(1, 2, 5, dtype=torch.bool)
    before[0, 0, [1, 3]] = True
    before[0, 1, 2] = True
    after = before.clone()
    after[0, 0, 4] = True
    priority = torch.rand(500, 2, 5, generator=gen)
    m0, m1 = single_path_masks(before, priority), single_path_masks(after, priority)
    changed = (m0 != m1).any(-1).any(-1)[0]
    wins = (priority[:, 0, 4] > priority[:, 0, [1, 3]].max(-1).values)
    assert torch.equal(changed, wins) and torch.equal(m1[0, :, 0, 4], wins)


def test_paths_value_of_a_one_op_coalition_equals_the_mixture_value() -> None:
    """One op per edge leaves one path: the single-path value and the (renormalised) mixture value agree."""
    torch.manual_seed(0)
    net = NB201Supernet(4, 1, renormalize_masked=True).eval()
    x, y = torch.rand(12, 3, 16, 16), torch.randint(0, 10, (12,))
    cells = np.array([[3, 3, 2, 1, 3, 0], [4, 1, 0, 2, 2, 3]])
    coalitions = np.zeros((2, 30), dtype=bool)
    coalitions[np.arange(2)[:, None], np.arange(6)[None] * 5 + cells] = True
    mixture = SupernetGame(net, "cell", x, y, None, "neg_ce", NB201_PRIMITIVES)
    paths = SupernetGame(net, "cell", x, y, None, "neg_ce", NB201_PRIMITIVES, priority=torch.rand(12, 6, 5))
    np.testing.assert_allclose(paths.value(coalitions), mixture.value(coalitions), rtol=1e-4, atol=1e-5)


def test_single_paths_need_renormalised_masks() -> None:
    with pytest.raises(ConfigError, match="renormalize_masked"):
        apply_overrides(nb201_preset("smoke"), {"coalition_value": "paths"})
    with pytest.raises(ConfigError, match="renormalize_masked"):
        apply_overrides(nb201_preset("smoke"), {"path_sampling": "uniform"})
    with pytest.raises(ConfigError, match="score_momentum"):
        apply_overrides(nb201_preset("smoke"), {"score_momentum": 1.0})
    with pytest.raises(ConfigError, match="mean_score"):
        apply_overrides(nb201_preset("smoke"), {"derive": "mean_score", "scorer": "darts"})


def test_path_sampling_draws_one_op_per_edge_and_follows_alpha(tmp_path: Path) -> None:
    cfg = apply_overrides(nb201_preset("smoke"), {"path_sampling": "alpha", "renormalize_masked": True})
    searcher = Searcher(cfg, tmp_path)
    gen = torch.Generator().manual_seed(0)
    warm = searcher._sample_paths(2000, 0, gen)["cell"]
    assert warm.shape == (2000, 6, 5) and torch.equal(warm.sum(-1), torch.ones(2000, 6, dtype=torch.long))
    torch.testing.assert_close(warm.float().mean(0), torch.full((6, 5), 0.2), atol=0.04, rtol=0)
    with torch.no_grad():
        searcher.net.alpha_cell.zero_()
        searcher.net.alpha_cell[:, 3] = 5.0  # softmax: about 0.97 on nor_conv_3x3
    later = searcher._sample_paths(2000, cfg.warmup_epochs, gen)["cell"]
    assert (later[:, :, 3].float().mean() > 0.93).item()
    assert Searcher(nb201_preset("smoke"), tmp_path / "m")._sample_paths(8, 0, gen) is None


def test_momentum_run_resumes_bit_identically(tmp_path: Path) -> None:
    overrides = {"epochs": 4, "warmup_epochs": 1, "score_momentum": 0.8, "eta": 0.1, "coalition_value": "paths",
                 "renormalize_masked": True, "path_sampling": "uniform", "derive": "mean_score"}
    cfg = apply_overrides(nb201_preset("smoke"), overrides)
    whole = run_search(cfg, tmp_path / "whole")
    run_search(cfg, tmp_path / "part", stop_after=2)
    resumed = run_search(cfg, tmp_path / "part", resume=True)
    assert torch.equal(whole.alphas["cell"], resumed.alphas["cell"]) and whole.genotype == resumed.genotype
    state = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)
    scores = [np.asarray(RoseResult.from_dict(state["rose"][str(e)]["cell"]).score) for e in (1, 2, 3)]
    expected = 0.2 * (0.8 ** 2 * scores[0] + 0.8 * scores[1] + scores[2])
    np.testing.assert_allclose(state["momentum"]["cell"].double().numpy().reshape(-1), expected, rtol=1e-5,
                               atol=1e-6)


def test_mean_score_derive_rule(tmp_path: Path) -> None:
    cfg = apply_overrides(nb201_preset("smoke"), {"derive": "mean_score"})
    searcher = Searcher(cfg, tmp_path)
    names = [str(i) for i in range(30)]
    for epoch in (1, 2):  # round 1: nor_conv_3x3 helps; round 2: nor_conv_1x1 helps most, nor_conv_3x3 too
        gains = np.zeros((2, 30, 1))
        gains[:, np.arange(6) * 5 + 3, 0] = 1.0 if epoch == 1 else 0.8
        if epoch == 2:
            gains[:, np.arange(6) * 5 + 2, 0] = 1.0
        result = RoseResult(RoseConfig(n_groups=1, beta=0.0), names, ["clean"], gains, np.arange(2), 0, 0)
        searcher.rose[str(epoch)] = {"cell": result.to_dict()}
    assert searcher.derive() == ops_to_arch((3,) * 6)
    searcher.cfg = apply_overrides(cfg, {"derive": "alpha"})
    assert searcher.derive() == searcher.net.derive()


def test_every_branch_is_scored_on_the_same_supernet(tmp_path: Path, monkeypatch) -> None:
    """Algorithm 1 plays the branch games on a fixed supernet: no alpha moves until every game is played."""
    from rdnas_search import search_preset

    searcher = Searcher(search_preset("smoke"), tmp_path)
    seen: list[dict[str, torch.Tensor]] = []
    play = Searcher._play

    def recording_play(self, *args, **kwargs):
        seen.append({b: a.detach().clone() for b, a in self.net.alphas().items()})
        return play(self, *args, **kwargs)

    monkeypatch.setattr(Searcher, "_play", recording_play)
    before = {b: a.detach().clone() for b, a in searcher.net.alphas().items()}
    searcher.score_epoch(searcher.cfg.warmup_epochs)
    assert len(seen) == 3 and all(torch.equal(s[b], before[b]) for s in seen for b in before)
    assert all(not torch.equal(a.detach(), before[b]) for b, a in searcher.net.alphas().items())


def test_coalition_sampling_draws_sizes_as_a_walk_visits_them(tmp_path: Path) -> None:
    """``path_sampling=coalition``: per image a coalition whose size is uniform on 0..P and whose members are a
    uniform subset (every player equally often), as the prefixes of uniformly random permutations are."""
    cfg = apply_overrides(nb201_preset("smoke"), {"path_sampling": "coalition"})  # masked mixture, not renormalised
    searcher = Searcher(cfg, tmp_path)
    masks = searcher._sample_paths(31_000, 0, torch.Generator().manual_seed(0))["cell"]
    assert masks.shape == (31_000, 6, 5) and masks.dtype == torch.bool
    sizes = torch.bincount(masks.flatten(1).sum(1), minlength=31).float() / 31_000
    torch.testing.assert_close(sizes, torch.full((31,), 1 / 31), atol=0.006, rtol=0)
    torch.testing.assert_close(masks.float().mean(0), torch.full((6, 5), 0.5), atol=0.015, rtol=0)


def test_mixture_then_coalition_trains_the_mixture_in_the_warm_up_only(tmp_path: Path) -> None:
    """``path_sampling=mixture_then_coalition``: no masks (the whole mixture) before ``warmup_epochs``, then the
    same per-image coalitions as ``coalition`` from the same generator state."""
    cfg = apply_overrides(nb201_preset("smoke"), {"path_sampling": "mixture_then_coalition", "epochs": 4,
                                                  "warmup_epochs": 2})
    searcher = Searcher(cfg, tmp_path)
    assert all(searcher._sample_paths(8, e, torch.Generator().manual_seed(0)) is None for e in (0, 1))
    after = searcher._sample_paths(64, 2, torch.Generator().manual_seed(3))["cell"]
    coalition = Searcher(apply_overrides(cfg, {"path_sampling": "coalition"}), tmp_path / "c")
    assert torch.equal(after, coalition._sample_paths(64, 0, torch.Generator().manual_seed(3))["cell"])


def test_batch_statistics_game_values_each_coalition_on_its_own_statistics() -> None:
    """``bn_stats=batch``: the game's value of a coalition is that of the masked network normalised by its own
    batch statistics on the scoring images, whatever else is evaluated in the same pass."""
    torch.manual_seed(0)
    net = NB201Supernet(4, 1)
    net.train()
    with torch.no_grad():
        net(torch.rand(16, 3, 16, 16) * 4)  # running statistics far from the scoring images' own
    net.eval()
    x, y = torch.rand(10, 3, 16, 16), torch.randint(0, 10, (10,))
    coalitions = np.random.default_rng(0).random((5, 30)) < 0.6
    game = SupernetGame(net, "cell", x, y, None, "neg_ce", NB201_PRIMITIVES, batch_stats=True)
    values = game.value(coalitions)[:, 0]
    alone = np.concatenate([game.value(coalitions[i : i + 1])[:, 0] for i in range(5)])
    np.testing.assert_allclose(values, alone, rtol=1e-5, atol=1e-6)
    ref = NB201Supernet(4, 1)
    ref.load_state_dict(net.state_dict())
    for m in ref.modules():  # batch statistics only, as track_running_stats=False gives
        if isinstance(m, torch.nn.BatchNorm2d):
            m.track_running_stats, m.running_mean, m.running_var = False, None, None
    with torch.no_grad():
        logp = [torch.log_softmax(ref(x, {"cell": torch.from_numpy(c).reshape(6, 5)}), -1) for c in coalitions]
    want = np.array([float(lp[torch.arange(10), y].mean()) for lp in logp])
    np.testing.assert_allclose(values, want, rtol=1e-4, atol=1e-5)
    running = SupernetGame(net, "cell", x, y, None, "neg_ce", NB201_PRIMITIVES).value(coalitions)[:, 0]
    assert np.abs(running - want).max() > 1e-2


def test_progressive_commitment_fixes_one_edge_per_period_and_resumes(tmp_path: Path) -> None:
    """``commit_every``: after every k-th round the open edge with the widest alpha margin is fixed to its top op
    (weight 1, out of the game: later rounds walk fewer players); the last edge stays open; resuming from a
    checkpoint between commits gives the uninterrupted run."""
    overrides = {"epochs": 6, "warmup_epochs": 1, "commit_every": 1, "score_momentum": 0.8, "eta": 0.1,
                 "path_sampling": "coalition"}
    cfg = apply_overrides(nb201_preset("smoke"), overrides)
    whole = run_search(cfg, tmp_path / "whole")
    state = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)
    committed = state["committed"]["cell"]
    assert int((committed < 0).sum()) == 1  # five rounds, five commits, one edge left to the derive rule
    weights = torch.softmax(whole.alphas["cell"], -1)
    done = committed >= 0
    torch.testing.assert_close(weights[done, committed[done]], torch.ones(int(done.sum())))
    assert whole.genotype == ops_to_arch(tuple(int(o) for o in weights.argmax(-1)))
    rounds = [RoseResult.from_dict(state["rose"][str(e)]["cell"]) for e in range(1, 6)]
    assert [len(r.player_names) for r in rounds] == [30, 25, 20, 15, 10]  # a commit takes 5 players out
    order = _commit_order(tmp_path / "whole")
    assert sorted(order) == sorted(int(e) for e in torch.nonzero(done).flatten())
    for i, edge in enumerate(order):  # after its commit (round i + 1), an edge's players are out of the game
        assert not any(name.startswith(f"e{edge}:") for r in rounds[i + 1 :] for name in r.player_names)
    run_search(cfg, tmp_path / "part", stop_after=3)
    resumed = run_search(cfg, tmp_path / "part", resume=True)
    assert torch.equal(whole.alphas["cell"], resumed.alphas["cell"]) and whole.genotype == resumed.genotype


def _commit_order(run: Path) -> list[int]:
    import json

    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [r["committed"]["cell"][0] for r in records if "committed" in r]


def test_committed_edges_run_their_op_alone_in_training(tmp_path: Path) -> None:
    cfg = apply_overrides(nb201_preset("smoke"), {"commit_every": 1, "path_sampling": "coalition"})
    searcher = Searcher(cfg, tmp_path)
    searcher.committed["cell"][2] = 3
    masks = searcher._with_committed(searcher._sample_paths(64, 0, torch.Generator().manual_seed(0)))["cell"]
    assert masks.shape == (64, 6, 5) and torch.equal(masks[:, 2], torch.eye(5, dtype=torch.bool)[3].expand(64, 5))
    assert masks[:, [0, 1, 3, 4, 5]].float().mean() == pytest.approx(0.5, abs=0.06)  # open edges: sampled
    plain = Searcher(apply_overrides(cfg, {"path_sampling": "none"}), tmp_path / "p")
    plain.committed["cell"][2] = 3
    shared = plain._with_committed(None)["cell"]
    assert shared.shape == (6, 5) and int(shared.sum()) == 26 and bool(shared[2, 3])
    with pytest.raises(ConfigError, match="commit_every"):
        apply_overrides(nb201_preset("smoke"), {"commit_every": 1, "derive": "mean_score"})
    with pytest.raises(ConfigError, match="commit_every"):
        apply_overrides(search_preset("smoke"), {"commit_every": 2})  # DARTS-space cells are derived otherwise
    darts = Searcher(apply_overrides(nb201_preset("cpu"), {"scorer": "darts", "n_train": 40, "n_val": 20,
                                                           "n_score": 8, "commit_every": 2}), tmp_path / "d")
    assert darts.cfg.commit_every == 2 and darts._commit(2) == {}  # a scoring setting: the DARTS scorer has none
