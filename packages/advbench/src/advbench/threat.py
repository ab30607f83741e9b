"""The threat model shared by every attack: an L-infinity ball around inputs in [0, 1]."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, replace
from typing import Any

__all__ = ["format_eps", "ThreatModel", "parse_eps"]

_FRACTION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*/\s*([0-9]*\.?[0-9]+)\s*$")


def parse_eps(text: str | float) -> float:
    """Parse an epsilon given as a number (``0.031``) or a fraction (``8/255``).

    Raises:
        ValueError: for anything else, or a value outside ``[0, 1]``.
    """
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        match = _FRACTION.match(text)
        try:
            value = float(match.group(1)) / float(match.group(2)) if match else float(text)
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"bad eps {text!r}: give a number such as 0.031 or a fraction such as 8/255") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"bad eps {text!r}: inputs live in [0, 1], so eps must lie in [0, 1]")
    return value


def format_eps(eps: float) -> str:
    """``eps`` as RobustBench writes it: ``"8/255"`` when it is a whole number of 255ths, else the number."""
    n = eps * 255
    return f"{round(n)}/255" if abs(n - round(n)) < 1e-6 else f"{eps:g}"


@dataclass(frozen=True)
class ThreatModel:
    """An L-infinity attack budget and the PGD schedule used against it.

    Inputs are always images in [0, 1]; normalisation lives inside the model.

    Attributes:
        eps: radius of the L-infinity ball.
        step: step size of iterative attacks.
        steps: iterations of iterative attacks.
        restarts: random restarts (the worst case over restarts is kept).
        random_start: start from a uniform random point in the ball.
        norm: only ``"Linf"`` is supported.
    """

    eps: float = 8 / 255
    step: float = 2 / 255
    steps: int = 20
    restarts: int = 1
    random_start: bool = True
    norm: str = "Linf"

    def __post_init__(self) -> None:
        if self.norm != "Linf":
            raise ValueError(f"unsupported norm {self.norm!r}: advbench implements the Linf threat model")
        if not 0.0 <= self.eps <= 1.0:
            raise ValueError(f"eps must lie in [0, 1] (inputs are in [0, 1]), got {self.eps}")
        if self.step < 0 or self.steps < 0:
            raise ValueError(f"step and steps must be non-negative, got {self.step}, {self.steps}")
        if self.restarts < 1:
            raise ValueError(f"restarts must be at least 1, got {self.restarts}")

    def with_(self, **changes: Any) -> ThreatModel:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, with eps and step also as multiples of 1/255."""
        out = asdict(self)
        out["eps_255"] = round(self.eps * 255, 4)
        out["step_255"] = round(self.step * 255, 4)
        return out
