"""Shared test configuration.

Hypothesis: no per-example deadline, because the first call of a Numba kernel
compiles it (and under NUMBA_DISABLE_JIT=1 every loop runs in Python).
"""

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("default", deadline=None, max_examples=60)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

JIT_DISABLED = os.environ.get("NUMBA_DISABLE_JIT", "0") == "1"


@pytest.fixture
def rng():
    """A fresh, seeded generator for each test: results never depend on test order."""
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def mnist_root():
    """The folder holding ``mnist/`` (``$SCRATCHVAE_DATA``), or skip with the reason."""
    root = os.environ.get("SCRATCHVAE_DATA")
    if not root or not (Path(root) / "mnist").is_dir():
        pytest.skip("real MNIST not found: set SCRATCHVAE_DATA to the folder holding mnist/")
    return Path(root)
