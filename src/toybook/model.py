"""Model configuration and construction on transformer-lens 4's ``TransformerBridge``.

``build_model`` turns a :class:`ModelConfig` into a randomly initialised
``TransformerBridge.boot_native`` model whose hooks (``blocks.0.attn.hook_pattern``,
``run_with_cache``, ``run_with_hooks``) and weight views (``W_Q``, ``OV``, ``QK``) work
as in TransformerLens. Two additions of ours:

- ``use_biases=False`` zeroes every bias and freezes it (several seed models have none);
- ``positional_embedding_type="shortformer"``: the learned positions are added to the
  input of every attention layer's queries and keys, never to the residual stream (so
  never to the values), as in the list-update reference model. TransformerLens 4 has no
  such mode; permanent hooks build it, one on the positions and two per layer (see
  :func:`add_shortformer_hooks`), so ``run_with_cache``, ``run_with_hooks`` and the
  weight views work unchanged;
- every forward call checks its input first, so an out-of-range token or an over-long
  sequence raises :class:`~toybook.errors.InvalidTokensError` instead of an
  ``IndexError`` from inside an embedding.

Shapes: B batch, T sequence length, V ``d_vocab_out``.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Iterator

import torch
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from toybook.configs import ACTIVATIONS, ModelConfig  # noqa: F401  (re-exported)
from toybook.errors import ConfigError, InvalidTokensError, WrongModelError
from toybook.resources import check_device
from toybook.tokens import check_token_tensor

if TYPE_CHECKING:
    from toybook.task import Task

def build_model(
    config: ModelConfig, seed: int = 0, device: str | torch.device = "cpu"
) -> TransformerBridge:
    """A freshly initialised model; the same seed gives the same weights."""
    check_device(device)
    model = TransformerBridge.boot_native(config.bridge_config(seed), device=device)
    if not config.use_biases:
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name.endswith("bias"):
                    param.zero_()
                    param.requires_grad_(False)
    if config.shortformer:
        add_shortformer_hooks(model, config.n_layers)
    check = _input_check(model, config)
    model.register_forward_pre_hook(check, with_kwargs=True)
    model.embed.register_forward_pre_hook(check, with_kwargs=True)  # run_with_cache/hooks
    model.register_forward_hook(_forget_checked, always_call=True)
    model.toybook_checked = None
    model.toybook_config = config
    model.toybook_task = None  # set by attach_task: then every token is checked in its slot
    model.toybook_check_format = True
    return model


def copy_to(model: TransformerBridge, device: str | torch.device) -> TransformerBridge:
    """A copy of ``model`` on ``device``, built from its config: the same weights, task,
    format check and (shortformer) hooks, in eval mode."""
    copy = build_model(model.toybook_config, device=device)
    copy.load_state_dict({name: value.to(device) for name, value in model.state_dict().items()})
    copy.eval()
    copy.toybook_task, copy.toybook_check_format = model.toybook_task, model.toybook_check_format
    return copy


def cpu_copy(model: TransformerBridge) -> TransformerBridge:
    """``model`` itself where it is on the CPU, else :func:`copy_to` the CPU (for analysis
    code that builds its inputs on the CPU)."""
    return model if next(model.parameters()).device.type == "cpu" else copy_to(model, "cpu")


def add_shortformer_hooks(model: TransformerBridge, n_layers: int) -> None:
    """Make ``model``'s positions shortformer positions, with permanent hooks (they survive
    ``reset_hooks``): ``hook_pos_embed`` contributes zero to the residual stream, and
    ``W_pos[:T]`` is added to the input of each layer's query and key projections (not to
    the value projection's). Gradients reach ``W_pos`` through the queries and keys."""
    def nothing(positions: Tensor, hook: Any = None) -> Tensor:
        return torch.zeros_like(positions)

    def with_positions(x: Tensor, hook: Any = None) -> Tensor:
        return x + model.W_pos[: x.shape[-2]]

    model.add_hook("hook_pos_embed", nothing, is_permanent=True)
    for layer in range(n_layers):
        for side in ("q", "k"):
            model.add_hook(f"blocks.{layer}.attn.{side}.hook_in", with_positions, is_permanent=True)


def attach_task(model: TransformerBridge, task: "Task") -> TransformerBridge:
    """From now on ``model`` refuses tokens that cannot stand in their slot of ``task``'s
    format (a value where a separator belongs, a separator where a value belongs, ``idx``
    out of range), naming row, position, slot and what is allowed. A prefix of a
    well-formed sequence stays legal. Loaded and trained models have their task attached;
    :func:`off_format` lifts the check for research on off-format inputs."""
    check_compatible(task, model.toybook_config)
    model.toybook_task = task
    return model


@contextlib.contextmanager
def off_format(model: TransformerBridge) -> Iterator[TransformerBridge]:
    """Inside ``with toybook.off_format(model):`` the model accepts tokens that break its
    task's format (still only token ids in its vocabulary, at most ``n_ctx`` of them):
    for experiments on inputs the model never saw. Outside it, such input is refused."""
    before = model.toybook_check_format
    model.toybook_check_format = False
    try:
        yield model
    finally:
        model.toybook_check_format = before


def _input_check(model: TransformerBridge, config: ModelConfig):
    """The check of a forward pass's input, on the model and on its embedding (which
    ``run_with_cache`` and ``run_with_hooks`` reach first); within one call of the model,
    the embedding does not check again the tensor the model just checked."""
    def check(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        tokens = args[0] if args else kwargs.get("input", kwargs.get("input_ids"))
        if module is not model and tokens is model.toybook_checked:
            return
        if isinstance(tokens, torch.Tensor) and tokens.is_floating_point() and tokens.ndim == 3:
            if tokens.shape[0] == 0 or not 1 <= tokens.shape[1] <= config.n_ctx or tokens.shape[2] != config.d_model:
                raise InvalidTokensError(
                    f"model input: a residual stream passed in must have shape [batch ≥ 1, "
                    f"1..{config.n_ctx}, d_model={config.d_model}], got {tuple(tokens.shape)}"
                )
            return  # a residual stream passed in directly (e.g. start_at_layer)
        check_token_tensor(tokens, "model input", config.d_vocab, config.n_ctx, exact_length=False)
        if model.toybook_task is not None and model.toybook_check_format:
            model.toybook_task.validate(tokens, prefix=True)
        if module is model:
            model.toybook_checked = tokens

    return check


def _forget_checked(model: torch.nn.Module, args: tuple, output: Any) -> None:
    """After each call of the model, even one that raised: its input may be changed in place
    before the next."""
    model.toybook_checked = None


TOKEN_FORMAT = ("d_vocab", "d_vocab_out", "n_ctx")  # what ties a model to a task's tokens


def token_format(task: Task) -> dict[str, int]:
    """The vocabularies and context a model of ``task`` has."""
    return {name: getattr(task, name) for name in TOKEN_FORMAT}


def check_compatible(task: Task, config: ModelConfig) -> None:
    """The model's vocabulary and context must fit the task's token format."""
    for name, value in token_format(task).items():
        if getattr(config, name) != value:
            raise ConfigError(
                f"model config {name}={getattr(config, name)} does not match task "
                f"{task.name!r}, which needs {name}={value}"
            )


def _shape(model: torch.nn.Module) -> dict[str, Any] | None:
    """The token-format side of a model's config (vocabularies and context), from its
    toybook config or its TransformerLens ``cfg``; ``None`` for a module with neither."""
    config = getattr(model, "toybook_config", None) or getattr(model, "cfg", None)
    if config is None:
        return None
    return {name: getattr(config, name, None) for name in TOKEN_FORMAT}


def check_model_fits(owner: str, model: Any, task: Task, config: ModelConfig | None = None) -> None:
    """Refuse, by name, a model that was not made for ``task`` (another task's vocabulary or
    context, or another task attached), or, where ``config`` is given, whose architecture
    (layers, heads, whether it has MLPs) differs from it, so that hooks the caller reads exist.
    Positions may differ (a shortformer model has the same hooks). The message says which
    task the model does fit."""
    from toybook.registry import get_task, list_tasks

    if not isinstance(model, torch.nn.Module):
        raise WrongModelError(f"{owner}: expected a model (a torch.nn.Module such as "
                              f"toybook.load_model returns), got {type(model).__name__}")
    attached, shape = getattr(model, "toybook_task", None), _shape(model)
    needed = token_format(task)
    other_task = attached is not None and (attached.name, attached.slots) != (task.name, task.slots)
    if (shape is not None and shape != needed) or other_task:
        if attached is not None:
            fits = f"it is a model of task {attached.name!r}"
        else:
            names = [name for name in list_tasks() if token_format(get_task(name)) == shape]
            fits = (f"it fits task {' or '.join(map(repr, names))}" if names
                    else "it fits no registered task")
        got = ", ".join(f"{key}={value}" for key, value in (shape or {}).items())
        raise WrongModelError(
            f"{owner}: the model ({got}) was not made for task {task.name!r}, which needs "
            f"{', '.join(f'{key}={value}' for key, value in needed.items())}; {fits}"
        )
    made = getattr(model, "toybook_config", None)
    if config is not None and made is not None:
        differ = {key: (value(made), value(config)) for key, value in _ARCHITECTURE.items()
                  if value(made) != value(config)}
        if differ:
            raise WrongModelError(
                f"{owner}: the model's architecture is not the one these measurements read: "
                + ", ".join(f"{key} {got!r} (needs {want!r})" for key, (got, want) in differ.items())
            )


_ARCHITECTURE = {  # what decides which hooks and weights a measurement can read
    "n_layers": lambda config: config.n_layers,
    "n_heads": lambda config: config.n_heads,
    "MLPs": lambda config: config.d_mlp is not None,
}


def trainable_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [param for param in model.parameters() if param.requires_grad]


def count_parameters(model: torch.nn.Module) -> int:
    """Trainable parameters (frozen zero biases excluded)."""
    return sum(param.numel() for param in trainable_parameters(model))
