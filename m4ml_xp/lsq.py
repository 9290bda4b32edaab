"""Course 2 — least squares: linear regression and Levenberg–Marquardt.

`levenberg_marquardt` follows MINPACK's ``lmder``/``lmdif`` (Moré 1978): diagonal
scaling from the Jacobian's column norms, a trust region whose radius is updated
from the ratio of actual to predicted reduction, the Levenberg–Marquardt
parameter found by Moré's safeguarded Newton iteration on the secular equation,
and the ftol / xtol / gtol tests with ``scipy.optimize.least_squares(method="lm")``'s
meanings and status codes.  The trust-region subproblem is solved through an SVD
of the scaled Jacobian (the standard has no pivoted QR), which handles rank
deficiency by truncating singular values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

from m4ml_xp import _checks, _scaling, _xp
from m4ml_xp._xp import device
from m4ml_xp.errors import RankWarning, report_non_convergence

Array = Any
Namespace = Any

__all__ = [
    "CurveFit",
    "LMResult",
    "LinearFit",
    "curve_fit",
    "levenberg_marquardt",
    "linear_regression",
]

#: scipy.optimize.least_squares's status messages, which `status` shares.
MESSAGES = {
    -1: "Improper input parameters.",
    0: "The maximum number of function evaluations is exceeded.",
    1: "`gtol` termination condition is satisfied.",
    2: "`ftol` termination condition is satisfied.",
    3: "`xtol` termination condition is satisfied.",
    4: "Both `ftol` and `xtol` termination conditions are satisfied.",
}


class LMResult(NamedTuple):
    """Result of :func:`levenberg_marquardt`, with ``least_squares``' field meanings.

    ``cost`` is ``0.5·‖fun‖²`` as a Python float (float64 whatever the working
    dtype): ``inf`` where that overflows float64 (residuals beyond ~1e154) and
    0 where it underflows, while ``x``, ``fun`` and ``jac`` are right at any
    finite magnitude; ``status`` 1–4 mean converged (gtol, ftol, xtol, ftol and
    xtol), 0 that ``max_nfev`` was reached.
    """

    x: Array
    cost: float
    fun: Array
    jac: Array
    n_iter: int
    nfev: int
    converged: bool
    status: int
    message: str


class LinearFit(NamedTuple):
    """Result of :func:`linear_regression`: ``y ≈ X @ coef + intercept``."""

    coef: Array
    intercept: Array
    residual_ss: Array
    rank: int


class CurveFit(NamedTuple):
    """Result of :func:`curve_fit`: parameters, their standard errors and covariance, the LM run."""

    params: Array
    stderr: Array
    cov: Array
    result: LMResult


# --------------------------------------------------------------------------- linear regression
@_xp.full_precision
def linear_regression(X: Array, y: Array) -> LinearFit:
    """Least-squares fit with an intercept, by QR of the centred data.

    Parameters
    ----------
    X : (N,) or (N, D) array
        Predictors, rows are samples.
    y : (N,) or (N, K) array
        One or several targets.

    Returns
    -------
    LinearFit
        ``coef`` (D,) or (D, K) — a scalar-shaped ``()``/(K,) when `X` is 1-D —,
        ``intercept`` () or (K,), ``residual_ss`` per target, ``rank`` of the
        centred predictors.

    Warns
    -----
    RankWarning
        When the centred predictors are rank deficient (collinear columns, or
        N ≤ D): the minimum-norm solution is returned, as ``numpy.linalg.lstsq``.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import linear_regression
    >>> x = np.array([0.0, 1.0, 2.0, 3.0])
    >>> fit = linear_regression(x, 2 * x + 1)
    >>> float(fit.coef), float(fit.intercept)
    (2.0, 1.0)
    """
    xp = _checks.namespace(X=X, y=y)
    X = _checks.check_real_array(X, "X", xp=xp, ndim=(1, 2), small=True)
    y = _checks.check_real_array(y, "y", xp=xp, ndim=(1, 2), small=True)
    if X.shape[0] != y.shape[0]:
        msg = f"`X` and `y` must have the same number of rows; got {X.shape[0]} and {y.shape[0]}"
        raise ValueError(msg)
    dtype = xp.result_type(X, y)
    X2 = xp.astype(X[:, None] if X.ndim == 1 else X, dtype)
    Y2 = xp.astype(y[:, None] if y.ndim == 1 else y, dtype)
    x_mean, y_mean = xp.mean(X2, axis=0), xp.mean(Y2, axis=0)
    Xc, Yc = X2 - x_mean, Y2 - y_mean
    n, d = Xc.shape
    eps = float(xp.finfo(dtype).eps)
    Q, R = xp.linalg.qr(_xp.one_chunk(Xc)) if n >= d else (None, None)
    rank = d
    if R is not None:
        diagonal = _xp.to_host(xp.abs(xp.linalg.diagonal(R)))
        scale = max(diagonal) if diagonal else 0.0
        rank = sum(v > max(n, d) * eps * scale for v in diagonal) if scale > 0 else 0
    if R is not None and rank == d:
        coef = xp.linalg.solve(R, xp.linalg.matrix_transpose(Q) @ Yc)
    else:
        U, s, Vt = xp.linalg.svd(_xp.one_chunk(Xc), full_matrices=False)
        values = _xp.to_host(s)
        cutoff = max(n, d) * eps * (max(values) if values else 0.0)
        rank = sum(v > cutoff for v in values)
        inverse = xp.where(
            s > cutoff, 1 / xp.where(s > cutoff, s, xp.ones_like(s)), xp.zeros_like(s)
        )
        coef = xp.linalg.matrix_transpose(Vt) @ (
            inverse[:, None] * (xp.linalg.matrix_transpose(U) @ Yc)
        )
        import warnings

        warnings.warn(
            f"linear_regression: the centred `X` has rank {rank} < {d} columns "
            "(collinear predictors or too few samples); returning the minimum-norm solution",
            RankWarning,
            stacklevel=2,
        )
    intercept = y_mean - x_mean @ coef
    residuals = Y2 - (X2 @ coef + intercept)
    residual_ss = xp.sum(residuals * residuals, axis=0)
    if X.ndim == 1:
        coef = coef[0, ...]
    if y.ndim == 1:
        coef, intercept, residual_ss = coef[..., 0], intercept[0], residual_ss[0]
    return LinearFit(coef, intercept, residual_ss, int(rank))


# --------------------------------------------------------------------------- Levenberg–Marquardt
def _trust_region_parameter(
    s: list[float], uf: list[float], delta: float, alpha: float, eps: float, m: int
) -> float:
    """Moré's Levenberg–Marquardt parameter α for radius `delta`, from the SVD of J·D⁻¹.

    The scaled step is ``q(α) = −V (s·uf / (s² + α))``; α = 0 (Gauss–Newton) when
    that step fits within 1.1·delta, else the safeguarded Newton iteration on
    ``φ(α) = ‖q(α)‖ − delta`` until ``|φ| ≤ 0.1·delta`` (MINPACK's lmpar).
    """
    n = len(s)
    top = s[0] if s else 0.0
    full_rank = n > 0 and s[-1] > eps * max(m, n) * top
    suf = [si * ui for si, ui in zip(s, uf, strict=True)]

    def phi(a: float) -> tuple[float, float]:
        terms = [(sufi / (si * si + a)) for sufi, si in zip(suf, s, strict=True)]
        norm = math.sqrt(sum(t * t for t in terms))
        if norm == 0:
            return -delta, 0.0
        derivative = -sum(sufi * sufi / (si * si + a) ** 3 for sufi, si in zip(suf, s, strict=True))
        return norm - delta, derivative / norm

    if full_rank:
        gn = math.sqrt(sum((ui / si) ** 2 for ui, si in zip(uf, s, strict=True)))
        if gn <= 1.1 * delta:
            return 0.0
        value, slope = phi(0.0)
        lower = -value / slope if slope else 0.0
    else:
        lower = 0.0
    upper = math.sqrt(sum(v * v for v in suf)) / delta
    if upper == 0:
        return 0.0
    a = (
        alpha
        if lower <= alpha <= upper and alpha > 0
        else max(0.001 * upper, math.sqrt(lower * upper))
    )
    for _ in range(10):
        if a <= 0 or a < lower or a > upper:  # MINPACK restarts a zero parameter too
            a = max(0.001 * upper, math.sqrt(lower * upper))
        value, slope = phi(a)
        if abs(value) <= 0.1 * delta:
            break
        if value < 0:
            upper = a
        if slope == 0:
            break
        ratio = value / slope
        if value > 0:
            lower = max(lower, a)
        lower = max(lower, a - ratio)
        a = max(lower, a - (value + delta) * ratio / delta)  # MINPACK: never below the lower bound
    return max(a, 0.0)


def _residual_function(
    residual: Any, x: Array, name: str, *, xp: Namespace
) -> Callable[[Array], Array]:
    _checks.check_callable(residual, name, "returning the residual array")

    def checked(v: Array) -> Array:
        out = _checks.returned_array(residual(v), name, v, xp=xp, castable=("integral",))
        if out.ndim != 1:
            msg = f"`{name}` must return a 1-D array of residuals; it returned shape {tuple(out.shape)}"
            raise ValueError(msg)
        return out

    return checked


def _lm_options(
    bounds: Any, ftol: float, xtol: float, gtol: float, factor: float, diff_step: float | None
) -> tuple[float, float | None]:
    """Return the options both Levenberg–Marquardt solvers share, validated: (factor, diff_step)."""
    if bounds is not None:
        msg = (
            "`bounds` are not supported by Levenberg–Marquardt; use a trust-region-reflective "
            "solver (scipy.optimize.least_squares(method='trf')) or reparametrise"
        )
        raise ValueError(msg)
    for value, name in ((ftol, "ftol"), (xtol, "xtol"), (gtol, "gtol")):
        _checks.check_real(value, name, low=0.0)
    factor = _checks.check_real(factor, "factor", low=0.0, low_open=True)
    if diff_step is not None:
        diff_step = _checks.check_real(diff_step, "diff_step", low=0.0, low_open=True)
    return factor, diff_step


def _max_nfev(max_nfev: int | None, jac: Any, n: int) -> int:
    """SciPy's budget of about 100·n iterations.

    100·n evaluations with an analytic `jac`, 100·n·(n+1) with forward differences,
    100·n·(2n+1) with central ones (each costs 2n).
    """
    if max_nfev is None:
        max_nfev = (
            100 * n if callable(jac) else 100 * n * (n + 1 if jac == "2-point" else 2 * n + 1)
        )
    return _checks.check_int(max_nfev, "max_nfev", low=1)


def _jacobian_function(
    jac: Any,
    fun: Callable[[Array], Array],
    shape: tuple[int, ...],
    *,
    xp: Namespace,
    diff_step: float | None,
) -> tuple[Callable[[Array, Array], Array], int]:
    """Return ``J(x, f(x))`` and the function evaluations it costs (MINPACK counts them).

    ``J`` is ``(m, n)``, or ``(B, m, n)`` for batches of fits.
    """
    if callable(jac):

        def analytic(x: Array, f: Array) -> Array:
            J = _checks.returned_array(jac(x), "jac", x, xp=xp, castable=("integral",))
            expected = (*x.shape[:-1], *shape[-2:])  # the fits present (finished ones retire)
            if tuple(J.shape) != expected:
                msg = f"`jac` must return the {expected} Jacobian (rows are residuals); got {tuple(J.shape)}"
                raise ValueError(msg)
            return xp.astype(J, x.dtype) if J.dtype != x.dtype else J

        return analytic, 0
    _checks.check_choice(jac, "jac", (None, "2-point", "3-point"))
    # central by default: Gauss–Newton's fixed point with a forward-difference Jacobian is
    # biased by O(sqrt(eps)), which costs ill-conditioned problems (Lanczos) certified digits
    central = jac != "2-point"
    n = shape[-1]

    def differences(x: Array, f: Array) -> Array:
        eps = float(xp.finfo(x.dtype).eps)
        relative = (
            diff_step if diff_step is not None else (eps ** (1 / 3) if central else math.sqrt(eps))
        )
        h = relative * xp.where(x == 0, xp.ones_like(x), xp.abs(x))
        h = (x + h) - x
        eye = xp.eye(n, dtype=x.dtype, device=device(x))
        columns = []
        for j in range(n):
            h_j = h[..., j : j + 1]  # per fit when batched
            e = eye[j, :] * h_j
            if central:
                columns.append((fun(x + e) - fun(x - e)) / (2 * h_j))
            else:
                columns.append((fun(x + e) - f) / h_j)
        return xp.stack(columns, axis=-1)

    return differences, n * (2 if central else 1)


@_xp.full_precision
def levenberg_marquardt(
    residual: Callable[[Array], Array],
    x0: Array,
    *,
    jac: Callable[[Array], Array] | str | None = None,
    ftol: float = 1e-8,
    xtol: float = 1e-8,
    gtol: float = 1e-8,
    max_nfev: int | None = None,
    diff_step: float | None = None,
    factor: float = 1.0,
    bounds: Any = None,
    raise_on_failure: bool = False,
) -> LMResult:
    """Minimise ``0.5·‖residual(x)‖²`` by MINPACK-style Levenberg–Marquardt.

    Parameters
    ----------
    residual : callable
        ``(n,) -> (m,)`` with ``m >= n``, written with `x0`'s namespace.
    x0 : (n,) array
        Start.
    jac : callable, {"2-point", "3-point"} or None
        The ``(m, n)`` Jacobian (rows are residuals), or differences in `x0`'s
        namespace: central (``None``/``"3-point"``, the default: 2n evaluations,
        error ~eps^(2/3)) or forward (``"2-point"``, MINPACK ``lmdif``'s choice;
        its O(sqrt(eps)) error shifts the converged point on ill-conditioned
        problems).
    ftol, xtol, gtol : float
        ``least_squares``' meanings: relative reduction of the cost, relative
        change of the (scaled) parameters, and the cosine between the residual
        and the Jacobian's columns.  Each ``>= 0``.  The defaults stop when the
        cost changes by 1e-8 relative, which leaves about 6 significant digits
        in the parameters of a typical problem; for certified-level accuracy
        (NIST StRD) pass ``ftol=xtol=gtol=1e-15``.
    max_nfev : int, optional
        Most residual evaluations, those of the differences included; default
        about SciPy's 100·n iterations: ``100·n`` with an analytic `jac`,
        ``100·n·(n+1)`` with forward and ``100·n·(2n+1)`` with central differences.
    diff_step : float, optional
        Relative difference step; default ``sqrt(eps)`` (2-point), ``eps**(1/3)`` (3-point).
    factor : float
        Initial trust radius ``factor·‖D·x0‖`` (MINPACK's ``factor``).  MINPACK and
        SciPy use 100; the default 1 keeps the first steps near the start, which
        avoids flat far-away regions on badly scaled problems (NIST BoxBOD from
        its first start converges to a plateau at infinity with 100) and, on the
        NIST problems, costs fewer evaluations overall.
    bounds
        Not supported by Levenberg–Marquardt: passing any raises ``ValueError``.
    raise_on_failure : bool
        Raise :class:`~m4ml_xp.ConvergenceError` when ``max_nfev`` is reached.

    Returns
    -------
    LMResult
        ``x``, ``cost``, ``fun``, ``jac``, ``n_iter``, ``nfev``, ``converged``,
        ``status`` (as ``least_squares``: 1 gtol, 2 ftol, 3 xtol, 4 ftol and
        xtol, 0 max_nfev), ``message``.

    Notes
    -----
    Any finite magnitude: the solver works on ``residual · s`` with ``s`` the
    power of two bringing the largest residual at `x0` to about 1 (LAPACK's
    ``xLASCL`` idea; exact), and every test it makes (ftol, xtol, gtol, the trust
    region) is invariant under scaling the residual, so ``c · residual`` gives the
    same ``x`` for residuals of 1e-300 or 1e300 — where ``‖f‖²`` itself
    underflows or overflows.  ``fun`` and ``jac`` are returned unscaled; ``cost``
    is a float64 that is ``inf`` beyond its range.  `x0` is refused when the
    residual there is not finite.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import levenberg_marquardt
    >>> t = np.linspace(0, 4, 20)
    >>> y = 3.0 * np.exp(-0.7 * t)
    >>> fit = levenberg_marquardt(lambda b: b[0] * np.exp(-b[1] * t) - y, np.array([1.0, 1.0]))
    >>> np.round(fit.x, 8), fit.status
    (array([3. , 0.7]), 3)
    """
    factor, diff_step = _lm_options(bounds, ftol, xtol, gtol, factor, diff_step)
    xp = _checks.namespace(x0=x0)
    x = _checks.check_real_array(x0, "x0", xp=xp, ndim=1, small=True)
    unscaled = _residual_function(residual, x, "residual", xp=xp)
    f = unscaled(x)
    n, m = x.shape[0], f.shape[0]
    if m < n:
        msg = f"`residual` must return at least as many residuals as parameters; got {m} residuals for {n} parameters"
        raise ValueError(msg)
    if not _xp.to_host(xp.all(xp.isfinite(f))):
        raise ValueError("`residual` is not finite at `x0`; start where the model can be evaluated")
    # LAPACK's xLASCL: the solver runs on residual·scale, a power of two bringing the
    # largest residual at `x0` to about 1 (exact), so that its sums of squares neither
    # overflow (residuals of 1e160) nor underflow (1e-200); every test is scale-free
    scale = _xp.to_host(_residual_scale(f, xp=xp))
    fun = _times(unscaled, scale)
    f = f * scale
    raw_jacobian, jac_cost = _jacobian_function(jac, fun, (m, n), xp=xp, diff_step=diff_step)
    jacobian = raw_jacobian if not callable(jac) else _times(raw_jacobian, scale)
    max_nfev = _max_nfev(max_nfev, jac, n)
    eps = float(xp.finfo(x.dtype).eps)
    fnorm = _xp.to_host(xp.linalg.vector_norm(f))

    nfev, n_iter, status = 1, 0, None
    (f,) = _xp.evaluate(f)
    (J,) = _xp.evaluate(jacobian(x, f))
    nfev += jac_cost
    alpha, delta, diag, xnorm, first_step = 0.0, 0.0, None, 0.0, True
    while status is None:
        col_list = _xp.to_host(xp.sqrt(xp.vecdot(J, J, axis=-2)))
        if not all(math.isfinite(c) for c in col_list):
            raise ValueError(f"the Jacobian became non-finite at x = {_xp.to_host(x)}")
        if diag is None:  # MINPACK mode 1: scale by the first Jacobian's column norms
            diag = [c if c > 0 else 1.0 for c in col_list]
            xnorm = _scaled_norm(x, diag, xp=xp)
            delta = factor * xnorm if xnorm > 0 else factor
        g = xp.linalg.matrix_transpose(J) @ f
        gradient = _xp.to_host(g)
        gnorm = 0.0
        if fnorm > 0:
            gnorm = max(
                (abs(g) / (c * fnorm) for g, c in zip(gradient, col_list, strict=True) if c > 0),
                default=0.0,
            )
        if gnorm <= gtol:
            status = 1
            break
        diag = [max(d, c) for d, c in zip(diag, col_list, strict=True)]
        D = xp.asarray(diag, dtype=x.dtype, device=device(x))
        if _xp.is_dask_array(J):  # Dask has no eigh: the SVD route
            U, s_values, Vt = xp.linalg.svd(_xp.one_chunk(J / D), full_matrices=False)
            uf_values = _xp.to_host(xp.linalg.matrix_transpose(U) @ f)
        else:
            s_values, Vt, uf = _scaled_decomposition(
                J[None, ...], D[None, :], g[None, :], f[None, :], xp=xp
            )
            s_values, Vt, uf_values = s_values[0, :], Vt[0, ...], _xp.to_host(uf[0, :])
        s_list = _xp.to_host(s_values)
        while True:  # inner loop: shrink the trust region until a step is accepted
            alpha = _trust_region_parameter(s_list, uf_values, delta, alpha, eps, m)
            cutoff = eps * max(m, n) * (s_list[0] if s_list else 0.0)
            coefficients = [
                (si * ui / (si * si + alpha)) if (si > cutoff or alpha > 0) and si > 0 else 0.0
                for si, ui in zip(s_list, uf_values, strict=True)
            ]
            c = xp.asarray(coefficients, dtype=x.dtype, device=device(x))
            q = -(xp.linalg.matrix_transpose(Vt) @ c)  # the scaled step D·p
            p = q / D
            pnorm = _xp.to_host(xp.linalg.vector_norm(q))
            if first_step:  # MINPACK: the first step also bounds the initial radius
                delta = min(delta, pnorm)
                first_step = False
            x_trial = x + p
            x_trial, f_trial = _xp.evaluate(x_trial, fun(x_trial))  # Dask: one step deep
            nfev += 1
            Jp = J @ p
            fnorm_trial, jp_norm = _xp.to_host(
                xp.sqrt(xp.stack([xp.vecdot(f_trial, f_trial), xp.vecdot(Jp, Jp)]))
            )
            if not math.isfinite(fnorm_trial):
                fnorm_trial = math.inf  # a step into a region the model cannot evaluate: rejected
            actred = 1 - (fnorm_trial / fnorm) ** 2 if 0.1 * fnorm_trial < fnorm else -1.0
            temp1 = jp_norm / fnorm if fnorm > 0 else 0.0
            temp2 = math.sqrt(alpha) * pnorm / fnorm if fnorm > 0 else 0.0
            prered = temp1 * temp1 + 2 * temp2 * temp2
            dirder = -(temp1 * temp1 + temp2 * temp2)
            ratio = actred / prered if prered != 0 else 0.0
            if ratio <= 0.25:
                if actred >= 0:
                    shrink = 0.5
                else:
                    shrink = (
                        0.5 * dirder / (dirder + 0.5 * actred) if dirder + 0.5 * actred else 0.1
                    )
                if 0.1 * fnorm_trial >= fnorm or shrink < 0.1:
                    shrink = 0.1
                delta = shrink * min(delta, pnorm / 0.1)
                alpha = alpha / shrink
            elif alpha == 0 or ratio >= 0.75:
                delta = pnorm / 0.5
                alpha = 0.5 * alpha
            accepted = ratio >= 1e-4
            if accepted:
                x, f, fnorm = x_trial, f_trial, fnorm_trial
                xnorm = _scaled_norm(x, diag, xp=xp)
                n_iter += 1
            ftol_met = abs(actred) <= ftol and prered <= ftol and 0.5 * ratio <= 1
            xtol_met = delta <= xtol * xnorm
            if ftol_met and xtol_met:
                status = 4
            elif ftol_met:
                status = 2
            elif xtol_met:
                status = 3
            elif nfev >= max_nfev:
                status = 0
            elif abs(actred) <= eps and prered <= eps and 0.5 * ratio <= 1:
                status = 2  # ftol below rounding: as converged as this precision allows
            elif delta <= eps * xnorm:
                status = 3
            elif fnorm == 0:
                status = 2
            if status is not None:
                break
            if accepted:
                (J,) = _xp.evaluate(jacobian(x, f))
                nfev += jac_cost
                break
    converged = status > 0
    if not converged:
        report_non_convergence(
            f"levenberg_marquardt: {MESSAGES[status]} ({nfev} evaluations)",
            raise_on_failure=raise_on_failure,
            stacklevel=2,
        )
    fnorm = fnorm / scale  # a float64 on the host: 1e160 residuals' cost overflows it to inf
    cost = 0.5 * fnorm * fnorm
    f, J = f / scale, J / scale
    return LMResult(x, cost, f, J, n_iter, nfev, converged, status, MESSAGES[status])


def _residual_scale(f: Array, *, xp: Namespace, axis: int | tuple[int, ...] | None = None) -> Array:
    """Return the power of two bringing ``max|f|`` (over `axis`) to about 1; 1 for zero ones.

    The magnitude is floored at the smallest normal number, so the scale is a
    finite power of two (at most ``2**1022``) even for subnormal residuals.
    """
    floor = float(xp.finfo(f.dtype).smallest_normal)
    largest = _scaling.max_abs(f, xp=xp, axis=axis)
    largest = xp.where(largest > 0, xp.maximum(largest, floor), xp.ones_like(largest))
    return _scaling.power_of_two_scale(largest, xp=xp)


def _times(function: Callable[..., Array], scale: Any) -> Callable[..., Array]:
    """Return `function` with its output multiplied by `scale`."""

    def scaled_function(*arrays: Array) -> Array:
        return function(*arrays) * scale

    return scaled_function


def _scaled_norm(x: Array, diag: list[float], *, xp: Namespace) -> float:
    D = xp.asarray(diag, dtype=x.dtype, device=device(x))
    return _xp.to_host(xp.linalg.vector_norm(D * x))


# --------------------------------------------------------------------------- curve fitting
@_xp.full_precision
def curve_fit(
    model: Callable[[Array, Array], Array],
    x: Array,
    y: Array,
    p0: Array,
    *,
    sigma: Array | None = None,
    absolute_sigma: bool = False,
    **options: Any,
) -> CurveFit:
    """Fit ``model(x, p)`` to data ``y`` by Levenberg–Marquardt, with standard errors.

    One fit (`p0` 1-D, by :func:`levenberg_marquardt`) or a batch of independent
    fits (`p0` of shape ``(B, n)``, by :func:`levenberg_marquardt_batched`).

    Parameters
    ----------
    model : callable
        ``model(x, p) -> (m,)``, written with the arrays' namespace.  Batched:
        ``p`` is ``(B, n)`` and the model returns ``(B, m)``; write it with
        ``array_namespace(p)`` so that Dask's chunks (NumPy/CuPy) run it too.
    x : array
        Independent variable(s), passed to `model` (integers as floats); real,
        finite, with an axis (first or last) of one value per observation in
        `y` (``m`` entries).  Batched, an `x`
        of `y`'s shape ``(B, m)`` is per fit; any other `x` is shared by all fits
        (on Dask it is computed once and sent to every chunk).
    y : (m,) or (B, m) array
        Observations.
    p0 : (n,) or (B, n) array
        Starting parameters.
    sigma : (m,) or (B, m) array, optional
        Uncertainties of `y`: residuals are weighted by ``1/sigma``.
    absolute_sigma : bool
        As in ``scipy.optimize.curve_fit``: if False (default) the covariance is
        scaled by the reduced chi-square ``2·cost / (m − n)``.
    **options
        Passed to the solver (``jac`` of the weighted residual, tolerances,
        ``max_nfev``, ...).

    Returns
    -------
    CurveFit
        ``params``, ``stderr`` (``sqrt(diag(cov))``), ``cov`` — ``(JᵀJ)⁻¹`` at the
        optimum from the SVD of the Jacobian (singular directions get infinite
        variance) —, and the solver's ``result``; batched, each with the batch
        axis first and ``result`` a :class:`BatchedLMResult`.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import curve_fit
    >>> x = np.linspace(0, 1, 50)
    >>> y = 2.0 * x + 1.0 + 0.01 * np.sin(40 * x)
    >>> fit = curve_fit(lambda x, p: p[0] * x + p[1], x, y, np.array([1.0, 0.0]))
    >>> np.round(fit.params, 2), bool(fit.stderr[0] < 0.01)
    (array([2., 1.]), True)

    Three lines at once:

    >>> Y = np.stack([2.0 * x + 1.0, -x, 0.5 * x + 3.0])
    >>> fits = curve_fit(lambda x, p: p[:, :1] * x + p[:, 1:], x, Y, np.zeros((3, 2)))
    >>> np.round(fits.params, 6) + 0.0  # + 0.0: no -0. from a residue of -3e-13
    array([[ 2. ,  1. ],
           [-1. ,  0. ],
           [ 0.5,  3. ]])
    """
    _checks.check_callable(model, "model", "model(x, p)")
    xp = _checks.namespace(optional=["sigma"], x=x, y=y, p0=p0, sigma=sigma)
    lazy = _xp.is_dask_namespace(xp)
    y = _checks.check_real_array(y, "y", xp=xp, ndim=(1, 2), small=not lazy)
    batched = y.ndim == 2
    p0 = _checks.check_real_array(p0, "p0", xp=xp, ndim=2 if batched else 1, small=not lazy)
    if batched and p0.shape[0] != y.shape[0]:
        msg = f"`p0` must have one row per fit: {y.shape[0]} rows like `y`; got shape {tuple(p0.shape)}"
        raise ValueError(msg)
    m, n = y.shape[-1], p0.shape[-1]
    x = _checks.check_real_array(x, "x", xp=xp, small=not lazy)
    if x.ndim == 0 or m not in (x.shape[0], x.shape[-1]):
        msg = (
            f"`x` must have an axis (first or last) of length {m}, one value per observation "
            f"in `y` {tuple(y.shape)}; got shape {tuple(x.shape)}"
        )
        raise ValueError(msg)
    if m < n:
        msg = (
            f"`y` must have at least as many observations as `p0` has parameters; "
            f"got {m} observations for {n} parameters"
        )
        raise ValueError(msg)
    if sigma is not None:
        sigma = _checks.check_real_array(sigma, "sigma", xp=xp, ndim=(1, 2), small=not lazy)
        if sigma.shape not in (y.shape, y.shape[-1:]):
            msg = f"`sigma` must have the shape of `y` {tuple(y.shape)} or of one fit's data; got {tuple(sigma.shape)}"
            raise ValueError(msg)
        if not bool(xp.all(sigma > 0)):
            raise ValueError("`sigma` must be positive")
    if batched:
        return _curve_fit_batched(model, x, y, p0, sigma, absolute_sigma, options, xp=xp)

    def residual(p: Array) -> Array:
        out = _model_output(model(x, p), p, y, xp=xp)
        return (out - y) / sigma if sigma is not None else out - y

    # checked here so that the message names the caller's `model` and `p0`
    # (levenberg_marquardt's would name its own `residual` and `x0`)
    at_start = residual(p0)
    message = (
        "`model` is not finite at `p0` (weighted by `sigma`); "
        "start where the model can be evaluated"
    )
    _checks.check_bool_result(xp.all(xp.isfinite(at_start)), message, small=True)
    result = levenberg_marquardt(residual, p0, **options)
    cov, stderr = _covariance(_xp.one_chunk(result.jac), result.fun, absolute_sigma, xp=xp)
    return CurveFit(result.x, stderr, cov, result)


def _model_output(out: Any, p: Array, y: Array, *, xp: Namespace) -> Array:
    """Return what `model` returned at `p`, checked: an array of `p`'s library shaped like `y`."""
    out = _checks.returned_array(out, "model", p, xp=xp, castable=("integral",))
    _check_model_shape(out, y)
    return out


def _check_model_shape(out: Array, y: Array) -> None:
    if _xp.is_array(out) and tuple(out.shape) != tuple(y.shape):
        msg = (
            f"`model` must return an array shaped like `y` {tuple(y.shape)}; got {tuple(out.shape)}"
        )
        raise ValueError(msg)


def _curve_fit_batched(
    model: Callable[[Array, Array], Array],
    x: Array,
    y: Array,
    p0: Array,
    sigma: Array | None,
    absolute_sigma: bool,
    options: dict[str, Any],
    *,
    xp: Namespace,
) -> CurveFit:
    per_fit_x = x.ndim == 2 and tuple(x.shape) == tuple(y.shape)
    if not per_fit_x and _xp.is_dask_array(x):
        x = x.compute()  # shared by every chunk
    args = [y]
    if per_fit_x:
        args.append(x)
    if sigma is not None:
        args.append(sigma if sigma.ndim == 2 else xp.broadcast_to(sigma, y.shape))

    def residual(p: Array, y: Array, *rest: Array) -> Array:
        x_fit = rest[0] if per_fit_x else x
        out = _model_output(model(x_fit, p), p, y, xp=_xp.array_namespace(p))
        return (out - y) / rest[-1] if sigma is not None else out - y

    result = levenberg_marquardt_batched(residual, p0, args=tuple(args), **options)

    def errors(J: Array, f: Array) -> tuple[Array, Array]:
        ns = _xp.array_namespace(J)
        return _covariance(J, f, absolute_sigma, xp=ns)

    if _xp.is_dask_array(result.jac):
        n = p0.shape[1]
        dtype = result.jac.dtype
        cov, stderr = _xp.map_batch_chunks(
            errors, [result.jac, result.fun], [((n, n), dtype), ((n,), dtype)]
        )
    else:
        cov, stderr = errors(result.jac, result.fun)
    return CurveFit(result.x, stderr, cov, result)


def _covariance(J: Array, f: Array, absolute_sigma: bool, *, xp: Namespace) -> tuple[Array, Array]:
    """Return ``(JᵀJ)⁻¹`` and the standard errors from the SVD of ``J`` (``(m, n)`` or a stack).

    Infinite along singular directions; scaled by the reduced chi-square
    ``‖f‖² / (m − n)`` unless `absolute_sigma`.  ``J`` is scaled by a power of two
    before its SVD and ``‖f‖`` taken nrm2-style, so that Jacobians and residuals
    of any finite magnitude (`sigma` of 1e±300) give the covariance wherever it is
    representable, and ``inf`` (not a warning or NaN) where it overflows.
    """
    m, n = J.shape[-2:]
    scale = _residual_scale(J, xp=xp, axis=(-2, -1))  # (..., 1, 1)
    J_scaled = J * scale
    _U, s, Vt = xp.linalg.svd(J_scaled, full_matrices=False)
    cutoff = float(xp.finfo(s.dtype).eps) * max(m, n) * xp.max(s, axis=-1, keepdims=True)
    keep = s > cutoff
    if absolute_sigma:
        numerator = scale[..., 0]  # 1/s_true = scale/s
    elif m <= n:  # no degrees of freedom left to estimate the noise: SciPy's answer
        cov = xp.full((*J.shape[:-2], n, n), math.inf, dtype=J.dtype, device=device(J))
        return cov, xp.linalg.diagonal(cov)
    else:  # ‖f‖/√(m−n) / s_true
        fnorm = _scaling.vector_norm(f, xp=xp, axis=-1)[..., None]
        numerator = (fnorm / math.sqrt(m - n)) * scale[..., 0]
    root = xp.where(keep, numerator / xp.where(keep, s, xp.ones_like(s)), xp.zeros_like(s))
    # (V·diag(root²)·Vᵀ) formed with root/max(root) ≤ 1, then times max(root)² without
    # overflow warnings: entries beyond the dtype's range become ±inf (not NaN)
    top = xp.max(root, axis=-1, keepdims=True)
    top = xp.where(top > 0, top, xp.ones_like(top))
    unit = root / top
    V = xp.linalg.matrix_transpose(Vt)
    unit_cov = (V * (unit * unit)[..., None, :]) @ Vt
    cov = _times_or_inf(_times_or_inf(unit_cov, top[..., None], xp=xp), top[..., None], xp=xp)
    # standard errors from the unit covariance: representable even where their squares are not
    stderr = _times_or_inf(xp.sqrt(xp.abs(xp.linalg.diagonal(unit_cov))), top, xp=xp)
    # singular directions: infinite variance (their sign in the off-diagonal entries)
    singular = (V * xp.astype(~keep, V.dtype)[..., None, :]) @ Vt
    infinity = xp.full_like(cov, math.inf)
    cov = xp.where(singular > 0, infinity, xp.where(singular < 0, -infinity, cov))
    stderr = xp.where(xp.linalg.diagonal(singular) > 0, xp.full_like(stderr, math.inf), stderr)
    return cov, stderr


def _times_or_inf(a: Array, b: Array, *, xp: Namespace) -> Array:
    """Return ``a · b`` for positive finite `b`, ``±inf`` where it overflows (no warning)."""
    big = xp.abs(a) > float(xp.finfo(a.dtype).max) / xp.maximum(b, xp.ones_like(b))
    infinity = xp.where(a > 0, xp.full_like(a, math.inf), xp.full_like(a, -math.inf))
    return xp.where(big, infinity, xp.where(big, xp.zeros_like(a), a) * b)


# --------------------------------------------------------------------------- batched Levenberg–Marquardt
_RUNNING = -10  # status of a fit still iterating


class BatchedLMResult(NamedTuple):
    """Result of :func:`levenberg_marquardt_batched`: every field has the batch axis first.

    ``cost`` is in the working dtype: ``inf`` where ``0.5·‖fun‖²`` exceeds its
    range (residuals beyond ~1e154 in float64, ~1e19 in float32), the fit
    itself being right at any finite magnitude (each fit's residual is scaled by
    a power of two at its start, as in :func:`levenberg_marquardt`).

    ``status`` as :class:`LMResult` per fit, plus ``-2``: the residual is not finite
    at that fit's start (the fit is left at its start; the others proceed).
    """

    x: Array
    cost: Array
    fun: Array
    jac: Array
    n_iter: Array
    nfev: Array
    converged: Array
    status: Array


class _BatchState(NamedTuple):
    x: Array
    f: Array
    J: Array
    fnorm: Array
    diag: Array
    delta: Array
    alpha: Array
    xnorm: Array
    first: Array
    status: Array
    nfev: Array
    n_iter: Array
    data: tuple[Array, ...]  # the fits' rows of `args`, then their residual scales (B, 1)


@_xp.full_precision
def levenberg_marquardt_batched(
    residual: Callable[..., Array],
    x0_batch: Array,
    *,
    args: tuple[Array, ...] = (),
    jac: Callable[..., Array] | str | None = None,
    ftol: float = 1e-8,
    xtol: float = 1e-8,
    gtol: float = 1e-8,
    max_nfev: int | None = None,
    diff_step: float | None = None,
    factor: float = 1.0,
    bounds: Any = None,
) -> BatchedLMResult:
    """B independent Levenberg–Marquardt fits in one vectorised call.

    The same algorithm as :func:`levenberg_marquardt` — per-fit scaling, trust
    radius, LM parameter and termination tests — run on all fits at once with
    batched matrix products and decompositions (Jacobi eigendecompositions of the
    small Gram matrices, written with elementwise operations; library ``eigh`` and
    SVD calls on at most 16,384 fits at a time); a fit that has terminated is
    frozen by a mask while the others go on.  There is no Python loop over fits, and on JAX
    the whole solve is one ``lax.while_loop`` (it also runs inside ``jax.jit``).

    Parameters
    ----------
    residual : callable
        ``residual(b, *args) -> (B, m)`` for parameters ``b`` of shape ``(B, n)``:
        the residuals of every fit, written with the batch axis first (broadcast
        over it) and with ``b``'s namespace (``array_namespace(b)``).
    x0_batch : (B, n) array
        Starts.  A Dask array is solved chunk by chunk along its batch axis:
        each chunk is an independent task (a ``dask.distributed`` cluster runs
        them on its workers) and the result is lazy.
    args : tuple of arrays, optional
        Per-fit data with the batch axis first (``(B, ...)``, e.g. the observations),
        passed on to `residual` and `jac`.  On Dask this is how data reaches the
        chunks — `residual` then sees NumPy/CuPy chunks and must not close over
        Dask arrays; elsewhere closures work as well.
    jac : callable, {"2-point", "3-point"} or None
        ``jac(b, *args) -> (B, m, n)``, or differences (central by default).
    ftol, xtol, gtol, max_nfev, diff_step, factor, bounds
        As for :func:`levenberg_marquardt`, applied to each fit.

    Returns
    -------
    BatchedLMResult
        ``x`` (B, n), ``cost`` (B,), ``fun`` (B, m), ``jac`` (B, m, n),
        ``n_iter``, ``nfev``, ``converged``, ``status`` (B,).

    Warns
    -----
    ConvergenceWarning
        When some fits stop before converging (saying how many).  Dask results
        are lazy: read their ``converged`` after computing.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import levenberg_marquardt_batched
    >>> t = np.linspace(0, 4, 20)
    >>> rates = np.array([[0.5], [1.0], [2.0]])
    >>> y = 3.0 * np.exp(-rates * t)                       # three curves, (3, 20)
    >>> fit = levenberg_marquardt_batched(
    ...     lambda b: b[:, :1] * np.exp(-b[:, 1:] * t) - y, np.ones((3, 2)))
    >>> np.round(fit.x, 8), fit.converged
    (array([[3. , 0.5],
           [3. , 1. ],
           [3. , 2. ]]), array([ True,  True,  True]))
    """
    factor, diff_step = _lm_options(bounds, ftol, xtol, gtol, factor, diff_step)
    if not isinstance(args, tuple | list):
        msg = f"`args` must be a tuple of arrays; got {type(args).__name__}"
        raise TypeError(msg)
    names = {f"args[{i}]": a for i, a in enumerate(args)}
    xp = _checks.namespace(x0_batch=x0_batch, **names)
    lazy = _xp.is_dask_namespace(xp)
    x = _checks.check_real_array(x0_batch, "x0_batch", xp=xp, ndim=2, small=not lazy)
    _checks.check_callable(residual, "residual", "residual(b, *args) -> (B, m)")
    B = x.shape[0]
    for name, a in names.items():
        if a.ndim < 1 or a.shape[0] != B:
            msg = f"`{name}` must have the batch axis first ({B} rows, like `x0_batch`); got shape {tuple(a.shape)}"
            raise ValueError(msg)
    options = {"jac": jac, "ftol": ftol, "xtol": xtol, "gtol": gtol, "max_nfev": max_nfev,
               "diff_step": diff_step, "factor": factor}  # fmt: skip
    if lazy:
        return _batched_by_chunks(residual, x, tuple(args), options)
    result = _solve_batched(residual, x, tuple(args), xp=xp, **options)
    if not _xp.is_traced(result.converged):
        failed = int(xp.sum(xp.astype(~result.converged, xp.int32)))
        if failed:
            report_non_convergence(
                f"levenberg_marquardt_batched: {failed} of {B} fits stopped before "
                "converging (their `status` says why)",
                raise_on_failure=False,
                stacklevel=2,
            )
    return result


_DASK_CLOSURE = (
    "on Dask the fits are solved chunk by chunk: `{name}` receives NumPy/CuPy chunks of "
    "`x0_batch` and `args` and returned a Dask array — pass per-fit data through `args` "
    "instead of closing over Dask arrays"
)


def _batched_by_chunks(
    residual: Callable[..., Array], x: Array, args: tuple[Array, ...], options: dict[str, Any]
) -> BatchedLMResult:
    """Dask: one independent batched solve per chunk of the batch axis."""

    def chunk_only(function: Callable[..., Array], name: str) -> Callable[..., Array]:
        def on_chunks(*arrays: Array) -> Array:
            out = function(*arrays)
            if _xp.is_dask_array(out):
                raise TypeError(_DASK_CLOSURE.format(name=name))
            return out

        return on_chunks

    residual = chunk_only(residual, "residual")
    if callable(options["jac"]):
        options = {**options, "jac": chunk_only(options["jac"], "jac")}
    # the first fit, solved now: the residual's length, and bad input reported at the call
    first = [a[:1].compute() for a in (x, *args)]
    probe = _solve_batched(
        residual, first[0], tuple(first[1:]), xp=_xp.array_namespace(first[0]), **options
    )
    m, n = probe.jac.shape[1:]

    def solve(block: Array, *blocks: Array) -> tuple[Array, ...]:
        ns = _xp.array_namespace(block)
        return tuple(_solve_batched(residual, block, blocks, xp=ns, **options))

    dtype = x.dtype
    fields = [((n,), dtype), ((), dtype), ((m,), dtype), ((m, n), dtype)]
    fields += [((), "int32"), ((), "int32"), ((), "bool"), ((), "int32")]
    return BatchedLMResult(*_xp.map_batch_chunks(solve, [x, *args], fields))


def _solve_batched(
    residual: Callable[..., Array],
    x: Array,
    args: tuple[Array, ...],
    *,
    xp: Namespace,
    jac: Any,
    ftol: float,
    xtol: float,
    gtol: float,
    max_nfev: int | None,
    diff_step: float | None,
    factor: float,
) -> BatchedLMResult:
    B, n = x.shape
    dtype, dev = x.dtype, device(x)
    eps = float(xp.finfo(dtype).eps)

    def fun_of(data: tuple[Array, ...]) -> Callable[[Array], Array]:
        """Return the checked, scaled residual of the fits whose `data` is given.

        `data` holds the fits' rows of `args` followed by their scales ``(rows, 1)``.
        """

        def fun(v: Array) -> Array:
            out = _checks.returned_array(
                residual(v, *data[:-1]), "residual", v, xp=xp, castable=("integral",)
            )
            rows = v.shape[0]
            if out.ndim != 2 or out.shape[0] != rows:
                msg = f"`residual` must return a ({rows}, m) array for ({rows}, {n}) parameters; got {tuple(out.shape)}"
                raise ValueError(msg)
            return (out if out.dtype == dtype else xp.astype(out, dtype)) * data[-1]

        return fun

    def jacobian_of(data: tuple[Array, ...], m: int) -> tuple[Callable[[Array, Array], Array], int]:
        analytic = (lambda v: jac(v, *data[:-1])) if callable(jac) else jac
        jacobian, cost = _jacobian_function(
            analytic, fun_of(data), (B, m, n), xp=xp, diff_step=diff_step
        )
        if callable(jac):  # differences of the scaled residual are scaled already
            return _times(jacobian, data[-1][:, :, None]), cost
        return jacobian, cost

    f0 = fun_of((*args, xp.ones((B, 1), dtype=dtype, device=dev)))(x)
    m = f0.shape[1]
    if m < n:
        msg = f"`residual` must return at least as many residuals as parameters; got {m} residuals for {n} parameters"
        raise ValueError(msg)
    # each fit runs on its residual times a power of two bringing its largest residual at
    # the start to about 1 (as the single solver): every test is scale-free, and sums of
    # squares of residuals of 1e160 or 1e-200 neither overflow nor underflow
    finite_start = xp.all(xp.isfinite(f0), axis=1)
    scale = _residual_scale(f0, xp=xp, axis=1)  # (B, 1); 1 where not finite
    f0 = f0 * scale
    data = (*args, scale)
    jacobian, jac_cost = jacobian_of(data, m)
    max_nfev = _max_nfev(max_nfev, jac, n)

    def norm(a: Array, axis: int = -1) -> Array:  # vecdot: one fused pass, no temporaries
        return xp.sqrt(xp.vecdot(a, a, axis=axis))

    def row_times(row: Array, matrices: Array) -> Array:  # (B, k), (B, k, n) -> (B, n)
        return (row[:, None, :] @ matrices)[:, 0, :]

    zero = xp.zeros((B,), dtype=dtype, device=dev)
    fnorm0 = norm(f0)
    f0 = xp.where(finite_start[:, None], f0, xp.zeros_like(f0))
    fnorm0 = xp.where(finite_start, fnorm0, zero)
    J0 = jacobian(x, f0)
    J0 = xp.where(xp.isfinite(J0), J0, xp.zeros_like(J0))
    col0 = norm(J0, axis=-2)
    diag0 = xp.where(col0 > 0, col0, xp.ones_like(col0))
    xnorm0 = norm(diag0 * x)
    status0 = xp.where(
        finite_start,
        xp.full((B,), _RUNNING, dtype=xp.int32, device=dev),
        xp.full((B,), -2, dtype=xp.int32, device=dev),
    )
    ones_int = xp.ones((B,), dtype=xp.int32, device=dev)
    state = _BatchState(
        x=x, f=f0, J=J0, fnorm=fnorm0, diag=diag0,
        delta=xp.where(xnorm0 > 0, factor * xnorm0, zero + factor), alpha=zero, xnorm=xnorm0,
        first=xp.ones((B,), dtype=xp.bool, device=dev), status=status0,
        nfev=ones_int * (1 + jac_cost), n_iter=ones_int * 0, data=data,
    )  # fmt: skip
    cutoff_scale = eps * max(m, n)

    def active(s: _BatchState) -> Array:
        return s.status == _RUNNING

    def body(s: _BatchState) -> _BatchState:
        running = s.status == _RUNNING
        B = s.x.shape[0]
        zero = xp.zeros_like(s.fnorm)
        fun = fun_of(s.data)
        jacobian, _ = jacobian_of(s.data, m)
        col = norm(s.J, axis=-2)  # (B, n)
        g = row_times(s.f, s.J)
        safe_col = xp.where(col > 0, col, xp.ones_like(col))
        safe_fnorm = xp.where(s.fnorm > 0, s.fnorm, xp.ones_like(s.fnorm))
        cosines = xp.where(col > 0, xp.abs(g) / (safe_col * safe_fnorm[:, None]), xp.zeros_like(g))
        gnorm = xp.where(s.fnorm > 0, xp.max(cosines, axis=1), zero)
        gtol_met = running & (gnorm <= gtol)
        diag = xp.maximum(s.diag, col)
        sv, Vt, uf = _scaled_decomposition(s.J, diag, g, s.f, xp=xp, batched=True)
        alpha = _batched_lm_parameter(sv, uf, s.delta, s.alpha, cutoff_scale, xp=xp)
        cutoff = cutoff_scale * sv[:, :1]
        keep = ((sv > cutoff) | (alpha[:, None] > 0)) & (sv > 0)
        safe_den = xp.where(keep, sv * sv + alpha[:, None], xp.ones_like(sv))
        coefficients = xp.where(keep, sv * uf / safe_den, xp.zeros_like(sv))
        q = -row_times(coefficients, Vt)  # scaled step D·p, (B, n)
        p = q / diag
        pnorm = norm(q)
        delta = xp.where(s.first, xp.minimum(s.delta, pnorm), s.delta)
        x_trial = s.x + p
        f_trial = fun(x_trial)
        fnorm_trial = norm(f_trial)
        fnorm_trial = xp.where(xp.isfinite(fnorm_trial), fnorm_trial, zero + math.inf)
        ratio_f = fnorm_trial / safe_fnorm
        actred = xp.where(0.1 * fnorm_trial < s.fnorm, 1 - ratio_f * ratio_f, zero - 1)
        # ‖J·p‖ = ‖S·Vᵀ·(D·p)‖ since J·D⁻¹ = U·S·Vᵀ: from (B, n) arrays, not another (B, m, n) pass
        jp_norm = norm(sv * (Vt @ q[:, :, None])[:, :, 0])
        temp1 = xp.where(s.fnorm > 0, jp_norm / safe_fnorm, zero)
        temp2 = xp.where(s.fnorm > 0, xp.sqrt(alpha) * pnorm / safe_fnorm, zero)
        prered = temp1 * temp1 + 2 * temp2 * temp2
        dirder = -(temp1 * temp1 + temp2 * temp2)
        ratio = xp.where(
            prered != 0, actred / xp.where(prered != 0, prered, xp.ones_like(prered)), zero
        )
        denominator = dirder + 0.5 * actred
        shrink = xp.where(
            actred >= 0,
            zero + 0.5,
            xp.where(
                denominator != 0,
                0.5 * dirder / xp.where(denominator != 0, denominator, xp.ones_like(denominator)),
                zero + 0.1,
            ),
        )
        shrink = xp.where((0.1 * fnorm_trial >= s.fnorm) | (shrink < 0.1), zero + 0.1, shrink)
        low_ratio = ratio <= 0.25
        grow = ~low_ratio & ((alpha == 0) | (ratio >= 0.75))
        new_delta = xp.where(
            low_ratio, shrink * xp.minimum(delta, pnorm / 0.1), xp.where(grow, pnorm / 0.5, delta)
        )
        new_alpha = xp.where(low_ratio, alpha / shrink, xp.where(grow, 0.5 * alpha, alpha))
        accepted = running & ~gtol_met & (ratio >= 1e-4)
        x_new = xp.where(accepted[:, None], x_trial, s.x)
        f_new = xp.where(accepted[:, None], f_trial, s.f)
        fnorm_new = xp.where(accepted, fnorm_trial, s.fnorm)
        xnorm = xp.where(accepted, norm(diag * x_new), s.xnorm)
        nfev = s.nfev + xp.astype(running & ~gtol_met, xp.int32)
        ftol_met = (xp.abs(actred) <= ftol) & (prered <= ftol) & (0.5 * ratio <= 1)
        xtol_met = new_delta <= xtol * xnorm

        def code(value: int) -> Array:
            return xp.full((B,), value, dtype=xp.int32, device=dev)

        status = code(_RUNNING)
        for condition_met, value in (  # lowest priority first: later tests override
            (fnorm_new == 0, 2),
            (new_delta <= eps * xnorm, 3),
            ((xp.abs(actred) <= eps) & (prered <= eps) & (0.5 * ratio <= 1), 2),
            (nfev >= max_nfev, 0),
            (xtol_met, 3),
            (ftol_met, 2),
            (ftol_met & xtol_met, 4),
        ):
            status = xp.where(condition_met, code(value), status)
        status = xp.astype(status, xp.int32)
        step_status = xp.where(gtol_met, code(1), status)
        status = xp.where(running, step_status, s.status)
        still = status == _RUNNING
        refresh = accepted & still
        J_new = jacobian(x_new, f_new)
        J_new = xp.where(refresh[:, None, None], J_new, s.J)
        return _BatchState(
            x=x_new, f=f_new, J=J_new, fnorm=fnorm_new,
            diag=xp.where(running[:, None], diag, s.diag),
            delta=xp.where(running & ~gtol_met, new_delta, s.delta),
            alpha=xp.where(running & ~gtol_met, new_alpha, s.alpha),
            xnorm=xnorm, first=s.first & ~running, status=status,
            nfev=nfev + xp.astype(refresh, xp.int32) * jac_cost,
            n_iter=s.n_iter + xp.astype(accepted, xp.int32), data=s.data,
        )  # fmt: skip

    # with per-fit data in `args`, finished fits can leave the working set (eager backends)
    final = _xp.while_any(active, body, state, xp=xp, retire=bool(args))
    converged = final.status > 0
    fnorm = final.fnorm / scale[:, 0]
    # in the working dtype: inf where ½‖f‖² exceeds its range (the fit itself is unaffected)
    representable = fnorm <= math.sqrt(float(xp.finfo(dtype).max))
    small = xp.where(representable, fnorm, zero)
    cost = xp.where(representable, 0.5 * small * small, zero + math.inf)
    f, J = final.f / scale, final.J / scale[:, :, None]
    return BatchedLMResult(final.x, cost, f, J, final.n_iter, final.nfev, converged, final.status)


def _scaled_decomposition(
    J: Array, diag: Array, g: Array, f: Array, *, xp: Namespace, batched: bool = False
) -> tuple[Array, Array, Array]:
    """Singular values ``s``, right vectors ``Vt`` and ``Uᵀf`` of every ``J·D⁻¹``.

    Well-conditioned fits (cond ≤ eps^-1/4, about 8·10³ in float64) take the
    eigendecomposition of the small ``n × n`` Gram matrix — a few times cheaper
    than an ``m × n`` SVD, and squaring the condition number then costs at most
    ~sqrt(eps) relative accuracy in the *step*, never in the converged point,
    which the gradient ``Jᵀf`` (computed directly) decides.  The others get the
    SVD, as in the single solver.  With `batched` (many fits, the batched solver)
    the Gram matrices go through :func:`_batched_eigh`; the single solver's one
    matrix takes the library's ``eigh``.  The SVDs run in chunks of at most
    ``_DECOMPOSITION_CHUNK`` fits.
    """
    gram = (xp.linalg.matrix_transpose(J) @ J) / (diag[:, :, None] * diag[:, None, :])
    eigenvalues, W = _batched_eigh(gram, xp=xp) if batched else xp.linalg.eigh(gram)  # ascending
    sv = xp.sqrt(xp.maximum(xp.flip(eigenvalues, axis=1), xp.zeros_like(eigenvalues)))
    V = xp.flip(W, axis=2)
    Vt = xp.linalg.matrix_transpose(V)
    scaled_g = ((g / diag)[:, None, :] @ V)[:, 0, :]
    uf = xp.where(sv > 0, scaled_g / xp.where(sv > 0, sv, xp.ones_like(sv)), xp.zeros_like(sv))
    eps = float(xp.finfo(J.dtype).eps)
    ill = eigenvalues[:, 0] < math.sqrt(eps) * eigenvalues[:, -1]

    def svd(J: Array, diag: Array, f: Array) -> tuple[Array, Array, Array]:
        U, sv, Vt = xp.linalg.svd(J / diag[:, None, :], full_matrices=False)
        return sv, Vt, (f[:, None, :] @ U)[:, 0, :]

    def by_svd(J: Array, diag: Array, f: Array) -> tuple[Array, ...]:
        return _in_chunks(svd, (J, diag, f), xp=xp)

    return _xp.replace_rows(ill, by_svd, (J, diag, f), (sv, Vt, uf), xp=xp)


#: Largest matrix order decomposed by :func:`_jacobi_eigh` rather than the library's
#: ``eigh``.  On CPUs (NumPy, PyTorch; 10⁴-10⁵ matrices) Jacobi is 1.5-2.5x faster for
#: n ≤ 3 and 1.0-1.4x slower at n = 4; n = 4 stays on it so that GPU batches of the
#: common small models avoid vendor batched eigensolvers (their per-matrix workspace).
#: From n = 5 the O(n³) elementwise operations per sweep make the library faster.
_JACOBI_MAX_N = 4
#: Cap on Jacobi sweeps; the cyclic method converges quadratically (≤ 6 sweeps to
#: rounding for n ≤ 4), so the cap only stops rows that cannot converge (inf/NaN).
_JACOBI_MAX_SWEEPS = 12
#: Most matrices per call of a library batched decomposition (``eigh`` of n > 4, the
#: SVD fallback).  Vendor batched eigensolvers size their workspace per matrix —
#: half a megabyte for a 3 × 3 has been seen, 0.5 TB for a million fits — so a
#: batch is decomposed in chunks of this many and the results concatenated.
_DECOMPOSITION_CHUNK = 2**14


def _in_chunks(
    function: Callable[..., tuple[Array, ...]], arrays: tuple[Array, ...], *, xp: Namespace
) -> tuple[Array, ...]:
    """Return ``function(*arrays)`` computed on at most ``_DECOMPOSITION_CHUNK`` rows at a time.

    All arrays have the batch axis first; the rows of the outputs are concatenated
    in order.  A batch no larger than one chunk is passed on whole.
    """
    rows, size = arrays[0].shape[0], _DECOMPOSITION_CHUNK
    if rows <= size:
        return tuple(function(*arrays))
    parts = [
        tuple(function(*(a[start : min(start + size, rows), ...] for a in arrays)))
        for start in range(0, rows, size)
    ]
    return tuple(xp.concat(list(pieces), axis=0) for pieces in zip(*parts, strict=True))


def _batched_eigh(A: Array, *, xp: Namespace) -> tuple[Array, Array]:
    """``eigh`` of a stack ``(B, n, n)`` of symmetric matrices: ascending eigenvalues, vectors.

    Small matrices (n ≤ ``_JACOBI_MAX_N``) by :func:`_jacobi_eigh`, which needs no
    vendor batched eigensolver and no workspace beyond its ``(B,)`` entries; larger
    ones by the library's ``eigh`` in chunks of ``_DECOMPOSITION_CHUNK`` matrices.
    """
    if A.shape[-1] <= _JACOBI_MAX_N:
        return _jacobi_eigh(A, xp=xp)
    return _in_chunks(lambda S: tuple(xp.linalg.eigh(S)), (A,), xp=xp)


def _jacobi_eigh(A: Array, *, xp: Namespace) -> tuple[Array, Array]:
    """Cyclic Jacobi eigendecomposition of every small symmetric matrix of ``A`` ``(B, n, n)``.

    Returns the eigenvalues in ascending order ``(B, n)`` and the orthonormal
    eigenvectors as columns ``(B, n, n)``, like ``eigh``; only the upper triangle
    of each matrix is read.  The matrix is held entry by entry as ``(B,)`` arrays
    and the vectors column by column as ``(n, B)`` arrays (the batch innermost), so
    a rotation is some thirty elementwise operations over the batch (fused under
    ``jax.jit``).
    Sweeps of rotations that zero each off-diagonal entry in turn (Rutishauser's
    stable angle, |t| ≤ 1) run until ``Σ_{p<q} a_pq² ≤ eps² Σ_p a_pp²`` in every
    matrix; a matrix that has converged is left untouched by the later sweeps
    (its rotations are the identity), so each matrix's result does not depend on
    the others in the batch.  The error is that of ``eigh``, a few eps·‖A‖
    (Golub & Van Loan, *Matrix Computations*, §8.5).
    """
    n = A.shape[-1]
    finfo = xp.finfo(A.dtype)
    eps, tiny = float(finfo.eps), float(finfo.smallest_normal)
    pairs = [(p, q) for p in range(n) for q in range(p + 1, n)]
    triangle = [(i, j) for i in range(n) for j in range(i, n)]
    zero = xp.zeros_like(A[:, 0, 0])
    one, floor = xp.ones_like(zero), zero + tiny

    def unconverged(a: dict[tuple[int, int], Array]) -> Array:
        off = sum((a[pq] * a[pq] for pq in pairs), start=zero)
        scale = sum((a[i, i] * a[i, i] for i in range(n)), start=zero)
        return off > (eps * eps) * scale

    def unpack(state: tuple[Array, ...]) -> tuple[dict[tuple[int, int], Array], list[Array]]:
        entries = state[2 : 2 + len(triangle)]
        return dict(zip(triangle, entries, strict=True)), list(state[2 + len(triangle) :])

    def sweep(state: tuple[Array, ...]) -> tuple[Array, ...]:
        active, count = state[0], state[1]
        a, v = unpack(state)
        for p, q in pairs:
            apq, app, aqq = a[p, q], a[p, p], a[q, q]
            tau = aqq - app
            twice = 2 * apq
            # tan of the angle that zeroes a_pq (0 when a_pq = 0: den > 0 unless both are 0);
            # t = 0 in the converged matrices, whose entries then stay exactly as they are
            den = xp.maximum(xp.abs(tau) + xp.hypot(tau, twice), floor)
            t = xp.where(active, xp.where(tau >= 0, twice, -twice) / den, zero)
            c = 1 / xp.hypot(one, t)
            s = t * c
            a[p, p], a[q, q] = app - t * apq, aqq + t * apq
            a[p, q] = xp.where(active, zero, apq)
            for r in range(n):
                if r not in (p, q):
                    rp, rq = (min(r, p), max(r, p)), (min(r, q), max(r, q))
                    arp, arq = a[rp], a[rq]
                    a[rp], a[rq] = c * arp - s * arq, s * arp + c * arq
            v[p], v[q] = c * v[p] - s * v[q], s * v[p] + c * v[q]
        return (active & unconverged(a), count + 1, *(a[ij] for ij in triangle), *v)

    a0 = {(i, j): A[:, i, j] for i, j in triangle}
    identity = xp.eye(n, dtype=A.dtype, device=device(A))
    columns = [identity[:, j : j + 1] + zero for j in range(n)]  # (n, B): the batch innermost
    state = (
        unconverged(a0),
        xp.asarray(0, dtype=xp.int32, device=device(A)),
        *(a0[ij] for ij in triangle),
        *columns,
    )
    state = _xp.while_loop(
        lambda s: xp.any(s[0]) & (s[1] < _JACOBI_MAX_SWEEPS), sweep, state, xp=xp
    )
    a, v = unpack(state)
    w = [a[i, i] for i in range(n)]
    for k in range(n - 1):  # sort ascending: a bubble-sort network of masked swaps
        for j in range(n - 1 - k):
            swap = w[j] > w[j + 1]
            w[j], w[j + 1] = xp.where(swap, w[j + 1], w[j]), xp.where(swap, w[j], w[j + 1])
            v[j], v[j + 1] = xp.where(swap, v[j + 1], v[j]), xp.where(swap, v[j], v[j + 1])
    return xp.stack(w, axis=1), xp.permute_dims(xp.stack(v, axis=1), (2, 0, 1))


def _batched_lm_parameter(
    s: Array, uf: Array, delta: Array, alpha: Array, cutoff_scale: float, *, xp: Namespace
) -> Array:
    """:func:`_trust_region_parameter` for every fit at once: 10 masked Newton steps."""
    zero = xp.zeros_like(delta)
    delta = xp.where(delta > 0, delta, xp.ones_like(delta))  # finished fits: any positive radius
    suf = s * uf
    full_rank = s[:, -1] > cutoff_scale * s[:, 0]
    safe_s = xp.where(s > 0, s, xp.ones_like(s))
    gn_norm = xp.linalg.vector_norm(xp.where(s > 0, uf / safe_s, xp.zeros_like(uf)), axis=1)
    gn_ok = full_rank & (gn_norm <= 1.1 * delta)

    def phi(a: Array) -> tuple[Array, Array]:
        denominator = s * s + a[:, None]
        denominator = xp.where(denominator > 0, denominator, xp.ones_like(denominator))
        terms = suf / denominator
        q_norm = xp.linalg.vector_norm(terms, axis=1)
        safe_q = xp.where(q_norm > 0, q_norm, xp.ones_like(q_norm))
        slope = -xp.sum(suf * suf / denominator**3, axis=1) / safe_q
        return xp.where(q_norm > 0, q_norm - delta, -delta), xp.where(q_norm > 0, slope, zero)

    value0, slope0 = phi(zero)
    safe_slope0 = xp.where(slope0 != 0, slope0, xp.ones_like(slope0))
    lower = xp.where(full_rank & (slope0 != 0), -value0 / safe_slope0, zero)
    upper = xp.linalg.vector_norm(suf, axis=1) / delta
    restart = xp.maximum(0.001 * upper, xp.sqrt(xp.maximum(lower * upper, zero)))
    a = xp.where((alpha >= lower) & (alpha <= upper) & (alpha > 0), alpha, restart)
    done = gn_ok | (upper == 0)
    for _ in range(10):
        if not _xp.is_traced(done) and bool(xp.all(done)):  # eager: stop when every fit has
            break
        restart = xp.maximum(0.001 * upper, xp.sqrt(xp.maximum(lower * upper, zero)))
        a = xp.where(~done & ((a <= 0) | (a < lower) | (a > upper)), restart, a)
        value, slope = phi(a)
        done = done | (xp.abs(value) <= 0.1 * delta) | (slope == 0)
        upper = xp.where(~done & (value < 0), a, upper)
        safe_slope = xp.where(slope != 0, slope, xp.ones_like(slope))
        step = value / safe_slope
        lower = xp.where(~done & (value > 0), xp.maximum(lower, a), lower)
        lower = xp.where(~done, xp.maximum(lower, a - step), lower)
        a = xp.where(done, a, xp.maximum(lower, a - (value + delta) * step / delta))
    return xp.where(gn_ok | (upper == 0), zero, xp.maximum(a, zero))
