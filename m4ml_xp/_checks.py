"""Input validation: every error message m4ml_xp raises is built here.

Messages name the offending argument in backticks and say what was expected
and what was received: ``TypeError`` for a wrong kind of object or dtype,
``ValueError`` for a wrong shape, value, option or device.  Every public
function refuses NumPy masked arrays (the standard functions would ignore the
mask; pass ``X.filled(value)``) and floats narrower than float32, as arrays and
as ``dtype=`` (m4ml_xp computes in float32 at least; pass ``xp.astype(X, xp.float32)``).
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

from m4ml_xp._xp import (
    Array,
    Namespace,
    array_namespace,
    default_float,
    deferred_check,
    device,
    dtypes_of,
    float_dtype,
    is_array,
    is_lazy,
    is_masked_array,
    is_narrow_float,
    is_traced,
    library_name,
    materialise,
    namespace_for,
    numpy_scalar_as_array,
    wide_index,
)


def namespace(optional: Iterable[str] = (), **arrays: Array | None) -> Namespace:
    """Return the common namespace of the named arrays.

    Rejects non-arrays, arrays of different libraries and arrays on different
    devices, naming the arguments involved.  Arguments named in `optional` may be
    ``None`` and are then ignored.
    """
    skip = set(optional)
    present = {name: x for name, x in arrays.items() if not (x is None and name in skip)}
    for name, x in present.items():
        _check_array(x, name, " (NumPy, CuPy, JAX, PyTorch, Dask, ...)")
    try:
        xp = array_namespace(*present.values())
    except TypeError:
        libraries = ", ".join(f"`{n}` is a {library_name(x)} array" for n, x in present.items())
        msg = f"arrays from different libraries were mixed: {libraries}; pass arrays of one library"
        raise TypeError(msg) from None
    # a JAX tracer (under jit, grad, vmap) has no device: it takes the others'
    placed = [(name, device(x)) for name, x in present.items() if device(x) is not None]
    for name, where in placed[1:]:
        if where != placed[0][1]:
            msg = (
                f"`{placed[0][0]}` and `{name}` are on different devices "
                f"({placed[0][1]} and {where}); move them to one device"
            )
            raise ValueError(msg)
    return xp


def _check_array(x: Any, name: str, libraries: str = "") -> None:
    if not is_array(x) or isinstance(x, bool | int | float | complex):
        raise TypeError(f"`{name}` must be an array{libraries}; got {type(x).__name__}")
    if is_masked_array(x):
        msg = (
            f"`{name}` is a masked array (numpy.ma): masks are not supported; "
            f"pass `{name}.filled(value)` or the unmasked rows"
        )
        raise TypeError(msg)


def check_wide_float(dtype: Any, name: str, *, xp: Namespace, option: bool = False) -> None:
    """Refuse a floating `dtype` narrower than float32 for the array (or dtype `option`) `name`."""
    if is_narrow_float(xp, dtype):
        what, fix = (
            ("is", "xp.float32") if option else ("has dtype", f"xp.astype({name}, xp.float32)")
        )
        msg = f"`{name}` {what} {dtype}, narrower than float32, which m4ml_xp computes in at least: pass {fix}"
        raise TypeError(msg)


def _shape_text(x: Array) -> str:
    return "(" + ", ".join(str(s) for s in x.shape) + ("," if x.ndim == 1 else "") + ")"


def array_items(items: Iterable[Any], name: str, *, start: int = 0) -> Iterator[Array]:
    """Return the items of `items` (``name[start]``, ...), each checked to be an array as it arrives."""
    try:
        iterator = iter(items)
    except TypeError:
        msg = f"`{name}` must be an iterable of arrays; got {type(items).__name__}"
        raise TypeError(msg) from None
    for index, item in enumerate(iterator, start=start):
        _check_array(item, f"{name}[{index}]")
        yield item


def check_real_array(
    x: Array,
    name: str,
    *,
    xp: Namespace,
    ndim: int | Iterable[int] | None = None,
    square: bool = False,
    allow_empty: bool = False,
    finite: bool = True,
    allow_bool: bool = False,
    small: bool = False,
) -> Array:
    """Validate a real-valued array and return it in its working float dtype.

    Integers (and booleans when `allow_bool`) are promoted to the device's
    default float; float32 stays float32; narrower floats are refused.  Finiteness is checked now for eager
    arrays, chunk by chunk at compute time for Dask arrays (reading them now
    would compute the graph), and not at all for JAX tracers under ``jit``.
    `small` marks arrays cheap to inspect (matrices the algorithm reads anyway):
    they are checked now on Dask too.
    """
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            msg = f"`{name}` must be a {want} array; got shape {_shape_text(x)}"
            raise ValueError(msg)
    if square and (x.ndim < 2 or x.shape[-1] != x.shape[-2]):
        msg = f"`{name}` must be a square matrix; got shape {_shape_text(x)}"
        raise ValueError(msg)
    if not allow_empty and any(s == 0 for s in x.shape):
        msg = f"`{name}` must not be empty; got shape {_shape_text(x)}"
        raise ValueError(msg)
    dtype = x.dtype
    is_bool = xp.isdtype(dtype, "bool")
    if not (xp.isdtype(dtype, ("real floating", "integral")) or (allow_bool and is_bool)):
        kinds = "a real floating or integer" + (" or boolean" if allow_bool else "")
        msg = f"`{name}` must have {kinds} dtype; got {dtype}"
        raise TypeError(msg)
    check_wide_float(dtype, name, xp=xp)
    target = float_dtype(xp, dtype, device(x))
    if dtype != target:
        x = xp.astype(x, target)
    if not finite:
        return x
    msg = f"`{name}` must contain only finite values; it has NaN or infinity"
    if small and not is_traced(x):
        if fails(all_finite(x)):
            raise ValueError(msg)
        return x
    return check_values(x, all_finite, msg)


class StreamFiniteness:
    """Finiteness of a stream of arrays, read back at :meth:`verify` instead of per array.

    Reading a flag waits for the device: once per chunk, that wait keeps a GPU
    idle while the host stages the next chunk.  Flags stay on the device until
    :meth:`verify` (before a checkpoint is written and at the end), which names
    the first offending item.  Lazy (Dask) items get their check attached.
    """

    def __init__(self, name: str, *, xp: Namespace):
        self.name, self.xp = name, xp
        self.flags: list[tuple[int, Array]] = []

    def add(self, x: Array, index: int) -> Array:
        """Record whether `x` (``name[index]``) is finite; return it, checked where lazy."""
        if is_lazy(x) or is_traced(x):
            return check_values(x, all_finite, self._message(index))
        self.flags.append((index, self.xp.all(self.xp.isfinite(x))))
        return x

    def verify(self) -> None:
        """Raise ``ValueError`` naming the first non-finite item recorded since the last call."""
        flags, self.flags = self.flags, []
        if flags and not bool(self.xp.all(self.xp.stack([flag for _, flag in flags]))):
            index = next(i for i, flag in flags if not bool(flag))
            raise ValueError(self._message(index))

    def _message(self, index: int) -> str:
        return f"`{self.name}[{index}]` must contain only finite values; it has NaN or infinity"


def check_broadcastable(x: Array, y: Array, names: tuple[str, str]) -> None:
    """`x` and `y` must broadcast against each other (unknown sizes, Dask's NaN, pass)."""
    for a, b in zip(reversed(x.shape), reversed(y.shape), strict=False):
        if isinstance(a, int) and isinstance(b, int) and a != b and 1 not in (a, b):
            msg = (
                f"`{names[0]}` and `{names[1]}` must broadcast against each other; "
                f"got shapes {_shape_text(x)} and {_shape_text(y)}"
            )
            raise ValueError(msg)


def promoted(*arrays: Array | None, xp: Namespace) -> tuple[Array | None, ...]:
    """`arrays` (None passed through) in their common dtype: float32 with float64 gives float64.

    Libraries that do not promote in products (PyTorch: "expected m1 and m2 to have
    the same dtype") then see one dtype, as NumPy would have made it.
    """
    given = [a for a in arrays if a is not None]
    dtype = xp.result_type(*given)
    return tuple(a if a is None or a.dtype == dtype else xp.astype(a, dtype) for a in arrays)


def check_same_rows(x: Array, y: Array, names: tuple[str, str]) -> None:
    """`x` and `y` must have as many rows (samples) as each other."""
    if x.shape[0] != y.shape[0]:
        msg = f"`{names[0]}` and `{names[1]}` must have the same number of rows; got {x.shape[0]} and {y.shape[0]}"
        raise ValueError(msg)


def check_symmetric(A: Array, name: str) -> Array:
    """Refuse a square matrix that is not symmetric to rounding (``|A − Aᵀ| ≤ 100·eps·max|A|``).

    Returns its values: a (small) Dask matrix is computed, in its chunks' library.
    """
    values = materialise(A)
    ns = array_namespace(values)
    eps = float(ns.finfo(values.dtype).eps)
    largest = ns.max(ns.abs(values))
    asymmetry = ns.max(ns.abs(values - ns.linalg.matrix_transpose(values)))
    if fails(asymmetry <= 100 * eps * largest):
        raise ValueError(f"`{name}` must be symmetric; max |A − Aᵀ| = {float(asymmetry):.3g}")
    return values


def check_spd(A: Array, name: str, *, xp: Namespace, n: int) -> Array:
    """Validate an ``(n, n)`` symmetric positive definite matrix (an inner product's).

    Symmetric to rounding (``|A − Aᵀ| ≤ 100·eps·max|A|``), and positive definite
    by its smallest eigenvalue.  A Dask matrix is small: it is computed for the
    check (in its chunks' library).
    """
    A = check_real_array(A, name, xp=xp, ndim=2, square=True)
    if A.shape[0] != n:
        msg = f"`{name}` must be ({n}, {n}) to match the vectors; got {_shape_text(A)}"
        raise ValueError(msg)
    if is_traced(A):
        return A
    values = check_symmetric(A, name)
    ns = array_namespace(values)
    smallest = ns.min(ns.linalg.eigvalsh(values))
    if fails(smallest > 0):
        msg = (
            f"`{name}` must be positive definite; its smallest eigenvalue is {float(smallest):.3g}"
        )
        raise ValueError(msg)
    return A


def check_index_array(x: Array, name: str, *, xp: Namespace, n: int, n_name: str) -> Array:
    """Validate a 1-D integer index array with values in ``[0, n)``."""
    if x.ndim != 1:
        msg = f"`{name}` must be a 1-D array of node indices; got shape {_shape_text(x)}"
        raise ValueError(msg)
    if not xp.isdtype(x.dtype, "integral"):
        msg = f"`{name}` must have an integer dtype; got {x.dtype}"
        raise TypeError(msg)
    if x.dtype not in (xp.int32, xp.int64):  # unsigned or narrow: what every scatter accepts
        x = xp.astype(x, wide_index(xp, device(x)))
    if x.shape[0] == 0 or is_traced(x):
        return x
    if is_lazy(x):
        msg = f"`{name}` must hold node indices in [0, {n_name}) = [0, {n})"
        return deferred_check(x, lambda block: (block.min() >= 0) & (block.max() < n), msg)
    low, high = int(xp.min(x)), int(xp.max(x))
    if low < 0 or high >= n:
        msg = (
            f"`{name}` must hold node indices in [0, {n_name}) = [0, {n}); "
            f"got values in [{low}, {high}]"
        )
        raise ValueError(msg)
    return x


def check_real(
    value: Any,
    name: str,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
    finite: bool = False,
) -> float:
    """Validate a real Python (or 0-d NumPy) scalar in an interval; returns a float.

    With `finite`, NaN and infinities are refused as such (even where the interval
    is unbounded).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        msg = f"`{name}` must be a real number; got {type(value).__name__}"
        raise TypeError(msg)
    value = float(value)
    if finite and not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite; got {value}")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if math.isnan(value) or too_low or too_high:
        interval = ("(" if low_open else "[") + f"{low}, {high}" + (")" if high_open else "]")
        msg = f"`{name}` must be in {interval}; got {value}"
        raise ValueError(msg)
    return value


def check_int(value: Any, name: str, *, low: int = 0) -> int:
    """Validate an integer option ``>= low``; returns an int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        msg = f"`{name}` must be an integer; got {type(value).__name__}"
        raise TypeError(msg)
    if value < low:
        msg = f"`{name}` must be >= {low}; got {value}"
        raise ValueError(msg)
    return int(value)


def check_seed(seed: Any) -> int | None:
    """Validate a ``seed`` option: ``None`` or an integer ``>= 0``."""
    return None if seed is None else check_int(seed, "seed")


def creation_namespace(xp: Any, device: Any = None) -> Namespace:
    """Return the namespace an array creator was given (`xp`; NumPy when None), `device` checked."""
    if xp is not None and not callable(getattr(xp, "empty", None)):
        msg = (
            "`xp` must be an array namespace, the module itself (numpy, torch, jax.numpy, "
            f"cupy, dask.array, array_api_strict); got {xp!r} ({type(xp).__name__})"
        )
        raise TypeError(msg)
    xp = namespace_for(xp)
    if device is not None:
        try:
            xp.empty(0, device=device)
        except Exception as error:  # each library words (and types) its refusal its own way
            msg = f"`device` must be a device of {library_name(xp.empty(0))}; got {device!r} ({error})"
            raise ValueError(msg) from error
    return xp


def check_float_dtype(dtype: Any, *, xp: Namespace, device: Any = None) -> Any:
    """Validate a ``dtype`` option: a real floating dtype of `xp`, float32 or wider (``None``: its default)."""
    if dtype is None:
        return default_float(xp, device)
    try:
        floating = xp.isdtype(dtype, "real floating")
    except (TypeError, ValueError, AttributeError):
        floating = False
    if not floating:
        msg = f"`dtype` must be a real floating dtype of {xp.__name__} (such as float64); got {dtype!r}"
        raise TypeError(msg)
    check_wide_float(dtype, "dtype", xp=xp, option=True)
    available = dtypes_of(xp, "real floating", device)
    if available is not None and not any(dtype == known for known in available.values()):
        msg = (  # JAX with x64 off: no float64
            f"`dtype` {dtype!r} is not available in {xp.__name__} here (it has "
            f"{', '.join(map(str, available.values()))}); for JAX, enable x64 (jax_enable_x64)"
        )
        raise ValueError(msg)
    return dtype


def check_choice(value: Any, name: str, choices: Iterable[Any]) -> Any:
    """Validate an option against its allowed values."""
    allowed = tuple(choices)
    # True == 1 and False == 0: a bool is an allowed value only where the choices hold bools
    mistaken_bool = isinstance(value, bool) and not any(isinstance(c, bool) for c in allowed)
    if mistaken_bool or value not in allowed:
        msg = f"`{name}` must be one of {', '.join(repr(c) for c in allowed)}; got {value!r}"
        raise ValueError(msg)
    return value


def all_finite(x: Array) -> Array:
    """Predicate for :func:`check_values`: no NaN or infinity (a 0-d bool array).

    One reduction in the common case: a NaN or infinity anywhere makes the sum
    non-finite.  Only a non-finite sum (which finite values reach by overflow)
    pays the element-wise test.  Called on eager arrays and Dask blocks only.
    """
    xp = array_namespace(x)
    if not xp.isdtype(x.dtype, "real floating"):
        return xp.all(xp.isfinite(x))
    with warnings.catch_warnings():  # NumPy warns when finite values overflow the sum
        warnings.simplefilter("ignore", RuntimeWarning)
        quick = xp.isfinite(xp.sum(x))
        if is_traced(quick):  # a constant inside the caller's jit: its values are staged
            return quick
        finite_sum = bool(quick)  # read inside: a lazy (Dask) sum is computed here
    if finite_sum:
        return quick
    return xp.all(xp.isfinite(x))


def all_non_negative(x: Array) -> Array:
    """Predicate for :func:`check_values`: every entry ``>= 0`` (a 0-d bool array)."""
    return array_namespace(x).all(x >= 0)


def fails(condition: Array) -> bool:
    """Whether a 0-d check result is known to be false.

    Under the caller's ``jax.jit`` even a constant's checks are staged, not computed:
    such a result is unknown, and the check is not made (as for a traced argument).
    """
    return not is_traced(condition) and not bool(condition)


def check_values(x: Array, predicate: Any, message: str) -> Array:
    """Check an element-wise `predicate` (array -> 0-d bool) on all of `x`.

    Eager arrays raise ``ValueError(message)`` now; lazy Dask arrays get the
    check attached to each chunk (raised when computed); JAX tracers are not
    checked.  Returns `x` (possibly with the check attached) for further use.
    """
    if is_traced(x):
        return x
    if is_lazy(x):
        return deferred_check(x, predicate, message)
    if fails(predicate(x)):
        raise ValueError(message)
    return x


def check_bool_result(condition: Array, message: str, *, small: bool = False) -> None:
    """Raise ``ValueError(message)`` when the 0-d array `condition` is false.

    Skipped for lazy arrays, where reading the value would force evaluation
    (for Dask only unless `small`: the condition is cheap to compute).
    """
    inspect = not is_traced(condition) if small else not is_lazy(condition)
    if inspect and fails(condition):
        raise ValueError(message)


def check_callable(f: Any, name: str, what: str) -> None:
    """`f` must be callable; `what` says what it should compute, for the message."""
    if not callable(f):
        msg = f"`{name}` must be a callable {what}; got {type(f).__name__}"
        raise TypeError(msg)


def returned_array(
    out: Any,
    name: str,
    argument: Array,
    *,
    xp: Namespace,
    castable: tuple[str, ...] = ("integral", "bool"),
) -> Array:
    """Return what the user's callable `name` returned for `argument`, validated.

    It must be an array of `argument`'s library (NumPy's 0-d scalars count) with
    real values; the `castable` dtype kinds are cast to `argument`'s dtype.
    Shapes are the caller's to check.
    """
    out = numpy_scalar_as_array(out, xp)
    if not is_array(out) or isinstance(out, bool | int | float | complex):
        msg = (
            f"`{name}` must return an array of the same library as its argument "
            f"(write it with `xp` functions); it returned {type(out).__name__}"
        )
        raise TypeError(msg)
    try:  # the same class is the same library (a fast path: called every iteration)
        if type(out) is not type(argument):
            array_namespace(out, argument)
    except TypeError:
        msg = (
            f"`{name}` returned a {library_name(out)} array for a "
            f"{library_name(argument)} argument; write it with the argument's namespace"
        )
        raise TypeError(msg) from None
    if not xp.isdtype(out.dtype, "real floating"):
        if not xp.isdtype(out.dtype, castable):
            msg = f"`{name}` must return real values; it returned dtype {out.dtype}"
            raise TypeError(msg)
        out = xp.astype(out, argument.dtype)
    return out
