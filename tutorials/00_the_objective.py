# %% [markdown]
# # Lesson 0: the objective, computed on a grid
#
# **What you will be able to do**
#
# * say what a latent variable, the prior, the likelihood and the posterior are, and why the
#   posterior of a VAE cannot be computed;
# * derive the evidence lower bound (ELBO) twice: by Jensen's inequality, and from
#   $\log p(x) = \mathcal{L}(q) + \mathrm{KL}(q \,\Vert\, p(z \mid x))$;
# * compute $\log p(x)$, the posterior, the ELBO of any Gaussian $q$ and the gap between them, in
#   nats, for a model with a one-dimensional code, and see where the gap cannot close;
# * compute the *negative ELBO*, the loss every later lesson minimises, in the form a VAE uses.
#
# Derivations used: [the KL to the posterior and the bound it leaves](../docs/elbo.md#kl-to-posterior),
# [the VAE objective](../docs/elbo.md#vae-objective),
# [Bernoulli pixels from logits](../docs/likelihoods.md#bernoulli) and
# [the KL to the standard normal](../docs/gaussian.md#kl-standard-normal).
#
# Plain NumPy and matplotlib only: with a one-dimensional code every integral is a sum over a
# grid of points, so nothing here is estimated or taken on trust.

# %%
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

# show(fig, name, OUT): inline in a notebook, saved as OUT/name by a script
from scratchvae.tools.plots import show

OUT = Path("00_the_objective")  # where a script run saves its figures
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. A model with a latent variable
# An image here is a row of $D = 8$ binary pixels. The story the model tells about how an image
# comes about has two steps ("ancestral sampling"):
#
# 1. draw a **latent variable** (the *code*) $z$ from the **prior** $p(z) = \mathcal{N}(0, 1)$:
#    here $z$ is the position of a bright spot;
# 2. draw each pixel from the **likelihood** $p(x \mid z)$: pixel $j$ is 1 with probability
#    $p_j = \operatorname{sigmoid}(l_j)$, where the decoder's **logit** is high near the spot and
#    low elsewhere, $l_j(z) = -4 + 8\, e^{-(z - c_j)^2 / (2 \cdot 0.4^2)}$ ($c_j$ the centre of
#    pixel $j$).
#
# **Logits.** The decoder outputs $l_j$, any real number, not $p_j$, which must stay in $[0, 1]$;
# $l_j = \log p_j - \log(1 - p_j)$ is the log-odds. The log-likelihood is computed straight from
# the logits, $\log p(x \mid z) = \sum_j x_j l_j - \operatorname{softplus}(l_j)$ with
# $\operatorname{softplus}(l) = \log(1 + e^l)$ ([likelihoods (4)](../docs/likelihoods.md#bernoulli)),
# which never forms $\log 0$ (lesson 3 shows where the other way fails). A VAE's decoder is a
# network from $z$ to the logits; here it is one formula, so that everything else can be exact.
#
# **Nats.** Logarithms are natural, so log-probabilities are in *nats* (1 nat = 1/ln 2 = 1.44
# bits). A pixel that is a fair coin costs $\log 2 = 0.693$ nats; eight of them, $8 \log 2 = 5.55$.

# %%
D = 8
centres = np.linspace(-2.1, 2.1, D)  # c_j: where pixel j sits on the z axis, 0.6 apart


def decoder_logits(z):
    """The logits l_j(z), shape (len(z), D).

    At each pixel a bump of height 8 on a floor of -4.
    """
    return -4.0 + 8.0 * np.exp(-0.5 * ((z[:, None] - centres) / 0.4) ** 2)


z_drawn = rng.standard_normal(12)  # step 1: twelve codes from the prior
# (12, D): fine here, the logits lie in [-4, 4]
p = 1 / (1 + np.exp(-decoder_logits(z_drawn)))
# step 2: each pixel a coin with probability p_j
images = (rng.random((12, D)) < p).astype(float)
print("1. Twelve images drawn from the model (z, then the pixels):")
for code, image in zip(z_drawn, images):
    print(f"   z = {code:+.2f}   {''.join('#' if v else '.' for v in image)}")
print(f"   8 fair-coin pixels: {D * np.log(2):.4f} nats = {D} bits")

# %% [markdown]
# ## 2. The evidence and the posterior, on a grid
# The model gives an image $x$ the probability (the **evidence**, or marginal likelihood)
#
# $$p(x) = \int p(x \mid z)\, p(z)\, dz,$$
#
# an average of the likelihood over every code the prior might have drawn. Having seen $x$, which
# codes could have made it? Bayes' rule gives the **posterior**,
#
# $$p(z \mid x) = \frac{p(x \mid z)\, p(z)}{p(x)}.$$
#
# The numerator, the *joint* $p(x, z)$, is a formula we can evaluate at any $z$; the denominator
# is the integral. In one dimension the integral is a sum over a grid: the integrands vanish
# beyond $|z| = 10$, and the sum of $f(z_i)$ times the cell width is then accurate to rounding
# (for every $q$ below too: they all have $|\mu| \le 3$ and $\sigma \le 1$).
#
# Two images: a *clear* one, a spot over pixels 3 and 4, and an *ambiguous* one, pixels 2 and 5
# on, which a spot makes in two ways (at pixel 2 with a stray pixel 5, or the other way round).

# %%
z = np.linspace(-10, 10, 4001)  # the grid of codes, (G,)
cell = z[1] - z[0]  # the width of one grid cell, 0.005
log_prior = -0.5 * np.log(2 * np.pi) - 0.5 * z**2  # log p(z) on the grid, (G,)


def log_likelihood(x):
    """log p(x | z) at every grid point, (G,), from the logits (likelihoods (4))."""
    logits = decoder_logits(z)  # (G, D)
    # logaddexp(0, l) = softplus(l)
    return np.sum(x * logits - np.logaddexp(0, logits), axis=1)


def log_evidence(x):
    """log p(x) = log of the grid sum of p(x | z) p(z).

    The largest term is taken out before exp.
    """
    log_joint = log_likelihood(x) + log_prior
    top = log_joint.max()
    return top + np.log(np.sum(np.exp(log_joint - top)) * cell)


def log_posterior(x):
    """log p(z | x) on the grid, (G,): Bayes' rule, the joint minus log p(x)."""
    return log_likelihood(x) + log_prior - log_evidence(x)


clear = np.array([0, 0, 0, 1, 1, 0, 0, 0.0])
ambiguous = np.array([0, 0, 1, 0, 0, 1, 0, 0.0])
# the 256 images
all_images = (np.arange(2**D)[:, None] >> np.arange(D) & 1).astype(float)
total = sum(np.exp(log_evidence(x)) for x in all_images)
print(f"2. Summed over all {len(all_images)} images, p(x) = {total:.12f}")
for name, x in [("clear", clear), ("ambiguous", ambiguous)]:
    log_px = log_evidence(x)
    posterior_sum = np.sum(np.exp(log_posterior(x))) * cell
    print(f"   {name:<9} image: log p(x) = {log_px:.4f} nats "
          f"(p(x) = {np.exp(log_px):.4f}); "
          f"the posterior sums to {posterior_sum:.12f}")
for D_z in (1, 2, 16):
    print(f"   the same grid in D_z = {D_z:>2} dimensions: "
          f"{float(len(z)) ** D_z:.1e} decoder evaluations per image")

# %% [markdown]
# **Why the posterior is intractable.** A VAE's code has $D_z = 2$ to $50$ dimensions: the grid
# becomes $4001^{D_z}$ points, one decoder pass each, for every image (printed above), and no
# formula does the integral for a neural-network decoder. Without $p(x)$ there is no posterior and
# no likelihood to maximise. What is left is the joint $p(x, z)$, computable at any one $z$.

# %% mystnb={"figure": {"caption": "Prior $p(z)$ (grey) and posterior $p(z \\mid x)$ (blue) on the grid, with the likelihood $p(x \\mid z)$ dashed on its own axis: the posterior is the prior times the likelihood, divided by $p(x)$."}, "image": {"alt": "The prior, the likelihood and the posterior of the one-dimensional example, for a clear and an ambiguous image"}}
fig = Figure(figsize=(9, 3.2), layout="constrained")
axes = fig.subplots(1, 2, sharey=True)
for ax, (name, x) in zip(axes, [("clear", clear), ("ambiguous", ambiguous)]):
    ax.plot(z, np.exp(log_prior), color="grey", label="prior p(z)")
    ax.plot(z, np.exp(log_posterior(x)), color="tab:blue", label="posterior p(z | x)")
    ax.set_xlim(-4, 4)
    ax.set_xlabel("z")
    ax.set_title(f"{name}: {''.join('#' if v else '.' for v in x)}")
    ax.legend(fontsize=8, loc="upper left")
    # the likelihood is a function of z, not a density over z: its own axis
    right = ax.twinx()
    right.plot(z, np.exp(log_likelihood(x)), color="tab:orange", ls="--")
    right.set_ylim(bottom=0)
    right.set_ylabel("likelihood p(x | z), dashed", color="tab:orange")
show(fig, "posteriors.png", OUT)

# %% [markdown]
# ## 3. The evidence lower bound, derived twice
# Take *any* distribution $q(z)$ we can sample and evaluate; here a Gaussian
# $q = \mathcal{N}(\mu, \sigma^2)$, written as `(mu, log_var)` like the VAE's encoder output.
#
# **By Jensen's inequality.** Multiply and divide by $q$ inside the integral; the logarithm is
# concave, so the log of an average is at least the average of the log
# (Jensen, as in [elbo (4)](../docs/elbo.md#kl-to-posterior)):
#
# $$\log p(x) = \log \int q(z)\, \frac{p(x, z)}{q(z)}\, dz
# \;\ge\; \int q(z) \log \frac{p(x, z)}{q(z)}\, dz = \mathcal{L}(q).$$
#
# **By the KL to the posterior.** Write $p(x, z) = p(z \mid x)\, p(x)$ inside $\mathcal{L}$; the
# $\log p(x)$ comes out of the integral because $q$ integrates to one:
#
# $$\mathcal{L}(q) = \mathbb{E}_q\big[\log p(z \mid x) + \log p(x) - \log q(z)\big]
# = \log p(x) - \mathrm{KL}\big(q \,\Vert\, p(z \mid x)\big)
# \quad\text{([elbo (3)](../docs/elbo.md#kl-to-posterior))}.$$
#
# The second derivation says more than the first: the gap $\log p(x) - \mathcal{L}(q)$ is exactly
# how far $q$ is from the posterior, so it is zero only at $q = p(z \mid x)$, and raising the ELBO
# over $q$ both tightens the bound and pulls $q$ towards the posterior
# ([elbo (5)](../docs/elbo.md#kl-to-posterior)). And $\mathcal{L}$ needs only the joint, never $p(x)$.

# %%
def log_q(mu, log_var):
    """log N(z; mu, exp(log_var)) on the grid.

    Shape (G,), or (M, G) for a column of M means.
    """
    return -0.5 * (np.log(2 * np.pi) + log_var + (z - mu) ** 2 / np.exp(log_var))


def elbo(x, mu, log_var):
    """L(q) = E_q[log p(x, z) - log q(z)], a grid sum (elbo (3)).

    One per mean if mu is a column.
    """
    lq = log_q(mu, log_var)
    return np.sum(np.exp(lq) * (log_likelihood(x) + log_prior - lq), axis=-1) * cell


def kl_to_posterior(x, mu, log_var):
    """KL(q || p(z | x)) = E_q[log q(z) - log p(z | x)], a grid sum."""
    lq = log_q(mu, log_var)
    return np.sum(np.exp(lq) * (lq - log_posterior(x))) * cell


print("3. For several q = N(mu, exp(log_var)), on the ambiguous image:")
print(f"   {'mu':>5} {'log_var':>8} {'ELBO':>10} "
      f"{'log p(x) - ELBO':>16} {'KL(q || posterior)':>19}")
for mu, log_var in [(0.0, 0.0), (0.0, -2.0), (-1.0, -3.5), (1.0, -3.5)]:
    value, gap = elbo(ambiguous, mu, log_var), kl_to_posterior(ambiguous, mu, log_var)
    print(f"   {mu:5.1f} {log_var:8.1f} {value:10.4f} "
          f"{log_evidence(ambiguous) - value:16.10f} {gap:19.10f}")

# %% [markdown]
# ## 4. The ELBO against q's parameters
# Scan $\mu$ and $\log\sigma^2$ over a grid and find the best Gaussian for each image.
# **Predict** first: for the ambiguous image, whose posterior has two equal, well-separated bumps,
# how large can the smallest gap be? (A Gaussian can cover one bump; then $q$ puts all its mass
# where the posterior has half of it, and $\log(1 / \tfrac12)$ is ...) The printed gap tells you.

# %%
mus, log_vars = np.linspace(-3, 3, 121), np.linspace(-6, 0, 61)
best = {}
for name, x in [("clear", clear), ("ambiguous", ambiguous)]:
    # (61, 121)
    table = np.array([elbo(x, mus[:, None], log_var) for log_var in log_vars])
    i, j = np.unravel_index(np.argmax(table), table.shape)
    best[name] = (mus[j], log_vars[i], table)
    log_px = log_evidence(x)
    print(f"4. {name:<9}: best q on the grid mu = {mus[j]:+.2f}, "
          f"log_var = {log_vars[i]:.1f}: ELBO {table[i, j]:.4f}, "
          f"log p(x) {log_px:.4f}, gap {log_px - table[i, j]:.4f} nats")
print(f"   log 2 = {np.log(2):.4f}")

# %% mystnb={"figure": {"caption": "Left: the ELBO of $q = \\mathcal{N}(\\mu, e^{\\log\\sigma^2})$ over a grid of $\\mu$ and $\\log\\sigma^2$ for the ambiguous image, the best marked by a star. Middle: the slice at the best $\\log\\sigma^2$; the shaded gap up to $\\log p(x)$ is $\\mathrm{KL}(q \\,\\|\\, p(z \\mid x))$. Right: each image's posterior (solid) and its best Gaussian $q$ (dotted)."}, "image": {"alt": "The ELBO of every Gaussian q for the ambiguous image, a slice through it, and the best q beside each posterior"}}
fig = Figure(figsize=(10, 3.4), layout="constrained")
heat, slice_, fit = fig.subplots(1, 3)
mu_best, log_var_best, table = best["ambiguous"]
image = heat.imshow(table, origin="lower", aspect="auto",
                    vmin=table.max() - 10, vmax=table.max(),
                    extent=[mus[0], mus[-1], log_vars[0], log_vars[-1]])
heat.plot(mu_best, log_var_best, "w*", markersize=10)
heat.set_xlabel("mu")
heat.set_ylabel("log_var")
heat.set_title("ELBO of N(mu, exp(log_var))")
fig.colorbar(image, ax=heat)
row = table[list(log_vars).index(log_var_best)]
slice_.axhline(log_evidence(ambiguous), color="black", ls="--", label="log p(x)")
slice_.plot(mus, row, label=f"ELBO, log_var = {log_var_best:.1f}")
slice_.fill_between(mus, row, log_evidence(ambiguous), color="tab:red", alpha=0.2,
                    label="gap = KL(q || posterior)")
slice_.set_ylim(log_evidence(ambiguous) - 8, log_evidence(ambiguous) + 1)
slice_.set_xlabel("mu")
slice_.set_ylabel("nats")
slice_.legend(fontsize=7)
for name, colour in [("clear", "tab:green"), ("ambiguous", "tab:blue")]:
    x = clear if name == "clear" else ambiguous
    fit.plot(z, np.exp(log_posterior(x)), color=colour, label=f"posterior, {name}")
    fit.plot(z, np.exp(log_q(*best[name][:2])), color=colour, ls=":",
             label=f"best q, {name}")
fit.set_xlim(-3.5, 3.5)
fit.set_xlabel("z")
fit.legend(fontsize=7)
show(fig, "elbo_against_q.png", OUT)

# %% [markdown]
# ## 5. The form a VAE computes: reconstruction minus a KL to the prior
# Split the joint inside $\mathcal{L}$, $\log p(x, z) = \log p(x \mid z) + \log p(z)$
# ([elbo (6)](../docs/elbo.md#vae-objective)):
#
# $$\mathcal{L}(q) = \underbrace{\mathbb{E}_q \log p(x \mid z)}_{\text{reconstruction}}
# - \underbrace{\mathrm{KL}\big(q \,\Vert\, p(z)\big)}_{\text{KL term}},
# \qquad \mathrm{KL}\big(\mathcal{N}(\mu, \sigma^2) \,\Vert\, \mathcal{N}(0, 1)\big)
# = \tfrac12\left(\sigma^2 + \mu^2 - 1 - \log\sigma^2\right)$$
#
# ([gaussian (12b)](../docs/gaussian.md#kl-standard-normal)). The KL term has a closed form; the
# reconstruction term does not, and a VAE estimates it with one sampled $z$ (lesson 5). The
# **negative ELBO**, $-\mathcal{L}$, in nats, is the loss lesson 1 minimises, averaged over a batch.
#
# ## Your turn
# Write `negative_elbo(x, mu, log_var)` in this form: minus the reconstruction term (a grid sum
# of $q(z) \log p(x \mid z)$, using `log_q` and `log_likelihood`) plus the closed-form KL. The
# check cell below compares it with part 3's `elbo` at several $q$.

# %%
def negative_elbo(x, mu, log_var):
    """-L(q) = -E_q log p(x | z) + KL(q || N(0, 1)), in nats."""
    return None  # replace: the reconstruction term on the grid, the KL in closed form


# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
def negative_elbo(x, mu, log_var):
    """-L(q) = -E_q log p(x | z) + KL(q || N(0, 1)), in nats."""
    reconstruction = np.sum(np.exp(log_q(mu, log_var)) * log_likelihood(x)) * cell
    kl = 0.5 * (np.exp(log_var) + mu**2 - 1 - log_var)
    return -reconstruction + kl


# %%
# Check: your negative_elbo against minus part 3's elbo, on both images and four q's.
for x in (clear, ambiguous):
    for mu, log_var in [(0.0, 0.0), (0.3, -3.0), (-1.5, -1.0), (2.0, -0.5)]:
        yours, expected = negative_elbo(x, mu, log_var), -elbo(x, mu, log_var)
        assert yours is not None, "negative_elbo returns None: fill in the cell above"
        hint = ("the sign: the loss is minus the ELBO"
                if abs(yours + expected) < 1e-8 else
                "-(grid sum of q(z) log p(x | z) times cell) "
                "+ (sigma^2 + mu^2 - 1 - log sigma^2) / 2")
        assert abs(yours - expected) < 1e-8, (
            f"negative_elbo(x, {mu}, {log_var}) = {yours:.6f}, "
            f"expected {expected:.6f}: {hint}")
best_clear_loss = negative_elbo(clear, *best["clear"][:2])
print("ok: negative_elbo agrees with -elbo to 1e-8 at 8 q's; "
      f"at the best q for the clear image the loss is {best_clear_loss:.4f} nats, "
      f"above -log p(x) = {-log_evidence(clear):.4f}")

# %% [markdown]
# ## What to look at
# * Part 2: the evidence sums to 1 over the 256 images, and so does each posterior over $z$: the
#   grid sums are exact to rounding. The same grid in 16 dimensions would take $4 \times 10^{57}$
#   decoder passes per image.
# * Part 3: in every row the two right-hand columns agree to ten digits: the gap is
#   $\mathrm{KL}(q \,\Vert\, \text{posterior})$, never negative, so every ELBO is below $\log p(x)$.
# * Part 4: the clear image's posterior is nearly Gaussian and the best $q$ closes the gap to about a
#   thousandth of a nat. The ambiguous image's posterior has two bumps; the best Gaussian sits on one
#   of them and leaves a gap of about $\log 2 = 0.69$ nats, whatever its parameters: a Gaussian $q$
#   cannot hold a two-bump posterior, and the ELBO cannot tell you so.
# * Your turn: the VAE's form and the form through the joint are one number. The negative ELBO
#   is at least $-\log p(x)$, so a loss in nats says how far the model is from giving the data a
#   high probability, plus how far $q$ is from the posterior.

# %%
print("Look at: the equal last two columns of part 3, the gaps of part 4 "
      "(a thousandth of a nat, then about log 2), and the posteriors against "
      "their best Gaussians.")
