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


def assert_close_to(actual: Any, desired: np.ndarray, *, rtol: float, atol: float = 0.0) -> None:
    """Compare a backend result with a NumPy oracle: namespace, dtype, shape, device, values."""
    from array_api_compat import array_namespace

    xp = array_namespace(actual)
    expected = xp.asarray(np.asarray(desired), dtype=actual.dtype, device=device_of(actual))
    if is_dask_namespace(xp):
        expected = expected.rechunk(actual.chunks) if actual.ndim else expected
    assert_close(actual, expected, rtol=rtol, atol=atol)
