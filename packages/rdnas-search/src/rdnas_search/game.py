"""The ROSE game of one branch: players are (edge, op) pairs, values are accuracies under the coalition."""

from __future__ import annotations

import numpy as np
import torch
from rdnas_space import SupernetBase
from rose_estimator import Game

__all__ = ["SupernetGame"]


class SupernetGame(Game):
    """Value of a coalition of one branch's (edge, op) players on a fixed validation sample.

    Metrics: clean accuracy and, when adversarial images are given, adversarial
    accuracy (or negative cross-entropy with ``metric="neg_ce"``).  The adversarial
    images are crafted once per scoring round against the full supernet and reused
    for every coalition (NOTES.md), so a coalition is scored on how it handles
    perturbations that fool the whole supernet.  Clean and adversarial images go
    through one ``forward_coalitions`` pass together.

    Args:
        net: the supernet, in eval mode.
        branch: ``normal``, ``reduce``, ``robust`` (DARTS space) or ``cell`` (NB201).
        x, y: validation images and labels.
        x_adv: their adversarial versions, or None for a clean-only game.
        metric: ``accuracy`` or ``neg_ce``.
        primitives: op names, for player names ``"e{edge}:{op}"``.
    """

    def __init__(self, net: SupernetBase, branch: str, x: torch.Tensor, y: torch.Tensor,
                 x_adv: torch.Tensor | None, metric: str = "accuracy", primitives: tuple[str, ...] = ()) -> None:
        n_edges, n_ops = net.alpha_shape
        names = [f"e{e}:{primitives[o] if primitives else o}" for e in range(n_edges) for o in range(n_ops)]
        metrics = ["clean"] if x_adv is None else ["clean", "adversarial"]
        super().__init__(n_edges * n_ops, len(metrics), player_names=names, metric_names=metrics)
        self.net, self.branch, self.metric = net, branch, metric
        self.inputs = x if x_adv is None else torch.cat([x, x_adv])
        self.y = y
        self.n = int(y.shape[0])

    @torch.no_grad()
    def value_function(self, coalitions: np.ndarray) -> np.ndarray:
        coal = torch.from_numpy(np.ascontiguousarray(coalitions)).to(self.inputs.device)
        logits = self.net.forward_coalitions(self.inputs, self.branch, coal)  # [k, n or 2n, classes]
        k = logits.shape[0]
        parts = logits.reshape(k, self.n_metrics, self.n, -1)
        if self.metric == "accuracy":
            values = (parts.argmax(-1) == self.y).float().mean(-1)
        else:
            logp = torch.log_softmax(parts.float(), -1)
            values = logp.gather(-1, self.y.view(1, 1, -1, 1).expand(k, self.n_metrics, -1, 1)).squeeze(-1).mean(-1)
        return values.cpu().double().numpy()
