"""The shipped models as ONNX graphs, so that the book's "try it" widget runs them in the
reader's browser (onnxruntime-web) with no kernel and no server.

:class:`ScaledForward` is a model's forward pass written out from its weights, with two
extra inputs that switch components off: a scale per head, multiplying the head's output
before ``W_O`` (TransformerLens' ``hook_z``), and a scale per MLP, multiplying the MLP's
output (``hook_mlp_out``). A scale of 1 leaves the model as trained; 0 is the zero-ablation
of :mod:`toybook.analysis.ablation`. It returns the logits and every layer's attention
pattern, the two things the widget shows. Tests hold it to the model itself (logits,
patterns and ablations).

:func:`export_onnx` writes one model's graph with ``torch.onnx`` (the dynamo exporter). The
graph keeps the weights in float32 and computes in float64: in float32, WebAssembly's
kernels sum in another order than the CPU's and drifted 1.7e-5 from torch in the adder's
second-layer attention, where in float64 the only difference left is torch's own float32
rounding (tests/test_try_it.py). :func:`export_shipped` exports one graph per architecture
and puts each other model's weights into it (:func:`with_weights`): the same outputs as
exporting each model, in a quarter of the time.

Exporting needs ``onnx`` and ``onnxscript`` (``pip install 'toybook[book]'``).

Shapes: B batch, T ``n_ctx``, L layers, H heads, V ``d_vocab_out``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from toybook.errors import ToybookError

OPSET = 18
INPUTS = ("tokens", "head_scale", "mlp_scale")
OUTPUTS = ("logits", "pattern")


class ScaledForward(torch.nn.Module):
    """``model``'s forward pass from its weights (``[B, T]`` tokens →
    ``logits [B, T, V]``, ``pattern [B, L, H, T, T]``, both float32), with ``head_scale
    [L, H]`` and, for models with MLPs, ``mlp_scale [L]`` multiplying each component's
    output; computed in ``dtype``."""

    def __init__(self, model: torch.nn.Module, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.dtype = dtype
        config = model.toybook_config
        self.n_layers, self.n_heads, self.d_head = config.n_layers, config.n_heads, config.d_head
        self.shortformer, self.has_mlp = config.shortformer, not config.attn_only
        self.norm = config.normalization_type
        if self.norm not in (None, "LN"):
            raise ToybookError(f"export: normalization {self.norm!r} is not supported (LN or None)")
        if config.act_fn not in ("relu", "solu_ln", "gelu"):
            raise ToybookError(f"export: activation {config.act_fn!r} is not supported")
        self.act_fn, self.eps = config.act_fn, float(model.cfg.eps)
        for name, value in model.state_dict().items():
            self.register_buffer(name.replace(".", "__"), value.detach().float().clone())

    def weight(self, name: str) -> Tensor:
        return getattr(self, name.replace(".", "__")).to(self.dtype)

    def layer_norm(self, x: Tensor, name: str) -> Tensor:
        if self.norm is None and not name.endswith("mlp.ln"):
            return x
        return torch.nn.functional.layer_norm(
            x, x.shape[-1:], self.weight(f"{name}.weight"), self.weight(f"{name}.bias"), self.eps
        )

    def linear(self, x: Tensor, name: str) -> Tensor:
        return torch.nn.functional.linear(x, self.weight(f"{name}.weight"), self.weight(f"{name}.bias"))

    def forward(self, tokens: Tensor, head_scale: Tensor, mlp_scale: Tensor | None = None):
        batch, seq = tokens.shape
        positions = self.weight("pos_embed.weight")[:seq]
        residual = self.weight("embed.weight")[tokens]
        if not self.shortformer:
            residual = residual + positions
        causal = torch.ones(seq, seq, dtype=torch.bool).triu(1)
        head_scale = head_scale.to(self.dtype)
        mlp_scale = None if mlp_scale is None else mlp_scale.to(self.dtype)
        patterns = []
        for layer in range(self.n_layers):
            block = f"blocks.{layer}"
            x = self.layer_norm(residual, f"{block}.ln1")
            qk_in = x + positions if self.shortformer else x
            split = lambda y: y.view(batch, seq, self.n_heads, self.d_head).transpose(1, 2)  # noqa: E731
            q = split(self.linear(qk_in, f"{block}.attn.q"))
            k = split(self.linear(qk_in, f"{block}.attn.k"))
            v = split(self.linear(x, f"{block}.attn.v"))
            scores = (q @ k.transpose(-2, -1) / math.sqrt(self.d_head)).masked_fill(causal, float("-inf"))
            pattern = scores.softmax(-1)
            patterns.append(pattern)
            z = (pattern @ v) * head_scale[layer][None, :, None, None]
            residual = residual + self.linear(z.transpose(1, 2).reshape(batch, seq, -1), f"{block}.attn.o")
            if self.has_mlp:
                hidden = self.linear(self.layer_norm(residual, f"{block}.ln2"), f"{block}.mlp.in")
                if self.act_fn == "relu":
                    hidden = hidden.relu()
                elif self.act_fn == "gelu":
                    hidden = torch.nn.functional.gelu(hidden)
                else:
                    hidden = self.layer_norm(hidden * hidden.softmax(-1), f"{block}.mlp.ln")
                residual = residual + self.linear(hidden, f"{block}.mlp.out") * mlp_scale[layer]
        logits = self.linear(self.layer_norm(residual, "ln_final"), "unembed")
        return logits.float(), torch.stack(patterns, 1).float()


def scales(model: torch.nn.Module, off: tuple[str, ...] = ()) -> dict[str, Tensor]:
    """The scale inputs that leave ``model`` whole, except the components named in ``off``
    (``"L1H0"``, ``"MLP0"``), which are zeroed."""
    config = model.toybook_config
    head = torch.ones(config.n_layers, config.n_heads)
    mlp = torch.ones(config.n_layers)
    for name in off:
        found = re.fullmatch(r"L(\d+)H(\d+)|MLP(\d+)", name) if isinstance(name, str) else None
        layer = found and int(found[1] or found[3])
        if found and found[1] and layer < config.n_layers and int(found[2]) < config.n_heads:
            head[layer, int(found[2])] = 0
        elif found and found[3] and not config.attn_only and layer < config.n_layers:
            mlp[layer] = 0
        else:
            raise ToybookError(
                f"no component {name!r} in this model: heads are L0H0..L{config.n_layers - 1}"
                f"H{config.n_heads - 1}" + ("" if config.attn_only else f", MLPs MLP0..MLP{config.n_layers - 1}")
            )
    return {"head_scale": head, **({} if config.attn_only else {"mlp_scale": mlp})}


def export_onnx(model: torch.nn.Module, path: str | Path) -> Path:
    """Write ``model`` as an ONNX graph at ``path`` (inputs ``tokens`` int64 ``[B, T]``,
    ``head_scale`` and, with MLPs, ``mlp_scale``; outputs ``logits`` and ``pattern``)."""
    import onnx

    module = ScaledForward(model, torch.float64).eval()
    config = model.toybook_config
    tokens = torch.zeros(2, config.n_ctx, dtype=torch.long)
    args = (tokens, *scales(model).values())
    names = list(INPUTS[: len(args)])
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    dynamic = {"tokens": {0: batch}, "head_scale": None, **({"mlp_scale": None} if len(args) == 3 else {})}
    program = torch.onnx.export(
        module, args, dynamo=True, input_names=names, output_names=list(OUTPUTS),
        dynamic_shapes=dynamic, opset_version=OPSET, verbose=False, optimize=False,
    )
    proto = program.model_proto
    proto.doc_string = f"toybook model {getattr(model, 'toybook_name', '')}".strip()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(proto, str(path))
    return path


def architecture_key(model: torch.nn.Module) -> str:
    """What decides a graph's shape: two models with the same key share a graph."""
    config = model.toybook_config.to_dict()
    return repr(sorted((key, value) for key, value in config.items()))


def with_weights(template: Any, model: torch.nn.Module) -> Any:
    """A copy of the ONNX ``template`` (exported from a model of the same architecture)
    holding ``model``'s weights: each initializer that is one of the template model's
    weights is replaced by the same weight of ``model``."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.ModelProto()
    proto.CopyFrom(template)
    weights = {name.replace(".", "__"): value.detach().float().numpy()
               for name, value in model.state_dict().items()}
    replaced = set()
    for index, init in enumerate(proto.graph.initializer):
        if init.name in weights:
            proto.graph.initializer[index].CopyFrom(numpy_helper.from_array(weights[init.name], init.name))
            replaced.add(init.name)
    missing = set(weights) - replaced
    if missing:
        raise ToybookError(f"export: the template graph does not hold weights {sorted(missing)[:4]}; "
                           "export this model itself")
    return proto


def export_shipped(folder: str | Path, names: list[str] | None = None) -> dict[str, int]:
    """Every shipped model (or those in ``names``) as ``folder/NAME.onnx``; returns each
    file's size in bytes. One export per architecture, the other models' weights put in."""
    import onnx

    from toybook.zoo import load_model, shipped_names

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    templates: dict[str, Any] = {}
    sizes = {}
    for name in names or shipped_names():
        model = load_model(name)
        path = folder / f"{name}.onnx"
        key = architecture_key(model)
        if key in templates:
            onnx.save_model(with_weights(templates[key], model), str(path))
        else:
            export_onnx(model, path)
            templates[key] = onnx.load(str(path))
        sizes[name] = path.stat().st_size
    return sizes
