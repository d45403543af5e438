"""``scratchvae bench``: it runs, reports, and times what it says it times.

Timings themselves are never asserted: they depend on the machine and its load.
"""

import json
import statistics
import sys

import numpy as np
import pytest

from scratchvae.tools import bench, bench_contenders, bench_jax, bench_machine
from scratchvae.tools.cli import main

# The shapes of the eleven products of one step of the 784-400-20 model, B = 128.
STEP_SHAPES = [
    ((128, 784), (784, 400)),  # x @ W1
    ((128, 400), (400, 40)),  # h1 @ W2
    ((128, 20), (20, 400)),  # z @ W3
    ((128, 400), (400, 784)),  # h2 @ W4
    ((400, 128), (128, 784)),  # dW4 = h2.T @ dlogits
    ((128, 784), (784, 400)),  # dh2 = dlogits @ W4.T
    ((20, 128), (128, 400)),  # dW3 = z.T @ dh2
    ((128, 400), (400, 20)),  # dz = dh2 @ W3.T
    ((400, 128), (128, 40)),  # dW2 = h1.T @ dstats
    ((128, 40), (40, 400)),  # dh1 = dstats @ W2.T
    ((784, 128), (128, 400)),  # dW1 = x.T @ dh1
]
RESULT_KEYS = {"config", "machine", "load_average", "timings", "order", "summary", "ratios",
               "compile", "gradcheck"}


@pytest.fixture
def no_mnist(monkeypatch, tmp_path):
    """No MNIST anywhere load_mnist looks: --quick falls back to random images."""
    monkeypatch.setenv("SCRATCHVAE_DATA", str(tmp_path / "nothing"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def tiny_images(rows=128):
    """One minibatch: an "epoch" of one step, quick even with NUMBA_DISABLE_JIT=1."""
    return np.random.default_rng(0).random((rows, 784), dtype=np.float32)


def test_quick_bench_prints_the_table_and_writes_the_json(no_mnist, tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    for text in ("contender", "scratchvae", "floor", "pytorch", "jax", "ratios (median over the rounds",
                 "load average", "vector extensions:", "compile: cold", "gradcheck:", "random images"):
        assert text in out
    result = json.loads(path.read_text())
    assert set(result) == RESULT_KEYS
    assert result["config"]["steps_per_epoch"] == bench.QUICK_STEPS
    assert result["config"]["repeats"] == len(result["order"]) == 2
    for name, seconds in result["timings"].items():
        if seconds is not None:  # pytorch when installed
            assert len(seconds) == 2 and min(seconds) > 0
            assert result["summary"][name]["min"] == min(seconds)
    paired = [s / f for s, f in zip(result["timings"]["scratchvae"], result["timings"]["floor"])]
    assert result["ratios"]["scratchvae/floor"] == pytest.approx(statistics.median(paired), rel=1e-12)
    for cache in ("cold", "warm"):
        assert result["compile"][cache]["first_step_seconds"] > 0
        assert result["compile"][cache]["second_step_seconds"] > 0
    gradcheck = result["gradcheck"]
    assert gradcheck["passed"] == gradcheck["checks"] > 0
    assert gradcheck["fresh_process_exit_code"] == 0 and gradcheck["fresh_process_seconds"] > 0


def test_the_contenders_take_turns(no_mnist):
    result = bench.run(tiny_images(), repeats=3, startup=False, log=lambda line: None)
    # Each round starts with the next contender: the order rotates, whether
    # two contenders take part (no torch) or three.
    first_round = result["order"][0]
    for i, order in enumerate(result["order"]):
        shift = i % len(first_round)
        assert order == first_round[shift:] + first_round[:shift]
    assert all(sorted(order) == sorted(result["order"][0]) for order in result["order"])


def test_each_epoch_runs_part_by_part_with_the_contenders_taking_turns(monkeypatch):
    calls = []

    def recording(name):
        def contender(*args, **kwargs):
            def epoch(start, stop):
                calls.append((name, start, stop))
                return 0.5
            return epoch
        return contender

    monkeypatch.setattr(bench, "scratchvae_contender", recording("scratchvae"))
    monkeypatch.setattr(bench, "floor_contender", recording("floor"))
    monkeypatch.setattr(bench, "pytorch_contender", lambda *args, **kwargs: None)
    monkeypatch.setattr(bench, "jax_contender", lambda *args, **kwargs: None)
    n = 5 * 128 + 7  # six steps, the last of 7 images: one step per part
    result = bench.run(np.zeros((n, 784), np.float32), repeats=2, startup=False,
                       log=lambda line: None)
    parts = [(a, min(a + 128, n)) for a in range(0, n, 128)]
    warmup = [("scratchvae", 0, 256), ("floor", 0, 256)]
    first = [(name, a, b) for a, b in parts for name in ("scratchvae", "floor")]
    second = [(name, a, b) for a, b in parts for name in ("floor", "scratchvae")]
    assert calls == warmup + first + second
    assert result["timings"]["scratchvae"] == result["timings"]["floor"] == [3.0, 3.0]
    assert result["config"]["parts"] == 6 and result["ratios"]["scratchvae/floor"] == 1.0


def test_without_torch_the_row_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    result = bench.run(tiny_images(), repeats=1, startup=False, log=lambda line: None)
    assert result["timings"]["pytorch"] is None and result["machine"]["torch"] is None
    assert result["ratios"]["scratchvae/pytorch"] is None
    assert result["timings"]["scratchvae"][0] > 0
    report = bench.format_report(result)
    assert "pytorch     not installed (pip install torch; in a checkout, pip install -e" in report
    assert "scratchvae/pytorch n/a" in report


def test_without_jax_the_row_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)  # `import jax` raises ImportError
    assert bench_jax.jax_version() is None
    assert bench_jax.jax_contender(tiny_images(), 1, bench_contenders.STANDARD) is None
    result = bench.run(tiny_images(), repeats=1, startup=False, log=lambda line: None)
    assert result["timings"]["jax"] is None and result["machine"]["jax"] is None
    assert result["ratios"]["scratchvae/jax"] is None and result["ratios"]["jax/floor"] is None
    report = bench.format_report(result)
    assert "jax         not installed (pip install jax; in a checkout, pip install -e" in report
    assert "scratchvae/jax n/a" in report and "jax/floor n/a" in report


def test_jax_contender_trains_the_standard_model():
    pytest.importorskip("jax")
    # Two whole minibatches and one of 40 images, each the same two grey levels: learnable.
    images = np.repeat(np.where(np.arange(784) < 392, 0.9, 0.05).astype(np.float32)[None],
                       2 * 128 + 40, axis=0)
    epoch = bench_jax.jax_contender(images, 1, bench_contenders.STANDARD)
    before = epoch.params()
    assert before["enc"]["W"].shape == (784, 400) and before["out"]["b"].shape == (784,)
    assert all(p.dtype == np.float32 for layer in before.values() for p in layer.values())
    assert epoch(0, len(images)) > 0
    assert epoch.steps() == 3  # the scan's two, then the smaller last minibatch
    assert not np.array_equal(epoch.params()["enc"]["W"], before["enc"]["W"])
    for _ in range(7):
        epoch(0, len(images))
    assert epoch.steps() == 8 * 3
    losses = epoch.losses
    assert len(losses) == 8 and all(np.isfinite(losses))
    # The negative ELBO starts near 784 log 2 = 543 nats and falls towards the pixels'
    # entropy, 392 (H(0.9) + H(0.05)) = 205 nats (it was 222 after these 24 steps).
    assert 450 < losses[0] < 650 and 200 < losses[-1] < 300
    assert epoch(128, 256) > 0 and epoch.steps() == 8 * 3 + 1  # a new part length compiles


AVX2_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7R32
flags\t\t: fpu vme sse sse2 ssse3 fma cx16 sse4_1 sse4_2 avx f16c avx2 bmi2
processor\t: 1
flags\t\t: fpu vme sse sse2 ssse3 fma cx16 sse4_1 sse4_2 avx f16c avx2 bmi2
"""
AVX512_CPUINFO = """processor\t: 0
model name\t: AMD EPYC 9R14
flags\t\t: fpu sse2 fma sse4_1 sse4_2 avx avx2 avx512f avx512dq avx512cd avx512bw avx512vl avx512_vnni
"""


def test_vector_extensions_read_from_cpuinfo_flags():
    assert bench_machine.vector_extensions(AVX2_CPUINFO) == "AVX2 (no AVX-512); sse4_2, avx, avx2, fma"
    assert bench_machine.vector_extensions(AVX512_CPUINFO) == (
        "AVX-512 (avx512f, avx512_vnni, avx512bw, avx512cd, avx512dq, avx512vl); "
        "sse4_2, avx, avx2, fma")
    assert bench_machine.vector_extensions("flags\t: sse2 sse4_2\n") == "SSE4.2 (no AVX); sse4_2"
    # Not x86 (aarch64 says "Features"), or no /proc/cpuinfo: None, not an error.
    assert bench_machine.vector_extensions("Features\t: fp asimd\n") is None


def test_vector_extensions_without_proc_cpuinfo(monkeypatch):
    def unreadable(self):
        raise FileNotFoundError(self)
    monkeypatch.setattr(bench_machine.Path, "read_text", unreadable)
    assert bench_machine.vector_extensions() is None


def test_the_report_names_the_vector_extensions(monkeypatch):
    monkeypatch.setattr(bench_machine, "vector_extensions", lambda: "AVX2 (no AVX-512); avx2")
    monkeypatch.setattr(bench, "machine_info", bench_machine.machine_info)
    result = bench.run(tiny_images(), repeats=1, startup=False, log=lambda line: None)
    assert "vector extensions: AVX2 (no AVX-512); avx2; NumPy's SIMD: " in bench.format_report(result)


def test_floor_step_is_the_eleven_products_of_the_real_step(rng):
    products = bench_contenders.floor_products(128, rng)
    assert [(a.shape, b.shape) for a, b, _ in products] == STEP_SHAPES
    # Transposed operands are views, as in the layers' x.T @ dout.
    assert not products[4][0].flags.c_contiguous and products[4][0].base is not None
    assert all(out.shape == (a.shape[0], b.shape[1]) for a, b, out in products)


def test_floor_epoch_calls_eleven_products_per_step(monkeypatch):
    calls = []
    matmul = np.matmul

    def counting(a, b, out=None):
        calls.append((a.shape, b.shape))
        return matmul(a, b, out=out)

    epoch = bench_contenders.floor_contender()
    monkeypatch.setattr(np, "matmul", counting)
    assert epoch(10, 10 + 2 * 128 + 5) > 0  # three steps, the last of 5 rows
    assert len(calls) == 3 * 11
    assert calls[:11] == calls[11:22] == STEP_SHAPES
    assert calls[22] == ((5, 784), (784, 400))


def test_bench_without_data_says_where_it_looked(no_mnist, capsys):
    assert main(["bench", "--no-download"]) == 2
    err = capsys.readouterr().err
    assert "scratchvae bench: error: mnist data not found" in err


def test_blas_threads_read_from_the_environment(monkeypatch):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    assert bench_machine.blas_threads() == (3, "$OPENBLAS_NUM_THREADS")


def test_run_refuses_zero_repeats():
    with pytest.raises(ValueError, match="repeats: expected an integer >= 1, got 0"):
        bench.run(tiny_images(), repeats=0, startup=False)


def test_the_scratchvae_contender_trains_with_the_engines_optimiser():
    """The benchmark times what `scratchvae train` runs: the Numba engine's Adam, not the lecture's."""
    from scratchvae.engine.optim import Adam as EngineAdam
    from scratchvae.tools.bench_contenders import _standard_model

    _, optimizer = _standard_model(0)
    assert isinstance(optimizer, EngineAdam)


def test_bench_steps_times_a_saved_model_beside_a_fresh_one(no_mnist, tmp_path, capsys):
    from scratchvae.lecture.vae import VAE
    from scratchvae.tools.checkpoints import save_model

    save_model(VAE(784, hidden=(16,), latent_dim=3, seed=5), tmp_path / "model.npz")
    path = tmp_path / "steps.json"
    assert main(["bench", "--quick", "--steps", str(tmp_path / "model.npz"), "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "(784-16-3) beside a fresh model of the same shape: 2 rounds of 2 steps each" in out
    assert "trained / fresh: step " in out and "subnormal numbers: IEEE" in out  # in-process: IEEE
    result = json.loads(path.read_text())
    for model in ("fresh", "trained"):
        for part in ("step", "forward", "backward"):
            seconds = result["times"][model][part]
            assert len(seconds) == 2 * 2 and min(seconds) > 0  # warm-up steps left out
            assert result["median"][model][part] == statistics.median(seconds)
        # the parts are timed inside the step
        assert result["median"][model]["step"] > result["median"][model]["backward"]
    assert result["ratio"]["backward"] == pytest.approx(
        result["median"]["trained"]["backward"] / result["median"]["fresh"]["backward"])


def test_bench_steps_counts_subnormal_gradient_entries():
    from scratchvae.tools.bench_steps import subnormal_entries

    tiny = np.finfo(np.float32).tiny
    grads = [np.array([[tiny / 2, 0.0], [1.0, -tiny / 8]], dtype=np.float32),
             np.array([np.finfo(np.float64).tiny / 3, tiny / 2], dtype=np.float64)]
    assert subnormal_entries(grads) == 3  # float64's tiny/3 is subnormal; float32's tiny/2 is not, in float64


def test_bench_steps_on_a_missing_or_misshapen_checkpoint_says_so(no_mnist, tmp_path, capsys):
    from scratchvae.lecture.vae import VAE
    from scratchvae.tools.checkpoints import save_model

    assert main(["bench", "--quick", "--steps", str(tmp_path / "none.npz")]) == 2
    assert f"scratchvae bench: error: --steps: {tmp_path / 'none.npz'}: no such file" in capsys.readouterr().err
    save_model(VAE(10, hidden=(4,), latent_dim=2), tmp_path / "small.npz")
    assert main(["bench", "--quick", "--steps", str(tmp_path / "small.npz")]) == 2
    assert "expected 10 pixels per image (the model's input_dim), got 784" in capsys.readouterr().err
