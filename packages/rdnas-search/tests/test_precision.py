"""``precision=bf16``: autocast in the search (training, attacks, scoring) and in final training, never in the
final evaluation; bad values are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from rdnas_search import ConfigError, apply_overrides, run_search, search_preset, train_preset
from rdnas_search import train as train_module
from rdnas_space import DARTS_PRIMITIVES, Genotype


def _log(run: Path, name: str = "log.jsonl") -> list[dict]:
    return [json.loads(line) for line in (run / name).read_text().splitlines()]


@pytest.mark.slow
def test_bf16_smoke_search_runs_and_stays_near_fp32(tmp_path: Path) -> None:
    logs = {}
    for precision in ("fp32", "bf16"):
        run = tmp_path / precision
        # 2 scoring images: on a CPU without bfloat16 kernels (AVX2) bf16 runs fallback kernels 4-10x slower
        run_search(apply_overrides(search_preset("smoke"), {"precision": precision, "n_score": 2}), run)
        logs[precision] = _log(run)
        Genotype.from_json(run / "genotype.json").validate(DARTS_PRIMITIVES)
    fp32, bf16 = logs["fp32"][0], logs["bf16"][0]
    assert bf16["train_loss"] != fp32["train_loss"]  # autocast was on
    assert bf16["train_loss"] == pytest.approx(fp32["train_loss"], abs=0.2)
    assert logs["bf16"][1]["evaluations"] == logs["fp32"][1]["evaluations"] > 0  # the scoring round ran in full


@pytest.mark.slow
def test_bf16_training_autocasts_but_evaluates_in_fp32(tmp_path: Path, cifar_archive: Path, monkeypatch) -> None:
    seen = []
    whitebox = train_module.run_whitebox

    def spy(*args, **kwargs):
        seen.append(torch.is_autocast_enabled("cpu"))
        return whitebox(*args, **kwargs)

    monkeypatch.setattr(train_module, "run_whitebox", spy)
    losses = {}
    for precision in ("fp32", "bf16"):
        cfg = apply_overrides(train_preset("smoke"), {"data_root": str(cifar_archive), "precision": precision,
                                                      "device": "cpu"})
        outcome = train_module.run_train("darts_v2", cfg, tmp_path / precision)
        assert outcome.finished
        losses[precision] = _log(tmp_path / precision, "train_log.jsonl")[0]["loss"]
    assert seen == [False, False]
    assert losses["bf16"] != losses["fp32"] and losses["bf16"] == pytest.approx(losses["fp32"], abs=0.2)


@pytest.mark.parametrize("preset", [search_preset, train_preset])
def test_unknown_precision_is_refused(preset) -> None:
    with pytest.raises(ConfigError, match="precision must be one of fp32, bf16; got 'fp16'"):
        apply_overrides(preset("smoke"), {"precision": "fp16"})
