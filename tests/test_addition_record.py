"""The addition chapter reads its seed models' MLP patching, layer 1's relevance and
fractions of loss recovered from a record in their sidecars
(``toybook.tasks.addition.record``): every seed carries it beside the ablation records, it
reads back as it was written, and recomputing it gives the recorded numbers."""

import math

import pytest

import toybook
from toybook.errors import ToybookError
from toybook.sweep import read_sweep
from toybook.tasks.addition import record
from toybook.tasks.addition.circuit import ABLATION_RECORD, CASCADE_RECORD, MLP_ABLATION_RECORD
from toybook.zoo import SHIPPED_DIR


def close(a, b, tolerance=1e-4):
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tolerance


@pytest.mark.parametrize("preset, layers", [("addition", 2), ("addition_1l", 1)])
def test_every_seed_the_chapter_shows_carries_the_records(preset, layers):
    for result in read_sweep(SHIPPED_DIR, preset):
        metadata = toybook.load_shipped(result.name).metadata
        measured = record.read_record(metadata)
        assert {layer for values in measured.mlp.values() for layer in values} == {f"MLP{i}" for i in range(layers)}
        assert bool(measured.layer1) == (layers == 2)
        ablations = {ABLATION_RECORD, CASCADE_RECORD, MLP_ABLATION_RECORD} if layers == 2 else {MLP_ABLATION_RECORD}
        assert ablations <= set(metadata["evaluations"])


def test_a_recomputed_seed_gives_its_recorded_numbers():
    checkpoint = toybook.load_shipped("addition_1l_s2")
    recorded = record.read_record(checkpoint.metadata)
    again = record.measure(checkpoint.model, checkpoint.task, "addition_1l")
    # agreements are shares of about 100-200 pairs: another CPU may round a near tie the other way
    assert again.mlp.keys() == recorded.mlp.keys()
    assert all(abs(again.mlp[key][layer] - value) <= 0.011
               for key, values in recorded.mlp.items() for layer, value in values.items())


def test_layer1_relevance_of_a_two_layer_seed_is_recomputed():
    checkpoint = toybook.load_shipped("addition_s2")
    recorded = record.read_record(checkpoint.metadata).layer1
    again = record.layer1_relevance(checkpoint.model, checkpoint.task)
    assert again.keys() == recorded.keys()
    assert all(abs(a - b) <= 0.011 for name in recorded for a, b in zip(again[name], recorded[name]))


def test_the_record_reads_back_as_written():
    measured = record.read_record(toybook.load_shipped("addition_s4").metadata)
    again = record.read_record({"evaluations": {record.RECORD: record.to_record(measured)}})
    assert again == measured


def test_bad_requests_are_refused_by_name():
    checkpoint = toybook.load_shipped("addition_1l")
    with pytest.raises(ToybookError, match="seed_measurements.*record_addition_seeds"):
        record.read_record(checkpoint.metadata)
    with pytest.raises(ToybookError, match="two layers; this one has 1"):
        record.layer1_relevance(checkpoint.model, checkpoint.task)
    with pytest.raises(ToybookError, match="'addition' and 'addition_1l' models, not 'majority'"):
        record.measure(checkpoint.model, checkpoint.task, "majority")


@pytest.mark.parametrize("preset", ["addition", "addition_1l"])
def test_every_change_of_a_claims_scope_after_the_seeds_rests_on_the_seeds_record(preset):
    """A claim narrowed to the shipped model was broken by a seed; one widened to every seed
    holds on every seed (SEED_RESTATEMENTS; the chapter's seed section says both)."""
    from toybook.claims import claims_for
    from toybook.tasks.addition.claims import SEED_RESTATEMENTS

    every = {claim.name: claim.all_seeds for claim in claims_for(preset)}
    sweep = read_sweep(SHIPPED_DIR, preset)
    for name in SEED_RESTATEMENTS[preset]["narrowed"]:
        assert not every[name] and any(not r.claims[name]["holds"] for r in sweep), name
    for name in SEED_RESTATEMENTS[preset]["widened"]:
        assert every[name] and all(r.claims[name]["holds"] for r in sweep), name
