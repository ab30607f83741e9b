"""The README's short tour runs as written and produces what it says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_readme_tour_runs(tmp_path, monkeypatch) -> None:
    code = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[0]
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(code, str(README), "exec"), namespace)
    assert namespace["logits"].shape == (16, 10)
    assert namespace["per_coalition"].shape == (8, 16, 10)
    assert torch.isfinite(namespace["per_coalition"]).all()
    assert (tmp_path / "genotype.json").is_file()
    for branch in ("normal", "reduce", "robust"):
        for ext in ("svg", "png"):
            assert (tmp_path / "cells" / f"cell_{branch}.{ext}").stat().st_size > 0
    assert sum(p.numel() for p in namespace["model"].parameters()) > 1_000_000
