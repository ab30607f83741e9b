"""``rdnas-search reproduce`` (issue #16): specs, plans, resumable smoke reproductions, paper figures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from rdnas_search.cli import main
from rdnas_search.reproduce import SCALES, Job, list_specs, load_spec, plan, reproduce

PAPER = Path(__file__).resolve().parents[3].parent / "shared" / "paper" / "rdnas-paper.txt"
EXPERIMENTS = ["figures5_6", "table1", "table2", "table4", "table5", "table6", "table7", "table8", "table9"]


def test_every_experiment_is_shipped_and_plans_at_every_scale() -> None:
    assert list_specs() == EXPERIMENTS
    for name in EXPERIMENTS:
        spec = load_spec(name)
        for scale in SCALES:
            jobs, owners = plan(spec, scale, [0, 1])
            assert len({j.id for j in jobs}) == len(jobs)
            assert {seed for _, seed in owners} == {0, 1}


def test_shared_searches_are_planned_once() -> None:
    """Table 7's beta = 0.3 row is the default search: the same job as Table 1's RDNAS row."""
    t1, _ = plan(load_spec("table1"), "cpu", [0])
    t7, _ = plan(load_spec("table7"), "cpu", [0])
    assert {j.id for j in t1 if j.kind == "search"} < {j.id for j in t7 if j.kind == "search"}


def test_cpu_scale_trims_the_search_and_the_sweep() -> None:
    """cpu scale: one scoring epoch a search and one PGD restart per eps; paper scale keeps Table 9's five."""
    out = Path("rep")
    cpu, _ = plan(load_spec("table9"), "cpu", [0])
    paper, _ = plan(load_spec("table9"), "paper", [0])
    assert [j.command(out) for j in cpu if j.kind == "search"] == [
        f"rdnas-search run --preset cpu --seed 0 --set epochs=2 --out {out / 'jobs' / cpu[0].id}"]
    sweeps = {scale: [j for j in jobs if j.kind == "sweep"] for scale, jobs in (("cpu", cpu), ("paper", paper))}
    assert len(sweeps["cpu"]) == len(sweeps["paper"]) == 3
    assert all(j.settings["restarts"] == 1 and "--restarts 1 " in j.command(out) for j in sweeps["cpu"])
    assert all(j.settings["restarts"] == 5 and "--restarts 5 " in j.command(out) for j in sweeps["paper"])


def _numbers(text: str) -> list[float]:
    return [float(m) for m in re.findall(r"\d+\.\d+|\d+", text)]


@pytest.mark.skipif(not PAPER.is_file(), reason="../shared/paper is not beside the checkout")
def test_paper_figures_match_the_paper() -> None:
    lines = PAPER.read_text().splitlines()
    checked = 0
    for name in EXPERIMENTS:
        spec = load_spec(name)
        for row in spec.rows:
            quoted = [(c, v) for c, v in zip(spec.columns, row.paper, strict=True)
                      if v is not None and c.metric != "whitebox.flops_m"]  # the paper writes RDNAS's as 1.30G
            if not quoted:
                continue
            if name == "table9":  # the paper lays eps out as rows: each value on its eps's line
                for col, value in quoted:
                    eps = col.label.split()[0]
                    assert any(line.startswith(eps) and value in _numbers(line) for line in lines), (row, col)
            else:
                values = [v for _, v in quoted]
                assert any(all(v in _numbers(line) for v in values) for line in lines), (name, row.label)
            checked += 1
    assert checked >= 30


def test_plan_runs_nothing(tmp_path, capsys) -> None:
    out = tmp_path / "rep"
    assert main(["reproduce", "table7", "--scale", "smoke", "--plan", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert not out.exists()
    assert text.count("[todo]") == 12 and "rdnas-search run --preset smoke" in text and "12 jobs" in text


def test_unknown_experiment_is_one_line(capsys) -> None:
    assert main(["reproduce", "table3", "--plan"]) == 2
    assert "no experiment 'table3'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def smoke_dir(tmp_path_factory, cifar_archive, data_cache) -> Path:
    """Every experiment reproduced at smoke scale into one directory (shared jobs run once)."""
    out = tmp_path_factory.mktemp("reproduce")
    for name in EXPERIMENTS:
        reproduce(name, "smoke", out, device="cpu")
    return out


@pytest.mark.slow
@pytest.mark.timeout(1500)  # the first test also builds the module's smoke directory (every experiment)
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_smoke_reproduction_writes_both_columns(smoke_dir: Path, name: str) -> None:
    table = json.loads((smoke_dir / f"{name}.json").read_text())
    md = (smoke_dir / f"{name}.md").read_text()
    spec = load_spec(name)
    assert len(table["cells"]) == len(spec.rows) * len(spec.columns)
    measured = [c for c in table["cells"] if c["mean"] is not None]
    assert len(measured) >= len(table["cells"]) // 2  # smoke presets skip AutoAttack; transfer has no diagonal
    for c in measured:
        assert len(c["measured"]) == 1 and c["mean"] == c["measured"][0]
    assert "(ours)" in md and "(paper)" in md
    for c in table["cells"]:
        if c["paper"] is not None:
            assert str(c["paper"]) in md
    if spec.plot is not None:
        assert list(smoke_dir.glob(f"{name}*.png"))


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_tensorboard_has_every_search_scalar(smoke_dir: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs = [d for d in (smoke_dir / "tensorboard").iterdir() if d.name.startswith("search-")]
    assert runs
    acc = EventAccumulator(str(runs[0]))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert "search/train_loss" in tags and any(t.startswith("alpha_entropy/") for t in tags)
    assert any(t.startswith("triggers_above/") for t in tags)


@pytest.mark.timeout(900)
def test_killed_reproduction_resumes_without_redoing_jobs(tmp_path, cifar_archive, data_cache) -> None:
    seen: list[tuple[str, str]] = []

    def stop_at_third(job: Job, state: str) -> None:
        seen.append((job.id, state))
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        reproduce("table1", "smoke", tmp_path, device="cpu", on_job=stop_at_third)
    first_two = [job for job, _ in seen[:2]]
    states: dict[str, str] = {}
    reproduce("table1", "smoke", tmp_path, device="cpu", on_job=lambda j, s: states.setdefault(j.id, s))
    assert [states[j] for j in first_two] == ["done", "done"]
    assert sum(s == "run" for s in states.values()) == len(states) - 2
    ran = [json.loads(line)["job"] for line in (tmp_path / "jobs.jsonl").read_text().splitlines()]
    assert len(ran) == len(set(ran)) == len(states)  # every job ran exactly once over the two calls
