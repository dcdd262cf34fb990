"""The recorded training environment and the rule for when bit-identity is expected."""

import pytest
import torch

import toybook
from toybook.environment import (
    CPU_IDENTITY_KEYS, bit_identity_mismatch, cpu_id, current_environment, describe,
)
from toybook.zoo import list_models

@pytest.fixture
def here():
    """The environment as the test runs (the suite fixes the thread count in conftest)."""
    return current_environment("cpu")


def test_current_environment_names_what_the_floats_depend_on(here):
    assert here["torch_version"] == torch.__version__
    assert here["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert here["threads"] == torch.get_num_threads()
    assert here["device"] == "cpu" and here["cuda_device"] is None
    assert here["cpu_id"] == cpu_id() and here["cpu_id"] != "unknown"
    assert set(CPU_IDENTITY_KEYS) <= set(here)


def test_threads_are_read_when_asked():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert current_environment()["threads"] == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    "change, reason",
    [
        ({}, None),
        ({"cpu_capability": "ZVECTOR"}, "cpu_capability: 'ZVECTOR' recorded, "),
        ({"threads": 7}, "threads: 7 recorded"),
        ({"torch_version": "2.0.0"}, "torch_version: '2.0.0' recorded"),
        ({"cpu_id": "GenuineIntel family 6 model 143"}, "cpu_id: 'GenuineIntel family 6 model 143'"),
        ({"kernel_overrides": {"MKL_CBWR": "COMPATIBLE"}}, "kernel_overrides"),
        ({"cpu_capability": "unknown"}, "cpu_capability: not recorded (unknown)"),
        ({"blas": "openblas", "python_version": "3.99"}, None),  # recorded, not decisive
    ],
)
def test_bit_identity_mismatch(change, reason, here):
    reasons = bit_identity_mismatch({**here, **change}, here)
    if reason is None:
        assert reasons == []
    else:
        assert len(reasons) == 1 and reasons[0].startswith(reason)


def test_nothing_recorded_means_no_bit_identity(here):
    assert bit_identity_mismatch(None, here) == ["the checkpoint records no training environment"]
    assert bit_identity_mismatch({}, here) == ["the checkpoint records no training environment"]


def test_cuda_runs_compare_the_device_not_the_cpu(here):
    recorded = {**here, "device": "cuda", "cuda_device": "NVIDIA H100", "cuda_version": "12.8"}
    reasons = bit_identity_mismatch(recorded, here)
    assert any(r.startswith("device: 'cuda' recorded") for r in reasons)
    assert any(r.startswith("cuda_device: 'NVIDIA H100'") for r in reasons)
    assert not any(r.startswith("cpu_capability") for r in reasons)
    assert "cuda NVIDIA H100 (CUDA 12.8)" in describe(recorded)


def test_every_shipped_model_records_its_environment():
    """Fields that were not recorded at training time say "unknown", never a guess."""
    for info in list_models():
        environment = toybook.load_shipped(info.name).metadata["training"]["environment"]
        assert environment["torch_version"].startswith("2.") and isinstance(environment["threads"], int)
        for key in CPU_IDENTITY_KEYS:
            assert key in environment
        assert environment["cpu_capability"] in ("unknown", "DEFAULT", "AVX2", "AVX512", "ZVECTOR", "NEON", "SVE256")


def test_a_new_checkpoint_records_this_environment(tmp_path, here):
    task = toybook.get_task("max_of_2")
    config = toybook.ModelConfig.for_task(task, n_layers=1, n_heads=1, d_model=8, d_head=8, normalization_type=None, use_biases=False)
    run = toybook.train(task, config, toybook.TrainConfig(steps=2, batch_size=None), progress=False)
    sidecar = toybook.save_checkpoint(run, tmp_path / "tiny")
    assert toybook.load_checkpoint(sidecar).metadata["training"]["environment"] == here
