"""Training: binarisation (both engines), the KL weight, the training step (scratchvae/lecture/training.py).

The lecture's binarize and the engine's draw different bits with the same
distribution (tests/test_engine.py); each is tested here on its own.
"""

import numpy as np
import pytest

from scratchvae.engine import training as engine_training
from scratchvae.lecture import training as lecture_training
from scratchvae.tools.data import binarize_fixed, load_mnist, minibatches


@pytest.fixture(scope="module")
def mnist(mnist_root):
    """Real MNIST from $SCRATCHVAE_DATA (conftest's mnist_root skips when it is not set)."""
    return load_mnist("mnist", data_dir=mnist_root, download=False)


@pytest.fixture(params=["lecture", "engine"])
def binarize(request):
    """Each engine's binarize, on its own."""
    return {"lecture": lecture_training, "engine": engine_training}[request.param].binarize


def test_binarize_is_reproducible_and_binary(binarize):
    x = np.random.default_rng(0).random((64, 784))
    a = binarize(x, np.random.default_rng(42))
    b = binarize(x, np.random.default_rng(42))
    c = binarize(x, np.random.default_rng(43))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.float32 and a.shape == x.shape
    assert set(np.unique(a)) <= {0.0, 1.0}


def test_binarize_mean_matches_x(binarize):
    # Each column is K independent Bernoulli(p) draws, so its mean has standard deviation
    # sqrt(p (1 - p) / K). A 5-sigma band fails with probability < 6e-7 per column, < 3e-5 for
    # all 51 together; p = 0 and p = 1 must be exact (u in [0, 1) is never < 0, always < 1).
    K = 4000
    p = np.linspace(0.0, 1.0, 51)
    x = np.broadcast_to(p, (K, p.size))  # (K, 51)
    mean = binarize(x, np.random.default_rng(7)).mean(axis=0, dtype=np.float64)
    tolerance = 5 * np.sqrt(p * (1 - p) / K) + 1e-6
    assert np.all(np.abs(mean - p) <= tolerance), np.max(np.abs(mean - p) / tolerance)
    assert mean[0] == 0.0 and mean[-1] == 1.0


def test_binarize_leaves_the_global_rng_alone(binarize):
    np.random.seed(0)
    state = np.random.get_state()[1].copy()
    binarize(np.full((3, 4), 0.5, dtype=np.float32), np.random.default_rng(0))
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_binarize_draws_as_in_published_runs():
    # Pins which random bits each pixel of the engine's binarize (what training runs on)
    # uses: output element i (C order) compares with the 16 bits (word[i >> 2] >> 16 (i & 3))
    # & 0xFFFF. Recorded before rows= existed; a change here would change every published
    # training run.
    x = np.random.default_rng(0).random((5, 13)).astype(np.float32)
    b = engine_training.binarize(x, np.random.default_rng(1))
    assert np.packbits(b.astype(bool)).tobytes().hex() == "0eeaf3fe6fa568ed00"


def test_the_lecture_s_binarize_compares_a_uniform_with_x():
    # x_bin = (u < x), u ~ U[0, 1) drawn by rng.random, one per pixel in C order
    x = np.random.default_rng(0).random((5, 13)).astype(np.float32)
    rng, same = np.random.default_rng(1), np.random.default_rng(1)
    expected = (same.random(x.shape) < x).astype(np.float32)
    np.testing.assert_array_equal(lecture_training.binarize(x, rng), expected)
    assert rng.bit_generator.state == same.bit_generator.state


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows", [[49, 3, 3, 0, 17, 3, 25], []], ids=["repeats", "empty"])
def test_binarize_rows_is_bit_for_bit_the_gathered_rows(rows, dtype, binarize):
    # D = 13, so the 4-pixel words straddle rows; rows repeat and come in any order.
    x = np.random.default_rng(0).random((50, 13)).astype(dtype)
    rows = np.array(rows, dtype=np.int64)
    rng_rows, rng_gather = np.random.default_rng(1), np.random.default_rng(1)
    got = binarize(x, rng_rows, rows=rows)
    np.testing.assert_array_equal(got, binarize(x[rows], rng_gather))
    assert got.shape == (len(rows), 13) and got.dtype == np.float32
    assert rng_rows.bit_generator.state == rng_gather.bit_generator.state


def test_binarize_rows_on_mnist_is_the_old_training_step(mnist, binarize):
    # The first minibatches of an epoch, drawn as the training loop draws them.
    rng_rows, rng_gather = np.random.default_rng(0), np.random.default_rng(0)
    batches = minibatches(len(mnist.x_train), 128, np.random.default_rng(0))
    for _, idx in zip(range(5), batches):
        np.testing.assert_array_equal(binarize(mnist.x_train, rng_rows, rows=idx),
                                      binarize(mnist.x_train[idx], rng_gather))
    assert rng_rows.bit_generator.state == rng_gather.bit_generator.state


@pytest.mark.parametrize("rows, message", [
    (np.array([0.0, 1.0]), r"rows: expected a 1-dimensional array of integer indices, "
                           r"got float64 of shape \(2,\)"),
    (np.array([True, False, True, False]), r"integer indices, got bool of shape \(4,\)"),
    (np.array([[0, 1], [2, 3]], dtype=np.int64), r"rows: expected a 1-dimensional array of "
                                                 r"integer indices, got int64 of shape \(2, 2\)"),
    (np.array([0, 4, 1]), r"rows: expected indices in \[0, 4\) \(the rows of x\), "
                          r"got 4 at index 1"),
    (np.array([2, 3, -1]), r"rows: expected indices in \[0, 4\) \(the rows of x\), "
                           r"got -1 at index 2"),
], ids=["float", "bool", "2-D", "too large", "negative"])
def test_binarize_rows_errors_name_rows(rows, message, binarize):
    x = np.zeros((4, 3))
    with pytest.raises(ValueError, match=message):
        binarize(x, np.random.default_rng(0), rows=rows)


@pytest.mark.parametrize("x, message", [
    (np.array([0.5, 1.5]), r"x: expected values in \[0, 1\], got 1.5 at index \(1,\)"),
    (np.array([-0.1, 0.5]), r"x: expected values in \[0, 1\], got -0.1"),
    (np.array([np.nan, 0.5]), "x: expected finite values, got nan"),
    (np.array([0, 255], dtype=np.uint8), r"x: expected values in \[0, 1\], got 255.0"),
])
def test_binarize_rejects_x_outside_unit_interval(x, message):
    """The lecture scans the values; the engine does not (fit checks the training set once)."""
    with pytest.raises(ValueError, match=message):
        lecture_training.binarize(x, np.random.default_rng(0))
    with pytest.raises(ValueError, match=message):
        binarize_fixed(x)


def test_binarize_argument_errors(binarize):
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="rng: expected a numpy.random.Generator"):
        binarize(x, np.random)
    with pytest.raises(ValueError, match=r"x: expected a 2-dimensional array \(N, D\) when rows "
                                         r"is given, got shape \(6,\)"):
        binarize(x.reshape(-1), np.random.default_rng(0), rows=np.array([0]))


def test_binarize_fixed_is_a_threshold():
    x = np.array([[0.0, 0.49, 0.5, 0.51, 1.0]])
    np.testing.assert_array_equal(binarize_fixed(x), [[0, 0, 0, 1, 1]])
    np.testing.assert_array_equal(binarize_fixed(x, threshold=0.0), [[0, 1, 1, 1, 1]])
    assert binarize_fixed(x).dtype == np.float32
    with pytest.raises(ValueError, match="threshold: expected a number in"):
        binarize_fixed(x, threshold=1.0)


# --- dequantisation, the learning-rate schedule, train_step's pixels -------------------


def test_dequantize_puts_each_grey_level_in_its_own_bin_afresh_each_call():
    from scratchvae.lecture.training import dequantize

    levels = np.tile(np.arange(256, dtype=np.float32) / 255, (400, 1))  # (400, 256): every byte
    rng = np.random.default_rng(0)
    y, again = dequantize(levels, rng), dequantize(levels, rng)
    assert y.dtype == np.float32 and y.shape == levels.shape
    assert not np.array_equal(y, again)  # fresh noise each call
    k = np.arange(256)
    # y in [k/256, (k+1)/256] (float32 rounding may touch the upper edge)
    assert np.all(y >= k / 256) and np.all(y <= (k + 1) / 256)
    # u ~ U[0, 1): the mean position inside the bin is 1/2, its variance 1/12
    u = y.astype(np.float64) * 256 - k
    assert abs(u.mean() - 0.5) < 0.01 and abs(u.var() - 1 / 12) < 0.005
    # seeded: the same generator state gives the same draw; rows= is the gathered rows
    assert np.array_equal(dequantize(levels, np.random.default_rng(3)),
                          dequantize(levels, np.random.default_rng(3)))
    rows = np.array([5, 0, 5])
    assert np.array_equal(dequantize(levels, np.random.default_rng(4), rows),
                          dequantize(levels[rows], np.random.default_rng(4)))


@pytest.mark.parametrize("x, message", [(np.array([[1.5]]), "x: expected values in"),
                                        (np.array([[np.nan]]), "x: expected finite")])
def test_dequantize_names_bad_input(x, message):
    from scratchvae.lecture.training import dequantize

    with pytest.raises(ValueError, match=message):
        dequantize(x, np.random.default_rng(0))


def test_learning_rate_decays_geometrically_per_epoch():
    from scratchvae.lecture.training import learning_rate

    rates = [learning_rate(e, 1e-3, 0.1 ** (1 / 250)) for e in (1, 2, 251)]
    assert rates[0] == 1e-3 and rates[1] < rates[0]
    assert rates[2] == pytest.approx(1e-4)
    assert learning_rate(7, 0.5, 1.0) == 0.5


def test_train_step_speaks_the_command_line_s_words():
    """One vocabulary end to end: `scratchvae train --binarize` choices are train_step's pixels."""
    assert lecture_training.PIXELS == ("dynamic", "fixed", "dequantize", "none")


@pytest.mark.parametrize("pixels", ["dynamic", "fixed", "dequantize", "none"])
def test_train_step_prepares_the_rows_as_asked(pixels, monkeypatch):
    from scratchvae.lecture import training
    from scratchvae.lecture.optim import SGD
    from scratchvae.lecture.vae import VAE

    images = np.random.default_rng(0).random((20, 6)).astype(np.float32)
    model = VAE(6, hidden=(4,), latent_dim=2, likelihood="gaussian")
    seen = []
    forward = model.negative_elbo_forward
    monkeypatch.setattr(model, "negative_elbo_forward",
                        lambda x, eps, beta=None: seen.append(x) or forward(x, eps, beta))
    rows = np.array([3, 1])
    training.train_step(model, SGD(model, lr=1e-3), images, rows, np.random.default_rng(1),
                        pixels=pixels)
    expected = {"dynamic": model.ops.binarize(images, np.random.default_rng(1), rows),
                "dequantize": training.dequantize(images, np.random.default_rng(1), rows),
                "fixed": images[rows], "none": images[rows]}[pixels]
    assert np.array_equal(seen[0], expected)
    for old_word in ("grey", "binarize", "as_is", None):
        with pytest.raises(ValueError, match="pixels: expected one of"):
            training.train_step(model, SGD(model, lr=1e-3), images, rows, np.random.default_rng(1),
                                pixels=old_word)
