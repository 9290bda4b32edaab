"""Scale-safe building blocks: norms and power-of-two scales at any finite magnitude."""

from __future__ import annotations

import math

import numpy as np
import pytest
from array_api_compat import device as device_of
from hypothesis import given
from hypothesis import strategies as st

from m4ml_xp import _scaling
from tests._helpers import asarray, to_numpy


def exact_norm(values: np.ndarray) -> float:
    """The oracle: Python's correctly rounded hypot of the entries."""
    return math.hypot(*(float(v) for v in values))


@given(
    exponent=st.integers(-150, 150),
    mantissas=st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=6),
)
def test_vector_norm_at_any_magnitude_float64(xp, exponent, mantissas):
    values = np.asarray(mantissas) * 10.0**exponent
    got = float(to_numpy(_scaling.vector_norm(asarray(xp, values), xp=xp, axis=-1)))
    expected = exact_norm(values)
    assert got == pytest.approx(expected, rel=8 * float(np.finfo(np.float64).eps), abs=0)


@given(exponent=st.integers(-15, 15))
def test_vector_norm_at_any_magnitude_float32(xp, exponent):
    values = np.asarray([3.0, -4.0, 12.0], dtype=np.float32) * np.float32(10.0**exponent)
    x = asarray(xp, values)
    norm = _scaling.vector_norm(x, xp=xp)
    assert norm.dtype == xp.float32
    expected = exact_norm(values)
    assert float(to_numpy(norm)) == pytest.approx(expected, rel=8 * float(np.finfo(np.float32).eps))


def test_scale_is_a_power_of_two_and_leaves_zeros_alone(xp):
    magnitudes = asarray(xp, np.asarray([0.0, 1e-300, 3.0, 1e300, np.inf]))
    scale = to_numpy(_scaling.power_of_two_scale(magnitudes, xp=xp))
    mantissa, _ = np.frexp(scale)
    np.testing.assert_array_equal(mantissa, 0.5)  # exact powers of two
    assert scale[0] == 1.0
    assert scale[-1] == 1.0
    scaled_magnitudes = scale[1:4] * np.asarray([1e-300, 3.0, 1e300])
    assert np.all((scaled_magnitudes >= 0.5**0.5) & (scaled_magnitudes <= 2**0.5))


def test_scale_stays_finite_and_on_the_input_device(xp, device):
    magnitudes = xp.asarray(np.asarray([5e-324, 2.2e-308, 1.7e308]), device=device)
    scale = _scaling.power_of_two_scale(magnitudes, xp=xp)
    assert device_of(scale) == device
    values = to_numpy(scale)
    assert np.all(np.isfinite(values))
    # a subnormal is brought up as far as a normal scale goes; XLA flushes it to 0 (scale 1)
    assert values[0] in (2.0**1023, 1.0)
    assert values[2] == 2.0**-1022  # the smallest normal power of two: 1.7e308 · s ≈ 3.8


def test_rows_scaled_separately(xp):
    X = asarray(xp, np.asarray([[3e200, 4e200], [3e-200, 4e-200]]))
    norms = to_numpy(_scaling.vector_norm(X, xp=xp, axis=-1))
    np.testing.assert_allclose(norms, [5e200, 5e-200], rtol=4e-16)
