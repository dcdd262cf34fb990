"""The addition presets: the 2-layer model, the 1-layer comparison model, and a 1-layer
model with as many parameters as the 2-layer one (twice the heads and twice the MLP)."""

from __future__ import annotations

import dataclasses

from toybook.configs import ModelConfig, Preset, TrainConfig
from toybook.tasks.addition.task import AdditionTask

_task = AdditionTask(n_digits=5, enrich_batch_prob=0.6, enrich_pair_prob=0.4)
ADDITION = Preset(
    name="addition",
    task=_task,
    model=ModelConfig.for_task(
        _task, n_layers=2, n_heads=4, d_model=256, d_head=64, d_mlp=1024, act_fn="relu",
    ),
    train=TrainConfig(
        steps=6000, batch_size=128, lr=1e-3, weight_decay=0.1, warmup_steps=200,
        schedule="cosine", seed=1, log_every=100,
    ),
    summary="2L 4H, d_model 256, d_mlp 1024, LN, ReLU; sum-9 enriched batches",
)
ADDITION_1L = Preset(
    name="addition_1l",  # the 1-layer comparison model: same data and optimisation
    task=_task,
    model=dataclasses.replace(ADDITION.model, n_layers=1),
    train=ADDITION.train,
    summary="1L 4H, d_model 256, d_mlp 1024, LN, ReLU; the addition chapter's comparison",
)

ADDITION_1L_MATCHED = Preset(
    name="addition_1l_matched",  # one layer as wide as the 2-layer model's two together
    task=_task,
    model=dataclasses.replace(ADDITION.model, n_layers=1, n_heads=8, d_mlp=2048),
    train=ADDITION.train,
    summary="1L 8H, d_model 256, d_mlp 2048, LN, ReLU; as many parameters as addition's 2L",
)

PRESETS = (ADDITION, ADDITION_1L, ADDITION_1L_MATCHED)
