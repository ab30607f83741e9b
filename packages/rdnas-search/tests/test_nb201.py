"""NAS-Bench-201 lookup: the CSV source against the real table, the API adapter against a stand-in, the tabular game,
the ``nb201`` search end to end, resume, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rdnas_search import RunDirError, apply_overrides
from rdnas_search.cli import main
from rdnas_search.config import nb201_preset
from rdnas_search.nb201 import APIBenchmark, NB201TableGame, TableBenchmark, open_benchmark
from rdnas_search.nb201_search import NB201Options, run_nb201
from rdnas_space import NB201_PRIMITIVES, NB201Table, arch_to_ops
from rose_estimator import RoseResult

PNG = b"\x89PNG\r\n\x1a\n"

OPTIMUM = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
ROW0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"


@pytest.fixture(scope="module")
def bench() -> TableBenchmark:
    return open_benchmark()


def test_csv_lookups_against_known_rows(bench: TableBenchmark) -> None:
    assert bench.index_of(ROW0) == 0
    assert bench.test_accuracy(ROW0) == pytest.approx(85.86333333333334)
    assert bench.test_accuracy(ROW0, "cifar100") == pytest.approx(52.913333294677734)
    assert bench.test_accuracy(ROW0, "ImageNet16-120") == pytest.approx(26.6333332739936)
    top = bench.summary(OPTIMUM)
    assert top["test_accuracy"] == pytest.approx(94.37333333333333) == top["optimum"]
    assert top["percentile"] == pytest.approx(100.0) and top["regret"] == pytest.approx(0.0)
    assert bench.valid_accuracy(OPTIMUM) is None and "test accuracy only" in top["note"]
    low = bench.summary(ROW0)
    assert 0.0 < low["percentile"] < 100.0


def test_benchmark_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_benchmark(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="missing columns"):
        open_benchmark(bad)
    with pytest.raises(FileNotFoundError):
        open_benchmark(tmp_path / "NAS-Bench-201.pth")
    with pytest.raises(ValueError, match="unknown NAS-Bench-201 dataset"):
        open_benchmark().test_accuracy(OPTIMUM, "imagenet")


class StandInAPI:
    """Implements the NASBench201API calls the adapter uses, over the CSV (valid = test - 1)."""

    def __init__(self, table: NB201Table) -> None:
        self.table = table

    def __len__(self) -> int:
        return len(self.table.archs)

    def query_index_by_arch(self, arch: str) -> int:
        return self.table.index_of(arch)

    def get_more_info(self, index: int, dataset: str, hp: str = "12", is_random: bool = True) -> dict:
        assert hp == "200" and is_random is False
        base = "cifar10" if dataset == "cifar10-valid" else dataset
        acc = float(self.table.accuracy[base][index])
        return {"test-accuracy": acc, "valid-accuracy": acc - 1.0}


def test_api_adapter_with_a_stand_in(bench: TableBenchmark) -> None:
    api = APIBenchmark(StandInAPI(bench.table))
    assert api.test_accuracy(ROW0) == pytest.approx(bench.test_accuracy(ROW0))
    assert api.valid_accuracy(OPTIMUM) == pytest.approx(94.37333333333333 - 1.0)
    summary = api.summary(OPTIMUM)
    assert summary["percentile"] == pytest.approx(100.0) and summary["index"] == bench.index_of(OPTIMUM)


def test_table_game_values(bench: TableBenchmark) -> None:
    game = NB201TableGame(bench.table)
    acc = bench.table.accuracy["cifar10"]
    assert game.n_players == 30
    np.testing.assert_allclose(game.full_value, [acc.mean()], rtol=1e-12)
    none_cell = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    np.testing.assert_allclose(game.empty_value, [bench.test_accuracy(none_cell)], rtol=1e-12)
    coalition = np.ones((1, 30), dtype=bool)
    coalition[0, 0 * 5 + NB201_PRIMITIVES.index("avg_pool_3x3")] = False  # no avg_pool on edge 0
    coalition[0, 5 * 5 : 6 * 5] = False  # edge 5 empty -> only none
    ops = np.array([arch_to_ops(a) for a in bench.table.archs])
    keep = (ops[:, 0] != NB201_PRIMITIVES.index("avg_pool_3x3")) & (ops[:, 5] == NB201_PRIMITIVES.index("none"))
    np.testing.assert_allclose(game.value(coalition)[0], [acc[keep].mean()], rtol=1e-12)
    best = np.zeros(30)
    for e, o in enumerate(arch_to_ops(OPTIMUM)):
        best[e * 5 + o] = 1.0
    assert NB201TableGame.derive(best) == OPTIMUM


# ----------------------------------------------------------------- the lookup mode (rdnas-search nb201)
@pytest.fixture(scope="module")
def smoke_nb201(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("nb201") / "run"
    run_nb201(nb201_preset("smoke"), run, NB201Options(runs=2))
    return run


@pytest.mark.slow
def test_smoke_nb201_search_end_to_end(smoke_nb201: Path, bench: TableBenchmark) -> None:
    rows = [json.loads(line) for line in (smoke_nb201 / "runs.jsonl").read_text().splitlines()]
    assert [(r["run"], r["seed"]) for r in rows] == [(0, 0), (1, 1)]
    for r in rows:
        sub = smoke_nb201 / r["dir"]
        assert json.loads((sub / "cell.json").read_text())["arch"] == r["arch"]
        assert r["test_accuracy"] == pytest.approx(bench.test_accuracy(r["arch"]))
        assert r["accuracies"]["cifar100"] == pytest.approx(bench.test_accuracy(r["arch"], "cifar100"))
        all_acc = bench.all_test_accuracies()
        assert r["percentile"] == pytest.approx(100 * (all_acc <= r["test_accuracy"]).mean())
        log = [json.loads(line) for line in (sub / "log.jsonl").read_text().splitlines()]
        assert r["search_time_s"] == pytest.approx(sum(x["time_epoch_s"] for x in log)) and r["search_time_s"] > 0
        assert log[-1]["branches"]["cell"]["evaluations"] == 2 * 29 + 2
        for name in ("alpha.png", "triggers_cell.png"):
            assert (sub / name).read_bytes().startswith(PNG)
    summary = json.loads((smoke_nb201 / "summary.json").read_text())
    accs = [r["test_accuracy"] for r in rows]
    assert summary["finished"] and summary["test_accuracy"]["mean"] == pytest.approx(np.mean(accs))
    assert summary["test_accuracy"]["std"] == pytest.approx(np.std(accs))
    assert summary["optimum"] == pytest.approx(94.37333333333333)
    c100 = [r["accuracies"]["cifar100"] for r in rows]  # the same cells on another column
    assert summary["columns"]["cifar100"] == pytest.approx({"mean": np.mean(c100), "std": np.std(c100)})
    report = (smoke_nb201 / "report.md").read_text()
    assert f"**{np.mean(c100):.2f} ± {np.std(c100):.2f}**" in report
    mean = summary["test_accuracy"]
    assert all(r["arch"].replace("|", "\\|") in report for r in rows)  # pipes escaped inside the table
    assert f"**{mean['mean']:.2f} ± {mean['std']:.2f}**" in report
    assert "test accuracy only" in report
    assert (smoke_nb201 / "accuracy.png").read_bytes().startswith(PNG)


@pytest.mark.slow
def test_interrupted_nb201_resumes_to_the_same_cells(smoke_nb201: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    partial = run_nb201(nb201_preset("smoke"), run, NB201Options(runs=2), stop_after=1)
    assert not partial.finished and partial.runs == []
    assert not json.loads((run / "summary.json").read_text())["finished"]
    done = run_nb201(nb201_preset("smoke"), run, resume=True)
    expected = [json.loads(line)["arch"] for line in (smoke_nb201 / "runs.jsonl").read_text().splitlines()]
    assert done.finished and [r["arch"] for r in done.runs] == expected
    with pytest.raises(RunDirError, match="finished run"):
        run_nb201(nb201_preset("smoke"), run, resume=True)
    with pytest.raises(RunDirError, match="already holds a run"):
        run_nb201(nb201_preset("smoke"), run, NB201Options(runs=2))


def test_table_game_mode_is_seeded(tmp_path: Path, bench: TableBenchmark) -> None:
    cfg = apply_overrides(nb201_preset("smoke"), {"n_permutations": 20, "n_groups": 5})
    a = run_nb201(cfg, tmp_path / "a", NB201Options(runs=2, game="table"))
    b = run_nb201(cfg, tmp_path / "b", NB201Options(runs=2, game="table"))
    assert [r["arch"] for r in a.runs] == [r["arch"] for r in b.runs]
    for r in a.runs:
        rose = RoseResult.from_json(tmp_path / "a" / r["dir"] / "rose.json")
        assert rose.n_permutations == 20
        assert r["arch"] == NB201TableGame.derive(rose.score)
        assert r["test_accuracy"] == pytest.approx(bench.test_accuracy(r["arch"]))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--benchmark", "MISSING.csv"], "not found"),
        (["--benchmark", "MISSING.pth"], "does not exist"),
        (["--benchmark", "BAD.csv"], "missing columns"),
        (["--benchmark", "SHORT.csv"], "rows; a NAS-Bench-201 table has 15625"),
        (["--dataset", "imagenet"], "unknown NAS-Bench-201 dataset 'imagenet'"),
        (["--game", "table", "--scorer", "darts"], "has no gradients"),
        (["--runs", "0"], "runs must be positive"),
        (["--resume", "NOTARUN"], "not an nb201 run directory"),
    ],
)
def test_nb201_cli_errors(argv: list[str], message: str, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    short = tmp_path / "short.csv"
    short.write_text("ArchitectureString,CIFAR10TestAccuracy200Epochs,CIFAR100TestAccuracy200Epochs,"
                     f"ImageNetTestAccuracy200Epochs\n{OPTIMUM},94.37,73.5,47.3\n")
    subst = {"MISSING.csv": str(tmp_path / "missing.csv"), "MISSING.pth": str(tmp_path / "missing.pth"),
             "BAD.csv": str(bad), "SHORT.csv": str(short), "NOTARUN": str(tmp_path)}
    common = [] if "--resume" in argv else ["--preset", "smoke", "--out", str(tmp_path / "out")]  # resume takes none
    rc = main(["nb201", *common, *[subst.get(a, a) for a in argv]])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out" / "run0-seed0").exists()  # nothing trained on bad input


@pytest.mark.slow
def test_nb201_cli_adversarial_table5_run(tmp_path: Path, capsys) -> None:
    out = tmp_path / "adv"
    assert main(["nb201", "--preset", "smoke", "--runs", "1", "--adversarial", "--dataset", "cifar100",
                 "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"] == "cifar100"
    assert f"cifar100 test accuracy {summary['test_accuracy']['mean']:.2f}" in stdout
    log = [json.loads(line) for line in (out / "run0-seed0" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["val_adv_acc"] is not None and log[-1]["branches"]["cell"]["evaluations"] > 0
    assert json.loads((out / "config.json").read_text())["config"]["adversarial"] is True
