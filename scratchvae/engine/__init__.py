"""The Numba engine: fast versions of the lecture's ops, under the same names and signatures.

The lecture (:mod:`scratchvae.lecture`) is what to read; this is what training
runs on. Each module here mirrors the lecture module of the same name and
says what it does differently. Kernels (:mod:`scratchvae.engine.kernels`) are
plain Python loops compiled by Numba, each with a NumPy reference. The engine
imports the lecture, never the other way round; ``tests/test_engine.py``
checks that every op here has the lecture's signature and gives the lecture's
numbers (float64 to 1e-12, float32 to 1e-5).

:mod:`scratchvae.engine.ops` is what a model is handed to run on the engine:
``VAE(784, ops=scratchvae.engine.ops)``.
"""
