"""Linear probes: can a quantity be read off an activation by a linear map, on inputs the
probe was not fitted on, better than the same probe fitted to shuffled labels?

A probe is multinomial logistic regression on standardised features (float64, L-BFGS, a
small L2 penalty: at 1e-3 a probe could not read x + y from one-hot digits, where it is
exactly linear; at 1e-5 it reads 98% of held-out sums). Least-squares probes read too much
into a residual stream with few directions in use (they found sums in the token
embeddings); a classifier scored on held-out inputs against its shuffled-label twin does not.
Where an activation is expected to be an exact linear function of known features (attention
that averages, a histogram), :func:`linear_fit_r2` measures how exactly, on held-out rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from toybook.errors import ToybookError


@dataclass(frozen=True)
class ProbeResult:
    """Held-out accuracy of a probe and of its shuffled-label baseline, with the share of the
    most common held-out label (what always answering it scores)."""

    accuracy: float
    shuffled: float | None  # None where the baseline was not fitted
    majority: float
    n_train: int
    n_test: int


def fit_probe(features: Tensor, labels: Tensor, n_classes: int, l2: float = 1e-5,
              steps: int = 100) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Fit a logistic probe on ``features [N, d]`` and integer ``labels [N]`` in
    ``0 .. n_classes - 1``; returns ``(mean, scale, weight [d, n_classes], bias [n_classes])``."""
    x = features.double()
    mean, scale = x.mean(0), x.std(0).clamp_min(1e-6)
    x = (x - mean) / scale
    weight = torch.zeros(x.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ weight + bias, labels) + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return mean, scale, weight.detach(), bias.detach()


def predict_probe(probe: tuple[Tensor, Tensor, Tensor, Tensor], features: Tensor) -> Tensor:
    mean, scale, weight, bias = probe
    return (((features.double() - mean) / scale) @ weight + bias).argmax(-1)


def probe_accuracy(features: Tensor, labels: Tensor, n_train: int, n_classes: int | None = None,
                   seed: int = 0, shuffled_baseline: bool = True) -> ProbeResult:
    """Fit on the first ``n_train`` rows of ``features [N, d]``, score on the rest; the baseline
    is the same probe fitted to a seeded shuffle of the training labels (skipped, and
    ``None``, with ``shuffled_baseline=False``)."""
    if features.ndim != 2 or labels.shape != features.shape[:1]:
        raise ToybookError(f"a probe needs features [N, d] and labels [N]; got "
                           f"{tuple(features.shape)} and {tuple(labels.shape)}")
    if not 0 < n_train < len(labels):
        raise ToybookError(f"n_train must leave inputs on both sides: 0 < n_train < {len(labels)}, "
                           f"got {n_train}")
    labels = labels.long()
    n_classes = int(labels.max()) + 1 if n_classes is None else n_classes
    train, test = slice(0, n_train), slice(n_train, None)
    generator = torch.Generator().manual_seed(seed)
    shuffled = labels[train][torch.randperm(n_train, generator=generator)]
    held_out = labels[test]

    def score(train_labels):
        probe = fit_probe(features[train], train_labels, n_classes)
        return (predict_probe(probe, features[test]) == held_out).double().mean().item()

    return ProbeResult(score(labels[train]), score(shuffled) if shuffled_baseline else None,
                       held_out.bincount(minlength=n_classes).max().item() / len(held_out),
                       n_train, len(held_out))



def linear_fit_r2(features: Tensor, targets: Tensor, train_fraction: float = 0.5) -> float:
    """R² on held-out rows of the least-squares fit ``targets ≈ features @ A + b``.

    ``features [R, F]``, ``targets [R, D]``; the first ``train_fraction`` of the rows fit,
    the rest test. R² is 1 − residual variance / total variance, summed over the D outputs.
    """
    features, targets = features.double(), targets.double()
    design = torch.cat([features, torch.ones(len(features), 1, dtype=torch.double)], 1)
    split = int(len(design) * train_fraction)
    solution = torch.linalg.lstsq(design[:split], targets[:split]).solution
    residual = targets[split:] - design[split:] @ solution
    total = targets[split:] - targets[split:].mean(0)
    return 1 - (residual.pow(2).sum() / total.pow(2).sum()).item()


__all__ = ["ProbeResult", "fit_probe", "linear_fit_r2", "predict_probe", "probe_accuracy"]
