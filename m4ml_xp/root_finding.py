"""Course 2 — multivariate calculus, root finding: Newton–Raphson, the sandpit, Lagrange.

Conventions are those of :mod:`m4ml_xp.derivatives` (whose Jacobians and Hessians
these methods use); :mod:`m4ml_xp.calculus` gathers both.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from m4ml_xp import _checks, _scaling, _xp
from m4ml_xp._xp import Array, Namespace, device, namespace_for
from m4ml_xp.derivatives import Function, _call, _callable, _derivative, _eps, _method, _point
from m4ml_xp.errors import report_non_convergence

__all__ = [
    "LagrangeResult",
    "RootResult",
    "lagrange_multipliers",
    "newton_raphson",
    "newton_step",
    "sandpit_step",
]


class RootResult(NamedTuple):
    """Result of :func:`newton_raphson`.

    `iterates` stacks the starting point and every iterate along axis 0.
    `status`: 0 converged, 1 `max_iter` reached, 2 an iterate was not finite,
    3 zero derivative or singular Jacobian (no Newton step); `message` says which.
    """

    root: Array
    iterates: Array
    n_iter: int
    converged: bool
    status: int
    message: str


class LagrangeResult(NamedTuple):
    """Result of :func:`lagrange_multipliers`: the point, its multiplier(s), the Newton run.

    `status` and `message` are those of :class:`RootResult`.
    """

    x: Array
    lam: Array
    converged: bool
    n_iter: int
    status: int
    message: str


#: newton_raphson's stopping reasons -> (status code, message); see RootResult.
_ROOT_STATUS = {
    "converged": (0, "converged: the Newton step is below tol"),
    "max_iter": (1, "max_iter reached: the Newton step is still above tol"),
    "non-finite": (2, "stopped: the next iterate is not finite"),
    "zero derivative": (3, "stopped: zero derivative, no Newton step"),
    "singular jacobian": (3, "stopped: singular Jacobian, no Newton step"),
}


# --------------------------------------------------------------------------- Newton–Raphson
@_xp.full_precision
def newton_raphson(
    f: Function,
    df: Function | None,
    x0: Array | float,
    *,
    tol: float | None = None,
    max_iter: int = 50,
    method: str = "auto",
    raise_on_failure: bool = False,
) -> RootResult:
    """Root of `f` by Newton–Raphson from `x0`, in one dimension or n.

    One dimension (``x0`` 0-d): ``x ← x − f(x)/f′(x)``, the course's iteration.
    n dimensions (``x0`` of shape ``(n,)``, ``f`` returning ``(n,)``): ``x ← x − J⁻¹f(x)``
    with `df` returning the ``(n, n)`` Jacobian.

    Parameters
    ----------
    f : callable
        The function whose root is sought, written with `x`'s namespace.
    df : callable or None
        Its derivative (1-D: a scalar; n-D: the Jacobian, rows are outputs).
        ``None``: :func:`jacobian` with `method`.
    x0 : 0-d or (n,) array, or a Python float (then NumPy float64)
        Start.
    tol : float, optional
        Stop when the step is at most ``tol · (min(‖x0‖∞, 1) + ‖x‖∞)`` (max-norms;
        ``1`` replaces ``min(‖x0‖∞, 1)`` when ``x0 = 0``); since the next step
        would be about its square, the root is then accurate to rounding.
        Default ``sqrt(eps)`` of the dtype (``1.5e-8`` in float64, like
        ``scipy.optimize.newton``).  The test is relative, so the iteration is
        the same for ``c·f`` (same root) and for ``f(x/c)`` from ``c·x0``
        (root ``c·root``) at any finite ``c``; the derivative's differences
        are relative to ``x`` too (see :func:`jacobian`).
    max_iter : int
        Most Newton steps.
    method : {"auto", "fd", "autodiff"}
        How the derivative is computed when `df` is None.
    raise_on_failure : bool
        Raise :class:`~m4ml_xp.ConvergenceError` instead of warning.

    Returns
    -------
    RootResult
        ``root``, the ``iterates`` (start first, stacked on axis 0), ``n_iter``,
        ``converged``, ``status`` and ``message``.  A zero derivative (or singular Jacobian)
        stops the iteration at the last finite iterate with
        ``converged=False``: never a non-finite "root".

    Warns
    -----
    ConvergenceWarning
        When the iteration stops without converging.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import newton_raphson
    >>> result = newton_raphson(lambda x: x**2 - 2.0, lambda x: 2 * x, np.asarray(1.0))
    >>> round(float(result.root), 12), result.converged
    (1.414213562373, True)
    """
    _callable(f, "f")
    if df is not None:
        _callable(df, "df")
    if isinstance(x0, int | float) and not isinstance(x0, bool):
        x0 = namespace_for(None).asarray(float(x0))
    xp = _checks.namespace(x0=x0)
    x = _point(x0, "x0", xp=xp, ndim=(0, 1))
    max_iter, tol = _newton_options(max_iter, tol, x, xp=xp)
    if df is None:
        _method(method, x)  # option errors now, not on the first step
    # Dask: the loop runs on the chunks' library, `f` and `df` on Dask arrays
    x, iterates, n_iter, status = _xp.host_driven(
        _newton_loop, (f, df), (method, max_iter, tol, xp), (x,), xp=xp
    )
    converged = status == "converged"
    if not converged:
        report_non_convergence(
            f"newton_raphson stopped after {n_iter} steps: {status} at x = {_xp.to_host(x)}",
            raise_on_failure=raise_on_failure,
        )
    return RootResult(x, iterates, n_iter, converged, *_ROOT_STATUS[status])


def _newton_options(max_iter: Any, tol: Any, x: Array, *, xp: Namespace) -> tuple[int, float]:
    """Validate Newton's `max_iter` and `tol` (default ``sqrt(eps)`` of `x`'s dtype)."""
    max_iter = _checks.check_int(max_iter, "max_iter", low=1)
    tol = math.sqrt(_eps(x.dtype, xp)) if tol is None else tol
    return max_iter, _checks.check_real(tol, "tol", low=0.0)


def _newton_loop(
    f: Function, df: Function | None, method: str, max_iter: int, tol: float, xp: Namespace,
    x: Array,
) -> tuple[Array, Array, int, str]:  # fmt: skip
    """Newton's iterations from `x`: the last iterate, all of them stacked, the steps, the status."""
    derivative = _derivative_function(f, df, x, method, xp=xp)
    # the absolute part of the test scales with the start: ``min(‖x0‖∞, 1)`` (1 at x0 = 0)
    start_size = float(_xp.to_host(xp.max(xp.abs(x))))
    typical = min(start_size, 1.0) if start_size > 0 else 1.0
    iterates = [x]
    status, n_iter = "max_iter", 0
    for n_iter in range(1, max_iter + 1):
        fx = _call(f, x, "f", xp=xp, max_ndim=x.ndim)
        if fx.shape != x.shape:
            msg = (
                f"`f` must return an array shaped like `x0` {tuple(x.shape)}; got {tuple(fx.shape)}"
            )
            raise ValueError(msg)
        step, reason = _newton_step(fx, derivative(x), x, xp=xp)
        if reason is not None:
            status, n_iter = reason, n_iter - 1
            break
        x_new = _xp.numpy_scalar_as_array(x - step, xp)
        all_finite = xp.astype(xp.all(xp.isfinite(x_new)), x.dtype)
        step_size, scale, finite = _xp.to_host(
            xp.stack([xp.max(xp.abs(step)), xp.max(xp.abs(x_new)), all_finite])
        )
        if not finite:
            status, n_iter = "non-finite", n_iter - 1
            break
        x = x_new
        iterates.append(x)
        if step_size <= tol * (typical + scale):
            status = "converged"
            break
    return x, xp.stack(iterates), n_iter, status


def _derivative_function(
    f: Function, df: Function | None, x: Array, method: str, *, xp: Namespace
) -> Function:
    """``df`` validated for `x`'s shape, or the numerical/automatic derivative."""
    expected = tuple(x.shape) * 2 if x.ndim else ()
    if df is None:
        if x.ndim == 0:
            return lambda v: xp.reshape(
                _derivative(
                    lambda u: xp.reshape(f(u[0]), ()), xp.reshape(v, (1,)), method, order=1
                ),
                (),
            )
        return lambda v: _derivative(f, v, method, order=1)

    def checked(v: Array) -> Array:
        out = _call(df, v, "df", xp=xp, max_ndim=2)
        if tuple(out.shape) != expected:
            what = "a scalar" if not expected else f"the Jacobian of shape {expected}"
            msg = f"`df` must return {what}; it returned shape {tuple(out.shape)}"
            raise ValueError(msg)
        return out

    return checked


def _newton_step(fx: Array, d: Array, x: Array, *, xp: Namespace) -> tuple[Array, str | None]:
    """Return the step ``d⁻¹ f``, or why there is none: an exact root, a zero/singular derivative.

    One host read per call: the residual, and the derivative (1-D) or the extreme
    singular values of the Jacobian (n-D).
    """
    residual = xp.max(xp.abs(fx))
    if x.ndim == 0:
        f_size, *values = _xp.to_host(xp.stack([residual, xp.astype(d, fx.dtype)]))
        no_step = "zero derivative" if values[0] == 0 else None
    else:
        d = xp.astype(d, fx.dtype)
        try:
            singular_values = _singular_values(d, xp=xp)
            f_size, *values = _xp.to_host(
                xp.stack([residual, singular_values[0], singular_values[-1]])
            )
        except Exception:  # a non-finite Jacobian makes some libraries' SVD raise
            return fx, "non-finite"
        high, low = values
        no_step = "singular jacobian" if low <= x.shape[0] * _eps(x.dtype, xp) * high else None
    if f_size == 0:
        return fx, "converged"
    if not all(math.isfinite(v) for v in (f_size, *values)):
        return fx, "non-finite"
    if no_step is not None:
        return fx, no_step
    with _xp.quiet_overflow():  # an overflowing step is reported by the loop as non-finite
        return (fx / d if x.ndim == 0 else xp.linalg.solve(d, fx[:, None])[:, 0]), None


def _singular_values(a: Array, *, xp: Namespace) -> Array:
    # `svd(full_matrices=False)` rather than `svdvals`: Dask's compat svdvals asks for full matrices
    return xp.linalg.svd(_xp.one_chunk(a), full_matrices=False)[1]


@_xp.full_precision
def newton_step(J: Array, H: Array) -> Array:
    """Return the Newton step ``−H⁻¹J`` towards the stationary point of a quadratic model.

    Parameters
    ----------
    J : (n,) array
        Gradient (the Jacobian row of a scalar function).
    H : (n, n) array
        Hessian.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import newton_step
    >>> newton_step(np.array([2.0, 4.0]), np.array([[2.0, 0.0], [0.0, 4.0]]))
    array([-1., -1.])
    """
    xp, J, H = _gradient_and_hessian(J, H)
    msg = "`H` is singular: the Newton step is undefined (sandpit_step falls back to the gradient)"
    try:  # an ill-conditioned but invertible H keeps its exact step; only a failed solve is refused
        step = -xp.linalg.solve(H, J[:, None])[:, 0]
    except Exception as exc:  # NumPy's, torch's LinAlgError
        if type(exc).__name__.endswith("LinAlgError"):
            raise ValueError(msg) from None
        raise
    if not _xp.is_lazy(step) and _checks.fails(xp.all(xp.isfinite(step))):  # JAX: inf or NaN
        raise ValueError(msg)
    return step


def _is_singular(H: Array, *, xp: Namespace) -> bool:
    """Whether `H`'s smallest singular value is within n·eps of its largest (or not finite)."""
    values = _singular_values(H, xp=xp)
    high, low = _xp.to_host(xp.stack([values[0], values[-1]]))
    return not low > H.shape[0] * _eps(H.dtype, xp) * high


def _gradient_and_hessian(J: Array, H: Array) -> tuple[Namespace, Array, Array]:
    """Validate a step's gradient `J` (n,) and Hessian `H` (n, n), in one dtype; and their namespace."""
    xp = _checks.namespace(J=J, H=H)
    J = _point(J, "J", xp=xp)
    H = _checks.check_real_array(H, "H", xp=xp, ndim=2, square=True, small=True)
    if H.shape[0] != J.shape[0]:
        msg = f"`H` must be ({J.shape[0]}, {J.shape[0]}) to match `J` of length {J.shape[0]}; got {tuple(H.shape)}"
        raise ValueError(msg)
    dtype = xp.result_type(J, H)
    return xp, xp.astype(J, dtype, copy=False), xp.astype(H, dtype, copy=False)


@_xp.full_precision
def sandpit_step(J: Array, H: Array, *, gamma: float = 0.5, max_newton_norm: float = 2.0) -> Array:
    """Return the course's hybrid step: Newton's, unless it goes uphill or is too long.

    The Newton step ``−H⁻¹J`` is taken unless it does not descend
    (``step · (−J) ≤ 0``), is longer than `max_newton_norm`, or does not exist
    (singular `H`); then the steepest-descent step ``−gamma·J``.  Written without
    host reads, so it runs under ``jax.jit``.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import sandpit_step
    >>> J = np.array([1.0, 0.0])
    >>> sandpit_step(J, np.array([[1.0, 0.0], [0.0, 1.0]]))  # Newton: downhill, short
    array([-1., -0.])
    >>> sandpit_step(J, np.array([[-1.0, 0.0], [0.0, 1.0]]))  # Newton goes uphill
    array([-0.5, -0. ])
    """
    xp, J, H = _gradient_and_hessian(J, H)
    gamma = _checks.check_real(gamma, "gamma", low=0.0, low_open=True)
    max_newton_norm = _checks.check_real(max_newton_norm, "max_newton_norm", low=0.0, low_open=True)
    descent = -gamma * J
    # under jit a singular H gives a non-finite step, caught below
    if not _xp.is_traced(H) and _is_singular(H, xp=xp):
        return descent
    newton = -xp.linalg.solve(H, J[:, None])[:, 0]
    # the sign of step·(−J) and the length of the step, at any magnitude: products of
    # power-of-two scaled copies do not underflow to 0 (or overflow), and the norm is nrm2's
    newton_scaled, _ = _scaling.scaled(newton, xp=xp)
    J_scaled, _ = _scaling.scaled(J, xp=xp)
    acceptable = (
        xp.all(xp.isfinite(newton))
        & (xp.sum(newton_scaled * -J_scaled) > 0)
        & (_scaling.vector_norm(newton, xp=xp) <= max_newton_norm)
    )
    return xp.where(acceptable, newton, descent)


# --------------------------------------------------------------------------- Lagrange
@_xp.full_precision
def lagrange_multipliers(
    f: Function,
    g: Function,
    x0: Array,
    *,
    lam0: float | Array | None = None,
    tol: float | None = None,
    max_iter: int = 50,
    method: str = "auto",
    raise_on_failure: bool = False,
) -> LagrangeResult:
    """Stationary point of ``L(x, λ) = f(x) − λ·g(x)`` subject to ``g(x) = 0``.

    Newton–Raphson on the stacked gradient ``∇L = [∇f − J_gᵀλ, −g]`` (the course's
    system), whose Jacobian is the bordered Hessian
    ``[[H_f − Σλₖ H_gₖ, −J_gᵀ], [−J_g, 0]]``.  Like any Newton method it finds the
    stationary point near the start: a minimum, a maximum or a saddle.

    The system is solved scaled by powers of two (exact): `x` to unit size and
    `f` and each constraint to unit-sized gradients at `x0`, so that the answer
    for ``c·f`` is ``(x, c·λ)``, for ``c·g`` it is ``(x, λ/c)``, and for
    ``f(x/c), g(x/c)`` from ``c·x0`` it is ``(c·x, λ)``, at any finite ``c``.

    Parameters
    ----------
    f : callable
        Objective, ``(n,) -> scalar``.
    g : callable
        Constraint(s) ``g(x) = 0``: ``(n,) -> scalar`` or ``(m,)``.
    x0 : (n,) array
        Start.
    lam0 : float or array, optional
        Starting multiplier(s): a scalar for a scalar `g`, else ``(m,)``.  By
        default the least-squares multiplier at `x0` (``∇f(x0) ≈ J_g(x0)ᵀλ``),
        the usual first-order estimate: ``λ = 0`` can make the bordered Hessian
        singular at a start where the estimate does not.
    tol, max_iter, raise_on_failure
        As for :func:`newton_raphson`.
    method : {"auto", "fd", "autodiff"}
        How gradients and Hessians of `f` and `g` are computed.

    Returns
    -------
    LagrangeResult
        ``x``, ``lam`` (0-d for a scalar constraint), ``converged``, ``n_iter``,
        ``status``, ``message``.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import lagrange_multipliers
    >>> f = lambda v: v[0] * v[1]                       # maximise xy
    >>> g = lambda v: v[0] + v[1] - 2.0                 # on the line x + y = 2
    >>> result = lagrange_multipliers(f, g, np.array([0.5, 1.0]))
    >>> np.round(result.x, 8), round(float(result.lam), 8)
    (array([1., 1.]), 1.0)
    """
    _callable(f, "f")
    _callable(g, "g")
    xp = _checks.namespace(x0=x0)
    x = _point(x0, "x0", xp=xp)
    _method(method, x)
    max_iter, tol = _newton_options(max_iter, tol, x, xp=xp)
    g0 = _call(g, x, "g", xp=xp, max_ndim=1)
    scalar_constraint = g0.ndim == 0
    m = 1 if scalar_constraint else g0.shape[0]
    lam = None if lam0 is None else _multipliers(lam0, m, scalar_constraint, x, xp=xp)

    # Dask: solved on the chunks' library, `f` and `g` called on Dask arrays
    return _xp.host_driven(
        _lagrange, (f, g), (method, tol, max_iter, raise_on_failure, m, scalar_constraint, xp),
        (x, lam), xp=xp,
    )  # fmt: skip


def _lagrange(
    f: Function, g: Function, method: str, tol: float | None, max_iter: int,
    raise_on_failure: bool, m: int, scalar_constraint: bool, xp: Namespace, x: Array,
    lam: Array | None,
) -> LagrangeResult:  # fmt: skip
    """Newton on the Lagrangian's gradient from `x` and `lam` (None: least squares)."""
    n = x.shape[0]
    # Solve the problem scaled by powers of two (exact, like LAPACK's xLASCL): the point
    # u = x·sx, the objective sf·f and each constraint sgₖ·gₖ with unit-sized gradients in u,
    # so the Newton test on z = (u, λ·sf/sg) weighs point and multipliers alike, whatever
    # the magnitudes of x, f and g; the multipliers are unscaled at the end.
    sx = _scaling.power_of_two_scale(xp.max(xp.abs(x)), xp=xp)
    u0 = x * sx

    def raw_constraints(u: Array) -> Array:
        return xp.reshape(_call(g, u / sx, "g", xp=xp, max_ndim=1), (m,))

    def raw_objective(u: Array) -> Array:
        return _call(f, u / sx, "f", xp=xp, max_ndim=0)

    raw_grad = _derivative(raw_objective, u0, method, order=1)
    raw_jac = xp.reshape(_derivative(raw_constraints, u0, method, order=1), (m, n))
    sf = _scaling.power_of_two_scale(xp.max(xp.abs(raw_grad)), xp=xp)
    sg = _scaling.power_of_two_scale(_scaling.max_abs(raw_jac, xp=xp, axis=1)[:, 0], xp=xp)
    if lam is None:
        lam = _least_squares_multipliers(raw_grad * sf, raw_jac * sg[:, None], xp=xp)
    else:
        lam = lam * (sf / sg)

    def constraints(v: Array) -> Array:
        return raw_constraints(v) * sg

    def objective(v: Array) -> Array:
        return raw_objective(v) * sf

    def grad_lagrangian(z: Array) -> Array:
        v, mu = z[:n], z[n:]
        grad_f = _derivative(objective, v, method, order=1)
        jac_g = xp.reshape(_derivative(constraints, v, method, order=1), (m, n))
        return xp.concat([grad_f - mu @ jac_g, -constraints(v)])

    def bordered_hessian(z: Array) -> Array:
        v, mu = z[:n], z[n:]
        h = _derivative(objective, v, method, order=2)
        for k in range(m):
            h = h - mu[k] * _derivative(lambda u, k=k: constraints(u)[k], v, method, order=2)
        jac_g = xp.reshape(_derivative(constraints, v, method, order=1), (m, n))
        top = xp.concat([h, -xp.permute_dims(jac_g, (1, 0))], axis=1)
        bottom = xp.concat([-jac_g, xp.zeros((m, m), dtype=u0.dtype, device=device(u0))], axis=1)
        return xp.concat([top, bottom], axis=0)

    z, _, n_iter, status = _newton_loop(
        grad_lagrangian, bordered_hessian, method, max_iter, tol, xp, xp.concat([u0, lam])
    )
    point, multipliers = z[:n] / sx, z[n:] * (sg / sf)
    if status != "converged":  # in the caller's terms: x and λ, not the bordered system's z
        report_non_convergence(
            f"lagrange_multipliers stopped after {n_iter} Newton steps: {status} at "
            f"x = {_xp.to_host(point)}, lam = {_xp.to_host(multipliers)}",
            raise_on_failure=raise_on_failure,
        )
    multipliers = multipliers[0] if scalar_constraint else multipliers
    return LagrangeResult(point, multipliers, status == "converged", n_iter, *_ROOT_STATUS[status])


def _least_squares_multipliers(grad_f: Array, jac_g: Array, *, xp: Namespace) -> Array:
    """λ minimising ‖∇f − J_gᵀλ‖ for unit-scaled ∇f and rows of J_g.

    The normal equations get a ridge of n·eps: with rows of unit size it changes
    a well-posed λ below rounding, and keeps a zero or repeated constraint
    gradient at the start from making them singular.
    """
    m, n = jac_g.shape
    ridge = n * float(xp.finfo(jac_g.dtype).eps)
    eye = xp.eye(m, dtype=jac_g.dtype, device=device(jac_g))
    gram = jac_g @ xp.permute_dims(jac_g, (1, 0)) + ridge * eye
    return xp.linalg.solve(gram, (jac_g @ grad_f)[:, None])[:, 0]


def _multipliers(lam0: Any, m: int, scalar_constraint: bool, x: Array, *, xp: Namespace) -> Array:
    if isinstance(lam0, int | float) and not isinstance(lam0, bool):
        _checks.check_real(lam0, "lam0", finite=True)
        return xp.full((m,), float(lam0), dtype=x.dtype, device=device(x))
    _checks.namespace(x0=x, lam0=lam0)
    lam = _checks.check_real_array(lam0, "lam0", xp=xp, ndim=(0, 1), small=True)
    if (lam.ndim == 0 and not scalar_constraint) or (lam.ndim == 1 and lam.shape[0] != m):
        msg = f"`lam0` must be a scalar or have one entry per constraint ({m}); got shape {tuple(lam.shape)}"
        raise ValueError(msg)
    return xp.astype(xp.reshape(lam, (m,)), x.dtype)
