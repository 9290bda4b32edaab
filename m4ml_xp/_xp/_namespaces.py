"""Namespaces, dtypes, precision and random numbers: what every algorithm asks first.

The namespace comes from the inputs; dtypes follow them (float32 is never
silently upcast); matrix products run in full precision on every backend; and
random numbers come from NumPy's generator on the host, so that a seed gives the
same numbers on every backend.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from array_api_compat import (
    array_namespace,
    is_array_api_obj,
    is_jax_array,
    is_lazy_array,
    is_numpy_namespace,
)

#: The one alias for arrays (and namespaces) in annotations: every core module imports it.
Array = Any
Namespace = Any

# --------------------------------------------------------------------------- precision
_Function = TypeVar("_Function", bound=Callable[..., Any])


def full_precision(function: _Function) -> _Function:
    """Decorate `function` so that its matrix products run in full precision on every backend.

    JAX multiplies float32 matrices (``@``, ``matmul``, ``vecdot``, ``tensordot``)
    in TF32 on NVIDIA GPUs by default: about 1e-4 relative error where float32
    promises 1e-7.  The wrapper enters ``jax.default_matmul_precision("highest")``,
    which JAX reads when each operation is created, so it holds for eager
    operations and for everything traced inside `function` — its own ``jit``
    kernels, and the caller's ``jit`` when `function` is called inside one —
    whatever precision the caller set (user callbacks evaluated inside
    `function` run at it too).  PyTorch and CuPy keep TF32 off by default, so
    for them, and whenever JAX is not imported, the wrapper only calls `function`.
    """

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        jax = sys.modules.get("jax")  # no JAX array can exist unless JAX was imported
        if jax is None:
            return function(*args, **kwargs)
        with jax.default_matmul_precision("highest"):
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


# --------------------------------------------------------------------------- namespaces
def library_name(x: object) -> str:
    """Short name of the library an object belongs to, for error messages."""
    module = type(x).__module__.split(".")[0]
    return {"builtins": type(x).__name__}.get(module, module)


def namespace_for(xp: Namespace | None = None) -> Namespace:
    """Return the array-api-compat namespace for `xp` (NumPy when None)."""
    if xp is None:
        import numpy as np

        xp = np
    return array_namespace(xp.empty(0))


def is_array(x: object) -> bool:
    """Whether `x` is an array of a library the Array API standard covers."""
    return is_array_api_obj(x)


def is_masked_array(x: object) -> bool:
    """Whether `x` is a NumPy masked array (``numpy.ma.MaskedArray``).

    It passes for an array (it subclasses ``ndarray``), but standard functions
    ignore its mask or fail inside ``numpy.ma``.  NumPy is not imported for this.
    """
    np = sys.modules.get("numpy")
    return np is not None and isinstance(x, np.ma.MaskedArray)


def is_narrow_float(xp: Namespace, dtype: Any) -> bool:
    """Whether `dtype` is a floating dtype narrower than float32 (float16, bfloat16)."""
    return bool(xp.isdtype(dtype, "real floating")) and xp.finfo(dtype).bits < 32


def numpy_scalar_as_array(value: Any, xp: Namespace) -> Any:
    """NumPy's 0-d results (``np.float64`` scalars) as 0-d arrays; anything else unchanged.

    NumPy arithmetic on 0-d arrays returns scalars, so a user function written
    with `xp` returns one for 0-d input; other libraries return arrays.
    """
    if is_numpy_namespace(xp):
        import numpy as np

        if isinstance(value, np.generic):
            return np.asarray(value)
    return value


def gram(a: Array, *, xp: Namespace) -> Array:
    """``aᵀ·a`` of every matrix of a stack ``(..., m, n)`` of tall, thin ones: ``(..., n, n)``.

    NumPy's ``matmul`` of a stack of matrices of n ≤ 3 columns calls BLAS once per
    matrix (or its own loops for the transposed operand); a ``vecdot`` over ``m`` of
    the broadcast columns is 1.4-2x faster there (one 10⁴ × 3, 10⁴ of 100 × 3), and
    up to 10x slower from n = 4 (it makes n² passes).  Other libraries keep
    ``matmul``: their ``vecdot`` broadcasts ``(..., m, n, n)``.
    """
    if is_numpy_namespace(xp) and a.shape[-1] <= 3:
        return xp.vecdot(a[..., :, :, None], a[..., :, None, :], axis=-3)
    return xp.linalg.matrix_transpose(a) @ a


def quiet_overflow() -> contextlib.AbstractContextManager[Any]:
    """NumPy's floating-point warnings off, around arithmetic whose result the caller checks.

    ``numpy.errstate`` is local to the thread and context, where ``warnings.catch_warnings``
    changes the process's filters; other libraries do not warn on overflow.
    """
    import numpy as np

    return np.errstate(over="ignore", invalid="ignore", divide="ignore")


def is_traced(x: Array) -> bool:
    """Whether `x` is a JAX tracer inside ``jit``: its values cannot be read at all."""
    if is_jax_array(x):
        import jax

        return isinstance(x, jax.core.Tracer)
    return False


def is_lazy(x: Array) -> bool:
    """Whether reading values of `x` would force a computation or is impossible.

    True for Dask arrays and JAX tracers; concrete JAX arrays count as eager
    (array-api-compat's ``is_lazy_array`` treats every JAX array as lazy, which
    would skip input checks outside ``jit`` too).
    """
    return is_traced(x) or (not is_jax_array(x) and is_lazy_array(x))


# --------------------------------------------------------------------------- dtypes
def dtypes_of(xp: Namespace, kind: str, dev: Any = None) -> dict[str, Any] | None:
    """Return the dtypes of `kind` that `xp` has on device `dev`, by name (None: unknown)."""
    try:
        return dict(xp.__array_namespace_info__().dtypes(device=dev, kind=kind))
    except (AttributeError, TypeError, ValueError):
        return None


def has_dtype(xp: Namespace, name: str, dev: Any = None) -> bool:
    """Whether `xp` can hold arrays of dtype `name` (``"float64"``, ``"int64"``) on device `dev`."""
    dtypes = dtypes_of(xp, "real floating" if name.startswith("float") else "signed integer", dev)
    return dtypes is None or name in dtypes


def wide_index(xp: Namespace, dev: Any = None) -> Any:
    """int64 where `xp` has it on `dev`, else int32 (JAX with x64 off: no truncation warning)."""
    return xp.int64 if has_dtype(xp, "int64", dev) else xp.int32


def default_float(xp: Namespace, dev: Any = None) -> Any:
    """Return the default real floating dtype of `xp` on device `dev`."""
    try:
        return xp.__array_namespace_info__().default_dtypes(device=dev)["real floating"]
    except (AttributeError, TypeError, ValueError):
        return xp.float64


def float_dtype(xp: Namespace, dtype: Any, dev: Any = None) -> Any:
    """Return the floating dtype an algorithm computes in for inputs of `dtype`.

    Real floating dtypes are kept (float32 is never silently upcast); integers
    and booleans become the device's default float.
    """
    return dtype if xp.isdtype(dtype, "real floating") else default_float(xp, dev)


def generator(seed: int | None) -> Any:
    """NumPy's ``Generator(seed)``: the one source of random numbers, on the host.

    Algorithms draw from it and move the draws with ``xp.asarray(..., device=)``,
    so a seed gives the same numbers on every backend.
    """
    import numpy as np

    return np.random.default_rng(seed)
