"""Shared test helpers: build inputs on the backend, compare with NumPy oracles."""

from __future__ import annotations

from typing import Any

import numpy as np
from array_api_compat import device as device_of
from array_api_compat import is_dask_namespace
from array_api_extra.testing import assert_close

from m4ml_xp._xp import to_numpy  # noqa: F401 - re-exported for the tests


def asarray(xp: Any, a: Any, device: Any = None, *, chunks: Any = None) -> Any:
    """`a` (NumPy data) as an array of `xp` on `device`; Dask arrays split in `chunks`."""
    out = (
        xp.asarray(np.asarray(a), device=device)
        if device is not None
        else xp.asarray(np.asarray(a))
    )
    if chunks is not None and is_dask_namespace(xp):
        out = out.rechunk(chunks)
    return out


def eps(dtype: Any) -> float:
    """Machine epsilon of a backend dtype."""
    if isinstance(dtype, np.dtype) or (isinstance(dtype, type) and issubclass(dtype, np.generic)):
        return float(np.finfo(dtype).eps)
    return float(np.finfo(str(dtype).rsplit(".", 1)[-1]).eps)  # torch, array-api-strict: by name


def dtype_name(dtype: Any) -> str:
    """A dtype's name across libraries (``"float32"`` for NumPy, torch, JAX, array-api-strict)."""
    try:
        return np.dtype(dtype).name
    except TypeError:  # torch and array-api-strict dtypes are not NumPy's
        return str(dtype).rsplit(".", 1)[-1]


def default_float(xp: Any, device: Any = None) -> Any:
    """The floating dtype integer inputs are promised to become: the device's default float."""
    return xp.__array_namespace_info__().default_dtypes(device=device)["real floating"]


def assert_close_to(
    actual: Any,
    desired: Any,
    *,
    rtol: float,
    atol: float = 0.0,
    xp: Any = None,
    device: Any = None,
    dtype: Any = None,
) -> None:
    """Compare a backend result with a NumPy oracle: namespace, dtype, shape, device, values.

    The expectation is built independently of `actual`: its dtype is `dtype`
    (default: the oracle's own, so a float32 result against a float64 oracle
    fails unless the test says ``dtype=xp.float32``), its namespace `xp` and its
    device `device` (default: `xp`'s default device) are the inputs' -- a result
    in another library or on another device fails.  Only when `xp` is None (a
    test that has no backend fixture) are namespace and device left unchecked.
    """
    from array_api_compat import array_namespace

    oracle = np.asarray(desired)
    want = dtype_name(oracle.dtype if dtype is None else dtype)
    got = dtype_name(actual.dtype)
    assert got == want, f"dtype {got}, expected {want}"
    if xp is not None:
        probe = xp.empty(0) if device is None else xp.empty(0, device=device)
        try:
            array_namespace(actual, probe)
        except TypeError as exc:  # mixed libraries
            raise AssertionError(f"{type(actual).__name__} is not an array of {xp}") from exc
        assert device_of(actual) == device_of(probe), (
            f"result on {device_of(actual)}, inputs on {device_of(probe)}"
        )
    ns = array_namespace(actual)
    expected = ns.asarray(oracle, dtype=actual.dtype, device=device_of(actual))
    if is_dask_namespace(ns):
        expected = expected.rechunk(actual.chunks) if actual.ndim else expected
    assert_close(actual, expected, rtol=rtol, atol=atol)
