"""The majority preset."""

from __future__ import annotations

from toybook.configs import ModelConfig, Preset, TrainConfig
from toybook.tasks.majority.task import MajorityTask

_task = MajorityTask()
MAJORITY = Preset(
    name="majority",
    task=_task,
    model=ModelConfig.for_task(
        _task, n_layers=1, n_heads=2, d_model=64, d_head=32, d_mlp=256, act_fn="solu_ln",
    ),
    train=TrainConfig(
        steps=2500, batch_size=128, lr=3e-3, weight_decay=0.01, warmup_steps=250,
        schedule="cosine", seed=23, log_every=100, eval_size=1024,
    ),
    summary="1L 2H, d_model 64, d_mlp 256, SoLU-LN, LN",
)

PRESETS = (MAJORITY,)
