"""scratchvae: the Variational Auto-Encoder built from scratch in NumPy.

Every gradient is written by hand beside the maths it comes from (see
``docs/``) and checked by finite differences (:mod:`scratchvae.lecture.gradcheck`).
Modules, in course order: layers, modules, gaussian, likelihoods, vae,
estimators, optim, data, train, plots; kernels holds the Numba loops they share.
"""

__version__ = "0.1.0"
