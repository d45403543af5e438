"""The Variational Auto-Encoder: encoder, decoder, and the negative ELBO with its backward.

The whole model is one chain, and :meth:`VAE.negative_elbo_forward` /
:meth:`VAE.negative_elbo_backward` write it out top to bottom, in the order
of the derivation in ``docs/vae.md``::

    x --encoder--> (mu, log_var) --reparameterise(eps)--> z --decoder--> logits
                         |                                                 |
                         +--> KL(q(z|x) || N(0, I))       log p(x | z) <---+

    negative ELBO = mean over the batch of [ -log p(x | z) + beta * KL ]

There is no autograd and no graph: the backward is the same list of steps
read upwards, each op's backward called by hand.
"""

import json
from types import ModuleType
from typing import NamedTuple

import numpy as np

from scratchvae.lecture import estimators
from scratchvae.lecture import ops as lecture_ops
from scratchvae.lecture.validate import (
    as_float_array,
    check_finite,
    check_int,
    check_rng,
    check_shape,
    check_unit_interval,
)

__all__ = ["VAE", "FORMAT_VERSION"]

# Bumped whenever the checkpoint layout changes; scratchvae.tools.checkpoints reads
# this version and converts version 1 (whose hidden layers were numbered by module).
FORMAT_VERSION = 2
LIKELIHOODS = ("bernoulli", "gaussian")
# How step 4 estimates the KL term: "analytic" is L^B, the closed form
# (estimators (4)); "monte_carlo" is L^A, log q(z|x) - log p(z) at the sampled z (estimators (3)).
KL_ESTIMATORS = ("analytic", "monte_carlo")


class ElboCache(NamedTuple):
    """What the backward needs, plus the per-example terms for reporting."""

    reconstruction: np.ndarray  # (B,) log p(x | z), one sample of z
    kl: np.ndarray  # (B,) KL(q(z | x) || p(z)), or its one-sample estimate
    beta: float
    likelihood: tuple  # the likelihood op's cache
    reparameterize: tuple
    kl_cache: tuple  # analytic: the KL op's cache; monte_carlo: (log q, log p) caches
    kl_estimator: str


class VAE:
    """A VAE with MLP encoder and decoder, Gaussian q(z|x) and a N(0, I) prior.

    Parameters
    ----------
    input_dim : int
        Size D of one flattened example (784 for MNIST).
    hidden : tuple of int
        Hidden layer sizes of the encoder; the decoder mirrors them.
    latent_dim : int
        Size D_z of the latent code z.
    activation : str
        Hidden activation: "relu", "leaky_relu", "tanh", "sigmoid" or "softplus".
    likelihood : {"bernoulli", "gaussian"}
        The decoder's p(x|z): Bernoulli on logits (binary pixels), or a
        Gaussian with per-pixel learned mean and log-variance (docs/likelihoods.md).
    beta : float
        Weight of the KL term (1 gives the ELBO; docs/elbo.md says what it does).
    seed : int
        Seeds the initial weights, so a configuration and a seed give one model.
    dtype : numpy dtype
        float32 for training, float64 for gradient checks.
    ops : module
        The ops the model runs on: :mod:`scratchvae.lecture.ops` (the
        default: plain NumPy, to read and step through in a debugger) or
        :mod:`scratchvae.engine.ops` (the Numba engine's, to train fast), or
        a student's own module of the same names. The numbers agree to
        float32 rounding. Not saved with the model: a file loads under any.

    Examples
    --------
    >>> import numpy as np
    >>> model = VAE(784, hidden=(64,), latent_dim=2, seed=0)
    >>> x = np.random.default_rng(0).random((5, 784)).round()
    >>> eps = np.random.default_rng(1).standard_normal((5, 2))
    >>> loss, cache = model.negative_elbo_forward(x, eps)
    >>> model.zero_grad(); model.negative_elbo_backward(1.0, cache)
    >>> sorted(model.grads)[:2]
    ['decoder.0.W', 'decoder.0.b']
    """

    def __init__(
        self,
        input_dim,
        hidden=(400,),
        latent_dim=20,
        activation="relu",
        likelihood="bernoulli",
        beta=1.0,
        seed=0,
        dtype=np.float32,
        ops=lecture_ops,
    ):
        self.config = _check_config(
            input_dim=input_dim,
            hidden=hidden,
            latent_dim=latent_dim,
            activation=activation,
            likelihood=likelihood,
            beta=beta,
            seed=seed,
            dtype=np.dtype(dtype).name,
        )
        if not isinstance(ops, ModuleType):
            raise ValueError("ops: expected a module of ops, such as scratchvae.lecture.ops or "
                             f"scratchvae.engine.ops, got {type(ops).__name__}")
        self.ops = ops
        self.input_dim, self.latent_dim = int(input_dim), int(latent_dim)
        self.likelihood, self.beta = likelihood, float(beta)
        self.dtype = np.dtype(dtype)
        hidden = tuple(int(h) for h in hidden)
        rng = np.random.default_rng(seed)
        # Encoder q(z | x): x (B, D) -> h (B, H) -> [mu | log_var] (B, 2 D_z).
        # One head computes both halves: one matrix product instead of two.
        # Every layer starts from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's
        # default, which trained better here than He's (docs/layers.md#initialisation).
        init = "fan_in"
        self.encoder = ops.MLP([input_dim, *hidden], activation, rng, dtype, init=init)
        self.encoder_head = ops.Dense(hidden[-1], 2 * latent_dim, rng, init, dtype)
        # Decoder p(x | z): z (B, D_z) -> h (B, H) -> logits (B, D), or
        # [mean | log_var] (B, 2 D) for the Gaussian likelihood.
        self.decoder = ops.MLP([latent_dim, *hidden[::-1]], activation, rng, dtype, init=init)
        outputs = input_dim if likelihood == "bernoulli" else 2 * input_dim
        self.decoder_head = ops.Dense(hidden[0], outputs, rng, init, dtype)
        # x is data: the first layer's backward need not compute dx (one of
        # the eight matrix products per step).
        self.encoder.modules[0].input_grad = False
        self.modules = {
            "encoder": self.encoder,
            "encoder_head": self.encoder_head,
            "decoder": self.decoder,
            "decoder_head": self.decoder_head,
        }

    # --- parameters -------------------------------------------------------

    @property
    def params(self):
        """All parameters, by dotted name (the arrays themselves, not copies)."""
        return {f"{m}.{k}": v for m, mod in self.modules.items() for k, v in mod.params.items()}

    @property
    def grads(self):
        """Gradients, with the same keys as :attr:`params`."""
        return {f"{m}.{k}": v for m, mod in self.modules.items() for k, v in mod.grads.items()}

    def zero_grad(self):
        """Set every gradient to zero, in place."""
        for module in self.modules.values():
            module.zero_grad()

    # --- the two halves ---------------------------------------------------

    def encode(self, x):
        """q(z | x)'s parameters: ``(mu, log_var)``, each (B, D_z)."""
        return self._encode(self.as_input(x))

    def _encode(self, x):
        """:meth:`encode` for an ``x`` already checked."""
        mu_log_var = self.encoder_head.forward(self.encoder.forward(x))  # (B, 2 D_z): [mu | log_var]
        return mu_log_var[:, : self.latent_dim], mu_log_var[:, self.latent_dim :]

    def decoder_output(self, z):
        """The decoder's raw output: logits (B, D), or [mean | log_var] (B, 2 D)."""
        return self.decoder_head.forward(self.decoder.forward(z))

    def decode(self, z):
        """The mean of p(x | z): pixel probabilities sigmoid(logits), or the Gaussian mean."""
        z = as_float_array("z", z, ndim=2).astype(self.dtype, copy=False)
        check_shape("z", z, (None, self.latent_dim))
        out = self.decoder_output(z)
        if self.likelihood == "bernoulli":
            return self.ops.sigmoid_forward(out)[0]
        return out[:, : self.input_dim]

    def reconstruct(self, x):
        """Decode the mean of q(z | x): the model's best guess at x, without noise."""
        return self.decode(self.encode(x)[0])

    def sample(self, n, rng, mean=True):
        """Ancestral sampling: z ~ N(0, I), then x ~ p(x | z) (docs/figures.md#samples).

        With ``mean=True`` (the default, for pictures) return the mean of
        p(x | z) instead of a draw from it.
        """
        n = check_int("n", n)
        check_rng(rng)
        z = rng.standard_normal((n, self.latent_dim)).astype(self.dtype)
        x_mean = self.decode(z)
        if mean:
            return x_mean
        if self.likelihood == "bernoulli":
            return (rng.random(x_mean.shape) < x_mean).astype(self.dtype)
        log_var = self.decoder_output(z)[:, self.input_dim :]
        return x_mean + np.exp(0.5 * log_var) * rng.standard_normal(x_mean.shape)

    # --- the objective ----------------------------------------------------

    def log_likelihood_forward(self, x, out):
        """Log p(x | z) from the decoder's output ``out``: (ll (B,), cache)."""
        if self.likelihood == "bernoulli":
            return self.ops.bernoulli_log_likelihood_forward(x, out)
        D = self.input_dim
        return self.ops.gaussian_log_likelihood_forward(x, out[:, :D], out[:, D:])

    def log_likelihood_backward(self, dll, cache):
        """Gradient of log p(x | z) with respect to the decoder's output.

        Derivation: docs/vae.md#backward
        """
        if self.likelihood == "bernoulli":
            return self.ops.bernoulli_log_likelihood_backward(dll, cache)
        dmean, dlog_var = self.ops.gaussian_log_likelihood_backward(dll, cache)
        return np.concatenate([dmean, dlog_var], axis=1)  # (B, 2 D)

    def negative_elbo_forward(self, x, eps, beta=None, kl_estimator="analytic"):
        r"""The loss: -ELBO per example, averaged over the batch.

        .. math:: \text{loss} = \frac{1}{B} \sum_b \big[ -\log p(x_b | z_b)
                  + \beta\, \mathrm{KL}(q(z | x_b) \,\|\, \mathcal{N}(0, I)) \big],
                  \quad z_b = \mu_b + \sigma_b \odot \varepsilon_b

        (vae (2): the estimator L^B of estimators (4) with one sample; with
        ``kl_estimator="monte_carlo"`` the KL is replaced by its one-sample
        estimate log q(z|x) - log p(z), which gives L^A, estimators (3)).
        Derivation: docs/vae.md#forward

        Parameters
        ----------
        x : ndarray, shape (B, D)
            A batch of examples.
        eps : ndarray, shape (B, D_z)
            Standard normal noise, drawn by the caller from its generator.
        beta : float, optional
            KL weight for this step (KL warm-up changes it); default ``self.beta``.
        kl_estimator : {"analytic", "monte_carlo"}
            Closed-form KL (L^B, the default: lower variance) or the sampled
            log q(z|x) - log p(z) (L^A).

        Returns
        -------
        loss : float
        cache : ElboCache
            For :meth:`negative_elbo_backward`; its ``reconstruction`` and
            ``kl`` fields hold the two terms per example.
        """
        ops = self.ops
        x = self.as_input(x)
        eps = as_float_array("eps", eps, ndim=2).astype(self.dtype, copy=False)
        check_shape("eps", eps, (x.shape[0], self.latent_dim))
        if len(x) == 0:
            raise ValueError("x: expected at least one example, got an empty batch")
        beta = self.beta if beta is None else _check_beta(beta)
        if kl_estimator not in KL_ESTIMATORS:
            raise ValueError(f"kl_estimator: expected one of {KL_ESTIMATORS}, got {kl_estimator!r}")
        # 1. Encoder: q(z | x) = N(mu, diag exp(log_var))
        mu, log_var = self._encode(x)  # (B, D_z) each
        # 2. Reparameterise: z = mu + exp(log_var / 2) * eps        gaussian (2)
        z, reparameterize = ops.reparameterize_forward(mu, log_var, eps)  # (B, D_z)
        # 3. Decoder and reconstruction term: log p(x | z)          gaussian (1)
        reconstruction, likelihood = self.log_likelihood_forward(x, self.decoder_output(z))
        # 4. KL term: KL(q(z | x) || N(0, I))
        if kl_estimator == "analytic":
            # in closed form (L^B)                                  gaussian (14)
            kl, kl_cache = ops.kl_standard_normal_forward(mu, log_var)  # (B,)
        else:
            # or at the sample: log q(z | x) - log N(z; 0, I) (L^A)   estimators (3)
            log_q, q_cache = ops.gaussian_log_density_forward(z, mu, log_var)  # (B,)
            zero = np.zeros_like(z)
            log_p, p_cache = ops.gaussian_log_density_forward(z, zero, zero)  # (B,)
            kl, kl_cache = log_q - log_p, (q_cache, p_cache)
        # 5. loss = (1/B) sum_b [ -reconstruction_b + beta * kl_b ]   vae (2)
        loss = float(np.mean(beta * kl - reconstruction))
        cache = ElboCache(reconstruction, kl, beta, likelihood, reparameterize, kl_cache, kl_estimator)
        return loss, cache

    def negative_elbo_backward(self, dloss, cache, accumulate=True):
        r"""Backpropagate ``dloss`` through the chain; *adds* into :attr:`grads`.

        With ``accumulate=False`` it writes :attr:`grads` instead, which is
        :meth:`zero_grad` and this in one (see :class:`scratchvae.lecture.modules.Module`).

        The forward's steps, read upwards (vae (3)):

        .. math:: d\text{reconstruction}_b = -\frac{d\text{loss}}{B},
                  \qquad d\text{kl}_b = \frac{d\text{loss}\,\beta}{B}

        and ``mu``, ``log_var`` receive gradient along two paths, through the
        sample ``z`` and through the KL term; the two add. (With the
        Monte Carlo KL, the KL term also depends on ``z``, a third path.)

        Derivation: docs/vae.md#backward
        """
        # BEGIN SOLUTION
        ops = self.ops
        B = cache.kl.shape[0]
        dtype = self.dtype
        # 5. Loss -> the two terms (per example).
        dreconstruction = np.full(B, -dloss / B, dtype=dtype)  # (B,)
        dkl = np.full(B, dloss * cache.beta / B, dtype=dtype)  # (B,)
        # 3. Reconstruction term -> decoder output -> decoder -> z.
        dout = self.log_likelihood_backward(dreconstruction, cache.likelihood)  # (B, D)
        dz = self.decoder.backward(self.decoder_head.backward(dout, accumulate), accumulate)  # (B, D_z)
        # 4. KL -> (mu, log_var) directly (and -> z, for the Monte Carlo KL).
        if cache.kl_estimator == "analytic":
            dmu_kl, dlog_var_kl = ops.kl_standard_normal_backward(dkl, cache.kl_cache)
        else:
            q_cache, p_cache = cache.kl_cache
            # kl = log q - log p: dkl flows into log q with +1, into log p with -1.
            dz_q, dmu_kl, dlog_var_kl = ops.gaussian_log_density_backward(dkl, q_cache)
            dz_p = ops.gaussian_log_density_backward(-dkl, p_cache)[0]
            dz = dz + dz_q + dz_p  # (B, D_z)
        # 2. z -> (mu, log_var): the path through the sample.
        dmu, dlog_var = ops.reparameterize_backward(dz, cache.reparameterize)
        # Both paths into (mu, log_var) add.
        dmu_log_var = np.concatenate([dmu + dmu_kl, dlog_var + dlog_var_kl], axis=1)  # (B, 2 D_z)
        # 1. (mu, log_var) -> encoder head -> encoder.
        self.encoder.backward(self.encoder_head.backward(dmu_log_var, accumulate), accumulate)
        # END SOLUTION

    # --- evaluation -------------------------------------------------------

    def elbo(self, x, n_samples=1, rng=None):
        """The ELBO per example (B,), with ``n_samples`` samples of z (estimator L^B).

        ``rng`` defaults to a fixed seed, so repeated evaluations agree.
        """
        rng = np.random.default_rng(0) if rng is None else rng
        return estimators.elbo_lb(self, self.as_input(x), n_samples, rng)[0]

    # --- saving -----------------------------------------------------------

    def state_dict(self):
        """Configuration, format version and a copy of the parameters, as arrays for ``np.savez``.

        Copies, so that a snapshot taken now does not change as training goes on.
        """
        state = {f"param/{k}": v.copy() for k, v in self.params.items()}
        state["config"] = np.array(json.dumps(self.config))
        state["format_version"] = np.array(FORMAT_VERSION)
        return state

    def load_state_dict(self, state):
        """Copy parameters from ``state`` into this model (shapes must match)."""
        for name, param in self.params.items():
            key = f"param/{name}"
            if key not in state:
                raise ValueError(f"state: missing parameter {name!r}")
            value = np.asarray(state[key])
            if value.shape != param.shape:
                raise ValueError(
                    f"state: parameter {name!r} has shape {value.shape}, "
                    f"the model expects {param.shape}"
                )
            param[...] = value

    def as_input(self, x):
        """``x`` checked (finite, (B, input_dim), in [0, 1] for Bernoulli pixels), in the model's dtype.

        The model's one check of its data: the engine's ops check only shapes,
        so this is where a value out of range is caught, whichever the ops.
        For pixels, two reductions check both at once: ``x.min()`` and
        ``x.max()`` are NaN if any value is, and otherwise say whether all of
        them lie in [0, 1]; only a batch that fails is searched for the value
        to name in the error.
        """
        x = as_float_array("x", x, ndim=2, finite=False).astype(self.dtype, copy=False)
        x = check_shape("x", x, (None, self.input_dim))
        if self.likelihood == "gaussian":
            return check_finite("x", x)
        if x.size and not (x.min() >= 0 and x.max() <= 1):
            check_finite("x", x)
            check_unit_interval("x", x)
        return x


def _check_config(**config):
    """Validate the constructor's arguments; return them as a JSON-able dict."""
    for name in ("input_dim", "latent_dim"):
        if int(config[name]) < 1 or int(config[name]) != config[name]:
            raise ValueError(f"{name}: expected a positive integer, got {config[name]!r}")
    hidden = tuple(config["hidden"])
    if not hidden or any(int(h) < 1 or int(h) != h for h in hidden):
        raise ValueError(
            f"hidden: expected one or more positive integer sizes, got {config['hidden']!r}"
        )
    if config["likelihood"] not in LIKELIHOODS:
        raise ValueError(f"likelihood: expected one of {LIKELIHOODS}, got {config['likelihood']!r}")
    _check_beta(config["beta"])
    if config["dtype"] not in ("float32", "float64"):
        raise ValueError(f"dtype: expected float32 or float64, got {config['dtype']!r}")
    return {**config, "hidden": [int(h) for h in hidden], "beta": float(config["beta"])}


def _check_beta(beta):
    """The KL weight as a float, finite and >= 0, or a ValueError naming it."""
    try:
        value = float(beta)
    except (TypeError, ValueError):
        value = np.nan
    if not 0 <= value < np.inf:  # False for NaN too
        raise ValueError(f"beta: expected a finite KL weight >= 0, got {beta!r}")
    return value
