"""Bad input, in one table: each row is something a user could pass (to the model, a task,
a config, a checkpoint file, the command line), the error class it must get and words its
message must contain. Every row also checks that nothing was written or lost: the package
(with its shipped checkpoints) and the test's own folder are compared byte for byte before
and after.

Also here: tokens that cannot stand in their slot are refused by every shipped model;
prefixes stay legal; `toybook.off_format` is the explicit way to run off-format input.
The live server's bad requests are in test_live.py (they need real HTTP)."""

import hashlib
import json
import shutil
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch

import toybook
from toybook import evaluation, measurement
from toybook.analysis import ablation, patching
from toybook.claims import check_claims
from toybook.checkpoint import checkpoint_files
from toybook.cli import parser
from toybook.tables import Table
from toybook.errors import (
    CheckpointError, ConfigError, InvalidTokensError, TooLargeError, ToybookError, UnknownModelError,
    UnknownTaskError, WrongModelError,
)
from toybook.scale import RayOptions
from toybook.tasks.max_of_2.hypotheses import readings as max_of_2_readings
from toybook.training import TrainConfig
from toybook.verify import verify
from toybook.zoo import SHIPPED_DIR

LIST_UPDATE = toybook.get_task("list_update")
MAX_OF_2 = toybook.get_task("max_of_2")
TINY = toybook.ModelConfig.for_task(LIST_UPDATE, n_layers=1, n_heads=1, d_model=16, d_head=16, normalization_type=None, use_biases=False)
ARCH = dict(n_layers=1, n_heads=1, d_model=8, d_head=8)


@dataclass
class Where:
    """What a row may use: a folder of its own and a small saved checkpoint in it."""

    folder: Path
    checkpoint: Path  # dir/NAME of a max_of_2-shaped checkpoint

    def edit_sidecar(self, change):
        sidecar = checkpoint_files(self.checkpoint)[1]
        metadata = json.loads(sidecar.read_text())
        change(metadata)
        sidecar.write_text(json.dumps(metadata))


@dataclass
class Case:
    name: str
    action: Callable[[Where], object]
    error: type
    words: str
    prepare: Callable[[Where], None] | None = None


def model_call(tokens):
    return lambda where: toybook.build_model(TINY)(tokens)


def config(**change):
    return lambda where: toybook.ModelConfig.for_task(LIST_UPDATE, **{**ARCH, **change})


def command(*args):
    """The command's own function, so the error class is visible (main prints it as one line)."""
    def run(where):
        parsed = parser().parse_args([arg.format(folder=where.folder, checkpoint=where.checkpoint) for arg in args])
        return parsed.command(parsed)
    return run


def flip_a_weight_byte(where):
    weights = checkpoint_files(where.checkpoint)[0]
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))


def checkpoint_named(name):
    """A checkpoint already saved as ``name`` in the row's folder (a copy of the tiny one)."""
    def prepare(where):
        for suffix in (".json", ".safetensors"):
            shutil.copyfile(where.checkpoint.with_suffix(suffix), where.folder / f"{name}{suffix}")
    return prepare


def block_the_folder(where):
    (where.folder / "a-file").write_text("")


def without_ray(action):
    """``action`` where ``import ray`` fails, as where the extra is not installed."""
    def run(where):
        saved = sys.modules.get("ray")
        sys.modules["ray"] = None
        try:
            return action(where)
        finally:
            if saved is None:
                del sys.modules["ray"]
            else:
                sys.modules["ray"] = saved
    return run


def a_check_with_shards_of(size):
    """A finished ``toybook verify max_of_2`` in the row's folder (check.jsonl)."""
    return lambda where: verify("max_of_2", where.folder / "check.jsonl", shard_size=size, log=lambda line: None)


CASES = [
    # the model: tokens of the wrong type, shape, length or range
    Case("out of vocabulary", model_call(torch.tensor([[50, 1, 2, 3, 51, 0, 9, 51, 9, 2, 99]])), InvalidTokensError, "token 99 at [row 0, position 10] is out of range; the vocabulary is 0..51"),
    Case("negative token", model_call(torch.tensor([[-1, 1, 2]])), InvalidTokensError, "token -1 at [row 0, position 0] is out of range"),
    Case("one sequence without a batch", model_call(torch.tensor([50, 1, 2])), InvalidTokensError, "use tokens.unsqueeze(0) for a single sequence"),
    Case("too long", model_call(torch.zeros(1, 12, dtype=torch.long)), InvalidTokensError, "sequences have at most 11 tokens (n_ctx), got length 12"),
    Case("float tokens", model_call(torch.zeros(1, 11)), InvalidTokensError, "tokens must have an integer dtype, torch.long (or torch.int32), got torch.float32"),
    Case("uint8 tokens", model_call(torch.zeros(1, 11, dtype=torch.uint8)), InvalidTokensError, "got torch.uint8"),
    Case("bool tokens", model_call(torch.zeros(1, 11, dtype=torch.bool)), InvalidTokensError, "got torch.bool"),
    Case("a list, not a tensor", model_call([[50, 1]]), InvalidTokensError, "tokens must be a torch.Tensor of token ids, got list"),
    Case("empty batch", model_call(torch.zeros(0, 11, dtype=torch.long)), InvalidTokensError, "the batch is empty (shape (0, 11)); pass at least one sequence"),
    Case("empty sequences", model_call(torch.zeros(2, 0, dtype=torch.long)), InvalidTokensError, "sequences are empty (length 0); a sequence has 1..11 tokens"),
    Case("3-D float of the wrong width", model_call(torch.zeros(2, 11, 7)), InvalidTokensError, "a residual stream passed in must have shape [batch ≥ 1, 1..11, d_model=16], got (2, 11, 7)"),
    Case("3-D float, empty batch", model_call(torch.zeros(0, 11, 16)), InvalidTokensError, "got (0, 11, 16)"),
    Case("separator slot of a loaded model", lambda w: toybook.load_model("max_of_2")(torch.tensor([[3, 4, 5]])), InvalidTokensError, "position 2 (=) must be = (token 64), but row 0 has 5"),
    # tasks, evaluation, names
    Case("generate(-3)", lambda w: LIST_UPDATE.generate(-3), ToybookError, "list_update.generate: n must be a positive integer, got -3"),
    Case("generate(0)", lambda w: LIST_UPDATE.generate(0), ToybookError, "n must be a positive integer, got 0"),
    Case("generate(2.5)", lambda w: LIST_UPDATE.generate(2.5), ToybookError, "n must be a positive integer, got 2.5"),
    Case("negative seed", lambda w: LIST_UPDATE.generate(4, seed=-1), ToybookError, "seed must be an integer ≥ 0 or a torch.Generator, got -1"),
    Case("evaluate on no inputs", lambda w: toybook.evaluate(toybook.build_model(TINY), LIST_UPDATE, LIST_UPDATE.generate(4)[:0]), InvalidTokensError, "the batch is empty"),
    Case("validate a wrong-length batch", lambda w: LIST_UPDATE.validate(LIST_UPDATE.generate(2)[:, :5]), InvalidTokensError, "sequences have 11 tokens, got length 5"),
    Case("unknown task", lambda w: toybook.get_task("max_of_3"), UnknownTaskError, "unknown task 'max_of_3'; the tasks are: list_update, addition, majority, max_of_2"),
    Case("unknown model", lambda w: toybook.load_model("max_of_3"), UnknownModelError, "no shipped model 'max_of_3'"),
    Case("batch size 0", lambda w: toybook.evaluate(toybook.load_model("max_of_2"), MAX_OF_2, MAX_OF_2.all_inputs(), batch_size=0), ToybookError, "evaluate.batch_size must be an integer ≥ 1 or None, got 0"),
    Case("batch size -1", lambda w: toybook.evaluate(toybook.load_model("max_of_2"), MAX_OF_2, MAX_OF_2.all_inputs(), batch_size=-1), ToybookError, "got -1"),
    Case("batch size 2.5", lambda w: toybook.evaluate(toybook.load_model("max_of_2"), MAX_OF_2, MAX_OF_2.all_inputs(), batch_size=2.5), ToybookError, "got 2.5"),
    Case("exhaustive batch size -1", lambda w: __import__("toybook.evaluation").evaluation.evaluate_exhaustively(toybook.load_model("max_of_2"), MAX_OF_2, batch_size=-1), ToybookError, "evaluate_exhaustively.batch_size must be an integer ≥ 1 or None, got -1"),
    Case("exhaustive batch size 0, plain", lambda w: __import__("toybook.evaluation").evaluation.evaluate_exhaustively(toybook.load_model("max_of_2"), MAX_OF_2, batch_size=0, method="plain"), ToybookError, "got 0"),
    Case("hard attention, query position past the sequence", lambda w: __import__("toybook.analysis").analysis.run_with_hard_attention(toybook.load_model("max_of_2"), MAX_OF_2.all_inputs()[:4], 5, torch.zeros(4, dtype=torch.long)), ToybookError, "query position 5 is outside the sequence: positions are 0..2"),
    Case("hard attention, fewer key rows than sequences", lambda w: __import__("toybook.analysis").analysis.run_with_hard_attention(toybook.load_model("max_of_2"), MAX_OF_2.all_inputs()[:4], 2, torch.zeros(3, dtype=torch.long)), ToybookError, "3 rows of key positions for 4 sequences"),
    Case("hard attention, a key after its query", lambda w: __import__("toybook.analysis").analysis.run_with_hard_attention(toybook.load_model("max_of_2"), MAX_OF_2.all_inputs()[:4], 1, torch.full((4,), 2)), ToybookError, "can attend only to positions 0..1 (attention is causal); got key position 2"),
    Case("hard attention, float key positions", lambda w: __import__("toybook.analysis").analysis.run_with_hard_attention(toybook.load_model("max_of_2"), MAX_OF_2.all_inputs()[:4], 2, torch.zeros(4)), ToybookError, "key_pos must be integer positions"),
    Case("hard attention, no such head", lambda w: __import__("toybook.analysis").analysis.run_with_hard_attention(toybook.load_model("max_of_2"), MAX_OF_2.all_inputs()[:4], 2, torch.zeros(4, dtype=torch.long), head=1), ToybookError, "head 1 does not exist: the model has heads 0..0"),
    Case("hard attention, wrong key shape", lambda w: __import__("toybook.analysis").analysis.run_with_hard_attention(toybook.load_model("max_of_2"), MAX_OF_2.all_inputs()[:4], [2], torch.zeros(4, 2, dtype=torch.long)), ToybookError, "2 key positions per row for 1 query positions"),
    Case("ablation, unknown hook", lambda w: __import__("toybook.analysis.ablation").analysis.ablation.mean_activation(toybook.load_model("max_of_2"), MAX_OF_2.all_inputs()[:4], "blocks.3.hook_attn_out"), ToybookError, "no activation named 'blocks.3.hook_attn_out'"),
    Case("ablation, bad replacement", lambda w: __import__("toybook.analysis.ablation").analysis.ablation.replace_hook("mean"), ToybookError, "a replacement is 'zero' or a tensor, got 'mean'"),
    Case("attribution with LayerNorm", lambda w: __import__("toybook.analysis.attribution").analysis.attribution.answer_logit_attribution(toybook.load_model("majority"), toybook.get_task("majority"), toybook.get_task("majority").generate(2)), ToybookError, "needs a model without normalization"),
    Case("patching grid, shapes differ", lambda w: __import__("toybook.analysis.patching").analysis.patching.patching_grid(toybook.load_model("max_of_2"), MAX_OF_2.all_inputs()[:4], MAX_OF_2.all_inputs()[:2], ["blocks.0.hook_attn_out"], lambda logits: logits.sum()[None]), ToybookError, "differ in shape"),
    Case("patching grid, one hook name as a string", lambda w: patching.patching_grid(toybook.load_model("max_of_2"), MAX_OF_2.all_inputs()[:4], MAX_OF_2.all_inputs()[4:8], "blocks.0.hook_attn_out", lambda logits: logits.sum()[None]), ToybookError, "hook names are a list of names, got the string 'blocks.0.hook_attn_out'"),
    Case("patching grid, one sequence not in a batch", lambda w: patching.patching_grid(toybook.load_model("max_of_2"), MAX_OF_2.all_inputs()[0], MAX_OF_2.all_inputs()[1], ["blocks.0.hook_attn_out"], lambda logits: logits.sum()[None]), ToybookError, "clean and corrupted are token batches [B, T]; got shape [3]"),
    Case("patching grid, metric returns None", lambda w: patching.patching_grid(toybook.load_model("max_of_2"), MAX_OF_2.all_inputs()[:4], MAX_OF_2.all_inputs()[4:8], ["blocks.0.hook_attn_out"], lambda logits: None), ToybookError, "metric must return a tensor (logits [B, T, V] → [M]), got NoneType"),
    Case("patch a position past the end", lambda w: patching.run_with_patches(toybook.load_model("max_of_2"), MAX_OF_2.all_inputs()[:4], [patching.Patch("blocks.0.hook_attn_out", (7,))], source=MAX_OF_2.all_inputs()[4:8]), ToybookError, "'blocks.0.hook_attn_out' has positions 0..2; got positions (7,)"),
    Case("patch a head that does not exist", lambda w: patching.run_with_patches(toybook.load_model("max_of_2"), MAX_OF_2.all_inputs()[:4], [patching.Patch("blocks.0.attn.hook_z", (1,), (3,))], source=MAX_OF_2.all_inputs()[4:8]), ToybookError, "'blocks.0.attn.hook_z' has heads 0..0; got heads (3,)"),
    Case("patch heads of an activation not per head", lambda w: patching.run_with_patches(toybook.load_model("max_of_2"), MAX_OF_2.all_inputs()[:4], [patching.Patch("blocks.0.hook_attn_out", (1,), (0,))], source=MAX_OF_2.all_inputs()[4:8]), ToybookError, "heads= applies to a per-head activation [B, T, H, d]"),
    Case("attribution with another task", lambda w: __import__("toybook.analysis.attribution").analysis.attribution.answer_logit_attribution(toybook.load_model("max_of_2"), LIST_UPDATE, MAX_OF_2.all_inputs()[:4]), ToybookError, "the task 'list_update' does not fit this model: the task has 50 answers and 11 positions, the model 64 and 3"),
    Case("mean over a dimension that does not exist", lambda w: ablation.mean_activation(toybook.load_model("max_of_2"), MAX_OF_2.all_inputs()[:4], "blocks.0.hook_attn_out", dims=(5,)), ToybookError, "dims (5,) do not fit 'blocks.0.hook_attn_out', which has 3 dimensions [4, 3, 32]"),
    Case("resample one input", lambda w: ablation.resampled_activation(toybook.load_model("max_of_2"), MAX_OF_2.all_inputs()[:1], "blocks.0.hook_attn_out"), ToybookError, "resampling needs at least 2 inputs to take activations from, got 1"),
    Case("path patching from an unknown sender", lambda w: __import__("toybook.tasks.list_update.analysis").tasks.list_update.analysis.composition_paths(toybook.load_model("list_update"), [], sender="L1"), ToybookError, "sender is one of 'L0', 'direct', got 'L1'"),
    Case("own circuit of an unknown route", lambda w: __import__("toybook.tasks.list_update.hypotheses").tasks.list_update.hypotheses.own_circuit(4, [0.0, 0.0, 0.0]), ToybookError, "route is 6 (elt) or 7 (the second NL), got 4"),
    Case("list update per-batch flag not a bool", lambda w: toybook.get_task("list_update", idx_elt_per_batch=1), ToybookError, "idx_elt_per_batch must be True or False, got 1"),
    Case("ablate an unknown hook", lambda w: ablation.run_with_ablations(toybook.load_model("max_of_2"), MAX_OF_2.all_inputs()[:4], {"blocks.7.hook_attn_out": "zero"}), ToybookError, "the model has no activation named 'blocks.7.hook_attn_out'"),
    Case("ablate with a number", lambda w: ablation.run_with_ablations(toybook.load_model("max_of_2"), MAX_OF_2.all_inputs()[:4], {"blocks.0.hook_attn_out": 0.0}), ToybookError, "a replacement is 'zero' or a tensor, got 0.0"),
    Case("ablate with a wrongly shaped tensor", lambda w: ablation.run_with_ablations(toybook.load_model("max_of_2"), MAX_OF_2.all_inputs()[:4], {"blocks.0.hook_attn_out": torch.zeros(3, 5)}), ToybookError, "a replacement of shape [3, 5] does not broadcast to 'blocks.0.hook_attn_out', shape [4, 3, 32]"),
    Case("model name not a string", lambda w: toybook.load_model({}), UnknownModelError, "a model name is a string such as one of: "),
    Case("task name not a string", lambda w: toybook.get_task(["addition"]), UnknownTaskError, "unknown task ['addition']; the tasks are: "),
    Case("claims for a name not a string", lambda w: __import__("toybook.claims").claims.claims_for(3), UnknownModelError, "no circuit claims for 3"),
    Case("preset name not a string", lambda w: toybook.get_preset(None), ToybookError, "no training preset None"),
    Case("config for another task", lambda w: toybook.train(LIST_UPDATE, toybook.ModelConfig.for_task(MAX_OF_2, **ARCH), TrainConfig(steps=1)), ConfigError, "model config d_vocab=65 does not match task 'list_update', which needs d_vocab=52"),
    # requests too large for memory, and devices that are not here
    Case("generate more than memory holds", lambda w: MAX_OF_2.generate(10**12), TooLargeError, "max_of_2.generate: 1,000,000,000,000 sequences of 3 tokens need 48 TB, more than the"),
    Case("generate on an unknown device", lambda w: MAX_OF_2.generate(3, device="tpu"), ToybookError, "unknown device 'tpu'; the devices here are cpu"),
    Case("generate on a GPU that is not here", lambda w: MAX_OF_2.generate(3, device="cuda:99"), ToybookError, "device 'cuda:99' requested but it is not available; the devices here are cpu"),
    Case("build a model on a device that is not here", lambda w: toybook.build_model(TINY, device="cuda:99"), ToybookError, "device 'cuda:99' requested but it is not available"),
    Case("load a model onto a device given as a number", lambda w: toybook.load_model("max_of_2", device=0.5), ToybookError, "a device is a name such as 'cpu' or 'cuda', got 0.5"),
    Case("an exhaustive check in one batch larger than memory", lambda w: evaluation.evaluate_exhaustively(toybook.load_model("list_update"), LIST_UPDATE, batch_size=10**9, method="plain"), TooLargeError, "forward_batches: 18,750,000 sequences of 11 tokens in one batch need"),
    Case("a training batch larger than memory", lambda w: toybook.train(LIST_UPDATE, TINY, TrainConfig(steps=1, batch_size=10**12), progress=False), TooLargeError, "train: the training batch: 1,000,000,000,000 sequences of 11 tokens in one batch need"),
    Case("a held-out evaluation larger than memory", lambda w: toybook.train(LIST_UPDATE, TINY, TrainConfig(steps=1, eval_size=10**12), progress=False), TooLargeError, "train: the held-out evaluation (eval_size): 1,000,000,000,000 sequences"),
    Case("a measurement larger than memory", lambda w: measurement.measure(toybook.load_model("majority"), toybook.get_task("majority"), n=10**12), TooLargeError, "measure: 1,000,000,000,000 sequences of 128 tokens need"),
    Case("eval --n larger than memory", command("eval", "addition", "--n", "1000000000000"), TooLargeError, "sequences of 18 tokens need"),
    Case("resampling order larger than memory", lambda w: ablation.resample_order(10**13), TooLargeError, "resample_order: 10,000,000,000,000 rows need"),
    # a model handed to another task's (or another architecture's) checks
    Case("claims of another task's model", lambda w: check_claims("list_update", toybook.load_model("max_of_2")), WrongModelError, "check_claims('list_update'): the model (d_vocab=65, d_vocab_out=64, n_ctx=3) was not made for task 'list_update', which needs d_vocab=52, d_vocab_out=50, n_ctx=11; it is a model of task 'max_of_2'"),
    Case("claims of a seed name, another task's model", lambda w: check_claims("majority_s2", toybook.load_model("max_of_2")), WrongModelError, "was not made for task 'majority'"),
    Case("claims of a bare model of another task", lambda w: check_claims("max_of_2", toybook.build_model(TINY)), WrongModelError, "was not made for task 'max_of_2', which needs d_vocab=65, d_vocab_out=64, n_ctx=3; it fits task 'list_update'"),
    Case("claims of another architecture", lambda w: check_claims("addition_1l", toybook.load_model("addition")), WrongModelError, "check_claims('addition_1l'): the model's architecture is not the one these measurements read: n_layers 2 (needs 1)"),
    Case("claims of an attention-only preset on a model with MLPs", lambda w: check_claims("max_of_2", toybook.build_model(toybook.ModelConfig.for_task(MAX_OF_2, **ARCH, d_mlp=16))), WrongModelError, "MLPs True (needs False)"),
    Case("claims of something not a model", lambda w: check_claims("max_of_2", "max_of_2"), WrongModelError, "expected a model (a torch.nn.Module such as toybook.load_model returns), got str"),
    Case("an attention view given a model instead of its patterns", lambda w: __import__("toybook.attention_view").attention_view.attention_heads(toybook.load_model("max_of_2"), ["a", "b", "="]), ToybookError, "patterns must be attention weights [heads, n, n] (a tensor, e.g. cache['blocks.0.attn.hook_pattern'][0]), got TransformerBridge"),
    Case("the max-of-2 bound of another task's model", lambda w: __import__("toybook.tasks.max_of_2.bound").tasks.max_of_2.bound.max_of_2_bound(toybook.load_model("list_update")), ToybookError, "needs a 1-layer attention-only model"),
    Case("evaluate another task's model", lambda w: toybook.evaluate(toybook.load_model("max_of_2"), LIST_UPDATE, LIST_UPDATE.generate(2)), WrongModelError, "evaluate: the model (d_vocab=65, d_vocab_out=64, n_ctx=3) was not made for task 'list_update'"),
    Case("evaluate exhaustively another task's model", lambda w: evaluation.evaluate_exhaustively(toybook.load_model("list_update"), MAX_OF_2), WrongModelError, "evaluate_exhaustively: the model (d_vocab=52, d_vocab_out=50, n_ctx=11) was not made for task 'max_of_2'"),
    Case("measure another task's model", lambda w: measurement.measure(toybook.load_model("max_of_2"), toybook.get_task("majority"), n=10), WrongModelError, "measure: the model (d_vocab=65, d_vocab_out=64, n_ctx=3) was not made for task 'majority'"),
    Case("measure a model of the task with other parameters", lambda w: measurement.measure(toybook.load_model("addition"), toybook.get_task("addition", n_digits=3), n=10), WrongModelError, "was not made for task 'addition'"),
    Case("a reading measured on another task's model", lambda w: __import__("toybook.analysis.faithfulness").analysis.faithfulness.faithfulness(toybook.load_model("list_update"), MAX_OF_2, max_of_2_readings()[0]), WrongModelError, "the reading 'copies_the_larger': the model (d_vocab=52"),
    Case("a faithfulness report of another task's model", lambda w: toybook.faithfulness_report("max_of_2", toybook.load_model("list_update")), WrongModelError, "faithfulness_report('max_of_2'): the model (d_vocab=52"),
    Case("a faithfulness report of a model with no readings", lambda w: toybook.faithfulness_report("nonesuch"), UnknownModelError, "no readings for 'nonesuch'; readings exist for: list_update, "),
    Case("a faithfulness baseline of -1 draws", lambda w: __import__("toybook.analysis.faithfulness").analysis.faithfulness.faithfulness(toybook.load_model("max_of_2"), MAX_OF_2, max_of_2_readings()[0], n_random=-1), ToybookError, "faithfulness.n_random must be an integer ≥ 0, got -1"),
    # model configs
    Case("normalization BN", config(normalization_type="BN"), ConfigError, "ModelConfig.normalization_type must be one of ('LN', 'LNPre', 'RMS', 'RMSPre', None), got 'BN'"),
    Case("d_model 0", config(d_model=0), ConfigError, "ModelConfig.d_model must be an integer ≥ 1, got 0"),
    Case("n_heads 2.0", config(n_heads=2.0), ConfigError, "ModelConfig.n_heads must be an integer ≥ 1, got 2.0"),
    Case("n_layers True", config(n_layers=True), ConfigError, "ModelConfig.n_layers must be an integer ≥ 1, got True"),
    Case("d_mlp 0", config(d_mlp=0), ConfigError, "ModelConfig.d_mlp must be an integer ≥ 1 or None, got 0"),
    Case("d_mlp -32", config(d_mlp=-32), ConfigError, "ModelConfig.d_mlp must be an integer ≥ 1 or None, got -32"),
    Case("act_fn tanh", config(d_mlp=32, act_fn="tanh"), ConfigError, "ModelConfig.act_fn must be one of ('relu', 'gelu', 'gelu_new', 'silu', 'solu_ln'), got 'tanh'"),
    Case("positions alibi", config(positional_embedding_type="alibi"), ConfigError, "ModelConfig.positional_embedding_type must be one of ('standard', 'rotary', 'shortformer'), got 'alibi'"),
    Case("use_biases 'no'", config(use_biases="no"), ConfigError, "ModelConfig.use_biases must be one of (True, False), got 'no'"),
    Case("ModelConfig.from_dict, missing fields", lambda w: toybook.ModelConfig.from_dict({"n_layers": 1}), ConfigError, "ModelConfig is missing required fields: ['d_head', 'd_model',"),
    Case("ModelConfig.from_dict, unknown field", lambda w: toybook.ModelConfig.from_dict({**ARCH, "d_vocab": 5, "d_vocab_out": 5, "n_ctx": 3, "width": 3}), ConfigError, "unknown ModelConfig fields: ['width']"),
    # training configs
    Case("steps 2.5", lambda w: TrainConfig(steps=2.5), ConfigError, "TrainConfig.steps must be an integer ≥ 1, got 2.5"),
    Case("steps 0", lambda w: TrainConfig(steps=0), ConfigError, "TrainConfig.steps must be an integer ≥ 1, got 0"),
    Case("batch_size 0", lambda w: TrainConfig(batch_size=0), ConfigError, "TrainConfig.batch_size must be an integer ≥ 1 or None, got 0"),
    Case("negative lr", lambda w: TrainConfig(lr=-1e-3), ConfigError, "TrainConfig.lr must be a finite number > 0.0, got -0.001"),
    Case("lr nan", lambda w: TrainConfig(lr=float("nan")), ConfigError, "TrainConfig.lr must be a finite number > 0.0, got nan"),
    Case("lr as text", lambda w: TrainConfig(lr="1e-3"), ConfigError, "TrainConfig.lr must be a finite number > 0.0, got '1e-3'"),
    Case("one beta", lambda w: TrainConfig(betas=(0.9,)), ConfigError, "TrainConfig.betas must be two numbers in [0, 1), got (0.9,)"),
    Case("beta 1.5", lambda w: TrainConfig(betas=(0.9, 1.5)), ConfigError, "TrainConfig.betas must be a finite number ≥ 0.0 and ≤ 0.999999, got 1.5"),
    Case("negative weight decay", lambda w: TrainConfig(weight_decay=-0.1), ConfigError, "TrainConfig.weight_decay must be a finite number ≥ 0.0, got -0.1"),
    Case("negative warm-up", lambda w: TrainConfig(warmup_steps=-5), ConfigError, "TrainConfig.warmup_steps must be an integer ≥ 0, got -5"),
    Case("schedule linear", lambda w: TrainConfig(schedule="linear"), ConfigError, "TrainConfig.schedule must be one of ('constant', 'cosine'), got 'linear'"),
    Case("grad_clip 0", lambda w: TrainConfig(grad_clip=0), ConfigError, "TrainConfig.grad_clip must be a finite number > 0.0 or None, got 0"),
    Case("negative seed in a config", lambda w: TrainConfig(seed=-1), ConfigError, "TrainConfig.seed must be an integer ≥ 0, got -1"),
    Case("log_every 0", lambda w: TrainConfig(log_every=0), ConfigError, "TrainConfig.log_every must be an integer ≥ 1, got 0"),
    Case("eval_size 0", lambda w: TrainConfig(eval_size=0), ConfigError, "TrainConfig.eval_size must be an integer ≥ 1, got 0"),
    Case("snapshot_every 0", lambda w: TrainConfig(snapshot_every=0), ConfigError, "TrainConfig.snapshot_every must be an integer ≥ 1 or None, got 0"),
    Case("TrainConfig.from_dict, misspelt key", lambda w: TrainConfig.from_dict({"stpes": 10}), ConfigError, "unknown TrainConfig fields: ['stpes']; known fields: ["),
    Case("TrainConfig.from_dict, a list", lambda w: TrainConfig.from_dict([1, 2]), ConfigError, "TrainConfig needs a dict of fields, got list"),
    # checkpoint files edited or damaged (the damage is the row's preparation; loading must not repair or overwrite it)
    Case("act_fn edited by hand", lambda w: toybook.load_checkpoint(w.checkpoint), CheckpointError, "modified outside toybook (changed: model_config.act_fn)", prepare=lambda w: w.edit_sidecar(lambda m: m["model_config"].update(act_fn="gelu"))),
    Case("recorded accuracy edited", lambda w: toybook.load_checkpoint(w.checkpoint), CheckpointError, "(changed: final_metrics.eval_acc)", prepare=lambda w: w.edit_sidecar(lambda m: m["final_metrics"].update(eval_acc=1.0))),
    Case("weights damaged", lambda w: toybook.load_checkpoint(w.checkpoint), CheckpointError, "checksum mismatch for tiny.safetensors", prepare=flip_a_weight_byte),
    Case("version-1 sidecar", lambda w: toybook.load_checkpoint(w.checkpoint), CheckpointError, "version 1 sidecars have no checksums over their contents", prepare=lambda w: w.edit_sidecar(lambda m: m.update(format_version=1))),
    # the command line
    Case("train into a folder that cannot exist", command("train", "max_of_2", "--out", "{folder}/a-file/runs", "--quiet"), CheckpointError, "cannot write a checkpoint into", prepare=block_the_folder),
    Case("train over an existing checkpoint", command("train", "max_of_2", "--out", "{folder}", "--quiet"), CheckpointError, "max_of_2 already exists; choose another path or allow overwriting it (toybook train --force)", prepare=checkpoint_named("max_of_2")),
    Case("train a seed over an existing checkpoint", command("train", "max_of_2", "--seed", "4", "--out", "{folder}", "--quiet"), CheckpointError, "max_of_2_s4 already exists", prepare=checkpoint_named("max_of_2_s4")),
    Case("eval --record into the shipped package", command("eval", "max_of_2", "--record"), ToybookError, "--record would rewrite the shipped checkpoint 'max_of_2' inside the installed package"),
    Case("eval a checkpoint of another task", command("eval", "addition", "--checkpoint", "{checkpoint}"), ToybookError, "is a 'max_of_2' model, not 'addition'"),
    Case("eval --all of a task without a finite input space", command("eval", "majority", "--all"), ToybookError, "task 'majority' has no finite input space; use --n instead of --all"),
    Case("eval on an unknown device", command("eval", "max_of_2", "--device", "tpu"), ToybookError, "unknown device 'tpu'; the devices here are"),
    Case("train on CUDA without CUDA", command("train", "max_of_2", "--device", "cuda"), ToybookError, "CUDA is not available here"),
    Case("reproduce names and --all", command("reproduce", "max_of_2", "--all"), ToybookError, "name the shipped models to reproduce, or use --all (not both)"),
    Case("reproduce into the shipped folder", command("reproduce", "max_of_2", "--out", str(SHIPPED_DIR), "--quiet"), ToybookError, "would overwrite the checkpoint being reproduced"),
    Case("live without a built site", command("live", "--site", "{folder}"), ToybookError, "holds no built site (no index.html)"),
    # scaling out: sharded checks and Ray
    Case("verify a task that does not enumerate its inputs", command("verify", "majority", "--results", "{folder}/check.jsonl"), ToybookError, "task 'majority' does not enumerate its inputs"),
    Case("verify past the last input", command("verify", "max_of_2", "--stop", "5000", "--results", "{folder}/check.jsonl"), ToybookError, "max_of_2: input ranks must satisfy 0 <= start <= stop <= 4,096, got start=0, stop=5,000"),
    Case("verify a range that ends before it starts", command("verify", "max_of_2", "--start", "10", "--stop", "5", "--results", "{folder}/check.jsonl"), ToybookError, "got start=10, stop=5"),
    Case("verify from a negative rank", command("verify", "max_of_2", "--start", "-1", "--results", "{folder}/check.jsonl"), ConfigError, "verify.start must be an integer ≥ 0, got -1"),
    Case("verify with a batch that does not divide the shard", command("verify", "max_of_2", "--shard-size", "1000", "--batch-size", "300", "--results", "{folder}/check.jsonl"), ToybookError, "verify: shard_size (1,000) must be a multiple of batch_size (300), so that no shard cuts a batch"),
    Case("verify into the results of another check", command("verify", "max_of_2", "--shard-size", "1024", "--results", "{folder}/check.jsonl"), ToybookError, "check.jsonl holds the results of another check (it differs in shard_size, batch_size); give another --results path", prepare=a_check_with_shards_of(2048)),
    Case("verify into a file that is not a results file", command("verify", "max_of_2", "--results", "{folder}/notes.txt"), ToybookError, "notes.txt is not a toybook verify results file", prepare=lambda w: (w.folder / "notes.txt").write_text("my notes, no newline")),
    Case("verify a checkpoint of another task", command("verify", "addition", "--checkpoint", "{checkpoint}", "--results", "{folder}/check.jsonl"), ToybookError, "is a 'max_of_2' model, not 'addition'"),
    Case("--workers without --ray", command("sweep", "max_of_2", "--seeds", "1", "--workers", "2", "--out", "{folder}"), ToybookError, "--workers sizes a local Ray cluster: use it with --ray"),
    Case("sweep --ray where Ray is not installed", without_ray(command("sweep", "max_of_2", "--seeds", "1", "--ray", "--out", "{folder}")), ToybookError, "--ray needs Ray, which is not installed here: pip install 'toybook[scale]'"),
    Case("verify --ray where Ray is not installed", without_ray(command("verify", "max_of_2", "--ray", "--results", "{folder}/check.jsonl")), ToybookError, "pip install 'toybook[scale]'"),
    Case("workers for a cluster at an address", lambda w: RayOptions(address="ray://head:10001", workers=4), ToybookError, "workers sizes a local Ray cluster; a cluster at an address has its own size"),
    Case("a table column without a name", lambda w: Table(("", "seed 1"), (("accuracy", "100%"),)), ToybookError, "column 0 of the table has no name: every column needs one"),
]


PACKAGE = Path(toybook.__file__).parent  # holds the shipped checkpoints


def fingerprint(*folders):
    """Every file under ``folders`` (compiled bytecode aside) → SHA-256 of its bytes."""
    return {
        str(path): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in folders for path in sorted(Path(folder).rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.fixture(scope="module")
def tiny_run():
    config = toybook.ModelConfig.for_task(MAX_OF_2, **ARCH, normalization_type=None, use_biases=False)
    return toybook.train(MAX_OF_2, config, TrainConfig(steps=5, batch_size=None, log_every=5), progress=False)


def test_the_table_is_large_enough():
    assert len(CASES) >= 40 and len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_gets_a_named_error_and_nothing_is_written_or_lost(case, tiny_run, tmp_path):
    where = Where(tmp_path, tmp_path / "tiny")
    toybook.save_checkpoint(tiny_run, where.checkpoint)
    if case.prepare:
        case.prepare(where)
    before = fingerprint(tmp_path, PACKAGE)
    with pytest.raises(case.error, match=re.escape(case.words)):
        case.action(where)
    assert fingerprint(tmp_path, PACKAGE) == before


def valid(name, n=3):
    return toybook.get_task(name).generate(n, seed=0)


def changed(name, row, pos, value, n=3):
    tokens = valid(name, n)
    tokens[row, pos] = value
    return tokens


OFF_FORMAT = [
    # (model, tokens, message)
    ("list_update", changed("list_update", 0, 0, 7), "position 0 (BOS) must be BOS (token 50), but row 0 has 7"),
    ("list_update", changed("list_update", 2, 4, 3), "position 4 (nl_0) must be nl_0 (token 51), but row 2 has 3"),
    ("list_update", changed("list_update", 1, 5, 3), "position 5 (idx) must be a token in 0..2, but row 1 has 3"),
    ("list_update", changed("list_update", 1, 2, 50), "position 2 (a1) must be a token in 0..49, but row 1 has 50"),
    ("list_update", changed("list_update", 0, 6, 51), "position 6 (elt) must be a token in 0..49, but row 0 has 51"),
    ("addition", changed("addition", 0, 5, 3), "position 5 (+) must be + (token 10), but row 0 has 3"),
    ("addition", changed("addition", 1, 11, 10), "position 11 (=) must be = (token 12), but row 1 has 10"),
    ("addition", changed("addition", 2, 0, 12), "position 0 (x4) must be a token in 0..9, but row 2 has 12"),
    ("addition", changed("addition", 0, 7, 11), "position 7 (y3) must be a token in 0..9, but row 0 has 11"),
    ("addition_1l", changed("addition", 0, 5, 0), "position 5 (+) must be + (token 10), but row 0 has 0"),
    ("max_of_2", changed("max_of_2", 0, 2, 5), "position 2 (=) must be = (token 64), but row 0 has 5"),
    ("max_of_2", changed("max_of_2", 1, 0, 64), "position 0 (a) must be a token in 0..63, but row 1 has 64"),
]


@pytest.mark.parametrize("name, tokens, message", OFF_FORMAT)
def test_off_format_tokens_are_refused_by_name(name, tokens, message):
    model = toybook.load_model(name)
    for run in (model, model.run_with_cache, lambda t: model.run_with_hooks(t, fwd_hooks=[])):
        with pytest.raises(InvalidTokensError, match=re.escape(message)):
            run(tokens)
    prefix = tokens[:, : int(re.search(r"position (\d+)", message).group(1)) + 1]
    with pytest.raises(InvalidTokensError, match=re.escape(message)):
        model(prefix)  # the bad token is inside the prefix: still refused
    with toybook.off_format(model):
        assert model(tokens).shape == (len(tokens), tokens.shape[1], model.cfg.d_vocab_out)
    with pytest.raises(InvalidTokensError):
        model(tokens)  # the opt-out ends with its block


@pytest.mark.parametrize("name", ["list_update", "addition", "majority", "max_of_2"])
def test_every_prefix_of_a_valid_sequence_is_legal(name):
    model, tokens = toybook.load_model(name), valid(name)
    for length in range(1, tokens.shape[1] + 1):
        assert model(tokens[:, :length]).shape == (3, length, model.cfg.d_vocab_out)


def test_off_format_still_checks_the_vocabulary_and_a_model_without_a_task_checks_only_that():
    model = toybook.load_model("max_of_2")
    with toybook.off_format(model), pytest.raises(InvalidTokensError, match="token 65 .* out of range"):
        model(torch.tensor([[1, 2, 65]]))
    bare = toybook.build_model(model.toybook_config)
    assert bare(torch.tensor([[64, 64, 3]])).shape == (1, 3, 64)  # no task attached: no slots
    toybook.attach_task(bare, MAX_OF_2)
    with pytest.raises(InvalidTokensError, match=re.escape("position 0 (a) must be a token in 0..63")):
        bare(torch.tensor([[64, 64, 3]]))
    with pytest.raises(ConfigError, match="does not match task 'list_update'"):
        toybook.attach_task(bare, LIST_UPDATE)


def test_an_allocator_failure_past_the_estimate_is_named_and_other_errors_pass(monkeypatch):
    """Memory can run out below the estimate (other processes take it meanwhile): the
    allocator's error then becomes the same named error; an unrelated RuntimeError does not."""
    def out_of_memory(self, n, generator):
        raise RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 24000 bytes.")

    monkeypatch.setattr(type(MAX_OF_2), "_sample", out_of_memory)
    with pytest.raises(TooLargeError, match=re.escape("max_of_2.generate: 1,000 sequences did not fit in memory")):
        MAX_OF_2.generate(1000)

    def broken(self, n, generator):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(type(MAX_OF_2), "_sample", broken)
    with pytest.raises(RuntimeError, match="shape mismatch") as error:
        MAX_OF_2.generate(1000)
    assert not isinstance(error.value, ToybookError)
