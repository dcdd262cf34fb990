"""Exhaustive checks split into shards, resumable and mergeable: ``toybook verify NAME``.

A check covers ranks ``start..stop-1`` of a task's enumeration, :meth:`Task.inputs
<toybook.task.Task.inputs>`: every input, or a stated slice (of 10^10 five-digit sums,
say), in the task's fixed order. The range is cut into shards of
``shard_size`` ranks; each shard is one :func:`~toybook.evaluation.evaluate_exhaustively`
call, run here or as a Ray task (:mod:`toybook.scale`). Every finished shard is appended
to a results file (JSON lines, the first line says what is checked), so a run that is
killed resumes where it stopped: shards already in the file are not run again, a line cut
short by the kill is dropped, and a shard is never counted twice.

Merged, the shards give what one unsharded run gives: the same counts, wrong answers and
smallest margins — shards start on batch boundaries, so every batch, and every logit, is
the one an unsharded run computes. Only the mean loss, a float sum taken in another
order, may differ in its last bits.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from toybook.checkpoint import checkpoint_bytes
from toybook.errors import ToybookError
from toybook.scale import RayOptions, require_ray, run_jobs

FORMAT = 1
DEFAULT_SHARD = 1_000_000
LIST_WRONG = 1000  # wrong answers listed per shard (all are counted)


@dataclass(frozen=True)
class Check:
    """What a results file holds the shards of: the model (by name and weights' SHA-256),
    the task, the range and how it is cut. Resuming requires the same check."""

    model: str  # a shipped name, or a checkpoint path
    weights_sha256: str
    task: str
    task_params: dict[str, Any]
    start: int
    stop: int
    shard_size: int
    batch_size: int
    n_hardest: int
    list_wrong: int
    format: int = FORMAT

    def shards(self) -> list[tuple[int, int]]:
        """``(start, stop)`` of each shard, in rank order."""
        return [(first, min(first + self.shard_size, self.stop))
                for first in range(self.start, self.stop, self.shard_size)]


@dataclass(frozen=True)
class Verification:
    """A check's merged result; ``shards_done`` of ``shards`` are in (all, when complete).

    ``wrong`` lists wrong answers in rank order: all of them where no shard had more than
    the check's ``list_wrong``; ``n_wrong_answers`` counts them all."""

    check: Check
    shards: int
    shards_done: int
    n: int
    n_wrong: int  # inputs with at least one wrong answer
    n_wrong_answers: int
    wrong_per_pos: list[int]
    loss: float
    max_loss: float
    min_margin: float
    hardest: list[dict[str, Any]]
    wrong: list[dict[str, Any]]
    wall_time_s: float  # summed over shards

    @property
    def complete(self) -> bool:
        return self.shards_done == self.shards

    @property
    def all_wrong_listed(self) -> bool:
        return len(self.wrong) == self.n_wrong_answers

    def report(self) -> str:
        from toybook.registry import get_task

        check = self.check
        total = get_task(check.task, **check.task_params).n_inputs
        lines = [f"{check.model} on {self.n:,} inputs (ranks {check.start:,}..{check.stop - 1:,} "
                 f"of the {total:,} of {check.task}): {self.n - self.n_wrong:,} correct, "
                 f"{self.n_wrong:,} wrong; {self.shards_done} of {self.shards} shards done"]
        if self.n:
            lines.append(f"smallest margin {self.min_margin:.4g}, largest loss "
                         f"{self.max_loss:.3g}, mean loss {self.loss:.3g}; "
                         f"{self.n / self.wall_time_s:,.0f} inputs/s per worker")
        lines.append(f"wrong answers: {self.n_wrong_answers:,}, {len(self.wrong):,} listed")
        lines += [f"  rank {w['rank']:,} {w['answer']}: predicted {w['predicted']}, "
                  f"correct {w['target']} (margin {w['margin']:.3g})" for w in self.wrong[:5]]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan(
    name: str, checkpoint: str | Path | None = None, start: int = 0, stop: int | None = None,
    shard_size: int = DEFAULT_SHARD, batch_size: int | None = None, n_hardest: int = 10,
    list_wrong: int = LIST_WRONG, device: str = "cpu",
) -> tuple[Check, Any]:
    """The check of the shipped model ``name`` (or of the saved ``checkpoint``, a model of
    task ``name``) on ranks ``start..stop-1`` (default: all), and the loaded checkpoint.
    Shards are a whole number of batches, so sharding changes no batch; the default batch
    size is the largest that divides ``shard_size`` within
    :func:`~toybook.evaluation.batch_rows`."""
    from toybook.checkpoint import load_checkpoint
    from toybook.config_checks import check_integer
    from toybook.evaluation import batch_rows
    from toybook.zoo import load_shipped

    for field, value, minimum in (("shard_size", shard_size, 1), ("n_hardest", n_hardest, 0),
                                  ("list_wrong", list_wrong, 0), ("start", start, 0)):
        check_integer("verify", field, value, minimum=minimum)
    check_integer("verify", "batch_size", batch_size, minimum=1, optional=True)
    check_integer("verify", "stop", stop, minimum=0, optional=True)
    if checkpoint is None:
        loaded = load_shipped(name, device)
    else:
        loaded = load_checkpoint(checkpoint, device)
        if name not in (loaded.task.name, loaded.name):
            raise ToybookError(f"checkpoint {checkpoint} is a {loaded.task.name!r} model, "
                               f"not {name!r}")
    task = loaded.task
    stop = task.check_rank_range(start, stop)
    if batch_size is None:
        batch_size = next(size for size in range(min(batch_rows(task.n_ctx), shard_size), 0, -1)
                          if shard_size % size == 0)
    elif shard_size % batch_size:
        raise ToybookError(f"verify: shard_size ({shard_size:,}) must be a multiple of "
                           f"batch_size ({batch_size:,}), so that no shard cuts a batch")
    check = Check(
        model=name if checkpoint is None else str(loaded.path.with_suffix("")),
        weights_sha256=loaded.metadata["weights"]["sha256"],
        task=task.name, task_params=task.params(), start=start, stop=stop,
        shard_size=shard_size, batch_size=batch_size, n_hardest=n_hardest,
        list_wrong=list_wrong,
    )
    return check, loaded


def verify(
    name: str, results: str | Path, checkpoint: str | Path | None = None, start: int = 0,
    stop: int | None = None,
    shard_size: int = DEFAULT_SHARD, batch_size: int | None = None, n_hardest: int = 10,
    list_wrong: int = LIST_WRONG, device: str = "cpu", ray: RayOptions | None = None,
    threads: int | None = None, log: Callable[[str], None] = print,
) -> Verification:
    """Check the shipped model ``name`` (or ``checkpoint``, see :func:`plan`) on ranks ``start..stop-1`` shard by shard, appending each
    finished shard to ``results`` and skipping those already there; returns the merge of
    every shard in the file. ``threads``: torch's CPU threads per shard (a Ray task's
    default: its CPUs)."""
    import time

    check, loaded = plan(name, checkpoint, start, stop, shard_size, batch_size, n_hardest,
                         list_wrong, device)
    path = Path(results)
    done = read_results(path, check)
    todo = [(index, span) for index, span in enumerate(check.shards()) if index not in done]
    log(f"{check.model}: {len(check.shards())} shards of {check.shard_size:,} ranks, "
        f"{len(done)} already in {path}, {len(todo)} to run"
        + ("" if ray is None else " on Ray"))
    if ray is not None:
        require_ray()
        files = None if checkpoint is None else checkpoint_bytes(loaded.path.with_suffix(""))
        model: Any = None
    else:
        files, model = None, loaded.model
    jobs = [(asdict(check), index, span, files, device, threads or (ray.cpus if ray else None), model)
            for index, span in todo]
    started = time.perf_counter()
    with _appender(path, check) as append:
        for number, (job, record) in enumerate(run_jobs(_check_shard, jobs, ray), 1):
            append(record)
            done[record["shard"]] = record
            index, (first, last) = todo[job]
            rate = record["result"]["n"] / record["result"]["wall_time_s"]
            log(f"shard {index} (ranks {first:,}..{last - 1:,}) done: "
                f"{record['result']['n_wrong']:,} wrong, {rate:,.0f} inputs/s; "
                f"{number} of {len(todo)} this run, {time.perf_counter() - started:.0f} s")
    return merge(check, done)


def read_results(path: Path, check: Check) -> dict[int, dict[str, Any]]:
    """The shards already in the results file ``path`` (none if it does not exist), by
    index. A file of another check is refused, never overwritten; a last line cut short
    (a killed run) is dropped from the file; a shard twice in the file is an error."""
    if not path.exists():
        return {}
    not_ours = (f"{path} is not a toybook verify results file (or was changed by something "
                f"else); give another --results path")
    try:
        *lines, torn = path.read_text().split("\n")
        records = [json.loads(line) for line in lines]
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ToybookError(not_ours) from None
    if not records:
        if torn:
            raise ToybookError(not_ours)
        return {}
    header = records[0].get("check") if isinstance(records[0], dict) else None
    if header is None or any(not isinstance(r, dict) or "shard" not in r for r in records[1:]):
        raise ToybookError(not_ours)
    if header != json.loads(json.dumps(asdict(check))):
        differ = [key for key, value in asdict(check).items()
                  if header.get(key) != json.loads(json.dumps(value))]
        raise ToybookError(
            f"{path} holds the results of another check (it differs in "
            f"{', '.join(differ) or 'its format'}); give another --results path, or the "
            f"same options as the run that made it")
    if torn:  # a last line with no newline: a write cut short by a kill
        path.write_text("".join(line + "\n" for line in lines))
    shards: dict[int, dict[str, Any]] = {}
    for record in records[1:]:
        if record["shard"] in shards:
            raise ToybookError(f"{path}: shard {record['shard']} is in the file twice")
        shards[record["shard"]] = record
    return shards


def merge(check: Check, shards: dict[int, dict[str, Any]]) -> Verification:
    """One result from the shards' records, as one unsharded run would give it."""
    results = [shards[index]["result"] for index in sorted(shards)]
    n = sum(result["n"] for result in results)
    width = len(results[0]["wrong_per_pos"]) if results else 0
    wrong_per_pos = [sum(result["wrong_per_pos"][k] for result in results) for k in range(width)]
    hardest = sorted((row for result in results for row in result["hardest"]),
                     key=lambda row: (row["margin"], row["rank"], row["answer"]))
    return Verification(
        check=check, shards=len(check.shards()), shards_done=len(shards), n=n,
        n_wrong=sum(result["n_wrong"] for result in results),
        n_wrong_answers=sum(wrong_per_pos),
        wrong_per_pos=wrong_per_pos,
        loss=sum(result["loss"] * result["n"] for result in results) / n if n else float("nan"),
        max_loss=max((result["max_loss"] for result in results), default=float("nan")),
        min_margin=min((result["min_margin"] for result in results), default=float("nan")),
        hardest=hardest[: check.n_hardest],
        wrong=[row for result in results for row in result["wrong"]],
        wall_time_s=sum(result["wall_time_s"] for result in results),
    )


def _check_shard(
    check: dict[str, Any], index: int, span: tuple[int, int], files: dict[str, bytes] | None,
    device: str, threads: int | None, model: Any = None,
) -> dict[str, Any]:
    """One shard, as a plain record: ``{"shard", "start", "stop", "result"}``. Loads the
    model (shipped, or from ``files``) unless it is given (a run without Ray)."""
    import tempfile

    import torch

    from toybook.checkpoint import load_checkpoint, write_checkpoint_bytes
    from toybook.evaluation import evaluate_exhaustively
    from toybook.registry import get_task
    from toybook.zoo import load_shipped

    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        if model is None and files is None:
            loaded = load_shipped(check["model"], device)
            if loaded.metadata["weights"]["sha256"] != check["weights_sha256"]:
                raise ToybookError(
                    f"the toybook on this Ray worker ships other weights for "
                    f"{check['model']!r} than the driver's; install the same toybook on "
                    f"every node")
            model = loaded.model
        elif model is None:
            with tempfile.TemporaryDirectory(prefix="toybook-verify-") as here:
                write_checkpoint_bytes(Path(here) / "model", files)
                model = load_checkpoint(Path(here) / "model", device).model
        task = get_task(check["task"], **check["task_params"])
        result = evaluate_exhaustively(
            model, task, *span, batch_size=check["batch_size"], n_hardest=check["n_hardest"],
            list_wrong=check["list_wrong"], method="plain")
    finally:
        torch.set_num_threads(previous_threads)
    return {"shard": index, "start": span[0], "stop": span[1], "result": result.to_dict()}


class _appender:
    """Appends records to a results file, one flushed and synced line each, writing the
    header first where the file is new."""

    def __init__(self, path: Path, check: Check) -> None:
        self.path, self.check = path, check

    def __enter__(self) -> Callable[[dict[str, Any]], None]:
        new = not self.path.exists() or self.path.stat().st_size == 0
        if new:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = self.path.open("a")
        if new:
            self._write({"check": asdict(self.check)})
        return self._write

    def _write(self, record: dict[str, Any]) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        os.fsync(self.file.fileno())

    def __exit__(self, *exc: Any) -> None:
        self.file.close()


__all__ = ["Check", "Verification", "merge", "plan", "read_results", "verify"]
