"""The ROSE game of one branch: players are (edge, op) pairs, values are accuracies under the coalition."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import torch
from rdnas_space import SupernetBase, group_batch_statistics
from rose_estimator import Game

__all__ = ["SupernetGame", "single_path_masks", "player_indices"]


def single_path_masks(coalitions: torch.Tensor, priority: torch.Tensor) -> torch.Tensor:
    """One op per edge and image, drawn from each coalition: ``[k, N, E, O]`` bool.

    ``coalitions`` is bool ``[k, E, O]``; ``priority`` ``[N, E, O]`` holds i.i.d. uniform numbers, fixed for a
    scoring round.  Image ``n`` takes, on edge ``e``, the coalition's op of highest priority: a uniform draw
    from the ops present, and adding an op changes the draw only where the new op outranks the others
    (common random numbers across the coalitions of a walk).  An edge with no op of the coalition stays
    empty (``none``).
    """
    present = coalitions[:, None]  # [k, 1, E, O]
    ranked = torch.where(present, priority[None], torch.full_like(priority[None], -1.0))
    choice = ranked.argmax(dim=-1, keepdim=True)  # [k, N, E, 1]
    masks = torch.zeros(ranked.shape, dtype=torch.bool, device=priority.device).scatter_(-1, choice, True)
    return masks & coalitions.any(dim=-1)[:, None, :, None]


def player_indices(player_names: list[str], primitives: tuple[str, ...]) -> np.ndarray:
    """Flat ``edge * O + op`` index of each ``"e{edge}:{op}"`` player name (a restricted game's players in the
    full ``[E, O]`` grid)."""
    out = []
    for name in player_names:
        edge, _, op = name.partition(":")
        out.append(int(edge[1:]) * len(primitives) + primitives.index(op))
    return np.asarray(out, dtype=np.int64)


class SupernetGame(Game):
    """Value of a coalition of one branch's (edge, op) players on a fixed validation sample.

    Metrics: clean accuracy and, when adversarial images are given, adversarial
    accuracy (or negative cross-entropy with ``metric="neg_ce"``).  The adversarial
    images are crafted once per scoring round against the full supernet and reused
    for every coalition (NOTES.md), so a coalition is scored on how it handles
    perturbations that fool the whole supernet.  Clean and adversarial images go
    through one ``forward_coalitions`` pass together.

    With ``priority`` (``coalition_value="paths"``) the value of a coalition is the supernet's mean metric over
    single paths drawn from it, one per image (:func:`single_path_masks`; an image and its adversarial
    version take the same path): an estimate of the mean over the sub-networks the coalition describes, as
    in the tabular game of :class:`~rdnas_search.nb201.NB201TableGame`.

    With ``fixed`` (edges already decided by progressive commitment, ``commit_every``) the players are the
    open edges' (edge, op) pairs only; every coalition holds each fixed edge's op and nothing else there.

    With ``batch_stats`` every coalition's BatchNorm layers normalise by that coalition's own statistics on the
    sample (:func:`rdnas_space.group_batch_statistics`) instead of the whole supernet's running statistics,
    which do not fit a network with operations removed.

    Args:
        net: the supernet, in eval mode.
        branch: ``normal``, ``reduce``, ``robust`` (DARTS space) or ``cell`` (NB201).
        x, y: validation images and labels.
        x_adv: their adversarial versions, or None for a clean-only game.
        metric: ``accuracy`` or ``neg_ce``.
        primitives: op names, for player names ``"e{edge}:{op}"``.
        priority: ``[n, E, O]`` uniform numbers for single-path values, or None for the masked mixture.
        on_evaluate: called with the number of coalitions after every batch (progress reporting).
        batch_stats: per-coalition batch statistics in BatchNorm (``bn_stats="batch"``).
        fixed: ``[E]`` op index of each decided edge, -1 where the edge is open; None: every edge open.
    """

    def __init__(self, net: SupernetBase, branch: str, x: torch.Tensor, y: torch.Tensor,
                 x_adv: torch.Tensor | None, metric: str = "accuracy", primitives: tuple[str, ...] = (),
                 priority: torch.Tensor | None = None, on_evaluate: Callable[[int], None] | None = None,
                 batch_stats: bool = False, fixed: torch.Tensor | None = None) -> None:
        n_edges, n_ops = net.alpha_shape
        names = [f"e{e}:{primitives[o] if primitives else o}" for e in range(n_edges) for o in range(n_ops)]
        metrics = ["clean"] if x_adv is None else ["clean", "adversarial"]
        decided = np.full(n_edges, -1, dtype=np.int64) if fixed is None else np.asarray(fixed, dtype=np.int64)
        self.players = np.flatnonzero(np.repeat(decided < 0, n_ops))  # the open edges' pairs, in grid order
        self.base = np.zeros(n_edges * n_ops, dtype=bool)  # what every coalition holds: the decided ops
        self.base[np.flatnonzero(decided >= 0) * n_ops + decided[decided >= 0]] = True
        super().__init__(len(self.players), len(metrics), player_names=[names[i] for i in self.players],
                         metric_names=metrics)
        self.net, self.branch, self.metric = net, branch, metric
        self.inputs = x if x_adv is None else torch.cat([x, x_adv])
        self.y = y
        self.n = int(y.shape[0])
        self.priority = None if priority is None else priority.repeat(len(metrics), 1, 1).to(self.inputs.device)
        self.on_evaluate = on_evaluate
        self.batch_stats = batch_stats

    @torch.no_grad()
    def value_function(self, coalitions: np.ndarray) -> np.ndarray:
        full = np.repeat(self.base[None], len(coalitions), axis=0)
        full[:, self.players] = coalitions
        coal = torch.from_numpy(full).to(self.inputs.device)
        k = coal.shape[0]
        with group_batch_statistics(self.inputs.shape[0]) if self.batch_stats else contextlib.nullcontext():
            if self.priority is None:
                logits = self.net.forward_coalitions(self.inputs, self.branch, coal)  # [k, n or 2n, classes]
            else:
                masks = single_path_masks(coal.reshape(k, *self.net.alpha_shape), self.priority)
                stacked = self.inputs.repeat(k, *([1] * (self.inputs.dim() - 1)))
                logits = self.net(stacked, {self.branch: masks.flatten(0, 1)}).reshape(k, self.inputs.shape[0], -1)
        parts = logits.reshape(k, self.n_metrics, self.n, -1)
        if self.metric == "accuracy":
            values = (parts.argmax(-1) == self.y).float().mean(-1)
        else:
            logp = torch.log_softmax(parts.float(), -1)
            values = logp.gather(-1, self.y.view(1, 1, -1, 1).expand(k, self.n_metrics, -1, 1)).squeeze(-1).mean(-1)
        if self.on_evaluate is not None:
            self.on_evaluate(k)
        return values.cpu().double().numpy()
