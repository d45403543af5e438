# %% [markdown]
# # Lesson 11: optimisers, SGD, Adagrad and Adam written out
#
# **What you will be able to do**
#
# * write the update rules of SGD (with momentum), Adagrad and Adam in a few lines of NumPy,
#   and check them against `scratchvae.lecture.optim`;
# * explain why one learning rate for every coordinate is slow on an ill-conditioned problem,
#   and how per-coordinate step sizes help;
# * read a figure of loss curves on a log scale.
#
# Derivations used: [SGD and momentum](../docs/optim.md#sgd), [Adagrad](../docs/optim.md#adagrad)
# and [Adam](../docs/optim.md#adam).
#
# Lesson 1 stepped against the gradient with one learning rate $\eta$ for everything; in lesson 9
# you wrote Adam's update and took one step with it. Here three optimisers run on one small
# problem where the difference is easy to see, and you see what Adam's per-coordinate scaling
# buys, and when it buys nothing.

# %%
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from scratchvae.lecture.optim import SGD, Adagrad, Adam
from scratchvae.tools.plots import show

# this lesson is quick anyway
QUICK = os.environ.get("SCRATCHVAE_QUICK", "0") not in ("", "0")
OUT = Path("11_optimisers")  # where a script run saves its figures

# %% [markdown]
# ## The problem: an ill-conditioned quadratic
# Two parameters, one direction a hundred times steeper than the other:
#
# $$\text{loss}(\vartheta) = \tfrac12 \left(a_1 \vartheta_1^2 + a_2 \vartheta_2^2\right), \qquad a = (1, 100), \qquad
# g = \nabla\text{loss} = (a_1 \vartheta_1,\ a_2 \vartheta_2).$$
#
# The minimum is 0 at $\vartheta = 0$; start from $\vartheta = (1, 1)$.

# %%
a = np.array([1.0, 100.0])
start = np.array([1.0, 1.0])
T = 200  # steps


def loss(theta):
    return 0.5 * np.sum(a * theta**2)


def grad(theta):
    return a * theta


# %% [markdown]
# ## 1. SGD, and momentum
# Plain SGD ([optim (1)](../docs/optim.md#sgd)) is $\vartheta_t = \vartheta_{t-1} - \eta\, g_t$. On the steep
# coordinate each step multiplies $\vartheta_2$ by $1 - 100\eta$, which diverges for $\eta > 0.02$; so
# $\eta$ must be small, and then the shallow coordinate shrinks by only $1 - \eta$ a step.
# With momentum ([optim (2)](../docs/optim.md#sgd)) a velocity sums the gradients:
# $u_t = \gamma u_{t-1} + g_t$, $\vartheta_t = \vartheta_{t-1} - \eta\, u_t$.


# %%
def sgd(lr, momentum=0.0):
    theta, u, losses = start.copy(), np.zeros(2), []
    for t in range(1, T + 1):
        g = grad(theta)
        u = momentum * u + g  # (2)
        theta = theta - lr * u
        losses.append(loss(theta))
    return theta, losses


# %% [markdown]
# ## 2. Adagrad
# Each coordinate gets its own step, divided by the root of its summed squared gradients
# ([optim (4)](../docs/optim.md#adagrad)):
#
# $$s_t = s_{t-1} + g_t^2, \qquad \vartheta_t = \vartheta_{t-1} - \eta\, \frac{g_t}{\sqrt{s_t} + \epsilon}.$$
#
# A steep coordinate has large gradients, so a large $s$ and a small step; the shallow one the
# opposite.


# %%
def adagrad(lr, eps=1e-10):
    theta, s, losses = start.copy(), np.zeros(2), []
    for t in range(1, T + 1):
        g = grad(theta)
        s = s + g**2  # (4)
        theta = theta - lr * g / (np.sqrt(s) + eps)
        losses.append(loss(theta))
    return theta, losses


# %% [markdown]
# ## 3. Adam
# Running averages of the gradient and of its square, corrected for starting at zero, then a
# per-coordinate step ([optim (5), (7), (8)](../docs/optim.md#adam)):
#
# $$m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \quad
# \hat m_t = \frac{m_t}{1 - \beta_1^t}, \quad \hat v_t = \frac{v_t}{1 - \beta_2^t}, \quad
# \vartheta_t = \vartheta_{t-1} - \eta\, \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}.$$
#
# ($v$ here is Adam's second moment, and nothing else: the glossary keeps the letter for it.)
#
# Your turn: you wrote `Adam.update` for a model's arrays in lesson 9; write the same rule here
# for the two-coordinate $\vartheta$, in the loop below, from the formulas above. You got it right
# when section 4 prints `|hand - package| 0e+00` on the Adam line: your loop and your `Adam` class
# take the same steps. (The stub never moves $\vartheta$.)


# %%
def adam(lr, beta1=0.9, beta2=0.999, eps=1e-8):
    theta, losses = start.copy(), []
    for t in range(1, T + 1):
        g = grad(theta)
        # replace: m and v (5), their corrections (7), the step (8)
        theta = theta - 0 * g
        losses.append(loss(theta))
    return theta, losses


# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
def adam(lr, beta1=0.9, beta2=0.999, eps=1e-8):
    theta, m, v, losses = start.copy(), np.zeros(2), np.zeros(2), []
    for t in range(1, T + 1):
        g = grad(theta)
        m = beta1 * m + (1 - beta1) * g  # (5)
        v = beta2 * v + (1 - beta2) * g**2
        m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)  # (7)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)  # (8)
        losses.append(loss(theta))
    return theta, losses


# %% [markdown]
# ## 4. The same numbers as the package
# `scratchvae.lecture.optim` updates a model's arrays in place; give it one parameter array and
# its gradient array, and it must follow our hand-written rules to the last bit or so.


# %%
def with_the_package(make):
    theta, dtheta = start.copy(), np.zeros(2)
    optimizer = make([("theta", theta, dtheta)])
    for _ in range(T):
        dtheta[:] = grad(theta)  # the gradient array is shared: fill it in place
        optimizer.step()
    return theta


runs = {  # name: (by hand, the package's class), each with the learning rate used below
    "SGD, lr 0.019": (lambda: sgd(0.019), lambda p: SGD(p, lr=0.019)),
    "SGD + momentum 0.9, lr 0.005": (lambda: sgd(0.005, 0.9),
                                     lambda p: SGD(p, lr=0.005, momentum=0.9)),
    "Adagrad, lr 0.5": (lambda: adagrad(0.5), lambda p: Adagrad(p, lr=0.5)),
    "Adam, lr 0.1": (lambda: adam(0.1), lambda p: Adam(p, lr=0.1)),
}
curves, differences = {}, {}
print(f"4. after {T} steps from (1, 1):")
for name, (by_hand, package) in runs.items():
    theta, curves[name] = by_hand()
    differences[name] = np.max(np.abs(theta - with_the_package(package)))
    theta_text = np.array2string(theta, precision=4)
    print(f"   {name:<29} loss {curves[name][-1]:9.2e}   theta {theta_text}"
          f"   |hand - package| {differences[name]:.0e}")
assert differences["Adam, lr 0.1"] < 1e-12, (
    f"your adam loop and the Adam class take different steps (|hand - package| "
    f"{differences['Adam, lr 0.1']:.1e}): write m, v (5), their corrections (7) and "
    "the step (8) in the loop of section 3")

# %% mystnb={"figure": {"caption": "The loss $(\\vartheta_1^2 + 100\\,\\vartheta_2^2)/2$ against the step for SGD, SGD with momentum, Adagrad and Adam, each at the learning rate in its label, from $(1, 1)$."}, "image": {"alt": "Loss against step on a log scale for four optimisers"}}
fig = Figure(figsize=(6.4, 3.8), layout="constrained")
ax = fig.subplots()
for name, losses in curves.items():
    ax.semilogy(range(1, T + 1), losses, label=name)
ax.set_xlabel("step t")
ax.set_ylabel("loss")
ax.set_ylim(1e-14, 1e3)  # Adagrad falls through the bottom
ax.set_title("loss = (theta_1^2 + 100 theta_2^2) / 2")
ax.legend()
show(fig, "loss_curves.png", OUT)

# %% [markdown]
# ## Your turn
# Adagrad and Adam scale each **coordinate** separately. Rotate the problem by 45 degrees:
# in the cell below, replace `H`, `loss` and `grad` with those of $\tfrac12 \vartheta^\top H \vartheta$,
# $H = R\, \mathrm{diag}(a)\, R^\top$ with $R = \tfrac{1}{\sqrt2}\begin{pmatrix}1 & -1\\ 1 & 1\end{pmatrix}$.
# The columns of $R$ are the eigenvectors of $H$: the shallow direction (curvature 1) is
# $(1, 1)/\sqrt2$, the steep one (curvature 100) is $(-1, 1)/\sqrt2$, and neither coordinate alone
# is steep. Start from $\vartheta = (1, 0)$, which has a component along both. (Not from $(1, 1)$: that
# lies on the shallow eigenvector, every optimiser's iterates stay on that line, and the problem
# is one-dimensional again.) **Predict**: does Adam keep its lead over SGD? (The stub leaves the
# problem as it is.) You got it right when the cell after the answer accepts your `H`, `loss`
# and `grad` and ranks the four optimisers; the stub stops there.

# %%
H = np.diag(a)  # replace with the rotated matrix
start = np.array([1.0, 0.0])  # on neither eigenvector of the rotated H


def loss(theta):  # replace: the rotated problem's loss, theta' H theta / 2
    return 0.5 * np.sum(a * theta**2)


def grad(theta):  # replace: its gradient
    return a * theta


# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
# One answer. The per-coordinate scaling no longer lines up with the curvature: Adam
# and Adagrad fall behind SGD with momentum, and even behind plain SGD. (From (1, 0)
# the result is the same whichever of the two 45-degree rotations you wrote: (1, 0) has
# equal components along both eigenvectors.)
R = np.array([[1.0, -1.0], [1.0, 1.0]]) / np.sqrt(2)
H = R @ np.diag(a) @ R.T


def loss(theta):
    return 0.5 * theta @ H @ theta


def grad(theta):
    return H @ theta


# %%
assert H[0, 1] != 0 and np.allclose(np.linalg.eigvalsh(H), np.sort(a)), (
    "H is still diagonal, or its curvatures are not a's: H = R diag(a) R'")
probe = np.array([0.3, -0.7])
same_loss = np.isclose(loss(probe), 0.5 * probe @ H @ probe)
assert same_loss and np.allclose(grad(probe), H @ probe), (
    "loss and grad are still the diagonal problem's: write them with the rotated H")
rotated = {name: by_hand()[1][-1] for name, (by_hand, _) in runs.items()}
for name, final in rotated.items():
    print(f"rotated, from (1, 0): {name:<29} loss after {T} steps {final:9.2e}")
print("rotated, best to worst:", " < ".join(sorted(rotated, key=rotated.get)))
print("  right if Adam no longer leads: "
      "the per-coordinate scaling misses a rotated valley")

# %% [markdown]
# ## What to look at
# * Part 4: our lines and the package's agree to rounding: each rule is a few lines.
# * The figure: plain SGD, its learning rate capped by the steep direction, crawls along the
#   shallow one (loss $2 \times 10^{-4}$ after 200 steps). Momentum builds speed along it
#   ($10^{-8}$). Adam gives each coordinate its own step and gets as far, bumpily: its step does
#   not shrink to zero by itself. Adagrad, on an axis-aligned quadratic, takes the same fraction
#   off both coordinates at every step and falls out of the figure, to $10^{-96}$.
# * Your turn: rotate the problem, start from $(1, 0)$, and the per-coordinate methods lose that
#   edge. After 200 steps SGD with momentum is at $9 \times 10^{-9}$ and plain SGD at
#   $1.2 \times 10^{-4}$, while Adam ($2.5 \times 10^{-3}$) and Adagrad ($4.6 \times 10^{-3}$) end
#   behind both. Per-coordinate scaling helps when the parameters' own axes are where the scales
#   differ, as they are, roughly, in a neural network's layers.
# * On the VAE the parameters number in the hundreds of thousands, their gradients' scales
#   differ by orders of magnitude, and Adam with one learning rate, $10^{-3}$, is the usual choice.

# %%
print("Look at: the zeros in the |hand - package| column, and in the figure SGD "
      "crawling while momentum, Adam and Adagrad drop by many orders of magnitude.")
