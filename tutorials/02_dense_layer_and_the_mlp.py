# %% [markdown]
# # Lesson 2: the dense layer, and an MLP's backward module by module
#
# **What you will be able to do**
#
# * write the dense layer's forward $\text{out} = xW + b$ and its three gradients, and check
#   them with `check_op`;
# * stack dense layers and ReLUs into a `Sequential` and run its backward one module at a
#   time, reading the shape of the gradient between every pair of modules;
# * check every parameter gradient of the whole network against finite differences.
#
# Derivations used: [the dense layer](../docs/layers.md#dense),
# [the ReLU](../docs/layers.md#relu) and [modules](../docs/layers.md#modules).
#
# With one example per row, $x$ is $(B, D_\text{in})$ and $W$ is $(D_\text{in}, D_\text{out})$:
#
# $$dx = d\text{out}\, W^\top, \qquad dW = x^\top d\text{out}, \qquad db_k = \textstyle\sum_n d\text{out}_{nk}.$$

# %%
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from scratchvae.classroom.selfcheck import check
from scratchvae.lecture.activations import relu_backward, relu_forward
from scratchvae.lecture.dense import dense_backward, dense_forward
from scratchvae.lecture.gradcheck import check_op, numerical_gradient, relative_error
from scratchvae.lecture.modules import Dense, ReLU, Sequential
from scratchvae.tools.plots import show

# this lesson is quick anyway
QUICK = os.environ.get("SCRATCHVAE_QUICK", "0") not in ("", "0")
OUT = Path("02_dense_layer_and_the_mlp")  # where a script run saves its figures


np.set_printoptions(precision=4, suppress=True)
rng = np.random.default_rng(2)

# %% [markdown]
# ## Your turn — task `numerical_gradient`: the gradient by central differences
# First the tool that checks every layer: lesson 1 measured one slope by nudging one weight;
# `numerical_gradient` measures them all (lesson 4 says how to choose the step $h$).
# Write `numerical_gradient` (with its helpers `five_point_slope` and `_central_difference`) in
# `studentvae/gradcheck.py`: the docstring above each stub says what it takes and returns;
# [gradcheck: central-differences](../docs/gradcheck.md#central-differences) derives it. The cell
# below checks your code as the marker will: "ok", or the first wrong element and the section to
# reread.

# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
from scratchvae.classroom.edition import worked_answer

answer = worked_answer("numerical_gradient")  # the lecture's code for this task

# %%
check("numerical_gradient", answer)

# %% [markdown]
# ## Your turn — task `dense`: the dense layer, forward and backward
# Write `dense_forward` and `dense_backward` in `studentvae/dense.py`: the docstring above each
# stub says what it takes and returns; [layers: dense](../docs/layers.md#dense) derives it. The
# cell below checks your code as the marker will: "ok", or the first wrong element and the section
# to reread.

# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
from scratchvae.classroom.edition import worked_answer

answer = worked_answer("dense")  # the lecture's code for this task

# %%
check("dense", answer)

# %% [markdown]
# ## 1. One dense layer, forward and backward
# Three examples of four features, mapped to two outputs. `b` and `W` are shared by every
# example, so their gradients *sum* over the rows.

# %%
x = rng.standard_normal((3, 4))  # (B, D_in)
W = rng.standard_normal((4, 2))  # (D_in, D_out)
b = rng.standard_normal(2)  # (D_out,)
out, cache = dense_forward(x, W, b)  # (3, 2)
dout = rng.standard_normal((3, 2))  # an upstream gradient
dx, dW, db = dense_backward(dout, cache)
print("1. out = x W + b:", out.shape,
      "  dx:", dx.shape, " dW:", dW.shape, " db:", db.shape)
print("   db is dout summed over the examples:", db, "=", dout.sum(axis=0))
# `check_op`: taken on trust until lesson 4. It runs the backward against central
# differences of the forward, for every input, and prints "ok" or "FAILED" with the
# worst relative error.
print("   check_op on the dense layer:")
inputs = {"x": x, "W": W, "b": b}
for result in check_op(dense_forward, dense_backward, inputs, rng=rng):
    print("  ", result.message())

# %% [markdown]
# ## Your turn — task `relu`: ReLU
# Write `relu_forward` and `relu_backward` in `studentvae/activations.py`: the docstring above
# each stub says what it takes and returns; [layers: relu](../docs/layers.md#relu) derives it. The
# cell below checks your code as the marker will: "ok", or the first wrong element and the section
# to reread.

# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
from scratchvae.classroom.edition import worked_answer

answer = worked_answer("relu")  # the lecture's code for this task

# %%
check("relu", answer)

# %% [markdown]
# ## Your turn — task `leaky_relu`: leaky ReLU
# Write `leaky_relu_forward` and `leaky_relu_backward` in `studentvae/activations.py`: the
# docstring above each stub says what it takes and returns; [layers: relu](../docs/layers.md#relu)
# derives it. The cell below checks your code as the marker will: "ok", or the first wrong element
# and the section to reread.

# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
from scratchvae.classroom.edition import worked_answer

answer = worked_answer("leaky_relu")  # the lecture's code for this task

# %%
check("leaky_relu", answer)

# %% [markdown]
# ## 2. The ReLU: a gradient that is a mask
# $\text{relu}(a) = \max(a, 0)$ passes the gradient where $a > 0$ and stops it elsewhere.

# %%
a = rng.standard_normal((3, 5))
h, relu_cache = relu_forward(a)
da = relu_backward(np.ones_like(a), relu_cache)
print("2. where a > 0:\n", (a > 0).astype(int), "\n   relu_backward of ones:\n", da)

# %% [markdown]
# ## Your turn — task `sequential`: the MLP's backward: chaining modules
# Write `Sequential.backward` in `studentvae/modules.py`: the docstring above each stub says what
# it takes and returns; [layers: modules](../docs/layers.md#modules) derives it. The cell below
# checks your code as the marker will: "ok", or the first wrong element and the section to reread.

# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
from scratchvae.classroom.edition import worked_answer

answer = worked_answer("sequential")  # the lecture's code for this task

# %%
check("sequential", answer)

# %% [markdown]
# ## 3. An MLP, backward module by module
# `Sequential(Dense, ReLU, Dense)` runs its modules in order; its backward runs them in
# reverse, each taking the gradient with respect to its output and returning the one with
# respect to its input, while adding its parameters' gradients into `model.grads`.

# %%
model = Sequential(Dense(4, 8, rng, dtype=np.float64), ReLU(),
                   Dense(8, 3, rng, dtype=np.float64))
x = rng.standard_normal((5, 4))  # (B, 4)
y = model.forward(x)  # (5, 3)
dy = rng.standard_normal(y.shape)  # L = sum(dy * y)
model.zero_grad()
print("3. backward, one module at a time (the last goes first):")
grad = dy
for i, module in reversed(list(enumerate(model.modules))):
    grad = module.backward(grad)
    print(f"   ({i}) {type(module).__name__:<6} returns d/d(its input): {grad.shape}")
print("   parameters with gradients:", {k: g.shape for k, g in model.grads.items()})

# %% [markdown]
# Every parameter gradient against finite differences of the whole network (the parameters
# are perturbed in place, one element at a time, and restored).
# `relative_error`, $|a - n| / (|a| + |n|)$ element by element: taken on trust until lesson 4.

# %% mystnb={"figure": {"caption": "The worst relative error between each parameter's hand-written gradient and finite differences of the whole network, on a log scale, against the tolerance $10^{-7}$ (dashed)."}, "image": {"alt": "Bars of the worst relative error per parameter of the MLP, all below the tolerance line"}}
errors = {}
for name, param in model.params.items():
    measured = numerical_gradient(lambda _: model.forward(x), param, dout=dy)
    errors[name] = float(np.max(relative_error(model.grads[name], measured)))
    print(f"   {name:<4} worst relative error {errors[name]:.1e}")
fig = Figure(figsize=(5.5, 3.2), layout="constrained")
ax = fig.subplots()
ax.bar(list(errors), list(errors.values()))
ax.set_yscale("log")
ax.axhline(1e-7, color="black", linestyle="--", label="tolerance")
ax.set_ylabel("worst relative error")
ax.set_title("each parameter of the MLP against finite differences")
ax.legend()
show(fig, "mlp_gradcheck.png", OUT)

# %% [markdown]
# ## What to look at
# * Part 1: `db` equals `dout` summed over the examples, and `check_op` says "ok" for `x`,
#   `W` and `b`.
# * Part 3: the gradient between modules always has the shape of the activation it belongs
#   to, (5, 3) → (5, 8) → (5, 8) → (5, 4); the figure's bars all sit far below the tolerance.
# * The ReLU has no parameters: it only masks the gradient on its way down.

# %%
print("Look at: check_op's 'ok' lines, the shapes in part 3, "
      "and every bar below the tolerance.")
