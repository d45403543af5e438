"""Training: binarise a minibatch, and one step of gradient descent on the negative ELBO.

:func:`train_step` is the whole of training, one minibatch at a time::

    x = binarize(images, rng, rows)             # 1. fresh 0/1 pixels
    eps = rng.standard_normal((B, D_z))         # 2. the noise of the sampler
    loss, cache = model.negative_elbo_forward(x, eps, beta)   # 3. forward
    model.negative_elbo_backward(1.0, cache, accumulate=False)  # 4. backward
    optimizer.step()                            # 5. update

:func:`scratchvae.tools.train.fit` is the tool around it: epochs, shuffling,
progress, history, checkpoints and resume.

Derivations: docs/training.md, docs/data.md#dynamic-binarisation
"""

import numpy as np

from scratchvae.lecture.validate import as_float_array, check_rng, check_unit_interval

__all__ = ["PIXELS", "binarize", "check_rows", "dequantize", "kl_weight", "learning_rate",
           "train_step"]

# How the images become the model's data x, in the words of `scratchvae train --binarize`:
# "dynamic", a fresh 0/1 draw of each row each time it is used (Bernoulli decoder);
# "fixed", thresholded at 0.5 once, up front, by the caller;
# "dequantize", a fresh dequantisation each time (Gaussian decoder); "none", grey levels.
# train_step draws afresh for "dynamic" and "dequantize", and takes the rows as they are
# for "fixed" and "none".
PIXELS = ("dynamic", "fixed", "dequantize", "none")


def binarize(x, rng, rows=None):
    r"""Dynamic binarisation: a fresh Bernoulli(x) draw, pixel by pixel, each time it is called.

    .. math:: x_{\text{bin}} = [\,u < x\,], \qquad u \sim \mathcal{U}[0, 1),
              \qquad\text{so}\quad P(x_{\text{bin}} = 1) = P(u < x) = x

    Called on every minibatch, it gives the model new 0/1 images each epoch:
    the protocol of the VAE benchmarks on MNIST since Burda et al. (2016).

    Parameters
    ----------
    x : ndarray of float, any shape, e.g. (B, D); (N, D) if ``rows`` is given
        Probabilities (pixel intensities) in [0, 1].
    rng : numpy.random.Generator
        The source of randomness; the global ``np.random`` state is never used.
    rows : 1-D ndarray of int, optional
        Binarise only these rows of ``x``: ``binarize(x, rng, rows)`` is
        ``binarize(x[rows], rng)``, bit for bit.

    Returns
    -------
    ndarray of float32, shape of ``x``, or (len(rows), D) if ``rows`` is given
        Zeros and ones.

    Examples
    --------
    >>> x = np.array([[0.0, 0.5, 1.0]])
    >>> b = binarize(x, np.random.default_rng(0))
    >>> b.dtype, b[0, 0].item(), b[0, 2].item()
    (dtype('float32'), 0.0, 1.0)

    Derivation: docs/data.md#dynamic-binarisation
    """
    check_rng(rng)
    if rows is not None:
        x = np.asarray(x)[check_rows(rows, np.asarray(x))]  # (B, D): only these rows are checked
    x = check_unit_interval("x", as_float_array("x", x))
    # x_bin = 1 where u < x, u ~ U[0, 1) one per pixel: P(x_bin = 1) = x
    return (rng.random(x.shape) < x).astype(np.float32)


def dequantize(x, rng, rows=None):
    r"""Dequantisation: the 256 grey levels spread into 256 bins of width 1/256, afresh each call.

    .. math:: \tilde{x} = \frac{\kappa + \xi}{256}, \qquad
              \kappa = \operatorname{round}(255\,x) \in \{0, \dots, 255\},
              \quad \xi \sim \mathcal{U}[0, 1)

    A pixel that was exactly 0 in every image now lies anywhere in [0, 1/256):
    a density on y is bounded (by 256 per pixel, a uniform on its bin), so a
    Gaussian decoder can no longer win an unbounded likelihood by shrinking its
    variance on pixels it predicts exactly (docs/likelihoods.md#gaussian). A
    density p on the dequantised image gives the 8-bit image a probability of at least
    :math:`\exp(\log p(\tilde{x}) - D \log 256)`, which is how bits per dimension
    are counted (docs/likelihoods.md#dequantisation).

    Parameters
    ----------
    x : ndarray of float, any shape, e.g. (B, D); (N, D) if ``rows`` is given
        Grey levels in [0, 1], multiples of 1/255 (MNIST's bytes divided by 255).
    rng : numpy.random.Generator
        Draws the noise xi.
    rows : 1-D ndarray of int, optional
        Dequantise only these rows of ``x``, as :func:`binarize` does.

    Returns
    -------
    ndarray of float32, shape of ``x``, or (len(rows), D)
        Values in [0, 1].

    Examples
    --------
    >>> y = dequantize(np.array([[0.0, 1.0]]), np.random.default_rng(0))
    >>> bool(0 <= y[0, 0] < 1 / 256 and 255 / 256 <= y[0, 1] < 1)
    True
    """
    check_rng(rng)
    if rows is not None:
        x = np.asarray(x)[check_rows(rows, np.asarray(x))]  # (B, D)
    x = check_unit_interval("x", as_float_array("x", x))
    # kappa = round(255 x): the byte the grey level came from
    byte = np.round(np.asarray(x, dtype=np.float64) * 255)
    # xi ~ U[0, 1), one per pixel
    xi = rng.random(x.shape)
    # x_tilde = (kappa + xi) / 256, in bin kappa of width 1/256 (rounded to float32: 1.0 at the top)
    return ((byte + xi) / 256).astype(np.float32)


def check_rows(rows, x):
    """``rows`` as ``intp`` indices of rows of the 2-D ``x``, or a ValueError naming the fault."""
    if x.ndim != 2:
        raise ValueError(f"x: expected a 2-dimensional array (N, D) when rows is given, "
                         f"got shape {x.shape}")
    rows = np.asarray(rows)
    if rows.ndim != 1 or rows.dtype.kind not in "iu":
        raise ValueError(f"rows: expected a 1-dimensional array of integer indices, "
                         f"got {rows.dtype} of shape {rows.shape}")
    # Row numbers count from 0: negative indices, which NumPy counts from the end, are refused.
    outside = (rows < 0) | (rows >= len(x))  # (B,)
    if outside.any():
        where = int(np.flatnonzero(outside)[0])
        raise ValueError(f"rows: expected indices in [0, {len(x)}) (the rows of x), "
                         f"got {rows[where]} at index {where}")
    return rows.astype(np.intp, copy=False)


def kl_weight(step, steps_per_epoch, warmup_epochs, beta):
    r"""The KL weight for global step ``step`` (1, 2, ...) under a linear warm-up.

    .. math:: \beta_s = \beta \,\min\!\Big(1, \frac{s}{T}\Big),
              \qquad T = \text{warmup_epochs} \times \text{steps_per_epoch}

    so the weight climbs from about 0 to ``beta`` over the first
    ``warmup_epochs`` epochs and stays there; ``warmup_epochs=0`` is no warm-up.
    Guide: docs/training.md#kl-warm-up

    Examples
    --------
    >>> [kl_weight(s, 10, 2, 1.0) for s in (1, 10, 20, 30)]
    [0.05, 0.5, 1.0, 1.0]
    """
    ramp_steps = warmup_epochs * steps_per_epoch
    if ramp_steps <= 0:
        return float(beta)
    return float(beta) * min(1.0, step / ramp_steps)


def learning_rate(epoch, lr, decay):
    r"""The learning rate of epoch ``epoch`` (1, 2, ...) under an exponential decay.

    .. math:: \eta_e = \eta \, \gamma^{\,e - 1}

    with :math:`\eta` = ``lr``, the rate of the first epoch, and :math:`\gamma` =
    ``decay`` per epoch; ``decay=1`` keeps it constant. Large steps early
    find the region of good parameters fast; small steps late stop the
    minibatch noise from keeping the parameters jittering around it.
    It depends on the epoch alone, so a resumed run continues the same
    schedule, however many epochs it is extended to.
    Guide: docs/training.md#learning-rate-decay

    Examples
    --------
    >>> [round(learning_rate(e, 1e-3, 0.5), 6) for e in (1, 2, 3)]
    [0.001, 0.0005, 0.00025]
    """
    return float(lr) * float(decay) ** (epoch - 1)


def train_step(model, optimizer, images, rows, rng, beta=None, pixels="dynamic"):
    """One step of minibatch gradient descent on the negative ELBO.

    Step 1, the pixels, is given; steps 2 to 5 are the task (docs/training.md#one-step),
    and marking checks each of them on stand-ins for the model and the optimizer:

    2. eps is drawn from ``rng`` *after* the pixels (so after the binarisation's
       draws), as ``rng.standard_normal((B, model.latent_dim), dtype=model.dtype)``;
    3. ``model.negative_elbo_forward(x, eps, beta=beta)``, once; if the loss is
       NaN or infinite, raise FloatingPointError at once, before any backward or update;
    4. ``model.negative_elbo_backward(1.0, cache, accumulate=False)``, on the
       forward's cache: it writes this step's gradients, not adds them to the last
       step's (no ``zero_grad``);
    5. ``optimizer.step()``, once, after the backward;

    then return the forward's loss and cache.

    Parameters
    ----------
    model : scratchvae.lecture.vae.VAE
        Its parameters are updated in place; its ops (``model.ops``) do the work.
    optimizer : optimizer from :mod:`scratchvae.lecture.optim` (or the engine's)
        Built on ``model``'s parameters.
    images : ndarray, shape (N, D)
        The training set, grey levels in [0, 1].
    rows : 1-D ndarray of int
        The minibatch: which rows of ``images`` to use, B of them.
    rng : numpy.random.Generator
        Draws the binarisation and the noise eps.
    beta : float, optional
        This step's KL weight; default ``model.beta``.
    pixels : {"dynamic", "fixed", "dequantize", "none"}
        Step 1 (:data:`PIXELS`): "dynamic", a fresh 0/1 draw of the rows
        (:func:`binarize`, for the Bernoulli decoder); "dequantize", a fresh
        dequantisation (:func:`dequantize`, for the Gaussian decoder); "fixed"
        and "none", the rows as they are (``images`` already thresholded once,
        or grey levels).

    Returns
    -------
    loss : float
        The minibatch's negative ELBO, before the update.
    cache : scratchvae.lecture.vae.ElboCache
        Its ``reconstruction`` and ``kl`` fields hold the two terms per example.

    Raises
    ------
    FloatingPointError
        If the loss is NaN or infinite; the parameters are then left as they
        were, not updated from a meaningless gradient.

    Examples
    --------
    >>> from scratchvae.lecture.vae import VAE
    >>> from scratchvae.lecture.optim import Adam
    >>> model = VAE(4, hidden=(3,), latent_dim=2)
    >>> images = np.random.default_rng(0).random((10, 4))
    >>> rng = np.random.default_rng(1)
    >>> loss, cache = train_step(model, Adam(model), images, np.arange(5), rng)
    >>> bool(abs(loss - 4 * np.log(2)) < 0.1)  # about D log 2 at the start: every pixel a coin toss
    True
    """
    # 1. the data: each pixel 1 with probability its grey level (or dequantised, or as it is)
    if pixels == "dynamic":
        x = model.ops.binarize(images, rng, rows)  # (B, D)
    elif pixels == "dequantize":
        x = dequantize(images, rng, rows)  # (B, D)
    elif pixels in ("fixed", "none"):
        x = images[check_rows(rows, images)]  # (B, D)
    else:
        raise ValueError(f"pixels: expected one of {PIXELS}, got {pixels!r}")
    # BEGIN SOLUTION
    # 2. the noise of the reparameterisation, eps ~ N(0, I), drawn after the pixels
    eps = rng.standard_normal((len(x), model.latent_dim), dtype=model.dtype)  # (B, D_z)
    # 3. forward: loss = (1/B) sum_b [-log p(x_b | z_b) + beta KL(q(z | x_b) || p(z))]
    loss, cache = model.negative_elbo_forward(x, eps, beta=beta)
    if not np.isfinite(loss):  # no gradient of a NaN or infinite loss reaches the parameters
        raise FloatingPointError(f"the loss is {loss}")
    # 4. backward: d loss / d theta for every parameter, written into model.grads (not added)
    model.negative_elbo_backward(1.0, cache, accumulate=False)
    optimizer.step()  # 5. update: one optimiser step against the gradients
    return loss, cache
    # END SOLUTION
