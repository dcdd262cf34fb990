"""Independent jobs — a sweep's seeds, a check's shards — run one after another here, or
in parallel as Ray tasks: on a local cluster of this machine's cores (``ray.init()``), or
on a running cluster (``ray.init(address=...)``), with the same code.

Ray is an optional extra (``pip install 'toybook[scale]'``); without it everything but
``--ray`` works. A job's function must be importable by name on every node (it is
pickled by reference), take only plain values, and return plain values: a worker shares
no files with the driver, so jobs carry what they need and return what they made.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from toybook.errors import ToybookError

EXTRA = "toybook[scale]"


@dataclass(frozen=True)
class RayOptions:
    """Where and how jobs run on Ray: ``address`` of a running cluster (``None``: start a
    local one with ``workers`` CPUs, default all), and each job's request, ``cpus`` CPUs
    or one GPU (``gpu``)."""

    address: str | None = None
    workers: int | None = None
    cpus: int = 1
    gpu: bool = False

    def __post_init__(self) -> None:
        from toybook.config_checks import check_integer

        check_integer("RayOptions", "workers", self.workers, minimum=1, optional=True)
        check_integer("RayOptions", "cpus", self.cpus, minimum=1)
        if self.address is not None and self.workers is not None:
            raise ToybookError("workers sizes a local Ray cluster; a cluster at an address "
                               "has its own size (give one of address and workers)")


def require_ray() -> Any:
    """The ``ray`` module, or a named error that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ToybookError(f"--ray needs Ray, which is not installed here: "
                           f"pip install '{EXTRA}'") from None
    return ray


@contextmanager
def ray_session(options: RayOptions) -> Iterator[Any]:
    """Ray, initialised for ``options`` unless it already is (then it is left running)."""
    ray = require_ray()
    started = not ray.is_initialized()
    if started:
        settings: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False,
                                        configure_logging=False)
        if options.address is None:
            settings.update(num_cpus=options.workers or os.cpu_count(),
                            object_store_memory=256 * 2**20)
        try:
            ray.init(address=options.address, **settings)
        except ConnectionError as error:
            raise ToybookError(f"no Ray cluster answers at {options.address!r}: {error}") from None
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def run_jobs(
    function: Callable[..., Any], jobs: Sequence[tuple[Any, ...]],
    ray: RayOptions | None = None,
) -> Iterator[tuple[int, Any]]:
    """``(index, function(*jobs[index]))`` for every job: in order where ``ray`` is
    ``None``, else as each Ray task finishes. A job that raises stops the run with its
    error; a task whose worker dies is retried by Ray (up to 3 times)."""
    if ray is None:
        for index, job in enumerate(jobs):
            yield index, function(*job)
        return
    with ray_session(ray) as module:
        remote = module.remote(num_cpus=0 if ray.gpu else ray.cpus,
                               num_gpus=1 if ray.gpu else 0, max_retries=3)(function)
        pending = {remote.remote(*job): index for index, job in enumerate(jobs)}
        try:
            while pending:
                (ready,), _ = module.wait(list(pending), num_returns=1)
                index = pending.pop(ready)
                yield index, _unwrapped(module, ready)
        finally:
            for reference in pending:
                module.cancel(reference, force=True)


def _unwrapped(ray: Any, reference: Any) -> Any:
    """A task's result; a task's :class:`ToybookError` as itself, not wrapped by Ray."""
    try:
        return ray.get(reference)
    except ray.exceptions.RayTaskError as error:
        if isinstance(error.cause, ToybookError):
            raise error.cause from None
        raise


__all__ = ["EXTRA", "RayOptions", "ray_session", "require_ray", "run_jobs"]
