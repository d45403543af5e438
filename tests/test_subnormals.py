"""The `scratchvae` command flushes subnormal numbers to zero in every thread; a library import does not.

Set in scratchvae/tools/start.py before NumPy loads (docs/optim.md#subnormals).
Each check runs the real command line in a subprocess and reads the mode it
measured inside BLAS (a product whose every term is subnormal: 0 when flushed),
as `scratchvae train` records it in config.json.
"""

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scratchvae.tools import start

SCRATCHVAE = shutil.which("scratchvae", path=Path(sys.executable).parent) or "scratchvae"
X86 = platform.machine().lower() in ("x86_64", "amd64")


def run(*args, env=None):
    done = subprocess.run([*args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MPLBACKEND": "Agg", **(env or {})})
    assert done.returncode == 0, done.stderr
    return done


def train(out, mnist_root, *first, env=None, more=()):
    return run(SCRATCHVAE, *first, "train", "--limit", "512", "--epochs", "1", "--iwae-k", "0",
               "--hidden", "32", "--out", str(out), "--data-dir", mnist_root, "--no-download", *more,
               env=env)


def recorded(out):
    return json.loads((Path(out) / "config.json").read_text())["subnormals"]


@pytest.mark.skipif(not X86, reason="flush-to-zero is an x86-64 MXCSR setting; elsewhere nothing changes")
def test_the_command_flushes_in_every_blas_thread_and_the_flag_or_variable_keeps_ieee(mnist_root, tmp_path):
    train(tmp_path / "default", mnist_root)
    assert recorded(tmp_path / "default") == "flush-to-zero"
    train(tmp_path / "flag", mnist_root, "--ieee-subnormals")
    assert recorded(tmp_path / "flag") == "IEEE"
    train(tmp_path / "variable", mnist_root, env={start.IEEE_VARIABLE: "1"})
    assert recorded(tmp_path / "variable") == "IEEE"


@pytest.mark.skipif(not X86, reason="flush-to-zero is an x86-64 MXCSR setting; elsewhere nothing changes")
def test_resuming_under_the_other_mode_warns_that_the_run_will_not_be_bit_identical(mnist_root, tmp_path):
    train(tmp_path / "run", mnist_root)
    done = train(tmp_path / "run", mnist_root, "--ieee-subnormals", more=("--resume", "--epochs", "2"))
    assert ("warning: the run was trained with subnormal numbers flushed to zero, this process has "
            "them kept (IEEE)") in done.stderr
    assert "will not be bit-identical" in done.stderr
    same = train(tmp_path / "run", mnist_root, more=("--resume", "--epochs", "3"))
    assert "warning: the run was trained" not in same.stderr


def test_importing_the_package_keeps_ieee_arithmetic():
    script = ("import scratchvae, scratchvae.tools.cli, scratchvae.engine.ops, scratchvae.lecture.vae\n"
              "from scratchvae.tools.start import subnormals\nprint(subnormals())")
    assert run(sys.executable, "-c", script).stdout.strip() == "IEEE"
    # and this process, where the gradient checks and the extreme-value tests run
    assert start.subnormals() == "IEEE"


def test_calling_the_command_in_a_process_changes_nothing():
    from scratchvae.tools.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["--ieee-subnormals", "--version"])
    assert stop.value.code == 0
    assert start.subnormals() == "IEEE"


def test_elsewhere_than_x86_64_nothing_changes(monkeypatch):
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert start.set_flush_to_zero() is False
    assert start.subnormals() == "IEEE"
