"""scratchvae: the Variational Auto-Encoder built from scratch in NumPy.

Every gradient is written by hand beside the maths it comes from (``docs/``)
and checked by finite differences. Four parts:

* :mod:`scratchvae.lecture`: the course, in plain NumPy, read in this order:
  tiny_vae, dense, activations, modules, gradcheck, gaussian, gaussian_density,
  gaussian_full, likelihoods, linear_gaussian, vae, estimators, collapse, optim, training
  (``scratchvae/lecture/__init__.py`` says what each holds);
* :mod:`scratchvae.engine`: the same ops on Numba kernels, for training fast;
* :mod:`scratchvae.classroom`: handouts cut from the lecture, and the isolated marker;
* :mod:`scratchvae.tools`: the ``scratchvae`` command, data, training loop, plots, benchmark.
"""

__version__ = "0.1.0"
