"""scratchvae.tools.progress: a bar on a terminal, one line per stage elsewhere, and the compile notice."""

import io
import os
import subprocess
import sys

import pytest

from conftest import JIT_DISABLED
from scratchvae.tools.compiling import COMPILE_NOTICE, notice_compiling
from scratchvae.tools.progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def run_stage(stream, **options):
    with Progress(400, "log-likelihood estimate, k=500", unit="image", stream=stream,
                  **options) as bar:
        bar.advance_to(100)
        bar.set_postfix("halfway soon")
        bar.update(100)
    return stream.getvalue()


def test_off_a_terminal_a_stage_is_one_plain_line():
    assert run_stage(io.StringIO()) == "log-likelihood estimate, k=500: 400 images...\n"
    assert run_stage(io.StringIO(), announce=False) == ""
    assert run_stage(io.StringIO(), enabled=False) == ""


def test_on_a_terminal_a_bar_with_rate_and_time_left_is_drawn_then_erased():
    shown = run_stage(Terminal())
    assert "log-likelihood estimate, k=500" in shown and "image/s" in shown and "<" in shown
    assert "\n" not in shown and shown.endswith("\r")  # erased in place, no line left behind
    assert run_stage(Terminal(), enabled=False) == ""


def test_bytes_are_announced_with_a_prefix():
    stream = io.StringIO()
    Progress(9_912_422, "downloading train-images", unit="B", unit_scale=True,
             stream=stream).close()
    assert stream.getvalue() == "downloading train-images: 9.91MB...\n"


def kernels_compiled_in_fresh_process(cache, compile_one=False):
    """kernels_compiled() in a new Python whose Numba cache is the folder ``cache``."""
    code = ("from scratchvae.tools.compiling import kernels_compiled\n"
            "from scratchvae.engine import kernels\nimport numpy as np\n"
            + ("kernels.leaky_relu(np.zeros(3), 0.1, np.zeros(3))\n" if compile_one else "")
            + "print(kernels_compiled())")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip() == "True"


@pytest.mark.skipif(JIT_DISABLED, reason="nothing is compiled with NUMBA_DISABLE_JIT=1")
def test_an_empty_numba_cache_is_cold_until_a_kernel_is_compiled_into_it(tmp_path):
    assert not kernels_compiled_in_fresh_process(tmp_path)
    assert kernels_compiled_in_fresh_process(tmp_path, compile_one=True)
    assert kernels_compiled_in_fresh_process(tmp_path)


def test_the_notice_is_written_only_for_a_cold_cache(monkeypatch):
    for compiled, expected in ((True, ""), (False, COMPILE_NOTICE + "\n")):
        monkeypatch.setattr("scratchvae.tools.compiling.kernels_compiled", lambda: compiled)
        stream = io.StringIO()
        assert notice_compiling(stream) is not compiled
        assert stream.getvalue() == expected
