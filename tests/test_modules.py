"""The modules that build networks (scratchvae/modules.py)."""

import numpy as np
import pytest
from test_layers import PAIRS  # the activations' forward/backward pairs, by name

from scratchvae.lecture.activations import relu_forward
from scratchvae.lecture.dense import dense_backward, dense_forward
from scratchvae.lecture.gradcheck import directional_check
from scratchvae.lecture.modules import (
    ACTIVATIONS,
    MLP,
    Dense,
    Identity,
    LeakyReLU,
    ReLU,
    Sequential,
    Tanh,
    activation_module,
)


def small_mlp(rng):
    return MLP([3, 5, 4, 2], "tanh", rng=rng, dtype=np.float64, final_activation="identity")


def test_module_grads_accumulate_over_two_rounds(rng):
    """Two forward/backward rounds leave the sum of each round's gradients (shared use)."""
    model = small_mlp(rng)
    rounds = [(rng.normal(size=(4, 3)), rng.normal(size=(4, 2))) for _ in range(2)]
    alone = []
    for x, dout in rounds:
        model.zero_grad()
        model.forward(x)
        model.backward(dout)
        alone.append({name: grad.copy() for name, grad in model.grads.items()})
    model.zero_grad()
    for x, dout in rounds:
        model.forward(x)
        model.backward(dout)
    for name, grad in model.grads.items():
        np.testing.assert_allclose(grad, alone[0][name] + alone[1][name], rtol=1e-14)


def test_zero_grad_resets_in_place(rng):
    model = small_mlp(rng)
    model.forward(rng.normal(size=(2, 3)))
    model.backward(np.ones((2, 2)))
    arrays_before = [grad for _, _, grad in model.parameters()]
    assert any(np.any(grad != 0) for grad in arrays_before)
    model.zero_grad()
    for (_, _, grad), before in zip(model.parameters(), arrays_before):
        assert grad is before
        np.testing.assert_array_equal(grad, 0)


@pytest.mark.parametrize("activation", ["relu", "tanh"])  # the fused Dense+ReLU, and Dense alone
def test_backward_without_accumulate_writes_the_gradients(activation, rng):
    """accumulate=False gives exactly zero_grad() then backward, in the same arrays."""
    model = MLP([3, 5, 2], activation, rng=rng, dtype=np.float64)
    x, dout = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    model.zero_grad()
    model.forward(x)
    dx = model.backward(dout)
    expected = {name: grad.copy() for name, grad in model.grads.items()}
    arrays = dict(model.grads)
    for grad in arrays.values():
        grad.fill(7.0)  # stale values that must not survive
    model.forward(x)
    np.testing.assert_array_equal(model.backward(dout, accumulate=False), dx)
    for name, grad in model.grads.items():
        assert grad is arrays[name]
        np.testing.assert_array_equal(grad, expected[name])


def test_dense_module_matches_the_functions(rng):
    layer = Dense(3, 2, rng, dtype=np.float64)
    x, dout = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    out, cache = dense_forward(x, layer.params["W"], layer.params["b"])
    np.testing.assert_array_equal(layer.forward(x), out)
    dx, dW, db = dense_backward(dout, cache)
    np.testing.assert_array_equal(layer.backward(dout), dx)
    np.testing.assert_array_equal(layer.grads["W"], dW)
    np.testing.assert_array_equal(layer.grads["b"], db)


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_activation_modules_match_the_functions(name, rng):
    module = activation_module(name, slope=0.2) if name == "leaky_relu" else activation_module(name)
    forward, backward = PAIRS[name]
    x, dout = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    out, cache = forward(x)
    np.testing.assert_array_equal(module.forward(x), out)
    np.testing.assert_array_equal(module.backward(dout), backward(dout, cache))
    assert module.params == {} and module.grads == {}


def test_sequential_exposes_its_layers_arrays_under_layer_numbers(rng):
    first, second = Dense(4, 3, rng), Dense(3, 2, rng)
    model = Sequential(first, ReLU(), second)
    assert list(model.params) == list(model.grads) == ["0.W", "0.b", "1.W", "1.b"]
    assert model.params["1.W"] is second.params["W"]
    assert model.grads["0.b"] is first.grads["b"]


def test_mlp_builds_dense_activation_pairs(rng):
    encoder = MLP([784, 400], "relu", rng=rng)
    assert [type(m) for m in encoder.modules] == [Dense, ReLU]
    assert encoder.modules[0].init == "he"
    leaky = MLP([5, 4, 3], "leaky_relu", rng=rng, final_activation="identity")
    assert [type(m) for m in leaky.modules] == [Dense, LeakyReLU, Dense, Identity]
    assert leaky.modules[1].slope == 0.01
    model = small_mlp(rng)
    assert [type(m) for m in model.modules] == [Dense, Tanh] * 2 + [Dense, Identity]
    assert all(m.init == "glorot" for m in model.modules[::2])
    assert all(p.dtype == np.float64 for p in model.params.values())


def test_mlp_directional_check(rng):
    """The whole MLP's gradient, parameters and input at once, along a random direction."""
    model = small_mlp(rng)
    for _, param, _ in model.parameters():  # nonzero biases, so their gradients matter
        param += 0.1 * rng.normal(size=param.shape)
    x, dout = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))

    def loss():
        return np.sum(dout * model.forward(x))

    model.zero_grad()
    model.forward(x)
    dx = model.backward(dout)
    params = [x] + list(model.params.values())
    grads = [dx] + list(model.grads.values())
    result = directional_check(loss, params, grads, rng)
    assert result.passed, result


def test_relu_mlp_directional_check(rng):
    """A ReLU MLP (fused layers) end to end, away from kinks by a small step."""
    model = MLP([3, 6, 6, 2], "relu", rng=rng, dtype=np.float64, final_activation="identity")
    x, dout = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    model.zero_grad()
    model.forward(x)
    model.backward(dout)
    names = sorted(model.params)
    result = directional_check(
        lambda: np.sum(dout * model.forward(x)),
        [model.params[n] for n in names], [model.grads[n] for n in names], rng, h=1e-5,
    )
    assert result.passed, result



def test_backward_before_forward_is_an_error(rng):
    with pytest.raises(RuntimeError, match="Dense.backward called before forward"):
        Dense(2, 2, rng).backward(np.ones((1, 2)))


def test_module_constructors_reject_bad_arguments(rng):
    with pytest.raises(ValueError, match=r"^activation: expected one of 'relu', .*got 'swish'"):
        activation_module("swish")
    with pytest.raises(ValueError, match=r"^final_activation: expected one of"):
        MLP([2, 2], "relu", rng=rng, final_activation="softmax")
    with pytest.raises(ValueError, match=r"^activation: expected one of"):
        MLP([2, 2], "ReLU", rng=rng)
    with pytest.raises(ValueError, match=r"^sizes: expected at least two"):
        MLP([2], rng=rng)
    with pytest.raises(ValueError, match=r"^sizes\[1\]: expected an integer >= 1, got 0"):
        MLP([2, 0], rng=rng)
    with pytest.raises(ValueError, match=r"^init: expected one of 'he', 'glorot', 'fan_in', got 'xavier'"):
        Dense(2, 2, rng, init="xavier")
    with pytest.raises(ValueError, match=r"^rng: expected a numpy.random.Generator"):
        Dense(2, 2, None)
    with pytest.raises(ValueError, match=r"^dtype: expected float32 or float64"):
        Dense(2, 2, rng, dtype=np.int32)
    with pytest.raises(ValueError, match=r"^modules\[1\]: expected a Module, got function"):
        Sequential(ReLU(), relu_forward)


def test_registry_names_every_activation():
    assert set(ACTIVATIONS) == set(PAIRS) | {"identity"}
