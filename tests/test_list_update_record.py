"""The list-update chapter reads its seed models' measurements from a record in their
sidecars (``toybook.tasks.list_update.record``): every seed carries it, it reads back as it
was written, and recomputing it gives the recorded numbers."""

import math

import pytest
import torch

import toybook
from toybook.errors import ToybookError
from toybook.sweep import read_sweep
from toybook.tasks.list_update import record
from toybook.zoo import SHIPPED_DIR

PRESETS = ("list_update", "list_update_shortformer", "list_update_shortformer_batchwise")


def close(a, b, tolerance=1e-4):
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tolerance


@pytest.mark.parametrize("preset", PRESETS)
def test_every_seed_the_chapter_shows_carries_the_record(preset):
    for result in read_sweep(SHIPPED_DIR, preset):
        measured = record.read_record(toybook.load_shipped(result.name).metadata)
        assert measured.b2_route in (6, 7)


def test_a_recomputed_seed_gives_its_recorded_numbers():
    checkpoint = toybook.load_shipped("list_update_shortformer_s1")
    recorded = record.read_record(checkpoint.metadata)
    again = record.measure(checkpoint.model, checkpoint.task)
    assert again.b2_route == recorded.b2_route
    assert again.own_circuit == recorded.own_circuit
    for name in ("paths", "path_accuracy", "direct", "random_paths"):
        assert getattr(again, name).keys() == getattr(recorded, name).keys()
        assert all(close(getattr(again, name)[key], value) for key, value in getattr(recorded, name).items())
    # accuracies are shares of about 330 rows: another CPU may round a near tie the other way
    for name, value in recorded.ablated.items():
        assert torch.allclose(again.ablated[name], value, atol=5e-3)
    assert torch.allclose(again.route.donor_value, recorded.route.donor_value, atol=5e-3)


def test_the_record_reads_back_as_written():
    checkpoint = toybook.load_shipped("list_update_s1")
    measured = record.read_record(checkpoint.metadata)
    again = record.read_record({"evaluations": {record.RECORD: record.to_record(measured)}})
    assert again.paths == measured.paths and again.b2_route == measured.b2_route
    assert all(torch.equal(again.ablated[name], value) for name, value in measured.ablated.items())


def test_a_checkpoint_without_the_record_is_refused_by_name():
    with pytest.raises(ToybookError, match="chapter_measurements.*record_list_update"):
        record.read_record(toybook.load_shipped("list_update").metadata)
