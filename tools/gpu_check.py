"""One prepared check of the CUDA path: tests, paper-preset timings, evaluation agreement, NCCL; one report.

Run on a GPU machine that has only a preinstalled PyTorch (2.4 or newer) and no internet::

    # here, on a machine with the repository and pip (the wheel folder: about 43 MB, most of it the model
    # that pyautoattack bundles):
    .venv/bin/python tools/gpu_check.py --build-wheels .whl
    # there, from the repository root:
    python3 tools/gpu_check.py --wheels .whl --out gpu-check

``--wheels`` installs the four packages and the pure-Python wheels they need that such a machine may lack
(pyautoattack, graphviz, torchattacks) into a private folder, without touching the machine's own packages.
Every step runs in its own process with its own time budget; a step that fails or overruns is reported and
the check goes on, so one run reports everything.  The steps:

1. ``tests``: the CUDA-marked tests (they skip without CUDA);
2. ``search``: the paper search preset (widths, batch, PGD-7): training steps eager/compiled and fp32/bf16
   (images/s, peak memory, compile time) and one ROSE scoring round of one branch, extrapolated to a search
   epoch and a whole search beside the paper's 0.2 GPU-days;
3. ``train``: ``rdnas-search train --preset paper`` steps of a dual-branch genotype the same way;
4. ``eval``: a small model trained in seconds on the embedded CIFAR-10 pool, ``advbench eval`` (whitebox) on
   CUDA and on the CPU on the same images (they must agree within the README's tolerance), AutoAttack
   (standard) on CUDA, and advbench's PGD-20 against torchattacks' on the same model and images;
5. ``torchrun``: a ``torchrun --nproc-per-node 1`` smoke search with the NCCL backend.

It writes ``gpu_check.json`` and ``gpu_check.md`` into ``--out``.  ``--dry-run`` runs every step on the CPU at
toy sizes (fp32 eager only, gloo): the test suite runs it, so the check cannot rot while no GPU is at hand.
It reads no data outside the repository: the embedded pool ships with rdnas-search.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rose-estimator", "rdnas-space", "advbench", "rdnas-search")
EXTRA_WHEELS = ("pyautoattack", "graphviz", "torchattacks")  # pure Python, pinned in requirements.txt
STEPS = ("tests", "search", "train", "eval", "torchrun")
PAPER_SEARCH_GPU_DAYS = 0.2
# clean accuracy may differ by one image in 200 between CUDA and the CPU, attacked accuracies by 2 points:
# kernels differ in rounding, and an image on the decision boundary can fall either way (README, GPUs)
TOLERANCE = {"clean": 0.5, "attacked": 2.0}


@dataclass(frozen=True)
class Sizes:
    """How much each step does: the real check's sizes fit 6 minutes on one H100; the dry run's, seconds."""

    budgets: dict[str, float]
    search_preset: str
    search_steps: int
    train_preset: str
    train_steps: int
    model_images: int
    model_epochs: int
    eval_images: int
    autoattack_images: int
    contenders: tuple[tuple[str, str], ...]  # (eager|compiled, fp32|bf16)


REAL = Sizes(budgets={"tests": 60, "search": 120, "train": 75, "eval": 75, "torchrun": 45},
             search_preset="paper", search_steps=6, train_preset="paper", train_steps=8, model_images=1600,
             model_epochs=4, eval_images=400, autoattack_images=200,
             contenders=(("eager", "fp32"), ("eager", "bf16"), ("compiled", "fp32")))
DRY = Sizes(budgets={"tests": 120, "search": 180, "train": 180, "eval": 180, "torchrun": 120},
            search_preset="smoke", search_steps=2, train_preset="smoke", train_steps=2, model_images=200,
            model_epochs=1, eval_images=24, autoattack_images=2, contenders=(("eager", "fp32"),))


# ----------------------------------------------------------------------------------------------- the steps
def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _reset_peak(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: str) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None


def _pool_npz(work: Path) -> Path:
    """The embedded CIFAR-10 pool as an ``.npz`` (uint8 NHWC), the data of the train and eval steps."""
    import numpy as np
    from rdnas_search import load_search_pool

    path = work / "pool.npz"
    if not path.is_file():
        pool = load_search_pool()
        x = (pool.x * 255).round().byte().permute(0, 2, 3, 1).numpy()
        np.savez(path, x=x, y=pool.y.numpy(), classes=np.array(pool.classes))
    return path


def step_tests(sizes: Sizes, device: str, work: Path, record: dict[str, Any]) -> None:
    import rdnas_search

    record["packages_from"] = str(Path(rdnas_search.__file__).parent.parent)  # the wheels' folder with --wheels
    files = ["packages/advbench/tests/test_device.py"]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-o", "addopts=", "-p", "no:cacheprovider", "-q",
                           "-rs", "-k", "cuda", *files], cwd=ROOT, capture_output=True, text=True)
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|error)", tail)}
    record.update(files=files, summary=tail, **counts)
    if proc.returncode != 0:
        raise RuntimeError(f"pytest failed: {tail}")
    if device == "cuda" and (counts.get("skipped", 0) or not counts.get("passed")):
        raise RuntimeError(f"CUDA tests skipped on a CUDA machine: {tail}")


def step_search(sizes: Sizes, device: str, work: Path, record: dict[str, Any]) -> None:
    import torch
    from advbench.distributed import DistContext
    from rdnas_search import Searcher, apply_overrides, search_preset

    base = search_preset(sizes.search_preset)
    record.update(preset=sizes.search_preset, channels=base.channels, n_cells=base.n_cells,
                  batch=base.batch_size, attack_steps=base.attack_steps, steps=sizes.search_steps, contenders={})
    for mode, precision in sizes.contenders:
        cfg = apply_overrides(base, {"n_train": base.batch_size * sizes.search_steps, "n_val": base.n_score,
                                     "device": device, "precision": precision, "compile": mode == "compiled",
                                     "progress": False, "epochs": 2, "warmup_epochs": 1})
        searcher = Searcher(cfg, work / f"search-{mode}-{precision}", DistContext())
        _reset_peak(device)
        times = []
        for _ in range(2):  # the first epoch pays for autotuning (and compiling); the second is timed
            _sync(device)
            t0 = time.perf_counter()
            searcher.train_epoch(0)
            _sync(device)
            times.append(time.perf_counter() - t0)
        entry = {"images_per_s": cfg.n_train / times[1], "first_epoch_s": times[0], "epoch_s": times[1],
                 "peak_gib": _peak_gib(device)}
        if mode == "compiled":
            entry["compile_s"] = times[0] - times[1]
        if (mode, precision) == sizes.contenders[0]:
            x, y, x_adv, t_attack = searcher._score_sample(1)
            _sync(device)
            t0 = time.perf_counter()
            result = searcher._play(searcher.net.branches[0], 0, 1, x, y, x_adv)
            _sync(device)
            entry.update(round_s=time.perf_counter() - t0, round_attack_s=t_attack,
                         round_evaluations=result.n_evaluations, round_branch=searcher.net.branches[0])
            full = base
            branches = len(searcher.net.branches)
            scoring = branches * (entry["round_s"] + t_attack)
            train_epoch = full.n_train / entry["images_per_s"]
            total = full.epochs * train_epoch + (full.epochs - full.warmup_epochs) * scoring
            entry.update(extrapolated_epoch_s=train_epoch + scoring, extrapolated_search_s=total,
                         extrapolated_gpu_days=total / 86400, paper_gpu_days=PAPER_SEARCH_GPU_DAYS,
                         extrapolated_for=f"{full.epochs} epochs ({full.warmup_epochs} warm-up) of {full.n_train} "
                                          f"images, {branches} branches scored per epoch")
        record["contenders"][f"{mode} {precision}"] = entry
        _write_partial(record)
        del searcher
        if device == "cuda":
            torch.cuda.empty_cache()


def step_train(sizes: Sizes, device: str, work: Path, record: dict[str, Any]) -> None:
    from rdnas_search import apply_overrides, train_preset
    from rdnas_search.train import run_train

    base = train_preset(sizes.train_preset)
    pool = _pool_npz(work)
    record.update(preset=sizes.train_preset, genotype="random:0", channels=base.channels, n_cells=base.n_cells,
                  batch=base.batch_size, attack_steps=base.attack_steps, steps=sizes.train_steps, contenders={})
    for mode, precision in sizes.contenders:
        cfg = apply_overrides(base, {"dataset": "npz", "data_root": str(pool), "device": device,
                                     "n_train": base.batch_size * sizes.train_steps, "n_test": 16, "epochs": 2,
                                     "milestones": (1,), "precision": precision, "compile": mode == "compiled",
                                     "eval_autoattack": False, "progress": False})
        _reset_peak(device)
        out = run_train("random:0", cfg, work / f"train-{mode}-{precision}")
        epochs = [json.loads(line)["time_s"] for line in (out.run_dir / "train_log.jsonl").read_text().splitlines()]
        entry = {"images_per_s": cfg.n_train / epochs[1], "first_epoch_s": epochs[0], "epoch_s": epochs[1],
                 "peak_gib": _peak_gib(device)}
        if mode == "compiled":
            entry["compile_s"] = epochs[0] - epochs[1]
        record["contenders"][f"{mode} {precision}"] = entry
        _write_partial(record)


def _advbench_eval(model: Path, pool: Path, n: int, device: str, out: Path, suite: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "advbench", "eval", "--model", str(model), "--dataset", "npz", "--data-root",
           str(pool), "--n-examples", str(n), "--suite", suite, "--device", device, "--out", str(out),
           "--no-progress", "--seed", "0"]
    if suite == "whitebox":
        cmd.append("--skip-autoattack")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"advbench eval --device {device} --suite {suite} failed: {proc.stderr.strip()[-300:]}")
    results = json.loads((out / "results.json").read_text())
    return next(r for r in results["suites"] if r["suite"] == suite)


def step_eval(sizes: Sizes, device: str, work: Path, record: dict[str, Any]) -> None:
    import torch
    import torchattacks
    from advbench import PGD, ThreatModel, load_checkpoint, load_dataset, subset
    from rdnas_search import apply_overrides, train_preset
    from rdnas_search.train import run_train

    pool = _pool_npz(work)
    cfg = apply_overrides(train_preset("smoke"), {"dataset": "npz", "data_root": str(pool), "device": device,
                                                  "n_train": sizes.model_images, "n_test": 16,
                                                  "epochs": sizes.model_epochs, "milestones": (sizes.model_epochs,),
                                                  "batch_size": 64, "lr": 0.05, "progress": False})
    t0 = time.perf_counter()
    model_path = run_train("small_cnn", cfg, work / "eval-model").model_path
    record["model"] = {"arch": "small_cnn", "images": sizes.model_images, "epochs": sizes.model_epochs,
                       "train_s": time.perf_counter() - t0}
    results = {d: _advbench_eval(model_path, pool, sizes.eval_images, d, work / f"eval-{d}", "whitebox")
               for d in dict.fromkeys([device, "cpu"])}
    acc = {d: r["accuracy"] for d, r in results.items()}
    record["whitebox"] = acc
    record["tolerance"] = TOLERANCE
    gaps = {k: abs(acc[device][k] - acc["cpu"][k]) for k in acc["cpu"]}
    record["gaps"] = gaps
    _write_partial(record)
    t0 = time.perf_counter()
    aa = _advbench_eval(model_path, pool, sizes.autoattack_images, device, work / "eval-aa", "autoattack")
    record["autoattack"] = {"images": sizes.autoattack_images, "seconds": time.perf_counter() - t0,
                            "accuracy": aa["accuracy"], "cumulative": aa["autoattack_cumulative"]}
    _write_partial(record)
    model, _ = load_checkpoint(model_path)
    model = model.to(device).eval()
    data = subset(load_dataset("npz", pool, "test"), sizes.eval_images, 0)
    x, y = data.x.to(device), data.y.to(device)
    timings = {}
    for name, attack in (("advbench", PGD(ThreatModel(eps=8 / 255, step=2 / 255, steps=20), 0)),
                         ("torchattacks", torchattacks.PGD(model, eps=8 / 255, alpha=2 / 255, steps=20,
                                                           random_start=True))):
        runs = []
        for _ in range(2):
            torch.manual_seed(0)
            _sync(device)
            t0 = time.perf_counter()
            x_adv = attack(model, x, y) if name == "advbench" else attack(x, y)
            _sync(device)
            runs.append(time.perf_counter() - t0)
        with torch.no_grad():
            robust = 100.0 * float((model(x_adv).argmax(1) == y).float().mean())
        timings[name] = {"seconds": runs[1], "images_per_s": len(y) / runs[1], "robust_acc": robust}
    timings["speedup"] = timings["torchattacks"]["seconds"] / timings["advbench"]["seconds"]
    record["pgd20"] = timings
    bad = [k for k, g in gaps.items() if g > (TOLERANCE["clean"] if k == "clean" else TOLERANCE["attacked"])]
    if bad:
        raise RuntimeError(f"{device} and cpu disagree beyond the tolerance on {', '.join(bad)}: "
                           + ", ".join(f"{k} {acc[device][k]:.2f} vs {acc['cpu'][k]:.2f}" for k in bad))


def step_torchrun(sizes: Sizes, device: str, work: Path, record: dict[str, Any]) -> None:
    backend = "nccl" if device == "cuda" else "gloo"
    out = work / "torchrun-search"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "1", "--standalone", "-m",
           "rdnas_search", "run", "--preset", "smoke", "--device", device, "--dist-backend", backend, "--out",
           str(out), "--no-progress"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    record.update(backend=backend, seconds=time.perf_counter() - t0, returncode=proc.returncode,
                  finished=(out / "DONE").is_file())
    if proc.returncode != 0 or not record["finished"]:
        raise RuntimeError(f"torchrun smoke search failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    record["genotype"] = json.loads((out / "genotype.json").read_text())


_STEP_FUNCS = {"tests": step_tests, "search": step_search, "train": step_train, "eval": step_eval,
               "torchrun": step_torchrun}
_PARTIAL: Path | None = None


def _write_partial(record: dict[str, Any]) -> None:
    """Save a step's figures so far, so that a step stopped at its budget still reports what it measured."""
    if _PARTIAL is not None:
        tmp = _PARTIAL.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2, default=str))
        os.replace(tmp, _PARTIAL)


def _child(name: str, sizes: Sizes, device: str, work: Path, result: Path) -> int:
    global _PARTIAL
    _PARTIAL = result
    record: dict[str, Any] = {}
    try:
        _STEP_FUNCS[name](sizes, device, work, record)
    except Exception as exc:  # noqa: BLE001 - the parent reports any failure of a step as that step's result
        record["error"] = f"{type(exc).__name__}: {str(exc).strip()[:600]}"
        _write_partial(record)
        return 1
    _write_partial(record)
    return 0


# ------------------------------------------------------------------------------------------ the driver
def build_wheels(folder: Path) -> list[Path]:
    """Build the four packages' wheels and fetch the pinned pure-Python wheels they need into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for pkg in PACKAGES:
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                        "-w", str(folder), str(ROOT / "packages" / pkg)], check=True)
    pins = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
            if line.split("==")[0].strip() in EXTRA_WHEELS]
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d",
                    str(folder), *pins], check=True)
    return sorted(folder.glob("*.whl"))


def install_wheels(folder: Path, site: Path) -> list[str]:
    """Install every wheel of ``folder`` into ``site`` (no index, no dependencies: the machine's own stay)."""
    wheels = sorted(str(p) for p in folder.glob("*.whl"))
    if not wheels:
        raise SystemExit(f"gpu_check: no wheels in {folder}: build them with --build-wheels {folder}")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-compile",
                    "--upgrade", "--target", str(site), *wheels], check=True)
    return [Path(w).name for w in wheels]


def _environment(device: str) -> dict[str, Any]:
    import torch

    env = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
           "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
           "device": device, "host": platform.node(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
           "cpu": platform.processor() or platform.machine()}
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        env.update(gpu=props.name, gpu_memory_gib=props.total_memory / 2**30, sms=props.multi_processor_count)
    return env


def run_check(out: Path, dry_run: bool = False, wheels: Path | None = None, only: tuple[str, ...] = STEPS
              ) -> dict[str, Any]:
    """Run every step in its own process under its budget; write and return the report."""
    import torch

    sizes = DRY if dry_run else REAL
    device = "cpu" if dry_run else "cuda"
    if not dry_run and not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device: run the real check on a GPU machine, or --dry-run here")
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    env = dict(os.environ)
    report: dict[str, Any] = {"format": "gpu-check/1", "dry_run": dry_run, "sizes": asdict(sizes),
                              "environment": _environment(device), "steps": {}}
    if wheels is not None:
        site = work / "site"
        report["installed"] = install_wheels(wheels, site)
        env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if dry_run:
        env.setdefault("OMP_NUM_THREADS", "1")
    start = time.perf_counter()
    for name in only:
        result = work / f"{name}.json"
        budget = sizes.budgets[name]
        t0 = time.perf_counter()
        cmd = [sys.executable, str(Path(__file__).resolve()), "--_step", name, "--_work", str(work),
               "--_result", str(result)] + (["--dry-run"] if dry_run else [])
        status, tail = "pass", ""
        try:
            proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=budget)
            if proc.returncode != 0:
                status, tail = "fail", proc.stderr.strip()[-600:]
        except subprocess.TimeoutExpired:
            status = "timeout"
        record = json.loads(result.read_text()) if result.is_file() else {}
        if status == "fail" and "error" not in record:
            record["error"] = tail or "the step's process died"
        report["steps"][name] = {"status": status, "seconds": time.perf_counter() - t0, "budget_s": budget,
                                 **record}
        print(f"gpu_check: {name}: {status} in {report['steps'][name]['seconds']:.1f} s"
              + (f" ({record['error']})" if "error" in record else ""), flush=True)
    report["total_s"] = time.perf_counter() - start
    report["passed"] = all(s["status"] == "pass" for s in report["steps"].values())
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / "gpu_check.md").write_text(render_markdown(report))
    shutil.rmtree(work, ignore_errors=True)
    return report


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def render_markdown(report: dict[str, Any]) -> str:
    """The human-facing report: environment, one line per step, then each step's figures."""
    env, steps = report["environment"], report["steps"]
    title = "GPU check" + (" (dry run on the CPU, toy sizes)" if report["dry_run"] else "")
    lines = [f"# {title}", "", f"{env.get('gpu', env['device'])}; torch {env['torch']}, CUDA {env['cuda']}, "
             f"cuDNN {env['cudnn']}, Python {env['python']}; {env['date']}; total {report['total_s']:.0f} s.", "",
             "| step | status | seconds | budget |", "|---|---|---:|---:|"]
    for name, s in steps.items():
        lines.append(f"| {name} | {s['status']} | {s['seconds']:.1f} | {s['budget_s']:.0f} |")
    for name in ("search", "train"):
        s = steps.get(name, {})
        if s.get("contenders"):
            lines += ["", f"## {name}: preset `{s['preset']}`, {s['steps']} steps of batch {s['batch']}, "
                      f"PGD-{s['attack_steps']}", "", "| contender | images/s | epoch s | first epoch s | compile s "
                      "| peak GiB |", "|---|---:|---:|---:|---:|---:|"]
            for k, c in s["contenders"].items():
                lines.append(f"| {k} | {_fmt(c['images_per_s'])} | {_fmt(c['epoch_s'], 2)} | "
                             f"{_fmt(c['first_epoch_s'], 2)} | {_fmt(c.get('compile_s'))} | "
                             f"{_fmt(c.get('peak_gib'), 2)} |")
            first = next(iter(s["contenders"].values()))
            if "round_s" in first:
                lines += ["", f"One ROSE round of branch `{first['round_branch']}`: {first['round_s']:.1f} s "
                          f"({first['round_evaluations']} coalition evaluations) plus {first['round_attack_s']:.1f} s "
                          f"of attack.  Extrapolated ({first['extrapolated_for']}): an epoch "
                          f"{first['extrapolated_epoch_s']:.0f} s, the search {first['extrapolated_search_s']:.0f} s "
                          f"= {first['extrapolated_gpu_days']:.3f} GPU-days (paper: {first['paper_gpu_days']})."]
    e = steps.get("eval", {})
    if "whitebox" in e:
        lines += ["", "## eval: whitebox accuracy (%) per device, same images", "",
                  "| attack | " + " | ".join(e["whitebox"]) + " | gap |", "|---|" + "---:|" * (len(e["whitebox"]) + 1)]
        for k in e["gaps"]:
            lines.append(f"| {k} | " + " | ".join(f"{acc[k]:.2f}" for acc in e["whitebox"].values())
                         + f" | {e['gaps'][k]:.2f} |")
        lines.append(f"\nTolerance: clean {TOLERANCE['clean']}, attacked {TOLERANCE['attacked']} points.")
    if "autoattack" in e:
        a = e["autoattack"]
        lines.append(f"\nAutoAttack (standard) on {a['images']} images: clean {a['accuracy']['clean']:.1f}%, robust "
                     f"{a['accuracy']['autoattack']:.1f}% in {a['seconds']:.1f} s (cumulative: "
                     + ", ".join(f"{k} {v:.1f}" for k, v in a["cumulative"].items()) + ").")
    if "pgd20" in e:
        p = e["pgd20"]
        lines.append(f"\nPGD-20: advbench {p['advbench']['images_per_s']:.0f} images/s (robust "
                     f"{p['advbench']['robust_acc']:.1f}%), torchattacks {p['torchattacks']['images_per_s']:.0f} "
                     f"images/s (robust {p['torchattacks']['robust_acc']:.1f}%): {p['speedup']:.2f}x.")
    errors = [(n, s["error"]) for n, s in steps.items() if "error" in s]
    if errors:
        lines += ["", "## Failures", ""] + [f"- {n}: {err}" for n, err in errors]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="gpu-check", help="folder for gpu_check.json and gpu_check.md")
    p.add_argument("--dry-run", action="store_true", help="every step on the CPU at toy sizes (fp32, gloo)")
    p.add_argument("--wheels", default=None, help="install the wheels of this folder first (see --build-wheels)")
    p.add_argument("--build-wheels", default=None, metavar="DIR", help="build the wheel folder here and exit")
    p.add_argument("--only", default=",".join(STEPS), help=f"comma-separated steps (default: {','.join(STEPS)})")
    p.add_argument("--_step", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_work", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_result", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    sizes = DRY if args.dry_run else REAL
    if args._step:
        return _child(args._step, sizes, "cpu" if args.dry_run else "cuda", Path(args._work), Path(args._result))
    if args.build_wheels:
        for w in build_wheels(Path(args.build_wheels)):
            print(w)
        return 0
    only = tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = sorted(set(only) - set(STEPS))
    if unknown:
        print(f"gpu_check: unknown step(s) {', '.join(unknown)}; choose from {', '.join(STEPS)}", file=sys.stderr)
        return 2
    report = run_check(Path(args.out), args.dry_run, Path(args.wheels) if args.wheels else None, only)
    print(f"gpu_check: {'all steps passed' if report['passed'] else 'some steps failed'} in "
          f"{report['total_s']:.0f} s; wrote {args.out}/gpu_check.md")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
