"""Bad input across the three command lines and the rose-estimator API: one line, exit code 2, nothing left behind.

Every case runs in process.  A command must return 2 (an API call must raise ``ValueError`` or ``TypeError``)
with exactly one line on stderr that contains the expected words, write no traceback, and leave no output
path behind.  The cases and what they printed make the table of ``docs/errors.md``; the test fails when the
file differs, so the documentation cannot drift: ``UPDATE_ERROR_TABLE=1 make test`` (or the same with
``pytest tests/test_bad_inputs.py``) rewrites it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "errors.md"


@dataclass(frozen=True)
class Case:
    """One bad input: a command line (``argv`` with ``{name}`` placeholders) or an API call, and what it must say."""

    surface: str
    expect: str
    argv: tuple[str, ...] = ()
    call: Callable[[], object] | None = field(default=None, compare=False)
    shown: str = ""
    code: int = 2


def _rose(**kw):
    from rose_estimator import RoseConfig

    return RoseConfig(**kw)


def _estimate(game, n: int = 4, **kw):
    from rose_estimator import RoseEstimator

    return RoseEstimator(n_groups=1).approximate(game, n, **kw)


def _game(fn=lambda c: c.sum(axis=1).astype(float), players: int = 3):
    from rose_estimator import FunctionGame

    return FunctionGame(fn, players, vectorized=True)


RS, AB, DEMO, API = "rdnas-search", "advbench", "python -m rose_estimator.demo", "rose-estimator API"

CASES: list[Case] = [
    # rdnas-search run
    Case(RS, "epochs must be an integer, got 2.5", ("run", "--set", "epochs=2.5", "--out", "{out}")),
    Case(RS, "channels must be an integer, got True", ("run", "--set", "channels=true", "--out", "{out}")),
    Case(RS, "lam must be a finite number, got nan", ("run", "--set", "lam=nan", "--out", "{out}")),
    Case(RS, "unknown option 'epoch'; did you mean epochs", ("run", "--set", "epoch=3", "--out", "{out}")),
    Case(RS, "unknown option 'nonsense'", ("run", "--set", "nonsense=1", "--out", "{out}")),
    Case(RS, "--set expects KEY=VALUE", ("run", "--set", "beta", "--out", "{out}")),
    Case(RS, "metric_weights must have 2 entries, got 1", ("run", "--set", "metric_weights=[1]", "--out", "{out}")),
    Case(RS, "batch_size must be positive, got -4", ("run", "--set", "batch_size=-4", "--out", "{out}")),
    Case(RS, "seed must be a non-negative integer, got -1", ("run", "--seed", "-1", "--out", "{out}")),
    Case(RS, "warmup_epochs must lie in [0, epochs=3]", ("run", "--set", "warmup_epochs=9", "--out", "{out}")),
    Case(RS, "n_score (999) cannot exceed n_val (500)", ("run", "--set", "n_score=999", "--out", "{out}")),
    Case(RS, "unknown preset 'huge'", ("run", "--preset", "huge", "--out", "{out}")),
    Case(RS, "invalid choice: 'random'", ("run", "--scorer", "random", "--out", "{out}")),
    Case(RS, "the naswot scorer scores NAS-Bench-201 cells", ("run", "--set", "scorer=naswot", "--out", "{out}")),
    Case(RS, "single paths", ("run", "--set", "coalition_value=paths", "--out", "{out}")),
    Case(RS, "does not exist", ("run", "--config", "{tmp}/missing.toml", "--out", "{out}")),
    Case(RS, "cannot parse", ("run", "--config", "{badtoml}", "--out", "{out}")),
    Case(RS, "is a file; give a directory", ("run", "--preset", "smoke", "--out", "{afile}")),
    Case(RS, "lies under the file", ("run", "--preset", "smoke", "--out", "{afile}/run")),
    Case(RS, "not a search run directory", ("run", "--resume", "{tmp}")),
    Case(RS, "truncated or damaged", ("run", "--resume", "{truncrun}")),
    Case(RS, "is not a checkpoint", ("run", "--resume", "{rndrun}")),
    Case(RS, "CUDA", ("run", "--preset", "smoke", "--device", "cuda", "--out", "{out}")),
    Case(RS, "cifar10 not found under", ("run", "--preset", "smoke", "--dataset", "cifar10", "--data-root",
                                         "{tmp}/nowhere", "--out", "{out}")),
    # rdnas-search train, report, nb201
    Case(RS, "needs --genotype", ("train", "--preset", "smoke", "--out", "{out}")),
    Case(RS, "not a genotype", ("train", "--preset", "smoke", "--genotype", "{afile}", "--out", "{out}")),
    Case(RS, "not a training run directory", ("train", "--resume", "{tmp}")),
    Case(RS, "not a search run directory", ("report", "{tmp}")),
    Case(RS, "stopped after 1 of 3 epochs", ("report", "{partrun}")),
    Case(RS, "runs must be positive", ("nb201", "--runs", "0", "--out", "{out}")),
    Case(RS, "unknown NAS-Bench-201 dataset", ("nb201", "--dataset", "imagenet", "--out", "{out}")),
    Case(RS, "NAS-Bench-201 table not found", ("nb201", "--benchmark", "{tmp}/missing.csv", "--out", "{out}")),
    Case(RS, "missing columns", ("nb201", "--benchmark", "{badcsv}", "--out", "{out}")),
    Case(RS, "the tabular game has no gradients", ("nb201", "--game", "table", "--scorer", "darts", "--out", "{out}")),
    Case(RS, "holds no NAS-Bench-201 search run", ("nb201", "--diagnose", "{tmp}")),
    Case(RS, "the diagnostic needs 2 to 15625 cells", ("nb201", "--diagnose", "{tmp}", "--cells", "1")),
    Case(RS, "CUDA", ("nb201", "--preset", "smoke", "--device", "cuda", "--out", "{out}")),
    Case(RS, "cifar10 not found under", ("nb201", "--preset", "smoke", "--set", "dataset=cifar10", "--set",
                                         "data_root={tmp}/nowhere", "--out", "{out}")),
    # run directories (issue #33): no command writes into another's, --resume takes no new settings
    Case(RS, "holds an nb201 run; a search run needs a directory of its own", ("run", "--resume", "{nbrun}")),
    Case(RS, "holds a search run; a training run needs a directory of its own", ("train", "--preset", "smoke",
                                                                               "--genotype", "random:0", "--out",
                                                                               "{searchrun}")),
    Case(RS, "holds an nb201 run; report re-renders a search run", ("report", "{nbrun}")),
    Case(RS, "is not empty and holds no run", ("run", "--preset", "smoke", "--out", "{notrun}")),
    Case(RS, "--set would be ignored", ("run", "--resume", "{searchrun}", "--set", "epochs=5")),
    Case(RS, "--epochs would be ignored", ("train", "--resume", "{searchrun}", "--epochs", "5")),
    Case(RS, "--out is empty", ("run", "--preset", "smoke", "--out", "")),
    Case(RS, "space=nb201 is searched by rdnas-search nb201", ("run", "--set", "space=nb201", "--out", "{out}")),
    Case(AB, "holds a search run; an eval run needs a directory of its own", ("eval", "--model", "{ckpt}", "--out",
                                                                              "{searchrun}")),
    Case(AB, "already holds an evaluation's results; give another --out, or --force", (
        "eval", "--model", "{ckpt}", "--out", "{evalrun}")),
    Case(AB, "--out is empty", ("eval", "--model", "{ckpt}", "--out", "")),
    # advbench data
    Case(AB, "labels must lie in 0..9", ("eval", "--model", "{ckpt}", "--dataset", "npz", "--data-root", "{npzneg}",
                                        "--out", "{out}")),
    Case(AB, "labels y must be integers", ("eval", "--model", "{ckpt}", "--dataset", "npz", "--data-root",
                                           "{npzfloat}", "--out", "{out}")),
    Case(AB, "cannot decode the image", ("eval", "--model", "{ckpt}", "--dataset", "imagefolder", "--data-root",
                                         "{badfolder}", "--out", "{out}")),
    # advbench
    Case(AB, "does not exist", ("eval", "--model", "{tmp}/missing.pt", "--out", "{out}")),
    Case(AB, "is not a checkpoint (torch.load cannot read it)", ("eval", "--model", "{rnd}", "--out", "{out}")),
    Case(AB, "truncated or damaged", ("eval", "--model", "{trunc}", "--out", "{out}")),
    Case(AB, "refuses to unpickle (posix.system)", ("eval", "--model", "{evil}", "--out", "{out}")),
    Case(AB, "without its mean, std entries", ("eval", "--model", "{nomean}", "--out", "{out}")),
    Case(AB, "raw state dict: name its architecture with --arch", ("eval", "--model", "{raw}", "--out", "{out}")),
    Case(AB, "--batch-size must be positive, got -4", ("eval", "--model", "{ckpt}", "--batch-size", "-4",
                                                       "--out", "{out}")),
    Case(AB, "--batch-size must be positive, got 0", ("eval", "--model", "{ckpt}", "--batch-size", "0",
                                                      "--out", "{out}")),
    Case(AB, "--seed must be a non-negative integer, got -1", ("eval", "--model", "{ckpt}", "--seed", "-1",
                                                               "--out", "{out}")),
    Case(AB, "--step must lie in (0, 1], got 0.0", ("eval", "--model", "{ckpt}", "--step", "0", "--out", "{out}")),
    Case(AB, "bad eps '2'", ("eval", "--model", "{ckpt}", "--eps", "2", "--out", "{out}")),
    Case(AB, "bad eps", ("eval", "--model", "{ckpt}", "--eps", "12/0", "--out", "{out}")),
    Case(AB, "non-finite logits", ("eval", "--model", "{nanckpt}", "--dataset", "npz", "--data-root", "{npz20}",
                                   "--n-examples", "20", "--out", "{out}")),
    Case(AB, "is a file; give a directory", ("eval", "--model", "{ckpt}", "--out", "{afile}")),
    Case(AB, "is not a readable .tar archive", ("eval", "--model", "{ckpt}", "--dataset", "archive", "--data-root",
                                                "{notar}", "--out", "{out}")),
    Case(AB, "invalid choice: 'everything'", ("eval", "--model", "{ckpt}", "--suite", "everything", "--out", "{out}")),
    Case(AB, "transfer needs at least two models", ("transfer", "--models", "{ckpt}", "--out", "{out}")),
    Case(AB, "CUDA", ("eval", "--model", "{ckpt}", "--device", "cuda", "--out", "{out}")),
    # the estimator's demo command and API
    Case(DEMO, "--permutations must be an even number", ("--permutations", "7")),
    Case(DEMO, "fewer than G=100 median-of-means groups", ("--groups", "100")),
    Case(DEMO, "--seed must be a non-negative integer", ("--seed", "-1")),
    Case(DEMO, "--repeats must be a non-negative integer", ("--repeats", "-1")),
    Case(API, "l1 must be a finite number, got nan", call=lambda: _rose(l1=float("nan")), shown="RoseConfig(l1=nan)"),
    Case(API, "l2 must be a finite number, got nan", call=lambda: _rose(l2=float("nan")), shown="RoseConfig(l2=nan)"),
    Case(API, "n_groups must be a whole number, got 2.5", call=lambda: _rose(n_groups=2.5),
         shown="RoseConfig(n_groups=2.5)"),
    Case(API, "beta must lie in [0, 1], got 1.5", call=lambda: _rose(beta=1.5), shown="RoseConfig(beta=1.5)"),
    Case(API, "metric_weights must be finite numbers", call=lambda: _rose(metric_weights=[float("nan")]),
         shown="RoseConfig(metric_weights=[nan])"),
    Case(API, "standardize must be one of all, group", call=lambda: _rose(standardize="edges"),
         shown='RoseConfig(standardize="edges")'),
    Case(API, "n_players must be a whole number, got 3.7", call=lambda: _game(players=3.7),
         shown="FunctionGame(fn, n_players=3.7)"),
    Case(API, "game must be a rose_estimator.Game", call=lambda: _estimate("not a game"),
         shown='RoseEstimator().approximate("not a game", 4)'),
    Case(API, "unknown RoseConfig option(s) ['bogus']", call=lambda: __import__("rose_estimator").RoseEstimator(
        bogus=1), shown="RoseEstimator(bogus=1)"),
    Case(API, "n_permutations must be a whole number, got 4.5", call=lambda: _estimate(_game(), 4.5),
         shown="approximate(game, 4.5)"),
    Case(API, "antithetic sampling needs an even number of permutations", call=lambda: _estimate(
        _game(), 3, antithetic=True), shown="approximate(game, 3, antithetic=True)"),
    Case(API, "batch_size must be a whole number, got 2.5", call=lambda: _estimate(_game(), batch_size=2.5),
         shown="approximate(game, 4, batch_size=2.5)"),
    Case(API, "budget must be a whole number, got 12.5", call=lambda: _estimate(_game(), budget=12.5),
         shown="approximate(game, 4, budget=12.5)"),
    Case(API, "rng must be a non-negative integer seed or a numpy Generator, got -1",
         call=lambda: _estimate(_game(), rng=-1), shown="approximate(game, 4, rng=-1)"),
    Case(API, "admitted 1 sampling unit(s), fewer than the G=3 median-of-means groups",
         call=lambda: __import__("rose_estimator").RoseEstimator(n_groups=3).approximate(_game(), 6, budget=4),
         shown="RoseEstimator(n_groups=3).approximate(game, 6, budget=4)"),
    Case(API, "n_players=1000000000 is more than 1,000,000", call=lambda: _game(players=10**9),
         shown="FunctionGame(fn, n_players=10**9)"),
    Case(API, "non-finite value", call=lambda: _estimate(_game(lambda c: np.full(len(c), np.nan))),
         shown="approximate(a game whose values are NaN, 4)"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """The broken and the good files the cases point at."""
    from advbench import CheckpointInfo, build_model, save_checkpoint
    from rdnas_search import search_preset
    from rdnas_search.config import to_dict

    tmp = tmp_path_factory.mktemp("bad")
    out = {"tmp": str(tmp)}

    def path(name: str) -> Path:
        out[name.split(".")[0]] = str(tmp / name)
        return tmp / name

    path("afile.txt").write_text("not a directory\n")
    path("badtoml.toml").write_text("epochs = [\n")
    path("badcsv.csv").write_text("a,b\n1,2\n")
    path("notar.tar.gz").write_text("not an archive\n")
    path("rnd.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    torch.save({"format": "advbench-checkpoint/1", "w": torch.zeros(4096)}, tmp / "whole.pt")
    path("trunc.pt").write_bytes((tmp / "whole.pt").read_bytes()[:3000])

    class _Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    torch.save({"model": _Evil()}, path("evil.pt"))
    info = CheckpointInfo(arch="small_cnn", arch_kwargs={"num_classes": 10, "width": 4}, mean=(0.5,) * 3,
                          std=(0.25,) * 3, dataset="cifar10")
    net = build_model("small_cnn", num_classes=10, width=4)
    save_checkpoint(path("ckpt.pt"), net, info)
    torch.save({"format": "advbench-checkpoint/1", "arch": "small_cnn", "state_dict": net.state_dict()},
               path("nomean.pt"))
    torch.save(net.state_dict(), path("raw.pt"))
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(float("nan"))
    save_checkpoint(path("nanckpt.pt"), net, info)
    np.savez(path("npz20.npz"), x=np.zeros((20, 32, 32, 3), np.uint8), y=np.arange(20) % 10)
    config = json.dumps({"config": to_dict(search_preset("smoke")), "seed": 0})
    for name, payload in (("truncrun", (tmp / "trunc.pt").read_bytes()), ("rndrun", (tmp / "rnd.pt").read_bytes())):
        (tmp / name).mkdir()
        (tmp / name / "config.json").write_text(config)
        (tmp / name / "checkpoint.pt").write_bytes(payload)
        out[name] = str(tmp / name)
    for name, content in (("searchrun", config), ("nbrun", json.dumps({"format": "rdnas-nb201/1", "config": {}}))):
        (tmp / name).mkdir()
        (tmp / name / "config.json").write_text(content)
        out[name] = str(tmp / name)
    (tmp / "evalrun").mkdir()
    (tmp / "evalrun" / "results.json").write_text("{}")
    (tmp / "notrun").mkdir()
    (tmp / "notrun" / "notes.txt").write_text("mine")
    out.update(evalrun=str(tmp / "evalrun"), notrun=str(tmp / "notrun"))
    np.savez(path("npzneg.npz"), x=np.zeros((4, 32, 32, 3), np.uint8), y=np.array([0, -1, 2, 3]),
             classes=np.array([str(i) for i in range(10)]))
    np.savez(path("npzfloat.npz"), x=np.zeros((4, 32, 32, 3), np.uint8), y=np.array([0.0, 1.5, 2.0, 3.0]))
    bad = tmp / "badfolder" / "test" / "cat"
    bad.mkdir(parents=True)
    (bad / "0.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out["badfolder"] = str(tmp / "badfolder")
    part = tmp / "partrun"
    part.mkdir()
    (part / "config.json").write_text(json.dumps({"config": to_dict(search_preset("cpu")), "seed": 0}))
    torch.save({"format": "rdnas-search-checkpoint/1", "epoch": 1}, part / "checkpoint.pt")
    out["partrun"] = str(part)
    return out


def _main(surface: str) -> Callable[[list[str]], int]:
    if surface == RS:
        from rdnas_search.cli import main
    elif surface == AB:
        from advbench.cli import main
    else:
        from rose_estimator.demo import main
    return main


def _run(case: Case, files: dict[str, str], capsys, out: Path) -> tuple[str, str]:
    """(exit code or exception name, the one line of message), with every rule checked."""
    if case.call is not None:
        with pytest.raises((ValueError, TypeError)) as info:
            case.call()
        message = str(info.value)
        assert len(message.splitlines()) == 1, message
        return type(info.value).__name__, message
    argv = [a.format(out=out, **files) for a in case.argv]
    rc = _main(case.surface)(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert rc == case.code, (argv, rc, captured.err)
    assert len(lines) == 1, (argv, captured.err)
    assert "Traceback" not in captured.err + captured.out
    assert not out.exists(), f"{argv} left {out} behind"
    return str(rc), lines[0]


def _shown(case: Case) -> str:
    if case.call is not None:
        return case.shown
    return " ".join([case.surface, *case.argv]).replace("{out}", "OUT").replace("{", "<").replace("}", ">")


def render(rows: list[tuple[str, str, str, str]]) -> str:
    """The markdown of docs/errors.md."""
    lines = ["# What bad input gets", "",
             "Every row is a case of `tests/test_bad_inputs.py`, which runs it and checks this file: a command "
             "exits with code 2 and one line on stderr, writes no traceback and leaves no output directory; an "
             "API call raises `ValueError` or `TypeError` with a one-line message.  `<name>` stands for a file "
             "the test makes (`<rnd>` random bytes, `<trunc>` a truncated checkpoint, `<evil>` a pickled "
             "`os.system` call, `<nomean>` an advbench checkpoint without `mean`/`std`, `<raw>` a bare state "
             "dict, `<nanckpt>` a model whose weights are NaN, `<npz20>` 20 images, `<notar>` a text file named "
             "`.tar.gz`, `<afile>` a regular file, `<truncrun>`/`<rndrun>` run directories whose checkpoint is "
             "truncated or random, `<partrun>` a run stopped after 1 of 3 epochs); `TMP` is a temporary "
             "directory.  Regenerate with `UPDATE_ERROR_TABLE=1 pytest tests/test_bad_inputs.py`.", "",
             f"{len(rows)} cases.", "",
             "| surface | input | exit code / exception | message |", "|---|---|---|---|"]
    for surface, shown, code, message in rows:
        cell, shown_cell = message.replace("|", "\\|"), shown.replace("|", "\\|")
        lines.append(f"| {surface} | `{shown_cell}` | {code} | {cell} |")
    return "\n".join(lines) + "\n"


def test_every_bad_input_fails_cleanly_and_the_table_is_current(files, capsys, tmp_path) -> None:
    assert len(CASES) >= 40
    rows, failures = [], []
    for i, case in enumerate(CASES):
        out = tmp_path / f"out{i}"
        try:
            code, message = _run(case, files, capsys, out)
        except AssertionError as exc:
            failures.append(f"{_shown(case)}: {str(exc).splitlines()[0]}")
            continue
        if case.expect not in message:
            failures.append(f"{_shown(case)}: expected {case.expect!r} in {message!r}")
        message = message.replace(files["tmp"], "TMP").replace(str(tmp_path), "TMP")
        rows.append((case.surface, _shown(case), code, message))
    assert not failures, "\n".join(failures)
    text = render(rows)
    if os.environ.get("UPDATE_ERROR_TABLE"):
        DOC.write_text(text)
    assert DOC.is_file() and DOC.read_text() == text, (
        "docs/errors.md is out of date: run UPDATE_ERROR_TABLE=1 pytest tests/test_bad_inputs.py")
