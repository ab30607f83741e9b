"""PGD-20 throughput of advbench against torchattacks.PGD on the same model, batch and seed.

Models: the CIFAR-10 ResNet-18 that ``pyautoattack`` ships (undefended), and a
small CNN adversarially trained here for a few epochs (FGSM with random start)
so that a real fraction of samples survives the attack.  Data: the CIFAR-10
JPEG test split from ../shared/data.  Both attacks: eps 8/255, step 2/255, 20
steps, random start.  advbench drops samples from the batch once they are
misclassified (their adversarial example is kept), which is where its speed
comes from; robust accuracy is printed beside throughput so the comparison is
at equal strength.  advbench also runs under bfloat16 autocast (``--precision bf16``),
with its robust accuracy beside fp32's: lower precision must not inflate robustness, and on a
``torch.compile``d model (inductor, dynamic batch size, since the attack's batch shrinks as samples fall;
issue #15): its compile time is the first attack batch's time less eager's, on an empty inductor cache, and
it is shown beside the steady-state speed.

Usage: python tools/bench/attack_bench.py [--preset cpu|smoke] [--seed 0] [--no-compile]
"""

from __future__ import annotations

import argparse
import importlib.resources
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import torch
import torchattacks
from advbench import (
    PGD,
    Classifier,
    ThreatModel,
    autocast_for,
    build_model,
    load_checkpoint,
    load_dataset,
    predict,
    subset,
)
from torch import nn

PRESETS = {"cpu": {"n": 512, "batch": 128, "train": 5000, "epochs": 3}, "smoke": {"n": 64, "batch": 32, "train": 500,
                                                                                "epochs": 1}}
ARCHIVE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar10-jpeg.tar.gz"


def _train_robust_cnn(train, epochs: int, seed: int) -> Classifier:
    torch.manual_seed(seed)
    model = Classifier(build_model("small_cnn", width=32), (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    eps = 8 / 255
    for _ in range(epochs):
        model.train()
        for i in range(0, len(train), 128):
            x, y = train.x[i : i + 128], train.y[i : i + 128]
            delta = ((2 * torch.rand_like(x) - 1) * eps).requires_grad_(True)
            (g,) = torch.autograd.grad(nn.functional.cross_entropy(model(x + delta), y), delta)
            x_adv = (x + (delta.detach() + 10 / 255 * g.sign()).clamp(-eps, eps)).clamp(0, 1)
            opt.zero_grad()
            nn.functional.cross_entropy(model(x_adv), y).backward()
            opt.step()
    return model.eval()


def _advbench(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, seed: int, precision: str
              ) -> tuple[float, float]:
    """Images/s and robust accuracy (%) of advbench's PGD-20 at ``precision``."""
    ours = PGD(ThreatModel(eps=8 / 255, step=2 / 255, steps=20), seed=seed)
    t0 = time.perf_counter()
    with autocast_for(torch.device("cpu"), precision):
        robust = sum(int(ours.perturb(model, x[i : i + batch], y[i : i + batch]).robust.sum())
                     for i in range(0, len(y), batch))
    return len(y) / (time.perf_counter() - t0), 100 * robust / len(y)


def _compiled(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, seed: int
              ) -> tuple[float, float, float]:
    """Images/s, robust accuracy (%) and compile seconds of advbench's PGD-20 on ``torch.compile(model)``."""
    compiled = torch.compile(model, dynamic=True)
    attack = PGD(ThreatModel(eps=8 / 255, step=2 / 255, steps=20), seed=seed)
    first = slice(0, min(batch, len(y)))
    t0 = time.perf_counter()
    attack.perturb(compiled, x[first], y[first])
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    attack.perturb(model, x[first], y[first])
    compile_s = max(t_first - (time.perf_counter() - t0), 0.0)
    rate, acc = _advbench(compiled, x, y, batch, seed, "fp32")
    return rate, acc, compile_s


def _run(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, seed: int
         ) -> tuple[float, float, float, float]:
    threat = ThreatModel(eps=8 / 255, step=2 / 255, steps=20)
    theirs = torchattacks.PGD(model, eps=threat.eps, alpha=threat.step, steps=threat.steps, random_start=True)
    ours_rate, acc_ours = _advbench(model, x, y, batch, seed, "fp32")
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    robust_theirs = 0
    for i in range(0, len(y), batch):
        adv = theirs(x[i : i + batch], y[i : i + batch])
        robust_theirs += int((predict(model, adv) == y[i : i + batch]).sum())
    t_theirs = time.perf_counter() - t0
    n = len(y)
    return n / t_theirs, ours_rate, 100 * robust_theirs / n, acc_ours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--archive", type=Path, default=ARCHIVE)
    parser.add_argument("--no-compile", action="store_true", help="leave out the torch.compile column")
    args = parser.parse_args()
    p = PRESETS[args.preset]
    test = subset(load_dataset("archive", args.archive, "test"), p["n"], seed=args.seed)
    train = subset(load_dataset("archive", args.archive, "train"), p["train"], seed=args.seed, balanced=True)
    resnet, _ = load_checkpoint(str(importlib.resources.files("pyautoattack") / "examples" / "model_test.pt"),
                                arch="resnet18")
    models = {"ResNet-18 (pyautoattack example, undefended)": resnet,
              f"SmallCNN, FGSM-RS trained {p['epochs']} epochs": _train_robust_cnn(train, p["epochs"], args.seed)}
    print(f"# attack_bench ({platform.machine()}, CPU, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"torchattacks {torchattacks.__version__})\n")
    print(f"PGD-20, eps 8/255, step 2/255, random start; {p['n']} CIFAR-10 test images (JPEG copy), "
          f"batch {p['batch']}\n")
    compiled_cols = "" if args.no_compile else (" | advbench compiled img/s | compiled / fp32 | compile s "
                                                 "| robust acc advbench compiled")
    print("| model | torchattacks img/s | advbench img/s | ratio | advbench bf16 img/s | bf16 / fp32 "
          f"| robust acc torchattacks | robust acc advbench | robust acc advbench bf16{compiled_cols} |")
    print("|---|" + "---:|" * (8 if args.no_compile else 12))
    with tempfile.TemporaryDirectory() as cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache  # an empty inductor cache: a first run's compile time
        for name, model in models.items():
            model.eval()
            ta, ab, acc_ta, acc_ab = _run(model, test.x, test.y, p["batch"], args.seed)
            ab16, acc16 = _advbench(model, test.x, test.y, p["batch"], args.seed, "bf16")
            row = (f"| {name} | {ta:.1f} | {ab:.1f} | {ab / ta:.2f}x | {ab16:.1f} | {ab16 / ab:.2f}x | {acc_ta:.2f}% "
                   f"| {acc_ab:.2f}% | {acc16:.2f}%")
            if not args.no_compile:
                abc, accc, compile_s = _compiled(model, test.x, test.y, p["batch"], args.seed)
                row += f" | {abc:.1f} | {abc / ab:.2f}x | {compile_s:.0f} | {accc:.2f}%"
            print(row + " |", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory (max RSS) {peak:.0f} MiB")


if __name__ == "__main__":
    main()
