"""The two configurations every model is made from, ``ModelConfig`` (the architecture) and
``TrainConfig`` (the optimisation), and the named ``Preset`` that pairs them with a task.
Plain dataclasses, checked when made (a ``ConfigError`` names the field, the value and what
is allowed), with no torch import: ``toybook list`` and the presets read them without
loading torch or TransformerLens.

``toybook train NAME`` runs preset ``NAME``; the shipped checkpoint of the same name was
made with it (its sidecar records the exact configs). Each task folder's ``presets``
module defines its presets as module constants and lists them in ``PRESETS``;
:func:`toybook.registry.presets` collects them, in task order. Every preset is shipped.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from toybook.config_checks import check_choice, check_integer, check_number, config_from_dict
from toybook.errors import ConfigError

if TYPE_CHECKING:
    from transformer_lens.config import TransformerBridgeConfig

    from toybook.task import Task

NORMALIZATIONS = ("LN", "LNPre", "RMS", "RMSPre", None)
POSITIONAL_EMBEDDINGS = ("standard", "rotary", "shortformer")
ACTIVATIONS = ("relu", "gelu", "gelu_new", "silu", "solu_ln")  # TransformerLens' native MLP


@dataclass(frozen=True)
class ModelConfig:
    """The architecture of a toy transformer (maps onto ``TransformerBridgeConfig``)."""

    n_layers: int
    n_heads: int
    d_model: int
    d_head: int
    d_vocab: int  # input tokens
    d_vocab_out: int  # logits per position
    n_ctx: int  # longest sequence
    d_mlp: int | None = None  # None: attention-only
    act_fn: str = "relu"  # MLP activation: relu, gelu, solu_ln, ...
    normalization_type: str | None = "LN"  # LN, LNPre, RMS, RMSPre or None
    positional_embedding_type: str = "standard"  # standard, rotary or shortformer
    use_biases: bool = True  # False: every bias is zero and frozen

    def __post_init__(self) -> None:
        for field in ("n_layers", "n_heads", "d_model", "d_head", "d_vocab", "d_vocab_out", "n_ctx"):
            check_integer("ModelConfig", field, getattr(self, field), minimum=1)
        check_integer("ModelConfig", "d_mlp", self.d_mlp, minimum=1, optional=True)
        check_choice("ModelConfig", "act_fn", self.act_fn, ACTIVATIONS)
        check_choice("ModelConfig", "normalization_type", self.normalization_type, NORMALIZATIONS)
        check_choice(
            "ModelConfig", "positional_embedding_type", self.positional_embedding_type,
            POSITIONAL_EMBEDDINGS,
        )
        check_choice("ModelConfig", "use_biases", self.use_biases, (True, False))

    @property
    def attn_only(self) -> bool:
        return self.d_mlp is None

    @property
    def shortformer(self) -> bool:
        return self.positional_embedding_type == "shortformer"

    @classmethod
    def for_task(cls, task: "Task", **architecture: Any) -> "ModelConfig":
        """A config with the task's vocabulary sizes and context length filled in."""
        return cls(
            d_vocab=task.d_vocab, d_vocab_out=task.d_vocab_out, n_ctx=task.n_ctx, **architecture
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ModelConfig":
        return config_from_dict(cls, values)

    def bridge_config(self, seed: int) -> "TransformerBridgeConfig":
        from transformer_lens.config import TransformerBridgeConfig

        return TransformerBridgeConfig(
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            d_model=self.d_model,
            d_head=self.d_head,
            d_mlp=self.d_mlp,
            d_vocab=self.d_vocab,
            d_vocab_out=self.d_vocab_out,
            n_ctx=self.n_ctx,
            act_fn=self.act_fn,
            attn_only=self.attn_only,
            normalization_type=self.normalization_type,
            positional_embedding_type=("standard" if self.shortformer
                                       else self.positional_embedding_type),
            seed=seed,
        )


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


@dataclass(frozen=True)
class Preset:
    """Everything needed to train one named model."""

    name: str  # the checkpoint it produces, e.g. the task's name or a variant of it
    task: Task
    model: ModelConfig
    train: TrainConfig
    summary: str  # one line for `toybook list`


__all__ = ["ACTIVATIONS", "NORMALIZATIONS", "POSITIONAL_EMBEDDINGS", "ModelConfig", "Preset",
           "TrainConfig"]
