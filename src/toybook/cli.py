"""The ``toybook`` command: ``list``, ``train``, ``eval``, ``verify``, ``reproduce``, ``sweep``
and ``live``.

Errors in arguments or inputs print one line and exit with status 2; no tracebacks.
Each command imports what it needs when it runs, so ``--help``, ``--version`` and argument
errors answer without loading torch or TransformerLens.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from toybook._version import __version__
from toybook.errors import ToybookError
from toybook.measurement import DEFAULT_N, DEFAULT_SEED, SMALL_INPUT_SPACE
from toybook.resources import check_device

EXAMPLES = """examples:
  toybook list                                  tasks, presets, shipped models
  toybook eval list_update --n 100000           accuracy on a seeded random sample
  toybook train max_of_2 --seed 1 --out runs    train a preset with another seed
                                                (saved as runs/max_of_2_s1)
  toybook reproduce max_of_2                    retrain a shipped model and compare
  toybook sweep max_of_2 --seeds 1-4 --ray      seeds in parallel on a local Ray cluster
  toybook verify addition --stop 1000000        a resumable check of the first 10^6
                                                questions, in shards (--ray: in parallel)
  toybook live                                  the built book with live cells"""


@dataclass(frozen=True)
class Report:
    """What a command answers once it is done: its text (printed by :func:`main`) and its
    exit status (0: done; 1: a check found a failure)."""

    text: str
    status: int = 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        report = args.command(args)
    except ToybookError as error:
        print(f"toybook: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("toybook: interrupted", file=sys.stderr)
        return 130
    print(report.text)
    return report.status


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="toybook", description="Train, evaluate and list toybook models.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
    )
    top.add_argument("--version", action="version", version=f"toybook {__version__}")
    commands = top.add_subparsers(required=True, metavar="COMMAND")
    for add in (add_list, add_train, add_eval, add_reproduce, add_sweep, add_verify, add_live):
        add(commands)
    return top


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _option(*flags: str, **spec) -> argparse.ArgumentParser:
    """A parent parser holding one option that several commands share."""
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument(*flags, **spec)
    return shared


DEVICE = _option("--device", default="cpu", help="cpu (default) or cuda")
QUIET = _option("--quiet", action="store_true", help="no progress bars")
THREADS = _option("--threads", type=positive_int,
                  help="torch CPU threads (per seed or shard with --ray, default 1 there)")
CHECKPOINT = _option("--checkpoint", type=Path, help="a saved checkpoint (default: shipped)")


def _ray(job: str) -> argparse.ArgumentParser:
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument(
        "--ray", nargs="?", const="local", metavar="ADDRESS",
        help=f"run each {job} as a Ray task: on a local cluster of this machine's cores, "
             f"or on the running cluster at ADDRESS (needs pip install 'toybook[scale]')")
    shared.add_argument("--workers", type=positive_int, help="CPUs of the local Ray cluster (default: all)")
    return shared


def add_list(commands) -> None:
    listing = commands.add_parser("list", help="tasks, presets and shipped models")
    listing.set_defaults(command=cmd_list)


def add_train(commands) -> None:
    training = commands.add_parser("train", help="train a model from a named preset",
                                   parents=[DEVICE, THREADS, QUIET])
    training.add_argument("name", metavar="NAME", help="a preset (toybook list shows them)")
    training.add_argument("--steps", type=positive_int, help="override the preset's steps")
    training.add_argument("--seed", type=int, help="override the preset's seed")
    training.add_argument(
        "--out", type=Path, default=Path("checkpoints"),
        help="folder for the checkpoint, saved as NAME, or NAME_sSEED with --seed "
             "(default: checkpoints), as for reproduce and sweep")
    training.add_argument("--force", action="store_true", help="overwrite that checkpoint if it exists")
    training.add_argument("--snapshot-every", type=positive_int, help="keep weights every K steps")
    training.set_defaults(command=cmd_train)


def add_eval(commands) -> None:
    evaluating = commands.add_parser("eval", help="accuracy of a shipped or saved model",
                                     parents=[CHECKPOINT, DEVICE, THREADS, QUIET])
    evaluating.add_argument("task", metavar="TASK", help="a task or shipped model name")
    evaluating.add_argument(
        "--n", type=positive_int,
        help=f"seeded random inputs (default {DEFAULT_N:,}), measured as the task's chapter "
             f"does (addition adds every hand-built set; majority counts the last position); "
             f"a task with at most {SMALL_INPUT_SPACE:,} inputs is always evaluated on all",
    )
    evaluating.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the sample")
    evaluating.add_argument(
        "--all", action="store_true",
        help="every input of the task (list_update: 18,750,000), batched, with a progress bar",
    )
    evaluating.add_argument(
        "--batch-size", type=positive_int,
        help="inputs per forward pass (default: from the sequence length, at most 32,768 "
             "tokens; list_update --all: 3,000)",
    )
    evaluating.add_argument("--record", action="store_true", help="store the result in the checkpoint's sidecar")
    evaluating.set_defaults(command=cmd_eval)


def add_reproduce(commands) -> None:
    again = commands.add_parser(
        "reproduce", parents=[DEVICE, QUIET],
        help="retrain shipped models from their recorded configs and compare",
        description="Retrain shipped models from their recorded configs and compare them "
        "with the shipped checkpoints: bit-identical weights where the recorded "
        "environment matches this machine, otherwise the same accuracy and circuit "
        "claims. Example: toybook reproduce max_of_2",
    )
    again.add_argument("names", nargs="*", metavar="NAME", help="shipped models to retrain")
    again.add_argument("--all", action="store_true", help="every shipped model")
    again.add_argument(
        "--out", type=Path, default=Path("checkpoints/reproduced"),
        help="folder for the retrained checkpoints (default: checkpoints/reproduced)",
    )
    again.set_defaults(command=cmd_reproduce)


def add_sweep(commands) -> None:
    seeds = commands.add_parser(
        "sweep", parents=[DEVICE, THREADS, QUIET, _ray("seed")],
        help="train a preset with other seeds and check each like the shipped model",
        description="Train preset NAME once per seed (skipping seeds already trained), "
        "measure each model as its chapter measures the shipped one, check every circuit "
        "claim, and record the results in OUT/sweeps/NAME.json. "
        "Example: toybook sweep max_of_2 --seeds 1-10 --out checkpoints/seeds",
    )
    seeds.add_argument("name", metavar="NAME", help="a preset (toybook list shows them)")
    seeds.add_argument("--seeds", required=True, help="seeds: 1-10, 3 or 1,4,7")
    seeds.add_argument("--out", type=Path, default=Path("checkpoints/seeds"),
                       help="folder for the seed checkpoints (default: checkpoints/seeds)")
    seeds.set_defaults(command=cmd_sweep)


def add_verify(commands) -> None:
    check = commands.add_parser(
        "verify", parents=[CHECKPOINT, DEVICE, THREADS, _ray("shard")],
        help="check a model on every input (or a range of ranks), in resumable shards",
        description="Run a shipped or saved model on ranks START..STOP-1 of its task's "
        "enumeration (default: every input; addition: the 10^10 questions x + y in the "
        "order x * 10^5 + y), split into shards. Each finished shard is appended to the "
        "results file, so a killed run resumes where it stopped. Prints the merged "
        "result: wrong answers (listed), smallest margins. "
        "Example: toybook verify addition --stop 1000000 --ray",
    )
    check.add_argument("name", metavar="NAME", help="a shipped model, or the task of --checkpoint")
    check.add_argument("--start", type=int, default=0, help="first rank (default 0)")
    check.add_argument("--stop", type=int, help="one past the last rank (default: all)")
    check.add_argument("--shard-size", type=positive_int, default=1_000_000,
                       help="ranks per shard (default 1,000,000)")
    check.add_argument("--batch-size", type=positive_int,
                       help="inputs per forward pass; must divide the shard size")
    check.add_argument("--results", type=Path,
                       help="results file, resumed if it exists "
                            "(default: verify/NAME_START-STOP.jsonl)")
    check.add_argument("--json", type=Path, help="also write the merged result to this file")
    check.set_defaults(command=cmd_verify)


def add_live(commands) -> None:
    live = commands.add_parser("live", help="serve the built book with live cells on a local Jupyter server")
    live.add_argument("--site", type=Path, default=Path("_build/html"), help="the built site")
    live.add_argument("--port", type=int, default=8000, help="port of the site on 127.0.0.1 (default 8000)")
    live.add_argument(
        "--jupyter-port", type=int, default=8888,
        help="port of the Jupyter server that runs the live cells (default 8888)",
    )
    live.set_defaults(command=cmd_live)


def ray_options(args: argparse.Namespace):
    """The Ray options of ``--ray``/``--workers``/``--device``, or ``None`` without ``--ray``."""
    from toybook.scale import RayOptions, require_ray

    if args.ray is None:
        if args.workers is not None:
            raise ToybookError("--workers sizes a local Ray cluster: use it with --ray")
        return None
    require_ray()
    address = None if args.ray == "local" else args.ray
    return RayOptions(address=address, workers=args.workers,
                      gpu=args.device.startswith("cuda"))


def cmd_list(args: argparse.Namespace) -> Report:
    from toybook.checkpoint import summarize_evaluation
    from toybook.registry import presets, tasks
    from toybook.sweep import recorded_not_shipped
    from toybook.zoo import list_models

    lines = ["Tasks"]
    for name, cls in tasks().items():
        task = cls()
        inputs = "-" if task.n_inputs is None else f"{task.n_inputs:,}"
        lines.append(f"  {name:<12} n_ctx {task.n_ctx:<4} d_vocab {task.d_vocab:<3} "
                     f"d_vocab_out {task.d_vocab_out:<3} inputs {inputs:<14} {cls.description}")
    lines.append("Presets (toybook train NAME)")
    lines += [f"  {name:<12} {preset.train.steps} steps  {preset.summary}" for name, preset in presets().items()]
    lines.append("Shipped models (toybook.load_model(NAME))")
    models = list_models()
    if not models:
        lines.append("  none")
    for info in models:
        line = (
            f"  {info.name:<12} task {info.task:<12} {info.n_parameters:,} params  "
            f"{info.steps} steps  eval acc {info.metrics.get('eval_acc', float('nan')):.4%}"
        )
        for label, result in info.evaluations.items():
            line += f"  {label}: {summarize_evaluation(result)}"
        lines.append(line)
    unshipped = recorded_not_shipped()
    if unshipped:
        lines.append("Seed models recorded but not shipped (too large; the command trains one again)")
    lines += [f"  {result.name:<16} {result.measurement['n_wrong']:,} wrong of "
              f"{result.measurement['n']:,}  sha256 {result.weights_sha256[:16]}…  {result.command}"
              for result in unshipped]
    return Report("\n".join(lines))


def cmd_train(args: argparse.Namespace) -> Report:
    import torch

    from toybook.checkpoint import check_writable, save_checkpoint
    from toybook.registry import get_preset
    from toybook.sweep import seed_name
    from toybook.training import train

    preset = get_preset(args.name)
    device = check_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {
        key: value
        for key, value in (
            ("steps", args.steps), ("seed", args.seed), ("snapshot_every", args.snapshot_every)
        )
        if value is not None
    }
    train_config = dataclasses.replace(preset.train, **overrides)
    name = preset.name if args.seed is None else seed_name(preset.name, args.seed)
    out = args.out / name
    check_writable(out, overwrite=args.force)  # before training, not after it
    result = train(preset.task, preset.model, train_config, device=device, progress=not args.quiet)
    sidecar = save_checkpoint(result, out)
    final = result.final_metrics
    return Report(
        f"trained {preset.name} for {train_config.steps} steps in {result.wall_time_s:.1f} s: "
        f"train loss {final['train_loss']:.3g}, eval acc {final['eval_acc']:.4%}\n"
        f"saved {sidecar.with_suffix('.safetensors')} and {sidecar}"
    )


def cmd_eval(args: argparse.Namespace) -> Report:
    from toybook.zoo import SHIPPED_DIR, shipped_path

    path = args.checkpoint
    if path is None:  # a shipped model: resolve (and refuse) its name before loading torch
        path = shipped_path(args.task)
        if args.record:  # a named model is the one inside the installed package
            raise ToybookError(
                f"--record would rewrite the shipped checkpoint {args.task!r} inside the "
                f"installed package; copy its files ({args.task}.json, {args.task}.safetensors "
                f"from {SHIPPED_DIR}) into a folder of yours and pass --checkpoint "
                f"FOLDER/{args.task} --record"
            )
    import torch

    from toybook.checkpoint import load_checkpoint, record_evaluation
    from toybook.measurement import is_small, measure

    device = check_device(args.device)
    checkpoint = load_checkpoint(path, device=device)
    if args.checkpoint is not None and args.task not in (checkpoint.task.name, checkpoint.name):
        raise ToybookError(
            f"checkpoint {args.checkpoint} is a {checkpoint.task.name!r} model, not {args.task!r}"
        )
    task = checkpoint.task
    if args.threads:
        torch.set_num_threads(args.threads)
    lines = []
    if is_small(task) and args.n is not None and not args.all:
        lines.append(f"{task.name} has only {task.n_inputs:,} inputs: evaluating all of them "
                     f"(--n {args.n:,} does not apply)")
    result = measure(checkpoint.model, task, args.n, args.seed, exhaustive=args.all,
                     batch_size=args.batch_size, progress=not args.quiet)
    lines.append(result.report(checkpoint.name))
    if args.record:
        record_evaluation(checkpoint.path, result.label, result.result)
        lines.append(f"recorded as {result.label!r} in {checkpoint.path}")
    return Report("\n".join(lines))


def cmd_reproduce(args: argparse.Namespace) -> Report:
    from toybook.reproduce import reproduce
    from toybook.zoo import shipped_names, shipped_path

    if args.all == bool(args.names):
        raise ToybookError("name the shipped models to reproduce, or use --all (not both); "
                           f"shipped models: {', '.join(shipped_names())}")
    names = shipped_names() if args.all else args.names
    paths = [shipped_path(name) for name in names]  # unknown names fail before any training
    device = check_device(args.device)
    started = time.perf_counter()
    reports = []
    for path in paths:
        report = reproduce(path, args.out, device=device, progress=not args.quiet,
                           log=lambda line: print(line, flush=True))
        print(report, flush=True)
        reports.append(report)
    failed = [report.name for report in reports if not report.reproduced]
    return Report(f"{len(reports) - len(failed)} of {len(reports)} reproduced "
                  f"in {time.perf_counter() - started:.0f} s" + (f"; not: {', '.join(failed)}" if failed else ""),
                  status=1 if failed else 0)


def cmd_sweep(args: argparse.Namespace) -> Report:
    from toybook.registry import get_preset
    from toybook.sweep import parse_seeds, sweep

    get_preset(args.name)  # unknown names fail before anything else
    seeds = parse_seeds(args.seeds)
    ray = ray_options(args)
    device = args.device if ray is not None else check_device(args.device)  # Ray's GPUs
    results = sweep(args.name, seeds, args.out, device=device, progress=not args.quiet,
                    log=lambda line: print(line, flush=True), ray=ray, threads=args.threads)
    names = list(results[0].claims)
    labels = [name + ("" if results[0].claims[name].get("all_seeds", True) else "*")
              for name in names]
    lines = [f"\n{'seed':>5} {'wrong':>9} {'generalised':>11}  " + "  ".join(labels)]
    for result in results:
        lines.append(f"{result.seed:>5} {result.measurement['n_wrong']:>9,} "
                     f"{str(result.generalised_step or 'never'):>11}  " + "  ".join(
                         f"{result.claims[name]['value']:.3g}{'' if result.claims[name]['holds'] else '!'}"
                         .rjust(len(label)) for name, label in zip(names, labels)))
    held = sum(result.seed_claims_hold for result in results)
    lines.append(f"the claims made for every seed hold for {held} of {len(results)} seeds ('!' marks "
                 f"a claim that fails, '*' one made for the shipped model only); recorded in "
                 f"{args.out / 'sweeps' / (args.name + '.json')}")
    return Report("\n".join(lines))


def cmd_verify(args: argparse.Namespace) -> Report:
    import json

    from toybook.verify import verify

    if args.checkpoint is None:
        from toybook.zoo import shipped_path

        shipped_path(args.name)  # an unknown name fails before torch loads
    ray = ray_options(args)
    device = args.device if ray is not None else check_device(args.device)
    results = args.results or Path("verify") / (
        f"{args.name}_{args.start}-{'all' if args.stop is None else args.stop}.jsonl")
    result = verify(args.name, results, checkpoint=args.checkpoint, start=args.start,
                    stop=args.stop, shard_size=args.shard_size, batch_size=args.batch_size,
                    device=device, ray=ray, threads=args.threads,
                    log=lambda line: print(line, flush=True))
    if args.json:
        args.json.write_text(json.dumps(result.to_dict(), indent=1) + "\n")
    return Report(f"{result.report()}\nshards recorded in {results}", status=0 if result.n_wrong == 0 else 1)


def cmd_live(args: argparse.Namespace) -> Report:
    from toybook.live import LiveSite

    with LiveSite(args.site, port=args.port, jupyter_port=args.jupyter_port) as site:
        print(f"book with live cells: {site.url}/  (Jupyter server on port {site.jupyter_port}, "
              f"log {site.log_path})")
        print("open a chapter, then Live Code in the rocket menu; Ctrl-C stops both servers")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return Report("stopped")


if __name__ == "__main__":
    sys.exit(main())
