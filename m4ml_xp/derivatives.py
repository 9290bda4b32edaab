"""Course 2 — multivariate calculus, derivatives: Jacobians, Hessians, finite differences.

Conventions (see COURSE.md): the Jacobian of a scalar function is the row of its
partial derivatives, shape ``(n,)``; of a vector function ``J[i, j] = ∂fᵢ/∂xⱼ``
(rows are outputs), shape ``(m, n)``.  Functions passed in are written with the
array namespace of their argument (``xp.sin``, ``xp.sum``, ...), so the same
function runs on every backend.  Root finding on top of these derivatives lives
in :mod:`m4ml_xp.root_finding`; :mod:`m4ml_xp.calculus` gathers both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from m4ml_xp import _checks, _xp
from m4ml_xp._xp import Array, Namespace, device
from m4ml_xp.errors import warn

Function = Callable[[Array], Array]

__all__ = ["hessian", "jacobian"]

_METHODS = ("auto", "fd", "autodiff")


# --------------------------------------------------------------------------- helpers
def _eps(dtype: Any, xp: Namespace) -> float:
    return float(xp.finfo(dtype).eps)


def _callable(f: Any, name: str) -> None:
    _checks.check_callable(f, name, "taking and returning arrays")


def _call(f: Function, x: Array, name: str, *, xp: Namespace, max_ndim: int) -> Array:
    """``f(x)`` validated: an array of `x`'s library, real, at most `max_ndim` dimensions."""
    out = _checks.returned_array(f(x), name, x, xp=xp)
    if out.ndim > max_ndim:
        want = "a scalar (0-d array)" if max_ndim == 0 else "a scalar or a 1-D array"
        msg = f"`{name}` must return {want}; it returned shape {tuple(out.shape)}"
        raise ValueError(msg)
    return out


def _point(x: Array, name: str, *, xp: Namespace, ndim: int | tuple[int, ...] = 1) -> Array:
    return _checks.check_real_array(x, name, xp=xp, ndim=ndim, small=True)


def _method(method: str, x: Array) -> str:
    _checks.check_choice(method, "method", _METHODS)
    if method == "autodiff" and not _xp.can_autodiff(x):
        msg = (
            f"`method='autodiff'` needs a library that differentiates (JAX, PyTorch); "
            f"`x` is a {_xp.library_name(x)} array — use method='fd' or 'auto'"
        )
        raise ValueError(msg)
    if method == "auto":
        return "autodiff" if _xp.can_autodiff(x) else "fd"
    return method


def _unit_steps(x: Array, power: float, *, xp: Namespace) -> tuple[Array, list[Array]]:
    """Return steps ``hⱼ = eps**power · max(|xⱼ|, min(‖x‖∞, 1))`` and the vectors ``hⱼ·eⱼ``.

    Relative to the point: scaling `x` by ``c`` scales the steps by ``c`` (for
    ``‖x‖∞ ≤ 1``, or coordinates near ``‖x‖∞``), so ``f(x/c)`` is differenced at
    the same points for every ``c``; at ``x = 0`` the step is ``eps**power``.
    ``(x + h) - x`` is used as the step actually taken, so the rounding of
    ``x + h`` does not bias the quotient.
    """
    size = xp.max(xp.abs(x))
    one = xp.ones_like(size)
    typical = xp.where(size > 0, xp.minimum(size, one), one)
    h = _eps(x.dtype, xp) ** power * xp.maximum(xp.abs(x), typical)
    h = (x + h) - x
    eye = xp.eye(x.shape[0], dtype=x.dtype, device=device(x))
    return h, [eye[j, :] * h[j] for j in range(x.shape[0])]


def _fd_jacobian(f: Function, x: Array, *, xp: Namespace) -> Array:
    """Central differences, step ``eps**(1/3)``: error ~ eps**(2/3) (float32: ~4 digits)."""
    h, steps = _unit_steps(x, 1 / 3, xp=xp)
    columns = []
    for j, e in enumerate(steps):
        forward = _call(f, x + e, "f", xp=xp, max_ndim=1)
        backward = _call(f, x - e, "f", xp=xp, max_ndim=1)
        with _xp.quiet_overflow():  # an overflowing quotient is explained by the caller
            columns.append((forward - backward) / (2 * h[j]))
    return xp.stack(columns, axis=-1)


def _fd_hessian(f: Function, x: Array, *, xp: Namespace) -> Array:
    """Four-point second differences, step ``eps**(1/4)``: symmetric by construction."""
    n = x.shape[0]
    h, steps = _unit_steps(x, 1 / 4, xp=xp)

    def value(point: Array) -> Array:
        return _call(f, point, "f", xp=xp, max_ndim=0)

    centre = value(x)
    entries: dict[tuple[int, int], Array] = {}
    for i in range(n):
        # divide by each step in turn: 4·hᵢ·hⱼ alone under/overflows at extreme |x|
        up, down = value(x + 2 * steps[i]), value(x - 2 * steps[i])
        with _xp.quiet_overflow():
            entries[i, i] = (up - 2 * centre + down) / (2 * h[i]) / (2 * h[i])
        for j in range(i + 1, n):
            plus, minus = x + steps[i], x - steps[i]
            corners = [value(plus + steps[j]), value(plus - steps[j]),
                       value(minus + steps[j]), value(minus - steps[j])]  # fmt: skip
            with _xp.quiet_overflow():
                mixed = corners[0] - corners[1] - corners[2] + corners[3]
                entries[i, j] = entries[j, i] = mixed / (2 * h[i]) / (2 * h[j])
    return xp.stack([xp.stack([entries[i, j] for j in range(n)]) for i in range(n)])


# --------------------------------------------------------------------------- derivatives
def jacobian(f: Function, x: Array, *, method: str = "auto") -> Array:
    """Jacobian of `f` at `x`: shape ``(n,)`` for a scalar `f`, ``(m, n)`` for a vector `f`.

    Parameters
    ----------
    f : callable
        Maps a 1-D array ``(n,)`` to a scalar (0-d array) or a 1-D array ``(m,)``,
        written with the argument's array namespace.
    x : (n,) array
        The point; integers are promoted to the default float.
    method : {"auto", "fd", "autodiff"}
        ``"fd"``: central differences in `x`'s namespace, step ``eps**(1/3)``
        scaled by ``max(|xⱼ|, min(‖x‖∞, 1))`` (about 10 correct digits in
        float64, 4 in float32): relative to the point, so the steps do not
        depend on the magnitude of `f` and scale with `x`.  ``"autodiff"``: exact, by JAX's or PyTorch's automatic
        differentiation.  ``"auto"``: autodiff where the library has it, falling
        back to differences if `f` cannot be traced (e.g. it reads values).

    Returns
    -------
    array
        Rows are outputs: ``J[i, j] = ∂fᵢ/∂xⱼ``.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import jacobian
    >>> f = lambda v: np.stack([v[0] ** 2 * v[1], np.sin(v[1])])
    >>> np.round(jacobian(f, np.array([1.0, 0.0])), 6)
    array([[0., 1.],
           [0., 1.]])
    """
    return _reported(f, x, _derivative(f, x, method, order=1), "Jacobian")


def hessian(f: Function, x: Array, *, method: str = "auto") -> Array:
    """Hessian ``(n, n)`` of the scalar function `f` at `x` (symmetric).

    Parameters
    ----------
    f : callable
        Maps a 1-D array ``(n,)`` to a scalar (0-d array).
    x : (n,) array
        The point.
    method : {"auto", "fd", "autodiff"}
        As for :func:`jacobian`; differences use four-point second differences
        with step ``eps**(1/4)`` (about 8 digits in float64, 3 in float32).

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import hessian
    >>> f = lambda v: v[0] ** 2 * v[1] + 3 * v[1] ** 2
    >>> np.round(hessian(f, np.array([1.0, 2.0])), 5)
    array([[4., 2.],
           [2., 6.]])
    """
    return _reported(f, x, _derivative(f, x, method, order=2), "Hessian")


def _reported(f: Function, x: Array, derivative: Array, what: str) -> Array:
    """Return `derivative`, its non-finite entries explained (eager arrays; traced ones pass).

    A `f` that is not finite at `x` has no derivative there: refused.  A finite `f`
    with a non-finite derivative (``sqrt`` at 0, an overflow) is returned with a warning;
    on Dask either raises when computed.
    """
    if _xp.is_traced(derivative):
        return derivative
    if _xp.is_lazy(derivative):  # Dask: checked as it is computed
        message = (
            f"the {what} of `f` at `x` is not finite: `f` is not finite or not differentiable there"
        )
        return _checks.check_values(derivative, _checks.all_finite, message)
    if bool(_checks.all_finite(derivative)):
        return derivative
    xp = _checks.namespace(x=x)
    point = _point(x, "x", xp=xp)
    if not bool(_checks.all_finite(_call(f, point, "f", xp=xp, max_ndim=1))):
        raise ValueError(f"`f` is not finite at `x`: it has no {what} there")
    warn(f"the {what} of `f` at `x` has non-finite entries: `f` is finite there but not "
         "differentiable, or its derivative overflows", RuntimeWarning)  # fmt: skip
    return derivative


def _derivative(f: Function, x: Array, method: str, *, order: int) -> Array:
    _callable(f, "f")
    xp = _checks.namespace(x=x)
    x = _point(x, "x", xp=xp)
    chosen = _method(method, x)
    max_ndim = 1 if order == 1 else 0
    if chosen == "autodiff":
        _call(f, x, "f", xp=xp, max_ndim=max_ndim)  # clear errors before the autodiff machinery

        def checked(v: Array) -> Array:
            return _call(f, v, "f", xp=xp, max_ndim=max_ndim)

        try:  # JAX: one compiled program per function's program (and shape), not per operation
            return _xp.compile_per_program(_autodiff, (checked,), (order,), (x,), xp=xp)
        except Exception:
            if method == "autodiff":
                raise
            # "auto": `f` is not traceable (it reads values, calls NumPy, ...); differences
            # need only plain evaluations.
    return (_fd_jacobian if order == 1 else _fd_hessian)(f, x, xp=xp)


def _autodiff(f: Function, order: int, x: Array) -> Array:
    """Return the Jacobian (`order` 1) or Hessian (2) of `f` at `x` by autodiff."""
    return _xp.autodiff_jacobian(f, x) if order == 1 else _xp.autodiff_hessian(f, x)
