"""Scaling out: a sharded, resumable check (``toybook verify``) merges to what one unsharded
run gives, here and on Ray; a killed check resumes with no shard lost or counted twice; a
sweep through Ray records what a sequential sweep records; without Ray, ``--ray`` names
the extra to install.

The models checked make mistakes (briefly trained), so the counts, the wrong answers and
the margins compared are not all zeros. The Ray tests run a local cluster of 2 workers.
"""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict

import pytest
import torch

import toybook
from toybook.checkpoint import checkpoint_files, save_checkpoint
from toybook.evaluation import evaluate_exhaustively
from toybook.scale import RayOptions, ray_session
from toybook.sweep import sweep
from toybook.training import TrainConfig, train
from toybook.verify import plan, read_results, verify

MAX_OF_2 = toybook.get_task("max_of_2")
ADDITION = toybook.get_task("addition")
TWO_WORKERS = RayOptions(workers=2)


def quiet(line):
    pass


@pytest.fixture(scope="module")
def mistaken(tmp_path_factory):
    """Checkpoints that make mistakes: max_of_2's preset after 300 of its steps (about 200
    of 4,096 wrong), and a tiny addition model after 300 steps (most questions wrong)."""
    folder = tmp_path_factory.mktemp("mistaken")
    preset = toybook.get_preset("max_of_2")
    save_checkpoint(train(MAX_OF_2, preset.model, TrainConfig(**{**preset.train.__dict__, "steps": 300}),
                          progress=False), folder / "max_of_2")
    tiny = toybook.ModelConfig.for_task(ADDITION, n_layers=1, n_heads=2, d_model=32, d_head=16, d_mlp=64)
    save_checkpoint(train(ADDITION, tiny, TrainConfig(steps=300, eval_size=512), progress=False),
                    folder / "addition")
    return folder


def unsharded(path, task, start, stop, batch_size, list_wrong=10**7):
    """One ``evaluate_exhaustively`` call over the whole range, every wrong answer listed."""
    model = toybook.load_checkpoint(path).model
    return evaluate_exhaustively(model, task, start, stop, batch_size=batch_size,
                                 list_wrong=list_wrong, method="plain")


def assert_same_as_unsharded(merged, whole):
    assert merged.complete and merged.n == whole.n
    assert (merged.n_wrong, merged.wrong_per_pos) == (whole.n_wrong, whole.wrong_per_pos)
    assert merged.min_margin == whole.min_margin and merged.max_loss == whole.max_loss
    assert merged.loss == pytest.approx(whole.loss, rel=1e-12)  # a float sum in another order
    assert merged.wrong[: len(whole.wrong)] == whole.wrong
    key = lambda row: (row["margin"], row["rank"], row["answer"])
    assert merged.hardest == sorted(whole.hardest, key=key)


# -- runs in a subprocess first: each starts (and loses) its own Ray cluster --------------

def toybook_command(*args, **popen):
    return subprocess.Popen([sys.executable, "-m", "toybook.cli", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def test_a_killed_check_resumes_with_no_shard_lost_or_counted_twice(tmp_path):
    """The driver of a Ray check is killed (SIGKILL, its whole process group) once two shards
    are in; a line cut short is added as a kill mid-write leaves it; the rerun runs only the
    missing shards, and the file ends with every shard once."""
    results = tmp_path / "check.jsonl"
    args = ("verify", "addition_1l", "--stop", 40_000, "--shard-size", 2_000, "--results", results,
            "--ray", "--workers", 2)
    first = toybook_command(*args, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and first.poll() is None:
        if results.exists() and results.read_text().count("\n") >= 3:  # header + 2 shards
            break
        time.sleep(0.2)
    assert first.poll() is None, "the check ended (or failed) before it could be killed:\n" + first.stdout.read()
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    kept = read_results(results, plan("addition_1l", stop=40_000, shard_size=2_000)[0])
    assert 2 <= len(kept) < 20
    with results.open("a") as file:
        file.write('{"shard": 19, "start": 38000, "sto')
    second = toybook_command(*args)
    output, _ = second.communicate(timeout=600)
    assert second.returncode == 0, output
    assert f"{len(kept)} already in {results}, {20 - len(kept)} to run" in output
    records = [json.loads(line) for line in results.read_text().splitlines()[1:]]
    assert sorted(record["shard"] for record in records) == list(range(20))
    assert sum(record["result"]["n"] for record in records) == 40_000
    for index, record in kept.items():  # what was in before the kill is kept as it was
        assert records[[r["shard"] for r in records].index(index)] == record


def test_without_ray_the_ray_option_names_the_extra(tmp_path):
    """An import of ``ray`` that fails, as where the extra is not installed: ``--ray`` is one
    line naming ``toybook[scale]``; everything else works."""
    fake = tmp_path / "no_ray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError(\"No module named 'ray'\")\n")
    env = {**os.environ, "PYTHONPATH": str(fake.parent)}
    for args in (("sweep", "max_of_2", "--seeds", 1, "--ray"), ("verify", "max_of_2", "--ray")):
        process = toybook_command(*args, "--results" if args[0] == "verify" else "--out",
                                  tmp_path / "out", env=env)
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 2
        assert output == ("toybook: error: --ray needs Ray, which is not installed here: "
                          "pip install 'toybook[scale]'\n")
    process = toybook_command("verify", "max_of_2", "--results", tmp_path / "plain.jsonl", env=env)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0 and "4,096 correct, 0 wrong; 1 of 1 shards done" in output


# -- here, without Ray --------------------------------------------------------------------

@pytest.mark.parametrize("shard_size", [1000, 512])
def test_shards_merge_to_the_unsharded_result(mistaken, tmp_path, shard_size):
    merged = verify("max_of_2", tmp_path / "check.jsonl", checkpoint=mistaken / "max_of_2",
                    shard_size=shard_size, list_wrong=4096, log=quiet)
    assert merged.shards == -(-4096 // shard_size) and merged.n_wrong > 50
    assert merged.all_wrong_listed
    assert_same_as_unsharded(merged, unsharded(mistaken / "max_of_2", MAX_OF_2, 0, 4096,
                                               merged.check.batch_size))


def test_each_shard_lists_its_first_wrong_answers(mistaken, tmp_path):
    merged = verify("max_of_2", tmp_path / "check.jsonl", checkpoint=mistaken / "max_of_2",
                    shard_size=1024, list_wrong=3, log=quiet)
    whole = unsharded(mistaken / "max_of_2", MAX_OF_2, 0, 4096, merged.check.batch_size)
    expected = [row for first in range(0, 4096, 1024)
                for row in [w for w in whole.wrong if first <= w["rank"] < first + 1024][:3]]
    assert merged.wrong == expected and not merged.all_wrong_listed
    assert merged.n_wrong_answers == sum(whole.wrong_per_pos) > len(merged.wrong)
    for row in merged.wrong:  # each listed answer is wrong, as the model and the task say
        tokens = MAX_OF_2.inputs(row["rank"], row["rank"] + 1)
        assert MAX_OF_2.targets(tokens)[0, 0] == row["target"] != row["predicted"]


def test_a_finished_check_is_read_back_not_rerun(mistaken, tmp_path):
    results = tmp_path / "check.jsonl"
    first = verify("max_of_2", results, checkpoint=mistaken / "max_of_2", shard_size=2048, log=quiet)
    lines = []
    again = verify("max_of_2", results, checkpoint=mistaken / "max_of_2", shard_size=2048, log=lines.append)
    assert lines == [f"{mistaken / 'max_of_2'}: 2 shards of 2,048 ranks, 2 already in {results}, 0 to run"]
    assert again == first


def test_addition_enumerates_every_question_in_a_fixed_order():
    assert ADDITION.n_inputs == 10**10
    assert ADDITION.inputs(0, 1)[0].tolist() == [0] * 5 + [10] + [0] * 5 + [12] + [0] * 6
    assert ADDITION.inputs(10**10 - 1)[0].tolist() == [9] * 5 + [10] + [9] * 5 + [12, 1, 9, 9, 9, 9, 8]
    rank = 12_345 * 10**5 + 67_890
    assert ADDITION.inputs(rank, rank + 1).tolist() == ADDITION.encode([12_345], [67_890]).tolist()
    sample = ADDITION.generate(1000, seed=3)
    ranks = ADDITION.rank(sample)
    assert (ADDITION.inputs(0, 0).shape[0], ranks.min() >= 0, ranks.max() < 10**10) == (0, True, True)
    assert all(ADDITION.inputs(r, r + 1)[0].tolist() == row.tolist() for r, row in zip(ranks.tolist(), sample))
    assert toybook.get_task("addition", n_digits=10).n_inputs is None  # 10^20 ranks: past int64


# -- on a local Ray cluster of 2 workers --------------------------------------------------

@pytest.fixture(scope="module")
def local_ray():
    with ray_session(TWO_WORKERS):
        yield TWO_WORKERS


@pytest.mark.slow
def test_a_million_addition_questions_on_ray_merge_to_the_unsharded_result(mistaken, tmp_path, local_ray):
    """10^6 consecutive questions from rank 5,000,000,123 in 4 shards on 2 Ray workers (the
    checkpoint's files travel with each task), against one unsharded run here."""
    start, stop = 5_000_000_123, 5_001_000_123
    merged = verify("addition", tmp_path / "check.jsonl", checkpoint=mistaken / "addition",
                    start=start, stop=stop, shard_size=250_000, ray=local_ray, log=quiet)
    assert merged.n == 10**6 and merged.check.batch_size == 1250 and merged.shards == 4
    assert 0 < merged.n_wrong < merged.n and len(merged.wrong) == 4 * merged.check.list_wrong
    whole = unsharded(mistaken / "addition", ADDITION, start, stop, 1250, merged.check.list_wrong)
    assert_same_as_unsharded(merged, whole)  # shard 0's list is the first of the whole's
    for first in range(start, stop, 250_000):  # each shard lists its own first wrong answers
        rows = [row for row in merged.wrong if first <= row["rank"] < first + 250_000]
        assert len(rows) == merged.check.list_wrong and rows[0]["rank"] < first + 100
    tokens = torch.cat([ADDITION.inputs(row["rank"], row["rank"] + 1) for row in merged.wrong[::97]])
    positions = [ADDITION.answer_names.index(row["answer"]) for row in merged.wrong[::97]]
    targets = ADDITION.targets(tokens)[range(len(tokens)), positions]
    assert targets.tolist() == [row["target"] for row in merged.wrong[::97]]
    assert all(row["target"] != row["predicted"] for row in merged.wrong)


def test_a_check_on_ray_records_what_a_check_here_records(mistaken, tmp_path, local_ray):
    records = {}
    for where, ray in (("here", None), ("ray", local_ray)):
        verify("max_of_2", tmp_path / f"{where}.jsonl", checkpoint=mistaken / "max_of_2",
               shard_size=1024, ray=ray, threads=1, log=quiet)
        lines = [json.loads(line) for line in (tmp_path / f"{where}.jsonl").read_text().splitlines()]
        for record in lines[1:]:
            del record["result"]["wall_time_s"]
        records[where] = lines[:1] + sorted(lines[1:], key=lambda record: record["shard"])
    assert records["ray"] == records["here"]
    assert sum(record["result"]["n_wrong"] for record in records["ray"][1:]) > 50


@pytest.mark.slow
def test_a_sweep_on_ray_records_what_a_sequential_sweep_records(tmp_path, local_ray):
    """Seeds 21 and 22 of max_of_2, trained one after another here and as two Ray tasks,
    both with 1 thread per seed: the same weights, measurements and claims."""
    here = sweep("max_of_2", [21, 22], tmp_path / "here", progress=False, log=quiet, threads=1)
    lines = []
    on_ray = sweep("max_of_2", [21, 22], tmp_path / "ray", log=lines.append, ray=local_ray)
    assert [r.seed for r in on_ray] == [21, 22] and any("trained in" in line for line in lines)
    recorded = {where: json.loads((tmp_path / where / "sweeps" / "max_of_2.json").read_text())
                for where in ("here", "ray")}
    for record in recorded.values():
        for row in record["seeds"]:
            assert row.pop("train_seconds") > 0
    assert recorded["ray"] == recorded["here"]
    assert [asdict(r) | {"train_seconds": 0} for r in on_ray] == [asdict(r) | {"train_seconds": 0} for r in here]
    assert "1 thread" in here[0].trained_on
    for seed in (21, 22):
        for here_file, ray_file in zip(checkpoint_files(tmp_path / "here" / f"max_of_2_s{seed}"),
                                       checkpoint_files(tmp_path / "ray" / f"max_of_2_s{seed}")):
            assert here_file.exists() == ray_file.exists()
            if here_file.exists() and here_file.suffix == ".safetensors":
                assert here_file.read_bytes() == ray_file.read_bytes()


def test_a_job_s_named_error_comes_back_as_itself(local_ray):
    """A ToybookError raised inside a Ray task reaches the caller unwrapped, with its words;
    a job that works returns its value."""
    from toybook.errors import ToybookError
    from toybook.scale import run_jobs
    from toybook.sweep import parse_seeds

    assert list(run_jobs(parse_seeds, [("1-3",)], local_ray)) == [(0, [1, 2, 3])]
    with pytest.raises(ToybookError, match="seeds must look like 1-10, 3 or 1,4,7; got 'x'") as error:
        list(run_jobs(parse_seeds, [("x",)], local_ray))
    assert type(error.value) is ToybookError
