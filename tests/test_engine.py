"""The engine against the lecture: every op the same name, signature and numbers.

``scratchvae.lecture.ops.__all__`` lists every op a model may call. For each,
``scratchvae.engine.ops`` must have a version that takes the lecture's parameters (it may
add keyword-only ones with defaults, such as ``out=``), and agree with the
lecture forward and backward: float64 to 1e-12 relative, float32 to 1e-5. Ops
the engine takes from the lecture as they are count as agreeing, and are
listed, so that the split stays visible. Then: one training step under both
engines gives the same loss and gradients; the lecture imports nothing from
the engine; the engine's kernels never run past an array's end.
"""

import ast
import inspect
import re
from pathlib import Path

import numpy as np
import pytest

from scratchvae.engine import ops as engine_ops
from scratchvae.engine.dense import dense_backward, dense_forward, dense_relu_backward, dense_relu_forward
from scratchvae.lecture import activations as lecture_activations
from scratchvae.lecture import dense as lecture_dense
from scratchvae.lecture import ops as lecture_ops
from scratchvae.lecture.gradcheck import assert_gradients_match
from scratchvae.lecture.optim import make_optimizer
from scratchvae.lecture.training import train_step
from scratchvae.lecture.vae import VAE
from scratchvae.tools.gradcheck_report import op_checks

# Every function the lecture's ops module lists (its classes and OPTIMIZERS are tested below).
OP_NAMES = [name for name in lecture_ops.__all__ if callable(getattr(lecture_ops, name))
            and not isinstance(getattr(lecture_ops, name), type)]

LECTURE = Path(__file__).resolve().parents[1] / "scratchvae" / "lecture"
TOL = {np.float64: 1e-12, np.float32: 1e-5}
# Taken from the lecture as they are: not on the standard model's training path.
SHARED = {"kl_diagonal", "gaussian_log_density", "kl_full_covariance", "gaussian_log_likelihood"}


@pytest.mark.parametrize("name", OP_NAMES)
def test_the_engine_has_every_lecture_op_with_its_signature(name):
    lecture, engine = getattr(lecture_ops, name), getattr(engine_ops, name)
    if engine is lecture:
        assert name.rsplit("_", 1)[0] in SHARED, f"{name}: the engine should have its own"
        return
    ours = list(inspect.signature(lecture).parameters.values())
    theirs = list(inspect.signature(engine).parameters.values())
    assert theirs[: len(ours)] == ours, f"{name}: {inspect.signature(engine)} vs {inspect.signature(lecture)}"
    for extra in theirs[len(ours):]:
        assert extra.kind is extra.KEYWORD_ONLY and extra.default is not extra.empty, extra


def check_inputs(rng):
    """op name -> (forward, inputs, wrt): the gradient-check inputs, shared with `scratchvae gradcheck`."""
    return {name: (inputs, wrt) for name, _, _, inputs, wrt in op_checks(rng, lecture_ops)}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("op", [n.removesuffix("_forward") for n in OP_NAMES if n.endswith("_forward")])
def test_engine_and_lecture_agree_forward_and_backward(op, dtype, rng):
    inputs, wrt = check_inputs(rng)[op]
    inputs = {k: v.astype(dtype) for k, v in inputs.items()}
    forward_kwargs = {"slope": 0.1} if op == "leaky_relu" else {}
    results = []
    for ops in (lecture_ops, engine_ops):
        out, cache = getattr(ops, f"{op}_forward")(*inputs.values(), **forward_kwargs)
        dout = np.linspace(-1, 1, np.size(out)).reshape(np.shape(out)).astype(dtype)
        grads = getattr(ops, f"{op}_backward")(dout, cache)
        grads = grads if isinstance(grads, tuple) else (grads,)
        results.append([out, *[g for g in grads if g is not None]])
    for got, want in zip(*results[::-1]):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=TOL[dtype], atol=TOL[dtype] * np.abs(want).max())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("k, batch_rows", [(7, 20000), (30, 8), (3, 4)])
def test_importance_weighted_bound_is_the_lecture_with_the_same_noise(dtype, k, batch_rows, rng):
    # one model, its weights under both engines; same seed -> same samples of z
    lecture_model = VAE(12, hidden=(8,), latent_dim=3, seed=0, dtype=dtype)
    engine_model = VAE(12, hidden=(8,), latent_dim=3, seed=0, dtype=dtype, ops=engine_ops)
    x = (rng.random((5, 12)) < 0.4).astype(dtype)
    lecture_rng, engine_rng = np.random.default_rng(3), np.random.default_rng(3)
    want = lecture_ops.importance_weighted_bound(lecture_model, x, k, lecture_rng)
    fractions = []
    got = engine_ops.importance_weighted_bound(engine_model, x, k, engine_rng, batch_rows=batch_rows,
                                               progress=fractions.append)
    assert got.dtype == want.dtype == np.float64 and got.shape == (5,)
    np.testing.assert_allclose(got, want, rtol={np.float64: 1e-10, np.float32: 1e-5}[dtype])
    assert engine_rng.bit_generator.state == lecture_rng.bit_generator.state
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


@pytest.mark.parametrize("batch_rows", [20000, 4])
def test_importance_weighted_bound_is_the_lecture_for_gaussian_pixels_too(batch_rows, rng):
    """Not the fused Bernoulli pass: the model's own likelihood, streamed in the same chunks."""
    model = VAE(6, hidden=(4,), latent_dim=2, likelihood="gaussian", dtype=np.float64)
    x = rng.random((3, 6))
    np.testing.assert_allclose(
        engine_ops.importance_weighted_bound(model, x, 10, np.random.default_rng(1), batch_rows=batch_rows),
        lecture_ops.importance_weighted_bound(model, x, 10, np.random.default_rng(1)), rtol=1e-12)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "softplus"])
@pytest.mark.parametrize("optimizer", ["adam", "sgd", "adagrad"])
def test_one_training_step_is_the_same_under_both_engines(activation, optimizer):
    # 0/1 images taken as they are: each engine's binarize draws its own bits
    images = (np.random.default_rng(0).random((40, 30)) < 0.5).astype(np.float32)
    results = []
    for ops in (lecture_ops, engine_ops):
        model = VAE(30, hidden=(16,), latent_dim=4, activation=activation, seed=3, ops=ops)
        opt = make_optimizer(optimizer, model, 1e-2)
        loss, _ = train_step(model, opt, images, np.arange(32), np.random.default_rng(5), pixels="none")
        results.append((loss, {k: g.copy() for k, g in model.grads.items()},
                        {k: p.copy() for k, p in model.params.items()}))
    (loss_a, grads_a, params_a), (loss_b, grads_b, params_b) = results
    assert loss_a == pytest.approx(loss_b, rel=1e-5)
    for k in grads_a:
        np.testing.assert_allclose(grads_b[k], grads_a[k], rtol=1e-4, atol=1e-6 * np.abs(grads_a[k]).max())
        np.testing.assert_allclose(params_b[k], params_a[k], rtol=1e-4, atol=1e-6)


def test_the_numba_engine_fuses_dense_and_relu_and_the_lecture_does_not():
    lecture = VAE(10, hidden=(6,), latent_dim=2)
    engine = VAE(10, hidden=(6,), latent_dim=2, ops=engine_ops)
    assert [type(m).__name__ for m in lecture.encoder.modules] == ["Dense", "ReLU"]
    assert [type(m).__name__ for m in engine.encoder.modules] == ["DenseReLU"]
    for k in lecture.params:  # the same initial weights
        np.testing.assert_array_equal(lecture.params[k], engine.params[k])


def test_the_lecture_imports_nothing_from_the_engine():
    for path in sorted(LECTURE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            assert not any(n.startswith("scratchvae.engine") for n in names), f"{path.name}: {names}"


def test_ops_that_are_not_a_module_are_refused_by_name():
    with pytest.raises(ValueError, match=r"^ops: expected a module of ops, such as scratchvae.lecture.ops"):
        VAE(10, ops="numba")


def test_the_ops_modules_list_the_same_names_and_the_engine_classes_extend_the_lecture_s():
    assert engine_ops.__all__ == lecture_ops.__all__
    for name in lecture_ops.__all__:
        assert hasattr(engine_ops, name), name
    for name in ("Dense", "MLP"):
        ours, theirs = getattr(lecture_ops, name), getattr(engine_ops, name)
        assert issubclass(theirs, ours)
        assert inspect.signature(theirs) == inspect.signature(ours), name
    assert engine_ops.OPTIMIZERS.keys() == lecture_ops.OPTIMIZERS.keys()
    for name, cls in engine_ops.OPTIMIZERS.items():
        assert issubclass(cls, lecture_ops.OPTIMIZERS[name])


def test_a_model_runs_on_the_lecture_s_ops_unless_handed_others():
    assert VAE(10, hidden=(6,), latent_dim=2).ops is lecture_ops
    assert VAE(10, hidden=(6,), latent_dim=2, ops=engine_ops).ops is engine_ops


@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid", "softplus", "leaky_relu"])
def test_engine_backward_refuses_a_dout_of_the_wrong_shape_or_kind(name):
    forward, backward = getattr(engine_ops, f"{name}_forward"), getattr(engine_ops, f"{name}_backward")
    _, cache = forward(np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"^dout: expected shape \(3, 4\)"):
        backward(np.ones((3, 5)), cache)
    with pytest.raises(ValueError, match=r"^dout: expected a real-valued array"):
        backward(np.ones((3, 4), complex), cache)


def test_engine_dense_relu_backward_refuses_a_mismatched_dout():
    """A wrong-shaped dout used to reach the kernel and crash the process (SIGSEGV)."""
    _, cache = dense_relu_forward(np.ones((4, 3)), np.ones((3, 2)), np.zeros(2))
    with pytest.raises(ValueError, match=r"^dout: expected shape \(4, 2\)"):
        dense_relu_backward(np.ones((5, 7)), cache)


def test_engine_kl_backward_refuses_a_short_dkl():
    """A short dkl used to make the kernel read past its end and return garbage."""
    _, cache = engine_ops.kl_standard_normal_forward(np.ones((4, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"^dkl: expected shape \(4\), got \(2,\)"):
        engine_ops.kl_standard_normal_backward(np.ones(2), cache)


# --- the fused dense + ReLU, the engine's one composition --------------------------------


@pytest.mark.parametrize("slope", [0.0, 0.1])
def test_dense_relu_gradcheck(slope, rng):
    x = rng.normal(size=(4, 5))
    W = rng.normal(size=(5, 3))
    b = rng.normal(size=3)
    # keep every pre-activation clear of the kink at 0 (the stencil spans +-2e-3)
    b += np.where(np.abs(x @ W + b) < 0.05, 0.2, 0.0).max(axis=0)
    assert np.abs(x @ W + b).min() > 0.01
    assert_gradients_match(
        lambda x, W, b: dense_relu_forward(x, W, b, slope),
        dense_relu_backward,
        {"x": x, "W": W, "b": b},
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("slope", [0.0, 0.01])
def test_fused_dense_relu_equals_the_composition(dtype, slope, rng):
    """Same function, same numbers: the fusion only saves passes over memory."""
    x, W, b = (rng.normal(size=s).astype(dtype) for s in [(6, 5), (5, 4), (4,)])
    dout = rng.normal(size=(6, 4)).astype(dtype)
    fused, fused_cache = dense_relu_forward(x, W, b, slope)
    pre, dense_cache = lecture_dense.dense_forward(x, W, b)
    out, act_cache = lecture_activations.leaky_relu_forward(pre, slope)
    np.testing.assert_array_equal(fused, out)
    dx, dW, db = lecture_dense.dense_backward(lecture_activations.leaky_relu_backward(dout, act_cache),
                                              dense_cache)
    fdx, fdW, fdb = dense_relu_backward(dout, fused_cache)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    for got, want in ((fdx, dx), (fdW, dW), (fdb, db)):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    assert dense_relu_backward(dout, fused_cache, input_grad=False)[0] is None


@pytest.mark.parametrize("backward", [dense_backward, dense_relu_backward])
def test_backward_out_must_fit_the_parameters(backward, rng):
    """A wrong out array is refused: a kernel would write past its end."""
    W, b = rng.normal(size=(3, 2)), np.zeros(2)
    forward = dense_forward if backward is dense_backward else dense_relu_forward
    _, cache = forward(rng.normal(size=(4, 3)), W, b)
    dout = rng.normal(size=(4, 2))
    dW, db = np.empty_like(W), np.empty_like(b)
    assert backward(dout, cache, out=(dW, db))[1] is dW
    for out, name in [((dW, np.empty(3)), "out[1]"), ((dW.T, db), "out[0]"),
                      ((dW.astype(np.float32), db), "out[0]"), ((dW, [0.0, 0.0]), "out[1]")]:
        with pytest.raises(ValueError, match=rf"^{re.escape(name)}: expected a C-contiguous"):
            backward(dout, cache, out=out)


# --- binarize: the engine's 16-bit draw has the lecture's distribution, not its bits --------


def test_the_engine_s_binarize_is_its_kernel_reference_on_the_generator_s_words(rng):
    """The engine's result is a function of the raw words it draws: bit for bit the reference's."""
    from scratchvae.engine import kernels
    from scratchvae.engine.training import binarize

    x = rng.random((50, 13)).astype(np.float32)
    for rows in (None, np.array([49, 3, 3, 0, 17])):
        draw, words = np.random.default_rng(7), np.random.default_rng(7)
        got = binarize(x, draw, rows)
        table, index = (x.reshape(1, -1), np.zeros(1, np.intp)) if rows is None else (x, rows)
        want = kernels.bernoulli_from_bits_reference(table, index, kernels.random_bits(words, got.size))
        np.testing.assert_array_equal(got, want.reshape(got.shape))
        assert draw.bit_generator.state == words.bit_generator.state


# p on a grid, and where 2^16 p is n + 1/2 (a tie), or within a float of 0 and 1
P_GRID = np.concatenate([np.linspace(0, 1, 101), [2.0**-17, 3 * 2.0**-17, 0.5 - 2.0**-17, 1 - 2.0**-17,
                                                   2.0**-30, 1 - 2.0**-30]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binarize_is_the_lecture_s_in_distribution(dtype):
    """The engine's P(x_bin = 1) is 2^16 p rounded (halves down) over 2^16, exactly, so within
    2^-17 of p: counted over all 2^16 values a pixel's 16 bits can take. The lecture's is p:
    its frequency over K draws stays within five binomial standard deviations."""
    from scratchvae.engine import kernels
    from scratchvae.lecture.training import binarize

    k = np.arange(2**16, dtype=np.uint64).reshape(-1, 4)  # every 16-bit integer, four to a word
    words = np.bitwise_or.reduce(k << np.array([0, 16, 32, 48], dtype=np.uint64), axis=1)  # (2^14,)
    assert np.array_equal(kernels.sixteen_bit_integers(words, 2**16), np.arange(2**16))
    p = P_GRID.astype(dtype)
    engine = np.array([kernels.bernoulli_from_bits_reference(np.full((1, 2**16), q), np.zeros(1, np.intp),
                                                             words).sum() for q in p]) / 2**16
    np.testing.assert_array_equal(engine, np.ceil(2**16 * p.astype(np.float64) - 0.5) / 2**16)
    assert np.all(np.abs(engine - p) <= 2.0**-17)
    K = 20000
    draws = binarize(np.broadcast_to(p, (K, p.size)), np.random.default_rng(0))  # (K, len(p))
    lecture = draws.mean(axis=0, dtype=np.float64)
    assert np.all(np.abs(lecture - p) <= 5 * np.sqrt(p * (1 - p) / K))
    assert engine[0] == lecture[0] == 0 and engine[100] == lecture[100] == 1


# --- the importance-weighted bound, streamed ----------------------------------------------


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("k", [3, 100])
def test_importance_weighted_bound_does_not_depend_on_batch_rows(likelihood, k, rng):
    """Chunks of 7 pairs (several examples per chunk for k = 3, one example split for k = 100)
    against one chunk: the same noise in the same order, the same bound."""
    model = VAE(12, hidden=(8,), latent_dim=3, likelihood=likelihood, seed=0, dtype=np.float64,
                ops=engine_ops)
    x = (rng.random((5, 12)) < 0.5).astype(np.float64)
    bound = engine_ops.importance_weighted_bound
    small = bound(model, x, k, np.random.default_rng(4), batch_rows=7)
    np.testing.assert_allclose(small, bound(model, x, k, np.random.default_rng(4), batch_rows=10000),
                               rtol=1e-12, atol=0)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_importance_weighted_bound_decodes_at_most_batch_rows(likelihood, monkeypatch):
    """Memory is O(batch_rows D) whatever B and k: the decoder never sees more rows at once."""
    model = VAE(12, hidden=(8,), latent_dim=3, likelihood=likelihood, seed=0, dtype=np.float64,
                ops=engine_ops)
    x = (np.random.default_rng(0).random((5, 12)) < 0.5).astype(np.float64)
    rows, fractions, forward = [], [], model.decoder.forward

    def spy(z, *args, **kwargs):
        rows.append(z.shape[0])
        return forward(z, *args, **kwargs)

    monkeypatch.setattr(model.decoder, "forward", spy)
    engine_ops.importance_weighted_bound(model, x, 30, np.random.default_rng(0), batch_rows=64,
                                         progress=fractions.append)
    assert max(rows) <= 64 and sum(rows) == 5 * 30
    assert np.all(np.diff(fractions) > 0) and fractions[-1] == 1.0
    with pytest.raises(ValueError, match="batch_rows"):
        engine_ops.importance_weighted_bound(model, x, 5, np.random.default_rng(0), batch_rows=0)
