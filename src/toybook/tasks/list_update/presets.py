"""The list-update presets: the standard model and the reference's shortformer architecture."""

from __future__ import annotations

import dataclasses

from toybook.configs import ModelConfig, Preset, TrainConfig
from toybook.tasks.list_update.task import ListUpdateTask

_task = ListUpdateTask()
LIST_UPDATE = Preset(
    name="list_update",
    task=_task,
    model=ModelConfig.for_task(
        _task, n_layers=2, n_heads=1, d_model=128, d_head=128,
        normalization_type=None, use_biases=False,
    ),
    train=TrainConfig(
        steps=8000, batch_size=512, lr=1e-3, weight_decay=0.1, warmup_steps=200,
        schedule="cosine", seed=0, log_every=100,
    ),
    summary="2L 1H attention-only, d_model 128, no norm, no biases",
)

# the reference model's architecture: the same, with shortformer positions (on the query
# and key inputs of each layer, never in the residual stream)
LIST_UPDATE_SHORTFORMER = dataclasses.replace(
    LIST_UPDATE, name="list_update_shortformer",
    model=dataclasses.replace(LIST_UPDATE.model, positional_embedding_type="shortformer"),
    summary="as list_update, with shortformer positions (the reference architecture)",
)

# the reference's data as well as its architecture: one idx and one elt per training batch
LIST_UPDATE_SHORTFORMER_BATCHWISE = dataclasses.replace(
    LIST_UPDATE_SHORTFORMER, name="list_update_shortformer_batchwise",
    task=ListUpdateTask(idx_elt_per_batch=True),
    summary="as list_update_shortformer, trained on the reference's data: one idx and one elt "
            "per batch",
)

PRESETS = (LIST_UPDATE, LIST_UPDATE_SHORTFORMER, LIST_UPDATE_SHORTFORMER_BATCHWISE)
