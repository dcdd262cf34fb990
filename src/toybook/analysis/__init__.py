"""Analysis: circuits read off the weights, and interventions that test them."""

from toybook.analysis.circuits import OneLayerCircuits, one_layer_circuits
from toybook.analysis.interventions import (
    hard_attention,
    run_with_hard_attention,
    run_without_attention_output,
    run_without_positional_embeddings,
)

__all__ = [
    "OneLayerCircuits", "hard_attention", "one_layer_circuits", "run_with_hard_attention",
    "run_without_attention_output", "run_without_positional_embeddings",
]
