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

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm
from transformer_lens.model_bridge import TransformerBridge

from toybook.config_checks import check_choice, check_integer, check_number, config_from_dict
from toybook.environment import current_environment
from toybook.errors import ConfigError, ToybookError
from toybook.model import (
    ModelConfig, attach_task, build_model, check_compatible, trainable_parameters,
)
from toybook.tasks import Task


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping for one training run."""

    steps: int = 2000  # optimizer steps (= epochs when training full-batch)
    batch_size: int | None = 256  # None: the task's whole fixed training set each step
    lr: float = 1e-3  # peak learning rate
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 0.1  # AdamW, on every trainable parameter
    warmup_steps: int = 0  # linear warm-up from 0 to lr
    schedule: str = "constant"  # after warm-up: "constant" or "cosine" (decays to 0)
    grad_clip: float | None = None  # max gradient norm; None: no clipping
    seed: int = 0  # model initialisation and data order
    log_every: int = 100  # steps between metric records
    eval_size: int = 4096  # held-out sequences for the eval metrics
    snapshot_every: int | None = None  # steps between weight snapshots; None: none

    def __post_init__(self) -> None:
        owner = "TrainConfig"
        check_integer(owner, "steps", self.steps, minimum=1)
        check_integer(owner, "batch_size", self.batch_size, minimum=1, optional=True)
        check_number(owner, "lr", self.lr, minimum=0.0, strict=True)
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise ConfigError(f"TrainConfig.betas must be two numbers in [0, 1), got {self.betas!r}")
        for beta in self.betas:
            check_number(owner, "betas", beta, minimum=0.0, maximum=0.999999)
        object.__setattr__(self, "betas", tuple(self.betas))
        check_number(owner, "weight_decay", self.weight_decay, minimum=0.0)
        check_integer(owner, "warmup_steps", self.warmup_steps, minimum=0)
        check_choice(owner, "schedule", self.schedule, ("constant", "cosine"))
        check_number(owner, "grad_clip", self.grad_clip, minimum=0.0, strict=True, optional=True)
        check_integer(owner, "seed", self.seed, minimum=0)
        check_integer(owner, "log_every", self.log_every, minimum=1)
        check_integer(owner, "eval_size", self.eval_size, minimum=1)
        check_integer(owner, "snapshot_every", self.snapshot_every, minimum=1, optional=True)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        return config_from_dict(cls, values)

    def lr_at(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        if self.schedule == "constant":
            return self.lr
        progress = (step - self.warmup_steps) / max(1, self.steps - self.warmup_steps)
        return self.lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


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
    if fixed_train is not None:
        fixed_train = fixed_train.to(device)
    eval_tokens = task.eval_data(cfg.eval_size).to(device)

    history: list[dict[str, Any]] = []
    snapshots: dict[int, dict[str, Tensor]] = {}
    environment = current_environment(device)
    start = time.perf_counter()
    bar = tqdm(range(cfg.steps + 1), desc=f"train {task.name}", disable=not progress)
    for step in bar:
        if cfg.snapshot_every and step % cfg.snapshot_every == 0:
            snapshots[step] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        tokens = next_batch(task, cfg, fixed_train, generator).to(device)
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
