"""Tests for scratchvae.lecture.optim and its kernels (scratchvae/kernels.py, optimiser section).

Each optimiser is checked against steps worked out by hand, against a closed
form where there is one, against torch.optim when PyTorch is installed, and
on a quadratic it must minimise. The in-place kernels are compared with their
NumPy references here (tests/test_kernels.py skips them).
"""

import io
import re

import numpy as np
import pytest

from scratchvae.engine import kernels
from scratchvae.engine import optim as fast
from scratchvae.lecture.modules import Dense
from scratchvae.lecture.optim import OPTIMIZERS, SGD, Adagrad, Adam, make_optimizer

# name -> build with float64 hyper-parameters that make every term matter
# (the engine's optimisers, "<name>-numba", must pass every test the lecture's pass)
BUILD = {
    "sgd": lambda params: SGD(params, lr=0.1, momentum=0.9),
    "adagrad": lambda params: Adagrad(params, lr=0.1),
    "adam": lambda params: Adam(params, lr=0.01),
    "sgd-numba": lambda params: fast.SGD(params, lr=0.1, momentum=0.9),
    "adagrad-numba": lambda params: fast.Adagrad(params, lr=0.1),
    "adam-numba": lambda params: fast.Adam(params, lr=0.01),
}


def run(opt, grad, grads):
    """Step ``opt`` once per row of ``grads``, writing each into ``grad`` first."""
    for g in grads:
        grad[...] = g
        opt.step()


def make(name, p0, dtype=np.float64, **kwargs):
    """Return (param, grad buffer, optimiser) for a one-parameter problem."""
    w = np.array(p0, dtype=dtype)
    dw = np.zeros_like(w)
    base, _, engine = name.partition("-")
    classes = fast.OPTIMIZERS if engine == "numba" else OPTIMIZERS
    opt = classes[base]([("w", w, dw)], **kwargs) if kwargs else BUILD[name]([("w", w, dw)])
    return w, dw, opt


# --- steps worked out by hand -------------------------------------------------


@pytest.mark.parametrize("engine", ["", "-numba"])
def test_sgd_steps_by_hand(engine):
    # v = mu v + g;  p = p - lr v,  with lr = 0.1, mu = 0.5, p0 = (1, -2), v0 = 0.
    w, dw, opt = make("sgd" + engine, [1.0, -2.0], lr=0.1, momentum=0.5)
    expected = [
        # g1 = (1, 2):  v = (1, 2);                       p = (1 - 0.1, -2 - 0.2)
        ([1.0, 2.0], [0.9, -2.2]),
        # g2 = (-1, 4): v = 0.5 (1, 2) + (-1, 4) = (-0.5, 5); p = (0.9 + 0.05, -2.2 - 0.5)
        ([-1.0, 4.0], [0.95, -2.7]),
        # g3 = (2, 0):  v = 0.5 (-0.5, 5) + (2, 0) = (1.75, 2.5); p = (0.95 - 0.175, -2.7 - 0.25)
        ([2.0, 0.0], [0.775, -2.95]),
    ]
    for g, p in expected:
        run(opt, dw, [g])
        np.testing.assert_allclose(w, p, rtol=1e-14)
    np.testing.assert_allclose(opt.state["u"][0], [1.75, 2.5], rtol=1e-14)


@pytest.mark.parametrize("engine", ["", "-numba"])
def test_sgd_momentum_is_a_geometric_series(engine):
    # On a constant g, v_t = g (1 + mu + ... + mu^(t-1)) = g (1 - mu^t) / (1 - mu), so
    # p_T = p0 - lr sum_{t=1..T} v_t = p0 - lr g / (1 - mu) * (T - mu (1 - mu^T) / (1 - mu)).
    lr, mu, g = 0.1, 0.9, np.array([0.5, -3.0])
    w, dw, opt = make("sgd" + engine, [1.0, 2.0], lr=lr, momentum=mu)
    for T in range(1, 21):
        run(opt, dw, [g])
        series = T - mu * (1 - mu**T) / (1 - mu)
        np.testing.assert_allclose(w, [1.0, 2.0] - lr * g / (1 - mu) * series, rtol=1e-13)
        np.testing.assert_allclose(opt.state["u"][0], g * (1 - mu**T) / (1 - mu), rtol=1e-13)


@pytest.mark.parametrize("engine", ["", "-numba"])
def test_adagrad_steps_by_hand(engine):
    # s = s + g^2;  p = p - lr g / (sqrt(s) + eps),  lr = 0.1, p0 = (1, -2), s0 = 0.
    # eps = 1e-10 moves these numbers by less than 1e-11.
    w, dw, opt = make("adagrad" + engine, [1.0, -2.0], lr=0.1)
    expected = [
        # g1 = (3, -4): s = (9, 16), sqrt = (3, 4);   p = (1 - 0.1, -2 + 0.1)
        ([3.0, -4.0], [0.9, -1.9]),
        # g2 = (4, 3):  s = (25, 25), sqrt = (5, 5);  p = (0.9 - 0.08, -1.9 - 0.06)
        ([4.0, 3.0], [0.82, -1.96]),
        # g3 = (12, 0): s = (169, 25), sqrt = (13, 5); p = (0.82 - 1.2 / 13, -1.96)
        ([12.0, 0.0], [0.82 - 1.2 / 13, -1.96]),
    ]
    for g, p in expected:
        run(opt, dw, [g])
        np.testing.assert_allclose(w, p, rtol=1e-10)
    np.testing.assert_allclose(opt.state["s"][0], [169.0, 25.0], rtol=1e-14)


@pytest.mark.parametrize("engine", ["", "-numba"])
def test_adam_steps_by_hand(engine):
    # m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  m^ = m / (1 - b1^t);  v^ = v / (1 - b2^t);
    # p = p - lr m^ / (sqrt(v^) + eps).  With lr = 0.1, b1 = 0.5, b2 = 0.75 and the gradients
    # below, sqrt(v^) = (2, 4) at every step; eps = 1 is large on purpose, so that adding it
    # to sqrt(v) instead of sqrt(v^) would give other numbers.
    w, dw, opt = make("adam" + engine, [1.0, -2.0], lr=0.1, betas=(0.5, 0.75), eps=1.0)
    expected = [
        # t=1, g = (2, -4): m = (1, -2), v = (1, 4); m^ = m / 0.5 = (2, -4), v^ = v / 0.25 = (4, 16)
        #   step = 0.1 (2 / (2 + 1), -4 / (4 + 1))
        ([2.0, -4.0], [1 - 0.2 / 3, -2 + 0.4 / 5]),
        # t=2, g = (-2, 4): m = (-0.5, 1), v = (1.75, 7); m^ = m / 0.75 = (-2/3, 4/3),
        #   v^ = v / 0.4375 = (4, 16);  step = 0.1 (-2/3 / 3, 4/3 / 5)
        ([-2.0, 4.0], [1 - 0.2 / 3 + 0.2 / 9, -2 + 0.4 / 5 - 0.4 / 15]),
        # t=3, g = (2, 4): m = (0.75, 2.5), v = (2.3125, 9.25); m^ = m / 0.875 = (6/7, 20/7),
        #   v^ = v / 0.578125 = (4, 16);  step = 0.1 (6/7 / 3, 20/7 / 5) = (0.2/7, 0.4/7)
        ([2.0, 4.0], [1 - 0.2 / 3 + 0.2 / 9 - 0.2 / 7, -2 + 0.4 / 5 - 0.4 / 15 - 0.4 / 7]),
    ]
    for g, p in expected:
        run(opt, dw, [g])
        np.testing.assert_allclose(w, p, rtol=1e-14)
    np.testing.assert_allclose(opt.state["m"][0], [0.75, 2.5], rtol=1e-14)
    np.testing.assert_allclose(opt.state["v"][0], [2.3125, 9.25], rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_first_step_is_lr_times_sign_of_g(dtype):
    # At t = 1: m^ = g and v^ = g^2, so the step is lr g / (|g| + eps) = lr sign(g)
    # up to eps / |g|, whatever the gradient's scale.
    g = np.array([1e-3, -1e-2, 0.3, -7.0, 1e2, -1e3], dtype=dtype)
    w, dw, opt = make("adam", np.ones(6), dtype=dtype, lr=0.01)
    run(opt, dw, [g])
    np.testing.assert_allclose(1.0 - w, 0.01 * np.sign(g), rtol=1e-4)


# --- behaviour ------------------------------------------------------------------


class Quadratic:
    """f(p) = 1/2 sum_i a_i (p_i - c_i)^2, with ``params``/``grads`` dicts like a model."""

    a = np.array([1.0, 10.0])  # curvatures 1 and 10: a badly scaled bowl
    c = np.array([3.0, -1.0])  # the minimum

    def __init__(self):
        self.params = {"p": np.zeros(2)}
        self.grads = {"p": np.zeros(2)}

    def backward(self):
        # df/dp_i = a_i (p_i - c_i)
        self.grads["p"][...] = self.a * (self.params["p"] - self.c)


@pytest.mark.parametrize(
    "name, lr, steps",
    [("sgd", 0.05, 300), ("adagrad", 1.0, 300), ("adam", 0.05, 2000)],
)
def test_optimisers_minimise_a_quadratic(name, lr, steps):
    model = Quadratic()
    opt = make_optimizer(name, model, lr)
    for _ in range(steps):
        model.backward()
        opt.step()
    np.testing.assert_allclose(model.params["p"], Quadratic.c, atol=1e-3)


@pytest.mark.parametrize("name", sorted(BUILD))
def test_params_are_updated_in_place_and_keep_float32(name, rng):
    layer = Dense(5, 3, rng, dtype=np.float32)  # a real module: params and grads dicts
    arrays = {k: v for k, v in layer.params.items()}
    before = {k: v.copy() for k, v in arrays.items()}
    opt = BUILD[name](layer)
    for _ in range(3):
        for g in layer.grads.values():
            g[...] = rng.standard_normal(g.shape)
        opt.step()
    for k, p in layer.params.items():
        assert p is arrays[k]  # the model's own arrays, never rebound
        assert p.dtype == np.float32
        assert not np.array_equal(p, before[k])
        for s in opt.state.values():
            assert all(a.dtype == np.float32 for a in s)


# --- checkpoints ------------------------------------------------------------------


def three_params(rng, dtype):
    shapes = {"dec.W": (4, 3), "dec.b": (3,), "enc.W": (2, 4)}
    return [(k, rng.standard_normal(s).astype(dtype), np.zeros(s, dtype))
            for k, s in shapes.items()]


def random_steps(opt, params, grads):
    for step_grads in grads:
        for (_, _, g), new in zip(params, step_grads):
            g[...] = new
        opt.step()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(BUILD))
def test_state_dict_round_trip_continues_bit_identically(name, dtype, rng):
    params = three_params(rng, dtype)
    opt = BUILD[name](params)
    grads = [[rng.standard_normal(p.shape).astype(dtype) for _, p, _ in params] for _ in range(6)]
    random_steps(opt, params, grads[:3])
    buffer = io.BytesIO()
    np.savez(buffer, **opt.state_dict())
    saved_params = [(k, p.copy(), np.zeros_like(p)) for k, p, _ in params]
    random_steps(opt, params, grads[3:])

    # A fresh optimiser with another learning rate: loading must restore that too.
    base, _, engine = name.partition("-")
    restored = (fast.OPTIMIZERS if engine else OPTIMIZERS)[base](saved_params, lr=0.5)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as npz:
        restored.load_state_dict(dict(npz))
    assert restored.lr == opt.lr and restored.t == 3
    random_steps(restored, saved_params, grads[3:])
    for (_, p, _), (_, q, _) in zip(params, saved_params):
        np.testing.assert_array_equal(q, p)
    for s in opt.state:
        for a, b in zip(opt.state[s], restored.state[s]):
            np.testing.assert_array_equal(b, a)


def test_state_dict_is_flat_numpy_with_hyper_parameters(rng):
    opt = Adam(three_params(rng, np.float32), lr=0.01)
    state = opt.state_dict()
    assert sorted(state) == [
        "adam.betas", "adam.eps", "adam.lr",
        "adam.m.dec.W", "adam.m.dec.b", "adam.m.enc.W", "adam.t",
        "adam.v.dec.W", "adam.v.dec.b", "adam.v.enc.W",
    ]
    assert state["adam.t"].shape == () and state["adam.t"].dtype == np.int64
    np.testing.assert_array_equal(state["adam.betas"], [0.9, 0.999])
    assert state["adam.m.dec.W"].dtype == np.float32
    state["adam.m.dec.W"][...] = 1  # a copy: the optimiser's own state is untouched
    assert not opt.state["m"][0].any()


def test_load_state_dict_rejects_a_mismatch_before_changing_anything(rng):
    params = three_params(rng, np.float64)
    opt = Adam(params)
    with pytest.raises(ValueError, match=r"^state: .*missing \['adam.betas'"):
        opt.load_state_dict(SGD(params, lr=0.1).state_dict())
    state = opt.state_dict()
    state["adam.t"] = np.array(7)
    state["adam.m.enc.W"] = np.zeros((4, 2))
    with pytest.raises(ValueError, match=re.escape("state['adam.m.enc.W']: expected float64 "
                                                   "of shape (2, 4), got float64 of shape (4, 2)")):
        opt.load_state_dict(state)
    state = opt.state_dict()
    state["adam.lr"] = np.array(-1.0)
    with pytest.raises(ValueError, match=re.escape("state['adam.lr']: expected a finite number")):
        opt.load_state_dict(state)
    assert opt.t == 0 and opt.lr == 1e-3


# --- arguments ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls, kwargs, argument",
    [
        (SGD, {"lr": 0.0}, "lr"),
        (SGD, {"lr": -0.1}, "lr"),
        (SGD, {"lr": float("nan")}, "lr"),
        (SGD, {"lr": "0.1"}, "lr"),
        (SGD, {"lr": 0.1, "momentum": 1.0}, "momentum"),
        (SGD, {"lr": 0.1, "momentum": -0.5}, "momentum"),
        (Adagrad, {"lr": float("inf")}, "lr"),
        (Adagrad, {"eps": 0.0}, "eps"),
        (Adam, {"lr": True}, "lr"),
        (Adam, {"betas": (0.9, 1.0)}, "betas[1]"),
        (Adam, {"betas": (-0.1, 0.999)}, "betas[0]"),
        (Adam, {"betas": 0.9}, "betas"),
        (Adam, {"betas": (0.9, 0.99, 0.999)}, "betas"),
        (Adam, {"eps": -1e-8}, "eps"),
    ],
)
def test_bad_hyper_parameters_raise_naming_the_argument(cls, kwargs, argument):
    with pytest.raises(ValueError, match="^" + re.escape(argument) + ": expected"):
        cls([("w", np.zeros(2), np.zeros(2))], **kwargs)


@pytest.mark.parametrize(
    "params, message",
    [
        ([], "params: expected at least one parameter"),
        ([("w", np.zeros((3, 2)).T, np.zeros((2, 3)))], "params['w']: expected a non-empty, C-"),
        ([("w", np.zeros(2, int), np.zeros(2, int))], "params['w']: expected a float32 or float64"),
        ([("w", np.zeros(2), np.zeros(3))], "grads['w']: expected a C-contiguous float64 array of "
                                            "shape (2,), got float64 of shape (3,)"),
        ([("w", np.zeros(2), np.zeros(2, np.float32))], "grads['w']: expected a C-contiguous"),
        ([("w", np.zeros(2), np.zeros(2))] * 2, "params: expected distinct string names"),
        ([("w", np.zeros(2))], "params: expected a model with params and grads dicts, or (name,"),
    ],
)
def test_bad_params_raise(params, message):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        SGD(params, lr=0.1)


def test_make_optimizer_builds_each_and_names_the_valid_choices():
    for name, cls in OPTIMIZERS.items():
        opt = make_optimizer(name, [("w", np.zeros(2), np.zeros(2))], 0.25)
        assert type(opt) is cls and opt.lr == 0.25
    with pytest.raises(ValueError, match=r"^name: expected one of sgd, adagrad, adam, got 'adamw'"):
        make_optimizer("adamw", [("w", np.zeros(2), np.zeros(2))], 1e-3)


# --- kernels against their NumPy references ---------------------------------------

# kernel -> (number of state arrays, scalars). State arrays are drawn >= 0 (s and v are
# sums of squares); scalars are cast to the arrays' dtype, as scratchvae.lecture.optim does.
KERNELS = {
    "sgd_update": (1, (0.1, 0.9)),
    "adagrad_update": (1, (0.1, 1e-10)),
    "adam_update": (2, (0.1, 0.001, 0.01, 1e-9)),  # 1 - beta1, 1 - beta2, step size, eps_hat
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_update_kernel_matches_reference(name, dtype, rng):
    n_state, scalars = KERNELS[name]
    n = 7 * 13 * 11  # not a multiple of any vector width or thread count
    p, g = (rng.standard_normal(n).astype(dtype) for _ in range(2))
    g[::17] = 0  # zero gradients where s or v may be 0: 0 / (0 + eps) = 0
    state = [np.abs(rng.standard_normal(n)).astype(dtype) for _ in range(n_state)]
    if name == "adam_update":
        state[0] -= 0.5  # m has either sign
    scalars = [dtype(s) for s in scalars]
    inputs = [a.copy() for a in (p, g, *state)]
    expected = getattr(kernels, name + "_reference")(*inputs, *scalars)
    for a, b in zip(inputs, (p, g, *state)):
        np.testing.assert_array_equal(a, b)  # the reference left its inputs alone
    getattr(kernels, name)(p, g, *state, *scalars)
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    for got, want in zip((p, *state), expected):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)


# --- against PyTorch ------------------------------------------------------------------

# name -> (torch optimiser with the same settings as BUILD, our state name -> torch's)
TORCH = {
    "sgd": (lambda t, ps: t.optim.SGD(ps, lr=0.1, momentum=0.9), {"u": "momentum_buffer"}),
    "adagrad": (lambda t, ps: t.optim.Adagrad(ps, lr=0.1), {"s": "sum"}),
    "adam": (lambda t, ps: t.optim.Adam(ps, lr=0.01), {"m": "exp_avg", "v": "exp_avg_sq"}),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(BUILD))
def test_matches_torch_optim(name, dtype, rng):
    torch = pytest.importorskip("torch")
    params = three_params(rng, dtype)
    ours = BUILD[name](params)
    tensors = [torch.tensor(p, requires_grad=True) for _, p, _ in params]
    make_theirs, state_names = TORCH[name]
    theirs = make_theirs(torch, tensors)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    for _ in range(5):
        # Gradients over six orders of magnitude, some exactly 0.
        grads = [(rng.standard_normal(p.shape) * 10.0 ** rng.uniform(-3, 3, p.shape)
                  * (rng.random(p.shape) > 0.1)).astype(dtype) for _, p, _ in params]
        random_steps(ours, params, [grads])
        for t, g in zip(tensors, grads):
            t.grad = torch.tensor(g)
        theirs.step()
        for (_, p, _), t in zip(params, tensors):
            np.testing.assert_allclose(p, t.detach().numpy(), rtol=tol, atol=tol)
        for k, t in enumerate(tensors):
            for mine, torch_name in state_names.items():
                want = theirs.state[t][torch_name].numpy()
                np.testing.assert_allclose(ours.state[mine][k], want, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["sgd_update", "adam_update"])
def test_update_kernels_store_no_subnormal_state(name, dtype):
    """A state decaying under zero gradients is stored as 0, not as subnormal numbers.

    Arithmetic on subnormals is many times slower on many x86 CPUs; a rarely
    active unit's m (or velocity) would otherwise decay through them for
    hundreds of steps. Normal values are kept exactly.
    """
    tiny = np.finfo(dtype).tiny
    n_state, scalars = KERNELS[name]
    state = [np.array([tiny * 0.5, -tiny * 0.25, tiny * 4, -1.0], dtype=dtype)
             for _ in range(n_state)]
    state[-1] = np.abs(state[-1])  # v >= 0
    p, g = np.ones(4, dtype=dtype), np.zeros(4, dtype=dtype)
    getattr(kernels, name)(p, g, *state, *[dtype(s) for s in scalars])
    for s in state:
        assert not np.any((s != 0) & (np.abs(s) < tiny)), s  # nothing subnormal is stored
        assert np.all(s[:2] == 0) and s[3] != 0
