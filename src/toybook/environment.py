"""The environment a run's floats depend on, and whether two runs can be bit-identical.

Same seed → same weights holds only where every floating-point operation rounds the same
way. On a CPU that depends on the torch build, on which kernels torch and MKL pick for
the processor (AVX2, AVX-512, …), and on how many threads split a sum. A checkpoint
records :func:`current_environment` when it is trained; :func:`bit_identity_mismatch`
says whether the running machine can reproduce it exactly or only in behaviour.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import torch

UNKNOWN = "unknown"

# Environment variables that change which kernels run; recorded when they are set.
KERNEL_OVERRIDES = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA")

# What must agree for a retrained model to equal the recorded one bit for bit.
CPU_IDENTITY_KEYS = ("torch_version", "device", "cpu_capability", "cpu_id", "threads",
                     "deterministic_algorithms", "kernel_overrides")
CUDA_IDENTITY_KEYS = ("torch_version", "device", "cuda_device", "cuda_version",
                      "deterministic_algorithms")


def current_environment(device: str | torch.device = "cpu") -> dict[str, Any]:
    """The facts that decide a run's floating-point results on ``device``."""
    device_type = torch.device(device).type
    cuda = device_type == "cuda"
    return {
        "torch_version": torch.__version__,
        "device": device_type,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_model": cpu_model(),
        "cpu_id": cpu_id(),
        "threads": torch.get_num_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "blas": "mkl" if torch.backends.mkl.is_available() else "other",
        "kernel_overrides": {k: os.environ[k] for k in KERNEL_OVERRIDES if k in os.environ},
        "cuda_device": torch.cuda.get_device_name(torch.device(device)) if cuda else None,
        "cuda_version": torch.version.cuda if cuda else None,
        "machine": platform.machine(),
        "python_version": platform.python_version(),
    }


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields in ``/proc/cpuinfo`` (empty where there is none)."""
    fields: dict[str, str] = {}
    path = Path("/proc/cpuinfo")
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            if not line.strip():
                break
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    return fields


def cpu_model() -> str:
    """The processor's model name, for people (virtual machines often shorten it)."""
    return _cpuinfo().get("model name") or platform.processor() or UNKNOWN


def cpu_id() -> str:
    """Vendor, family and model numbers: which processor generation MKL will tune for,
    e.g. ``AuthenticAMD family 25 model 1`` (AMD Zen 3)."""
    info = _cpuinfo()
    if "vendor_id" not in info:
        return f"{platform.machine()} {platform.processor()}".strip() or UNKNOWN
    return f"{info['vendor_id']} family {info.get('cpu family', '?')} model {info.get('model', '?')}"


def bit_identity_mismatch(recorded: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """Why a rerun in ``current`` cannot be expected to equal a run made in ``recorded``:
    one ``"key: recorded ≠ current"`` line per difference, or a line saying what was
    not recorded. An empty list means bit-identity is expected."""
    if not recorded:
        return ["the checkpoint records no training environment"]
    keys = CUDA_IDENTITY_KEYS if recorded.get("device") == "cuda" else CPU_IDENTITY_KEYS
    reasons = []
    for key in keys:
        was, now = recorded.get(key, UNKNOWN), current.get(key)
        if was == UNKNOWN:
            reasons.append(f"{key}: not recorded (unknown)")
        elif was != now:
            reasons.append(f"{key}: {was!r} recorded, {now!r} here")
    return reasons


def _threads(count: Any) -> str:
    return f"{count} thread" + ("" if count == 1 else "s")


def describe(environment: dict[str, Any]) -> str:
    """One line: torch version, device and kernels, threads."""
    if environment.get("device") == "cuda":
        where = f"cuda {environment.get('cuda_device')} (CUDA {environment.get('cuda_version')})"
    else:
        where = (f"cpu {environment.get('cpu_capability', UNKNOWN)} "
                 f"({environment.get('cpu_model', UNKNOWN)}), "
                 f"{_threads(environment.get('threads', UNKNOWN))}")
    overrides = environment.get("kernel_overrides") or {}
    if isinstance(overrides, dict):
        extra = "".join(f", {k}={v}" for k, v in overrides.items())
    else:
        extra = f", kernel overrides {overrides}"
    return f"torch {environment.get('torch_version', UNKNOWN)}, {where}{extra}"
