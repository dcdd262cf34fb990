"""The `toybook` command: list, train, eval, and one-line errors."""

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from toybook.checkpoint import read_sidecar
import toybook
from toybook.cli import main, parser
from toybook.zoo import SHIPPED_DIR


def run_cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_list(capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    for name in ("list_update", "addition", "majority", "max_of_2"):
        assert name in out
    assert "exhaustive: 4,096/4,096 correct" in out
    assert any(line.split()[0] == "addition_s2" for line in out.splitlines() if line.startswith("  "))
    assert "recorded but not shipped" not in out  # every recorded seed ships


def test_list_names_a_seed_recorded_without_its_weights(capsys, monkeypatch):
    from toybook import sweep

    result = sweep.SeedResult(2, "addition_s2", {"n": 1_000_000, "n_wrong": 0}, {}, 900, 6000, 363.6,
                              "8ab193a7" * 8, "cuda")
    monkeypatch.setattr(sweep, "recorded_not_shipped", lambda: [result])
    code, out, _ = run_cli(capsys, "list")
    unshipped = out.split("Seed models recorded but not shipped", 1)[1].splitlines()[1:]
    assert code == 0 and unshipped == [
        "  addition_s2      0 wrong of 1,000,000  sha256 8ab193a78ab193a7…  "
        "toybook train addition --seed 2 --device cuda"]


def test_eval_shipped(capsys):
    code, out, _ = run_cli(capsys, "eval", "max_of_2")
    assert code == 0 and "on all 4,096 inputs: 4,096 correct, 0 wrong" in out
    assert "does not apply" not in out


def test_eval_says_when_n_does_not_apply(capsys):
    code, out, _ = run_cli(capsys, "eval", "max_of_2", "--n", "5", "--quiet")
    assert code == 0 and "max_of_2 has only 4,096 inputs: evaluating all of them (--n 5 does not apply)" in out
    assert "on all 4,096 inputs" in out


def test_train_then_eval(capsys, tmp_path):
    """--out is a folder, as for reproduce and sweep; a seed model is named like a sweep's."""
    out_path = tmp_path / "max_of_2_s3"
    code, out, _ = run_cli(capsys, "train", "max_of_2", "--steps", "30", "--seed", "3", "--out", str(tmp_path), "--quiet")
    assert code == 0 and "trained max_of_2 for 30 steps" in out
    assert out_path.with_suffix(".safetensors").exists() and out_path.with_suffix(".json").exists()
    code, out, _ = run_cli(capsys, "eval", "max_of_2", "--checkpoint", str(out_path), "--record")
    assert code == 0 and "on all 4,096 inputs:" in out and "recorded as 'exhaustive'" in out
    recorded = read_sidecar(out_path)["evaluations"]["exhaustive"]
    assert recorded["n"] == 4096 and "min_margin" in recorded and "wrong_by_group" in recorded


def test_train_checks_its_output_before_training(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, out, err = run_cli(capsys, "train", "max_of_2", "--out", str(blocker / "runs"), "--quiet")
    assert code == 2 and "cannot write a checkpoint into" in err and "trained" not in out
    existing = tmp_path / "max_of_2"
    code, _, _ = run_cli(capsys, "train", "max_of_2", "--steps", "5", "--out", str(tmp_path), "--quiet")
    before = existing.with_suffix(".json").read_bytes()
    code, out, err = run_cli(capsys, "train", "max_of_2", "--steps", "6", "--out", str(tmp_path), "--quiet")
    assert code == 2 and f"checkpoint {existing} already exists" in err and "--force" in err
    assert existing.with_suffix(".json").read_bytes() == before
    code, out, _ = run_cli(capsys, "train", "max_of_2", "--steps", "6", "--out", str(tmp_path), "--quiet", "--force")
    assert code == 0 and read_sidecar(existing)["training"]["steps"] == 6


def test_record_into_the_shipped_package_is_refused(capsys):
    before = (SHIPPED_DIR / "max_of_2.json").read_bytes()
    code, out, err = run_cli(capsys, "eval", "max_of_2", "--record")
    assert code == 2 and "would rewrite the shipped checkpoint 'max_of_2'" in err
    assert "--checkpoint FOLDER/max_of_2 --record" in err and out == ""
    assert (SHIPPED_DIR / "max_of_2.json").read_bytes() == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "max_of_3"], "no training preset 'max_of_3'"),
        (["eval", "nonsense"], "no shipped model 'nonsense'"),
        (["eval", "nonsense", "--record"], "no shipped model 'nonsense'"),
        (["eval", "max_of_2", "--checkpoint", "/nonexistent/x"], "does not exist"),
        (["train", "max_of_2", "--device", "cuda"], "CUDA is not available"),
        (["train", "max_of_2", "--device", "tpu"], "unknown device 'tpu'"),
        (["sweep", "max_of_3", "--seeds", "1"], "no training preset 'max_of_3'"),
        (["sweep", "max_of_2", "--seeds", "one"], "seeds must look like 1-10, 3 or 1,4,7"),
    ],
)
def test_errors_are_one_line(capsys, args, message):
    code, _, err = run_cli(capsys, *args)
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_eval_checkpoint_of_another_task(capsys):
    code, _, err = run_cli(capsys, "eval", "addition", "--checkpoint", str(SHIPPED_DIR / "max_of_2"))
    assert code == 2 and "is a 'max_of_2' model, not 'addition'" in err


@pytest.mark.parametrize("args", [["train", "max_of_2", "--steps", "0"], ["frobnicate"], []])
def test_bad_arguments_exit_2(capsys, args):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_console_script_is_installed():
    script = shutil.which("toybook", path=str(Path(sys.executable).parent)) or shutil.which("toybook")
    assert script is not None, "the toybook console script is not installed"
    result = subprocess.run([script, "eval", "bogus"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("toybook: error: no shipped model 'bogus'")
    assert result.stderr.count("\n") == 1


def test_eval_all_enumerates_and_records(capsys, tmp_path):
    for suffix in (".safetensors", ".json"):
        shutil.copy(SHIPPED_DIR / f"max_of_2{suffix}", tmp_path / f"max_of_2{suffix}")
    code, out, _ = run_cli(capsys, "eval", "max_of_2", "--checkpoint", str(tmp_path / "max_of_2"),
                           "--all", "--batch-size", "1000", "--quiet", "--record")
    assert code == 0 and "on all 4,096 inputs: 4,096 correct, 0 wrong" in out
    recorded = read_sidecar(tmp_path / "max_of_2")["evaluations"]["exhaustive"]
    assert recorded["n"] == 4096 and recorded["batch_size"] == 1000 and recorded["min_margin"] > 0


def test_live_needs_a_built_site(capsys, tmp_path):
    code = main(["live", "--site", str(tmp_path)])
    _, err = capsys.readouterr()
    assert code == 2 and "holds no built site (no index.html)" in err


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == f"toybook {toybook.__version__}\n"
    commands = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in commands.choices.items():
        for action in sub._actions:
            assert action.help, f"toybook {name} {'/'.join(action.option_strings) or action.dest} has no help"
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "toybook reproduce max_of_2" in capsys.readouterr().out


HEAVY = "heavy = sorted(m for m in ('torch', 'transformer_lens', 'safetensors') if m in sys.modules)\n"


def run_probe(lines: str) -> None:
    """Run ``lines`` in a fresh interpreter, which must exit cleanly (its asserts hold)."""
    result = subprocess.run([sys.executable, "-c", lines], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_help_and_version_load_neither_torch_nor_transformer_lens():
    run_probe("import sys, toybook, toybook.cli\n"
              "toybook.cli.parser().format_help()\n"
              + HEAVY + "assert not heavy, heavy\n"
              "assert toybook.load_model is toybook.zoo.load_model\n"
              "toybook.load_model('max_of_2')\n"
              "assert 'torch' in sys.modules and 'transformer_lens' in sys.modules")


def test_list_reads_names_configs_and_sidecars_without_torch():
    """``toybook list`` prints every task, preset and shipped model from the task folders and
    the sidecars alone: neither torch nor TransformerLens is imported (about 0.3 s, not 6)."""
    run_probe("import sys, contextlib, io\n"
              "from toybook.cli import main\n"
              "out = io.StringIO()\n"
              "with contextlib.redirect_stdout(out):\n"
              "    assert main(['list']) == 0\n"
              + HEAVY + "assert not heavy, heavy\n"
              "assert 'Shipped models' in out.getvalue() and 'max_of_2_s10' in out.getvalue()")


def test_lazy_public_names():
    assert set(toybook.__all__) <= set(dir(toybook))
    assert all(getattr(toybook, name) is not None for name in toybook.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        toybook.nonsense
