"""Small CIFAR-10 models trained once per test session on data from ../shared/data."""

from __future__ import annotations

import pytest
import torch
from advbench import Classifier, build_model, subset
from torch import nn

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def train_small_cnn(data, epochs: int, adversarial: bool, seed: int = 0) -> Classifier:
    """SmallCNN (width 16) trained with SGD; ``adversarial`` uses FGSM with a random start (eps 8/255)."""
    torch.manual_seed(seed)
    model = Classifier(build_model("small_cnn", num_classes=10, width=16), MEAN, STD)
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=5e-4)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(data), generator=gen)
        for i in range(0, len(order), 64):
            idx = order[i : i + 64]
            x, y = data.x[idx], data.y[idx]
            if torch.rand(1, generator=gen) < 0.5:
                x = x.flip(3)
            if adversarial:  # FGSM from a uniform random start, step 10/255 (Wong et al., 2020)
                eps = 8 / 255
                delta = ((2 * torch.rand(x.shape, generator=gen) - 1) * eps).requires_grad_(True)
                (grad,) = torch.autograd.grad(nn.functional.cross_entropy(model(x + delta), y), delta)
                x = (x + (delta.detach() + 10 / 255 * grad.sign()).clamp(-eps, eps)).clamp(0, 1)
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="session")
def train_subset(cifar_train):
    return subset(cifar_train, 5000, seed=0, balanced=True)


@pytest.fixture(scope="session")
def test_subset(cifar_test):
    return subset(cifar_test, 200, seed=1, balanced=True)


@pytest.fixture(scope="session")
def clean_model(train_subset) -> Classifier:
    """An undefended small CNN (about 45-50% clean accuracy)."""
    return train_small_cnn(train_subset, epochs=4, adversarial=False)


@pytest.fixture(scope="session")
def robust_model(train_subset) -> Classifier:
    """A small CNN adversarially trained with FGSM + random start at 8/255."""
    return train_small_cnn(train_subset, epochs=4, adversarial=True)
