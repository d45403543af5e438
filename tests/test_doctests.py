"""Every Examples section of the lecture runs and prints what it says (the docstrings are the lecture too)."""

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import scratchvae.lecture

MODULES = [m.name for m in pkgutil.iter_modules(scratchvae.lecture.__path__)]


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    module = importlib.import_module(f"scratchvae.lecture.{name}")
    result = doctest.testmod(module, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
