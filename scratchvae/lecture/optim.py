"""Optimisers: SGD (with momentum), Adagrad and Adam.

An optimiser holds the model's parameter arrays and their gradient arrays,
and ``step()`` moves every parameter against its gradient, **in place**: the
arrays are shared with the model, so they are updated, never replaced. Each
optimiser's ``update`` is its textbook rule in NumPy, one line per formula;
the engine's optimisers (:mod:`scratchvae.engine.optim`) compute the same
numbers in one fused kernel pass per array.

The update rules match ``torch.optim.SGD``, ``torch.optim.Adagrad`` and
``torch.optim.Adam`` with their default options (``tests/test_optim.py``
compares them). The derivations are in ``docs/optim.md``.

Examples
--------
>>> import numpy as np
>>> w = np.array([1.0, -2.0]); dw = np.zeros(2)
>>> opt = Adam([("w", w, dw)], lr=0.1)
>>> dw[:] = 2 * w              # gradient of |w|^2
>>> opt.step()
>>> w.round(3)                 # Adam's first step is about lr * sign(g)
array([ 0.9, -1.9])
"""

import numbers

import numpy as np

__all__ = ["OPTIMIZERS", "SGD", "Adagrad", "Adam", "Optimizer", "make_optimizer"]


# --- argument checks ------------------------------------------------------------


def _positive(name, value):
    """Return ``value`` as a float if it is a finite real number > 0, else raise."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if not ok or value <= 0:
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
    return float(value)


def _decay_rate(name, value):
    """A decay rate lies in [0, 1): at 1 nothing is forgotten, above 1 the average grows."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not ok or not 0 <= value < 1:
        raise ValueError(f"{name}: expected a number in [0, 1), got {value!r}")
    return float(value)


def _decay_rates(name, value):
    """A pair of decay rates, e.g. Adam's (beta1, beta2)."""
    if np.ndim(value) != 1 or len(value) != 2:
        raise ValueError(f"{name}: expected a pair (beta1, beta2), got {value!r}")
    return tuple(_decay_rate(f"{name}[{i}]", b) for i, b in enumerate(value))


# --- optimisers -----------------------------------------------------------------


class Optimizer:
    """Base class: parameter bookkeeping, ``step``, ``state_dict``, ``load_state_dict``.

    A subclass names its per-parameter state arrays and its hyper-parameters,
    and writes ``update``: the rule that moves one parameter array.

    Parameters
    ----------
    params : object with ``params`` and ``grads`` dicts, or iterable of (str, ndarray, ndarray)
        Either a model (any object whose ``params`` and ``grads`` are dicts
        with the same keys, like the modules of :mod:`scratchvae.lecture.modules` and
        :class:`scratchvae.lecture.vae.VAE`), taken in sorted key order; or
        ``(name, param, grad)`` triples. Each ``param`` must be a C-contiguous
        float32 or float64 array and its ``grad`` an array of the same shape
        and dtype. The model must update ``grad`` in place (``+=``,
        ``fill(0)``), never rebind it, or the optimiser would keep reading
        the old array.

    Attributes
    ----------
    params : list of (str, ndarray, ndarray)
        The ``(name, param, grad)`` triples, in update order.
    state : dict of str to list of ndarray
        The state arrays by name (e.g. ``state["m"]``), one per parameter, in
        the same order, each of its parameter's shape and dtype.
    t : int
        Number of steps taken.
    """

    name = ""  # prefix of the state_dict keys
    state_names = ()  # per-parameter state arrays, e.g. ("m", "v")
    nonnegative = ()  # state arrays that can never be negative (sums of squares)
    hypers = {}  # hyper-parameter name -> its check, e.g. {"lr": _positive}

    def __init__(self, params):
        self.params = _collect_params(params)
        self.state = {s: [np.zeros_like(p) for _, p, _ in self.params] for s in self.state_names}
        self.t = 0

    def step(self):
        """Update every parameter in place from its current gradient."""
        self.t += 1
        for k, (_, p, g) in enumerate(self.params):
            self.update(p, g, *(self.state[s][k] for s in self.state_names))

    def update(self, param, g, *state):
        """Move the parameter array ``param`` against its gradient ``g``, in place, at step ``self.t``."""
        raise NotImplementedError

    def _set_hypers(self, **values):
        """Check each hyper-parameter and set it as an attribute."""
        for name, value in values.items():
            setattr(self, name, self.hypers[name](name, value))

    def state_dict(self):
        """Everything needed to continue exactly where this optimiser is.

        Returns
        -------
        dict of str to ndarray
            Flat and NumPy-only (saves with ``np.savez``, loads with
            ``allow_pickle=False``): ``"<name>.t"``, the step count (0-d
            int64); ``"<name>.<hyper>"``, each hyper-parameter (float64);
            ``"<name>.<state>.<param>"``, a copy of each state array, e.g.
            ``"adam.m.encoder.0.W"``. See docs/optim.md#state.

        Examples
        --------
        >>> import numpy as np
        >>> opt = SGD([("w", np.zeros(2), np.ones(2))], lr=0.1, momentum=0.9)
        >>> sorted(opt.state_dict())
        ['sgd.lr', 'sgd.momentum', 'sgd.t', 'sgd.u.w']
        """
        out = {f"{self.name}.t": np.array(self.t, dtype=np.int64)}
        for h in self.hypers:
            out[f"{self.name}.{h}"] = np.array(getattr(self, h), dtype=np.float64)
        for s in self.state_names:
            for (pname, _, _), arr in zip(self.params, self.state[s]):
                out[f"{self.name}.{s}.{pname}"] = arr.copy()
        return out

    def load_state_dict(self, state):
        """Restore from :meth:`state_dict`'s output; later steps are then bit-identical.

        Everything is checked before anything changes. State arrays are
        copied into the existing buffers (the engine's kernels hold views of them).

        Parameters
        ----------
        state : mapping of str to array_like
            As returned by :meth:`state_dict`, or read back from an ``.npz``.

        Raises
        ------
        ValueError
            If a key is missing or extra, a hyper-parameter is invalid, or a
            state array's shape or dtype differs from its parameter's.
        """
        expected = self.state_dict().keys()
        missing, extra = sorted(expected - state.keys()), sorted(state.keys() - expected)
        if missing or extra:
            raise ValueError(
                f"state: expected the keys of a {type(self).__name__}.state_dict() for these "
                f"parameters; missing {missing}, unexpected {extra}"
            )
        hypers = {}
        for h, check in self.hypers.items():
            key = f"{self.name}.{h}"
            hypers[h] = check(f"state[{key!r}]", np.asarray(state[key]).tolist())
        copies = []  # (our state array, the saved one)
        for s in self.state_names:
            for (pname, _, _), arr in zip(self.params, self.state[s]):
                key = f"{self.name}.{s}.{pname}"
                saved = np.asarray(state[key])
                if saved.shape != arr.shape or saved.dtype != arr.dtype:
                    raise ValueError(
                        f"state[{key!r}]: expected {arr.dtype} of shape {arr.shape}, "
                        f"got {saved.dtype} of shape {saved.shape}"
                    )
                if not np.isfinite(saved).all() or (s in self.nonnegative and (saved < 0).any()):
                    sign = " and >= 0" if s in self.nonnegative else ""
                    raise ValueError(f"state[{key!r}]: expected finite values{sign}")
                copies.append((arr, saved))
        t = np.asarray(state[f"{self.name}.t"])
        if t.shape != () or t.dtype.kind not in "iu" or t < 0:
            raise ValueError(f"state[{self.name + '.t'!r}]: expected a step count >= 0, got {t}")
        for arr, saved in copies:
            arr[...] = saved
        for h, value in hypers.items():
            setattr(self, h, value)
        self.t = int(t)


class SGD(Optimizer):
    r"""Stochastic gradient descent, with optional (heavy-ball) momentum.

    .. math:: u \leftarrow \mu u + g, \qquad p \leftarrow p - \eta\, u

    This is PyTorch's form of momentum (``torch.optim.SGD``, no dampening,
    no Nesterov): the velocity sums gradients and ``lr`` scales the sum, so
    on a constant gradient the step grows to ``lr * g / (1 - momentum)``.
    With ``momentum = 0`` it is plain SGD, ``p -= lr * g``.
    See docs/optim.md#sgd.

    Parameters
    ----------
    params : model or iterable of (name, param, grad)
        See :class:`Optimizer`.
    lr : float
        Learning rate :math:`\eta > 0`.
    momentum : float, default 0.0
        Momentum :math:`\mu \in [0, 1)`.

    Examples
    --------
    >>> import numpy as np
    >>> w, dw = np.array([1.0]), np.array([0.5])
    >>> opt = SGD([("w", w, dw)], lr=0.1, momentum=0.9)
    >>> opt.step(); opt.step()          # u = 0.5, then 0.9 * 0.5 + 0.5 = 0.95
    >>> w.round(6)                      # 1 - 0.1 * 0.5 - 0.1 * 0.95
    array([0.855])
    """

    name = "sgd"
    state_names = ("u",)
    hypers = {"lr": _positive, "momentum": _decay_rate}

    def __init__(self, params, lr, momentum=0.0):
        self._set_hypers(lr=lr, momentum=momentum)
        super().__init__(params)

    def update(self, param, g, u):
        """One momentum step on ``param`` in place, from its gradient ``g`` and velocity ``u``."""
        # optim (2): the velocity u <- momentum * u + g, then p <- p - lr * u
        u[...] = self.momentum * u + g
        param -= self.lr * u


class Adagrad(Optimizer):
    r"""Adagrad: each coordinate's step shrinks with its summed squared gradients.

    .. math:: s \leftarrow s + g^2, \qquad p \leftarrow p - \eta\, g / (\sqrt{s} + \epsilon)

    The optimiser of Kingma & Welling's VAE paper. Matches
    ``torch.optim.Adagrad`` with its defaults (accumulator starts at 0, no
    learning-rate decay). See docs/optim.md#adagrad.

    Parameters
    ----------
    params : model or iterable of (name, param, grad)
        See :class:`Optimizer`.
    lr : float, default 0.01
        Learning rate :math:`\eta > 0`.
    eps : float, default 1e-10
        :math:`\epsilon > 0`, keeps the division finite where ``s`` is 0.

    Examples
    --------
    >>> import numpy as np
    >>> w, dw = np.array([1.0, 1.0]), np.array([3.0, -4.0])
    >>> opt = Adagrad([("w", w, dw)], lr=0.1)
    >>> opt.step()                      # first step: lr * g / |g| = lr * sign(g)
    >>> w.round(6)
    array([0.9, 1.1])
    """

    name = "adagrad"
    state_names = ("s",)
    nonnegative = ("s",)
    hypers = {"lr": _positive, "eps": _positive}

    def __init__(self, params, lr=0.01, eps=1e-10):
        self._set_hypers(lr=lr, eps=eps)
        super().__init__(params)

    def update(self, param, g, s):
        """One Adagrad step on ``param`` in place, from ``g`` and the sum of squares ``s``."""
        # optim (4): the sum of squared gradients s <- s + g^2, then the step
        s += g**2
        param -= self.lr * g / (np.sqrt(s) + self.eps)


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, Algorithm 1): bias-corrected moving averages of g and g².

    .. math::
        m \leftarrow \beta_1 m + (1 - \beta_1) g, \quad
        v \leftarrow \beta_2 v + (1 - \beta_2) g^2, \quad
        p \leftarrow p - \eta\, \hat m / (\sqrt{\hat v} + \epsilon)

    with :math:`\hat m = m / (1 - \beta_1^t)`, :math:`\hat v = v / (1 - \beta_2^t)`.
    This is the variant with :math:`\epsilon` added to :math:`\sqrt{\hat v}`,
    as in ``torch.optim.Adam`` (not TensorFlow's, which adds it to
    :math:`\sqrt{v}`). See docs/optim.md#adam.

    Parameters
    ----------
    params : model or iterable of (name, param, grad)
        See :class:`Optimizer`.
    lr : float, default 1e-3
        Learning rate :math:`\eta > 0`.
    betas : (float, float), default (0.9, 0.999)
        Decay rates :math:`(\beta_1, \beta_2)`, each in [0, 1).
    eps : float, default 1e-8
        :math:`\epsilon > 0`.

    Examples
    --------
    >>> import numpy as np
    >>> w, dw = np.array([1.0, 1.0]), np.array([1e-3, -50.0])
    >>> opt = Adam([("w", w, dw)], lr=0.01)
    >>> opt.step()                      # about lr * sign(g), whatever |g| is
    >>> w.round(6)
    array([0.99, 1.01])
    """

    name = "adam"
    state_names = ("m", "v")
    nonnegative = ("v",)
    hypers = {"lr": _positive, "betas": _decay_rates, "eps": _positive}

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self._set_hypers(lr=lr, betas=betas, eps=eps)
        super().__init__(params)

    def update(self, param, g, m, v):
        """One Adam step on ``param`` in place, from ``g`` and the moving averages ``m``, ``v``."""
        # BEGIN SOLUTION
        beta1, beta2 = self.betas
        # optim (5): moving averages of the gradient and of its square
        m[...] = beta1 * m + (1 - beta1) * g
        v[...] = beta2 * v + (1 - beta2) * g**2
        # optim (7): the bias corrections (both averages start at 0)
        m_hat = m / (1 - beta1**self.t)
        v_hat = v / (1 - beta2**self.t)
        # optim (8): param <- param - lr * m_hat / (sqrt(v_hat) + eps)
        param -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
        # END SOLUTION


# --- for the command line -----------------------------------------------------

OPTIMIZERS = {"sgd": SGD, "adagrad": Adagrad, "adam": Adam}


def make_optimizer(name, params, lr):
    """Build the optimiser called ``name`` with learning rate ``lr``, other settings default.

    Parameters
    ----------
    name : {"sgd", "adagrad", "adam"}
    params : model or iterable of (name, param, grad)
        See :class:`Optimizer`. A model (a :class:`~scratchvae.lecture.vae.VAE`)
        gets the optimiser of the ops it runs on (``model.ops.OPTIMIZERS``);
        anything else gets the lecture's.
    lr : float
        Learning rate, > 0.

    Returns
    -------
    Optimizer

    Examples
    --------
    >>> import numpy as np
    >>> make_optimizer("adam", [("w", np.zeros(3), np.zeros(3))], 1e-3).betas
    (0.9, 0.999)
    """
    optimizers = params.ops.OPTIMIZERS if hasattr(params, "ops") else OPTIMIZERS
    if name not in optimizers:
        raise ValueError(f"name: expected one of {', '.join(optimizers)}, got {name!r}")
    return optimizers[name](params, lr=lr)


# --- parameters -----------------------------------------------------------------


def _collect_params(params):
    """Return ``[(name, param, grad)]`` from a model or from triples, checked."""
    if hasattr(params, "params") and hasattr(params, "grads"):
        values, grads = params.params, params.grads
        if values.keys() != grads.keys():
            raise ValueError(f"params: the keys of params {sorted(values)} and grads "
                             f"{sorted(grads)} differ")
        triples = [(k, values[k], grads[k]) for k in sorted(values)]
    else:
        triples = [tuple(t) for t in params]
    if not all(len(t) == 3 for t in triples):
        raise ValueError("params: expected a model with params and grads dicts, or "
                         "(name, param, grad) triples")
    if not triples:
        raise ValueError("params: expected at least one parameter, got none")
    names = [t[0] for t in triples]
    if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise ValueError(f"params: expected distinct string names, got {names}")
    for name, p, g in triples:
        if not isinstance(p, np.ndarray) or p.dtype not in (np.float32, np.float64):
            raise ValueError(f"params[{name!r}]: expected a float32 or float64 ndarray, "
                             f"got {type(p).__name__} {getattr(p, 'dtype', '')}")
        if not (p.flags.c_contiguous and p.flags.writeable) or p.size == 0:
            raise ValueError(f"params[{name!r}]: expected a non-empty, C-contiguous, "
                             "writeable array (it is updated in place)")
        if not isinstance(g, np.ndarray) or g.shape != p.shape or g.dtype != p.dtype \
                or not g.flags.c_contiguous:
            raise ValueError(f"grads[{name!r}]: expected a C-contiguous {p.dtype} array of "
                             f"shape {p.shape}, got {getattr(g, 'dtype', type(g).__name__)} "
                             f"of shape {getattr(g, 'shape', None)}")
    return triples

