"""Training: one :class:`TrainConfig` and one short, explicit :func:`train` loop.

The loop is deliberately plain (in the spirit of nanoGPT's ``train.py``): sample a batch
from the task (or take the task's fixed training set), forward, float64 cross-entropy on
the answer positions, backward, AdamW step under a warm-up + cosine schedule. Every
``log_every`` steps it records the training loss and the task's metrics on a held-out
evaluation set; every ``snapshot_every`` steps it keeps a copy of the weights (for
training-dynamics plots such as grokking).

Determinism: the model is initialised from ``seed`` and batches are drawn from a CPU
generator seeded from ``seed``. The same seed gives the same weights bit for bit only in
the same environment (torch version, CPU kernels, thread count; see
:mod:`toybook.environment`), which the run records; elsewhere it gives a model that
behaves the same.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm
from transformer_lens.model_bridge import TransformerBridge

from toybook.configs import TrainConfig
from toybook.environment import current_environment
from toybook.errors import ToybookError
from toybook.model import (
    ModelConfig, attach_task, build_model, check_compatible, trainable_parameters,
)
from toybook.resources import check_batch_fits
from toybook.task import Task


@dataclass
class TrainResult:
    """What a run produced: the trained model (eval mode) and its record."""

    model: TransformerBridge
    task: Task
    model_config: ModelConfig
    train_config: TrainConfig
    history: list[dict[str, Any]]  # one row per log step: step, lr, train_*, eval_* metrics
    snapshots: dict[int, dict[str, Tensor]] = field(default_factory=dict)  # step → weights
    wall_time_s: float = 0.0
    device: str = "cpu"
    environment: dict[str, Any] = field(default_factory=dict)  # what the floats depend on

    @property
    def final_metrics(self) -> dict[str, Any]:
        return self.history[-1]


def train(
    task: Task,
    model_config: ModelConfig,
    train_config: TrainConfig = TrainConfig(),
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> TrainResult:
    """Train a fresh model on ``task`` and return it with its history."""
    check_compatible(task, model_config)
    cfg = train_config
    model = attach_task(build_model(model_config, seed=cfg.seed, device=device), task)
    optimizer = torch.optim.AdamW(
        trainable_parameters(model), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay
    )
    generator = torch.Generator().manual_seed(cfg.seed + 1)
    fixed_train = task.train_data()
    if fixed_train is None and cfg.batch_size is None:
        raise ToybookError(
            f"task {task.name!r} samples fresh batches: TrainConfig.batch_size must be set"
        )
    rows = len(fixed_train) if fixed_train is not None else cfg.batch_size
    check_batch_fits("train: the training batch", model, rows, device, factor=3)
    check_batch_fits("train: the held-out evaluation (eval_size)", model, cfg.eval_size, device)
    if fixed_train is not None:
        fixed_train = fixed_train.to(device)
    eval_tokens = task.eval_data(cfg.eval_size).to(device)

    history: list[dict[str, Any]] = []
    snapshots: dict[int, dict[str, Tensor]] = {}
    environment = current_environment(device)
    start = time.perf_counter()
    bar = tqdm(total=cfg.steps, desc=f"train {task.name}", unit="step", disable=not progress)
    for step in range(cfg.steps + 1):
        if cfg.snapshot_every and step % cfg.snapshot_every == 0:
            snapshots[step] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        tokens = next_batch(task, cfg, fixed_train, generator).to(device)
        if not model.training:  # Module.train() walks every submodule: a fifth of a small model's step
            model.train()
        logits = model(tokens)
        loss = task.loss(logits, tokens)
        if step % cfg.log_every == 0 or step == cfg.steps:
            row = {"step": step, "lr": cfg.lr_at(min(step, cfg.steps - 1))}
            with torch.no_grad():
                row |= prefixed("train_", task.metrics(logits.detach(), tokens))
                model.eval()
                row |= prefixed("eval_", task.metrics(model(eval_tokens), eval_tokens))
            history.append(row)
            bar.set_postfix(loss=f"{row['train_loss']:.3g}", eval_acc=f"{row['eval_acc']:.4f}")
        if step == cfg.steps:
            break  # the last iteration only measures the final weights
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr_at(step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(trainable_parameters(model), cfg.grad_clip)
        optimizer.step()
        bar.update(1)
    bar.close()
    model.eval()
    return TrainResult(
        model=model,
        task=task,
        model_config=model_config,
        train_config=cfg,
        history=history,
        snapshots=snapshots,
        wall_time_s=time.perf_counter() - start,
        device=str(device),
        environment=environment,
    )


def next_batch(
    task: Task, cfg: TrainConfig, fixed_train: Tensor | None, generator: torch.Generator
) -> Tensor:
    """Fresh samples, the whole fixed training set, or a random minibatch of it."""
    if fixed_train is None:
        return task.train_batch(cfg.batch_size, generator)
    if cfg.batch_size is None or cfg.batch_size >= len(fixed_train):
        return fixed_train
    rows = torch.randperm(len(fixed_train), generator=generator)[: cfg.batch_size]
    return fixed_train[rows.to(fixed_train.device)]


def prefixed(prefix: str, metrics: dict[str, Any]) -> dict[str, Any]:
    return {prefix + key: value for key, value in metrics.items()}
