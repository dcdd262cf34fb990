"""Devices that are not here and requests too large for memory, refused by name before
anything is allocated.

:func:`check_device` refuses a device name torch does not know, or a device this machine
does not have (``cuda`` without a GPU), with the devices there are.

A size a user passes (sequences to generate, ranks to enumerate, a batch to run) becomes
tensors. Past what the device can hold, torch's allocator fails with a raw
``RuntimeError``, or the operating system ends the process. :func:`check_fits` refuses such
a request first with a :class:`~toybook.errors.TooLargeError` naming the size asked for,
the memory it needs, the memory there is, and the largest size that fits;
:func:`refuse_out_of_memory` turns an allocator failure that gets past the estimate into the
same error.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

from toybook.errors import TooLargeError, ToybookError

INT64_BYTES = 8
FLOAT32_BYTES = 4
SMALL_REQUEST = 2**26  # bytes: smaller requests are not checked (reading the free memory costs 0.1 ms)


def check_device(device: Any) -> Any:
    """``device`` unchanged where it names a device this machine has (``"cpu"``, ``"cuda"``,
    ``"cuda:1"``, a ``torch.device``); else a :class:`~toybook.errors.ToybookError` naming
    the devices there are."""
    import torch

    here = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    allowed = f"the devices here are {', '.join(here)}" + ("" if len(here) > 1 else
                                                          " (CUDA is not available here)")
    if not isinstance(device, (str, torch.device)):
        raise ToybookError(f"a device is a name such as 'cpu' or 'cuda', got {device!r}; {allowed}")
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise ToybookError(f"unknown device {device!r}; {allowed}") from None
    if parsed.type == "cpu":
        return device
    if parsed.type != "cuda" or f"cuda:{parsed.index or 0}" not in here:
        raise ToybookError(f"device {str(device)!r} requested but it is not available; {allowed}")
    return device


def available_bytes(device: Any = "cpu") -> int:
    """Memory that ``device`` can still give: free GPU memory on a CUDA device, else the
    machine's available memory (``MemAvailable``: free plus reclaimable caches)."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def describe_bytes(n: int) -> str:
    """``1.5 GB``, ``240 MB``: decimal units, three significant figures."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} B"


def check_fits(owner: str, count: int, what: str, bytes_each: int, device: Any = "cpu") -> None:
    """Raise :class:`TooLargeError` unless ``count`` items of ``bytes_each`` bytes (``what``:
    "sequences of 3 tokens") fit in the memory ``device`` has available."""
    needed = count * bytes_each
    if needed <= SMALL_REQUEST:
        return
    limit = available_bytes(device)
    if needed > limit:
        raise TooLargeError(
            f"{owner}: {count:,} {what} need {describe_bytes(needed)}, more than the "
            f"{describe_bytes(limit)} of memory available on {device}; at most "
            f"{limit // max(bytes_each, 1):,} fit (ask for fewer, or in parts)"
        )


def forward_bytes_per_row(config: Any) -> int:
    """An upper estimate of one sequence's activations in a forward pass without autograd
    (float32): every head's attention scores and pattern, the residual stream's few copies,
    the MLP's hidden layer and the logits, each alive at once at worst."""
    n_ctx = config.n_ctx
    attention = 2 * config.n_heads * n_ctx * n_ctx
    stream = 8 * config.d_model + 4 * config.n_heads * config.d_head
    mlp = 2 * (config.d_mlp or 0)
    return FLOAT32_BYTES * (attention + n_ctx * (stream + mlp + 2 * config.d_vocab_out))


def check_batch_fits(owner: str, model: Any, rows: int, device: Any, factor: int = 1) -> None:
    """Refuse a batch of ``rows`` sequences whose forward pass (``factor`` times its
    activations: about 3 when training keeps them for the backward pass) cannot fit on
    ``device``; a module without a toybook config is not estimated."""
    config = getattr(model, "toybook_config", None)
    if config is not None:
        check_fits(owner, rows, f"sequences of {config.n_ctx} tokens in one batch",
                   factor * forward_bytes_per_row(config), device)


@contextlib.contextmanager
def refuse_out_of_memory(owner: str, what: str) -> Iterator[None]:
    """Inside, an allocator's out-of-memory error becomes a :class:`TooLargeError` that says
    what was being made (``what``: "a batch of 4,096 sequences")."""
    import torch

    try:
        yield
    except (torch.OutOfMemoryError, MemoryError) as error:
        raise TooLargeError(f"{owner}: {what} did not fit in memory ({error}); ask for fewer") from None
    except RuntimeError as error:
        if "memory" not in str(error):
            raise
        raise TooLargeError(f"{owner}: {what} did not fit in memory ({str(error)[:200]}); "
                            "ask for fewer") from None


__all__ = ["available_bytes", "check_batch_fits", "check_device", "check_fits", "describe_bytes",
           "forward_bytes_per_row", "refuse_out_of_memory"]
