"""The engine against the lecture: every op the same name, signature and numbers.

``scratchvae.lecture.ops.OP_NAMES`` lists every op a model may call. For each,
the Numba engine's version must exist, take the lecture's parameters (it may
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

from scratchvae.engine import NUMBA_OPS
from scratchvae.engine.dense import dense_backward, dense_forward, dense_relu_backward, dense_relu_forward
from scratchvae.lecture import activations as lecture_activations
from scratchvae.lecture import dense as lecture_dense
from scratchvae.lecture.gradcheck import assert_gradients_match
from scratchvae.lecture.ops import LECTURE_OPS, OP_NAMES
from scratchvae.lecture.optim import make_optimizer
from scratchvae.lecture.training import train_step
from scratchvae.lecture.vae import VAE
from scratchvae.tools.gradcheck_report import op_checks

LECTURE = Path(__file__).resolve().parents[1] / "scratchvae" / "lecture"
TOL = {np.float64: 1e-12, np.float32: 1e-5}
# Taken from the lecture as they are: not on the standard model's training path.
SHARED = {"kl_diagonal", "gaussian_log_density", "kl_full_covariance", "gaussian_log_likelihood"}


@pytest.mark.parametrize("name", OP_NAMES)
def test_the_engine_has_every_lecture_op_with_its_signature(name):
    lecture, engine = getattr(LECTURE_OPS, name), getattr(NUMBA_OPS, name)
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
    return {name: (inputs, wrt) for name, _, _, inputs, wrt in op_checks(rng, LECTURE_OPS)}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("op", [n.removesuffix("_forward") for n in OP_NAMES if n.endswith("_forward")])
def test_engine_and_lecture_agree_forward_and_backward(op, dtype, rng):
    inputs, wrt = check_inputs(rng)[op]
    inputs = {k: v.astype(dtype) for k, v in inputs.items()}
    forward_kwargs = {"slope": 0.1} if op == "leaky_relu" else {}
    results = []
    for ops in (LECTURE_OPS, NUMBA_OPS):
        out, cache = getattr(ops, f"{op}_forward")(*inputs.values(), **forward_kwargs)
        dout = np.linspace(-1, 1, np.size(out)).reshape(np.shape(out)).astype(dtype)
        grads = getattr(ops, f"{op}_backward")(dout, cache)
        grads = grads if isinstance(grads, tuple) else (grads,)
        results.append([out, *[g for g in grads if g is not None]])
    for got, want in zip(*results[::-1]):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=TOL[dtype], atol=TOL[dtype] * np.abs(want).max())


@pytest.mark.parametrize("rows", [None, np.array([3, 0, 3, 1])])
def test_binarize_is_bit_for_bit_the_lecture(rows, rng):
    x = rng.random((5, 9)).astype(np.float32)
    lecture_rng, engine_rng = np.random.default_rng(7), np.random.default_rng(7)
    lecture = LECTURE_OPS.binarize(x, lecture_rng, rows)
    np.testing.assert_array_equal(NUMBA_OPS.binarize(x, engine_rng, rows), lecture)
    # and both leave the generator in the same state
    assert engine_rng.bit_generator.state == lecture_rng.bit_generator.state


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("k, batch_rows", [(7, 20000), (30, 8), (3, 4)])
def test_importance_weighted_bound_is_the_lecture_with_the_same_noise(dtype, k, batch_rows, rng):
    # one model, its weights under both engines; same seed -> same samples of z
    lecture_model = VAE(12, hidden=(8,), latent_dim=3, seed=0, dtype=dtype, engine="numpy")
    engine_model = VAE(12, hidden=(8,), latent_dim=3, seed=0, dtype=dtype, engine="numba")
    x = (rng.random((5, 12)) < 0.4).astype(dtype)
    lecture_rng, engine_rng = np.random.default_rng(3), np.random.default_rng(3)
    want = LECTURE_OPS.importance_weighted_bound(lecture_model, x, k, lecture_rng, batch_rows)
    fractions = []
    got = NUMBA_OPS.importance_weighted_bound(engine_model, x, k, engine_rng, batch_rows, fractions.append)
    assert got.dtype == want.dtype == np.float64 and got.shape == (5,)
    np.testing.assert_allclose(got, want, rtol={np.float64: 1e-10, np.float32: 1e-5}[dtype])
    assert engine_rng.bit_generator.state == lecture_rng.bit_generator.state
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_importance_weighted_bound_falls_back_to_the_lecture_for_gaussian_pixels(rng):
    model = VAE(6, hidden=(4,), latent_dim=2, likelihood="gaussian", dtype=np.float64)
    x = rng.random((3, 6))
    np.testing.assert_array_equal(
        NUMBA_OPS.importance_weighted_bound(model, x, 10, np.random.default_rng(1)),
        LECTURE_OPS.importance_weighted_bound(model, x, 10, np.random.default_rng(1)))


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "softplus"])
@pytest.mark.parametrize("optimizer", ["adam", "sgd", "adagrad"])
def test_one_training_step_is_the_same_under_both_engines(activation, optimizer):
    images = np.random.default_rng(0).random((40, 30)).astype(np.float32)
    results = []
    for engine in ("numpy", "numba"):
        model = VAE(30, hidden=(16,), latent_dim=4, activation=activation, seed=3, engine=engine)
        opt = make_optimizer(optimizer, model, 1e-2)
        loss, _ = train_step(model, opt, images, np.arange(32), np.random.default_rng(5))
        results.append((loss, {k: g.copy() for k, g in model.grads.items()},
                        {k: p.copy() for k, p in model.params.items()}))
    (loss_a, grads_a, params_a), (loss_b, grads_b, params_b) = results
    assert loss_a == pytest.approx(loss_b, rel=1e-5)
    for k in grads_a:
        np.testing.assert_allclose(grads_b[k], grads_a[k], rtol=1e-4, atol=1e-6 * np.abs(grads_a[k]).max())
        np.testing.assert_allclose(params_b[k], params_a[k], rtol=1e-4, atol=1e-6)


def test_the_numba_engine_fuses_dense_and_relu_and_the_lecture_does_not():
    lecture = VAE(10, hidden=(6,), latent_dim=2, engine="numpy")
    engine = VAE(10, hidden=(6,), latent_dim=2, engine="numba")
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


def test_an_unknown_engine_is_refused_by_name():
    with pytest.raises(ValueError, match=r"^engine: expected one of 'numpy', 'numba'"):
        VAE(10, engine="jax")


@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid", "softplus", "leaky_relu"])
def test_engine_backward_refuses_a_dout_of_the_wrong_shape_or_kind(name):
    forward, backward = getattr(NUMBA_OPS, f"{name}_forward"), getattr(NUMBA_OPS, f"{name}_backward")
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
    _, cache = NUMBA_OPS.kl_standard_normal_forward(np.ones((4, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"^dkl: expected shape \(4\), got \(2,\)"):
        NUMBA_OPS.kl_standard_normal_backward(np.ones(2), cache)


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
