"""The generic interpretability tools: they know no task, and every chapter uses them.

=================  ========================================================================
``circuits``       weight reading: QK, OV and direct paths of a one-layer model
``attribution``    direct logit attribution of the residual-stream components
``ablation``       zero- and mean-ablation, and the one hook that writes into an activation
``patching``       activation patching: one function, :func:`run_with_patches`, and its variants
``interventions``  attention forcing, and removing a layer's output or the positions
``faithfulness``   causal scrubbing: a reading as a program, its F on one scale per model, the report
``dynamics``       training dynamics: threshold crossings, models at snapshots
=================  ========================================================================

A task's own experiments live in its folder, ``toybook/tasks/<task>/``.
"""

from toybook.analysis.circuits import OneLayerCircuits, one_layer_circuits
from toybook.analysis.interventions import (
    hard_attention,
    run_with_hard_attention,
    run_with_shifted_scores,
    run_without_attention_output,
    run_without_positional_embeddings,
)
from toybook.analysis.patching import Patch, run_with_patches

__all__ = [
    "OneLayerCircuits", "Patch", "hard_attention", "one_layer_circuits", "run_with_hard_attention",
    "run_with_patches", "run_with_shifted_scores", "run_without_attention_output", "run_without_positional_embeddings",
]
