"""The argument checks: messages that name the argument."""

import numpy as np
import pytest

from scratchvae.lecture.validate import (
    as_float_array,
    check_finite,
    check_int,
    check_rng,
    check_same_shape,
    check_shape,
    check_unit_interval,
    check_upstream,
)


def test_messages_name_the_argument_and_say_expected_and_given():
    with pytest.raises(ValueError, match=r"^logits: expected shape \(2, 3\) to match x, got \(2, 4\)$"):
        check_same_shape("logits", np.ones((2, 4)), "x", np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"^W: expected shape \(any, 5\), got \(3, 4\)$"):
        check_shape("W", np.ones((3, 4)), (None, 5))
    with pytest.raises(ValueError, match=r"^x: expected values in \[0, 1\], got 1\.5 at index \(0, 1\)$"):
        check_unit_interval("x", np.array([[0.5, 1.5]]))
    with pytest.raises(ValueError,
                       match=r"^mu: expected finite values, got nan at index \(1,\) \(1 non-finite of 3\)$"):
        check_finite("mu", np.array([0.0, np.nan, 1.0]))
    with pytest.raises(ValueError, match="eps: expected a 2-dimensional array, got shape"):
        as_float_array("eps", np.ones(3), ndim=2)
    with pytest.raises(ValueError, match="x: expected a real-valued array, got dtype <U1"):
        as_float_array("x", np.array(["a"]))
    with pytest.raises(ValueError, match=r"^dkl: expected shape \(2\), got \(3,\)$"):
        check_upstream("dkl", np.ones(3), (2,), np.float32)
    with pytest.raises(ValueError, match=r"^dout: expected finite values, got inf"):
        check_upstream("dout", np.array([np.inf]), (1,), np.float64)


def test_check_upstream_casts_and_skips_the_scan_when_not_finite():
    d = check_upstream("dout", np.ones((2, 3)).T, (3, 2), np.float32)
    assert d.dtype == np.float32 and d.flags.c_contiguous
    assert np.isnan(check_upstream("dout", [np.nan], (1,), np.float64, finite=False)).all()


def test_as_float_array_keeps_float_precision_and_converts_integers():
    assert as_float_array("x", np.ones(2, np.float32)).dtype == np.float32
    assert as_float_array("x", np.ones(2, np.int64)).dtype == np.float64
    assert as_float_array("x", [True, False]).dtype == np.float64


def test_check_int_and_check_rng():
    assert check_int("k", np.int64(3)) == 3
    for bad in (0, 2.5, True, "3"):
        with pytest.raises(ValueError, match=r"^k: expected an integer >= 1, got "):
            check_int("k", bad)
    assert check_int("n", 0, minimum=0) == 0
    rng = np.random.default_rng(0)
    assert check_rng(rng) is rng
    with pytest.raises(ValueError, match=r"^rng: expected a numpy.random.Generator .* got module$"):
        check_rng(np.random)
