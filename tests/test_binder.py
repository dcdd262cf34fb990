"""The Binder configuration is valid: repo2docker accepts it and installs toybook with a
CPU torch from the whole repository (no Docker needed: --no-build prints the Dockerfile)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

REPO2DOCKER = shutil.which("jupyter-repo2docker", path=str(Path(sys.executable).parent)) or shutil.which("jupyter-repo2docker")


def test_binder_requirements_pin_a_cpu_torch_and_install_the_package():
    lines = [line.strip() for line in (ROOT / "binder" / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines
    assert any(line.startswith("torch==") and line.endswith("+cpu") for line in lines)
    assert "-e .[book]" in lines
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"


def test_repo2docker_accepts_the_configuration():
    if REPO2DOCKER is None:
        pytest.skip("jupyter-repo2docker is not installed: pip install -e '.[test]'")
    result = subprocess.run(
        [REPO2DOCKER, "--no-build", "--no-run", "--debug", str(ROOT)],
        capture_output=True, text=True, timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "python=3.11" in output
    copy_repo = output.index("COPY --chown=0:0 src/ ${REPO_DIR}/")
    install = output.index('pip install --no-cache-dir -r "binder/requirements.txt"')
    assert copy_repo < install  # `-e .` needs the whole repository in place first
    assert "graphviz" in output  # binder/apt.txt: the circuit diagrams need Graphviz's dot
