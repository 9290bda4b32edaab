"""Course 2 — least squares: linear regression and Levenberg–Marquardt.

`levenberg_marquardt` (one fit) and `levenberg_marquardt_batched` (B fits) are
the same kernel, :mod:`m4ml_xp._lm` — MINPACK's ``lmder``/``lmdif`` (Moré 1978)
with ``scipy.optimize.least_squares(method="lm")``'s tolerances and status
codes — run on a batch of B fits; one fit is B = 1.  This module checks the
caller's arguments and shapes the results.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

from m4ml_xp import _checks, _lm, _lm_linalg, _xp
from m4ml_xp._lm import MESSAGES
from m4ml_xp.errors import RankWarning, report_non_convergence, warn

Array = Any
Namespace = Any

__all__ = [
    "MESSAGES",
    "BatchedLMResult",
    "CurveFit",
    "LMResult",
    "LinearFit",
    "curve_fit",
    "levenberg_marquardt",
    "levenberg_marquardt_batched",
    "linear_regression",
]


class LMResult(NamedTuple):
    """Result of :func:`levenberg_marquardt`, with ``least_squares``' field meanings.

    ``cost`` is ``0.5·‖fun‖²`` as a Python float (float64 whatever the working
    dtype): ``inf`` where that overflows float64 (residuals beyond ~1e154) and
    0 where it underflows, while ``x``, ``fun`` and ``jac`` are right at any
    finite magnitude; ``status`` 1–4 mean converged (gtol, ftol, xtol, ftol and
    xtol), 0 that ``max_nfev`` was reached; ``message`` says which.
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
    X, y = _xp.evaluate(X, y)  # Dask: read once, then checked and solved in memory
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
        warn(f"linear_regression: the centred `X` has rank {rank} < {d} columns (collinear "
             "predictors or too few samples); returning the minimum-norm solution", RankWarning)  # fmt: skip
    intercept = y_mean - x_mean @ coef
    residuals = Y2 - (X2 @ coef + intercept)
    residual_ss = xp.sum(residuals * residuals, axis=0)
    if X.ndim == 1:
        coef = coef[0, ...]
    if y.ndim == 1:
        coef, intercept, residual_ss = coef[..., 0], intercept[0], residual_ss[0]
    return LinearFit(coef, intercept, residual_ss, int(rank))


# --------------------------------------------------------------------------- Levenberg–Marquardt
@_xp.full_precision
def levenberg_marquardt(
    residual: Callable[[Array], Array],
    x0: Array,
    *,
    jac: Callable[[Array], Array] | str | None = None,
    ftol: float | None = None,
    xtol: float | None = None,
    gtol: float | None = None,
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
        namespace: forward (``"2-point"``, MINPACK ``lmdif``'s choice: n
        evaluations, an O(sqrt(eps)) error that shifts the converged point on
        ill-conditioned problems), central (``"3-point"``: 2n evaluations, error
        ~eps^(2/3)), or by default (None) forward differences far from the
        solution and central ones once close to it (the tests below met at
        sqrt(eps), forward differences' precision).
    ftol, xtol, gtol : float, optional
        ``least_squares``' meanings: relative reduction of the cost, relative
        change of the (scaled) parameters, and the cosine between the residual
        and the Jacobian's columns; each ``>= 0``.  Given any of them, the fit
        stops as SciPy's does when one is met (the others default to 1e-8).
        Given none (the default), the fit runs to SciPy's 1e-8 tests and then
        *polishes*: it keeps taking steps while they still lower the cost or
        move the parameters beyond rounding (until a step is rejected or the
        same tests hold at eps, predicted for the next step before evaluating
        it, or met by the last), and reports the 1e-8 test's status.  That
        reaches NIST StRD's certified values (≥ 6 digits on all 27 problems
        from both starts) for a few evaluations more, where SciPy's defaults
        stop some 1e-7 short on flat valleys.
    max_nfev : int, optional
        Most residual evaluations, those of the differences included; default
        ``k = max(1000, 100·n)`` iterations' worth: ``k`` with an exact Jacobian
        (`jac` or autodiff), ``k·(n+1)`` with forward and ``k·(2n+1)`` with
        central (or the default) differences.  SciPy's budget, 100·n iterations,
        stops NIST's MGH17 and Bennett5 from their first starts in their curved
        valleys, some 750 iterations before they converge.
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
    residual there is not finite.  On Dask the solver's steps run on the chunks'
    library; `residual` and `jac` get Dask arrays, each result computed once.

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
    opts = _lm.options(bounds=bounds, jac=jac, ftol=ftol, xtol=xtol, gtol=gtol,
                       max_nfev=max_nfev, diff_step=diff_step, factor=factor)  # fmt: skip
    xp = _checks.namespace(x0=x0)
    x = _checks.check_real_array(x0, "x0", xp=xp, ndim=1, small=True)
    _checks.check_callable(residual, "residual", "returning the residual array")
    # JAX: one compiled kernel per residual program (and options), reused by later calls
    # and by closures of the same program over other data
    raw = _xp.compile_per_program(
        _one_fit, (residual, opts.jac), (opts._replace(jac=None), xp), (x,), xp=xp
    )
    status, n_iter, nfev = _xp.to_host(xp.stack([raw.status, raw.n_iter, raw.nfev])[:, 0])
    if status < -1:  # -2, -3: not finite at the start
        what = "`residual` is" if status == -2 else "`jac` returns values that are"
        raise ValueError(f"{what} not finite at `x0`; start where the model can be evaluated")
    if status <= 0:
        report_non_convergence(f"levenberg_marquardt: {MESSAGES[status]} ({nfev} evaluations)",
                               raise_on_failure=raise_on_failure)  # fmt: skip
    fnorm, scale = _xp.to_host(xp.stack([raw.fnorm[0], raw.scale[0, 0]]))
    fnorm = fnorm / scale  # a float64 on the host: 1e160 residuals' cost overflows it to inf
    return LMResult(raw.x[0, :], 0.5 * fnorm * fnorm, raw.f[0, :] / scale, raw.J[0, ...] / scale,
                    n_iter, nfev, status > 0, status, MESSAGES[status])  # fmt: skip


def _one_fit(
    residual: Callable[[Array], Array], jac: Any, opts: _lm.Options, xp: Namespace, x: Array
) -> _lm.State:
    return _lm.solve(residual, x[None, :], (), opts._replace(jac=jac), xp=xp, one=True)


def _batched_fit(residual: Callable[..., Array], jac: Any, opts: _lm.Options, xp: Namespace,
                 x: Array, *args: Array) -> tuple[Array, ...]:  # fmt: skip
    return _lm.fit_fields(residual, opts._replace(jac=jac), xp, x, *args)


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
    lazy = _xp.is_chunked(p0)
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
    solver = levenberg_marquardt_batched if batched else levenberg_marquardt
    known = set(inspect.signature(solver).parameters) - {"residual", "x0", "x0_batch", "args"}
    if unknown := sorted(set(options) - known):  # the solver's TypeError would name itself
        msg = f"curve_fit got an unexpected option {unknown[0]!r}; its options are {', '.join(sorted(known))}"
        raise TypeError(msg)
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
    cov, stderr, estimated = _lm_linalg.covariance(result.jac, result.fun, absolute_sigma, xp=xp)
    _lm_linalg.warn_if_not_estimated(estimated, xp=xp)
    return CurveFit(result.x, stderr, cov, result)


def _model_output(out: Any, p: Array, y: Array, *, xp: Namespace) -> Array:
    """Return what `model` returned at `p`, checked: an array of `p`'s library shaped like `y`."""
    out = _checks.returned_array(out, "model", p, xp=xp, castable=("integral",))
    if tuple(out.shape) != tuple(y.shape):
        msg = (
            f"`model` must return an array shaped like `y` {tuple(y.shape)}; got {tuple(out.shape)}"
        )
        raise ValueError(msg)
    return out


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
    x = x if per_fit_x else _xp.materialise(x)  # shared by every chunk
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

    def errors(J: Array, f: Array) -> tuple[Array, Array, Array]:
        return _lm_linalg.covariance(J, f, absolute_sigma, xp=_xp.array_namespace(J))

    n, dtype = p0.shape[1], result.jac.dtype
    outputs = [((n, n), dtype), ((n,), dtype), ((), xp.bool)]
    cov, stderr, estimated = _xp.map_batch(errors, [result.jac, result.fun], outputs)
    _lm_linalg.warn_if_not_estimated(estimated, xp=xp)
    return CurveFit(result.x, stderr, cov, result)


# --------------------------------------------------------------------------- batched Levenberg–Marquardt
class BatchedLMResult(NamedTuple):
    """Result of :func:`levenberg_marquardt_batched`: every field has the batch axis first.

    ``cost`` is in the working dtype: ``inf`` where ``0.5·‖fun‖²`` exceeds its
    range (residuals beyond ~1e154 in float64, ~1e19 in float32), the fit
    itself being right at any finite magnitude (each fit's residual is scaled by
    a power of two at its start, as in :func:`levenberg_marquardt`).

    ``status`` as :class:`LMResult` per fit, plus ``-2`` (``-3``): the residual (`jac`)
    is not finite at that fit's start (the fit is left there; the others proceed);
    ``message`` (a property) says each in words.
    """

    x: Array
    cost: Array
    fun: Array
    jac: Array
    n_iter: Array
    nfev: Array
    converged: Array
    status: Array

    @property
    def message(self) -> list[str]:
        """Each fit's status in words (one read of ``status``; Dask computes it)."""
        return [MESSAGES[code] for code in _xp.to_host(self.status)]


@_xp.full_precision
def levenberg_marquardt_batched(
    residual: Callable[..., Array],
    x0_batch: Array,
    *,
    args: tuple[Array, ...] = (),
    jac: Callable[..., Array] | str | None = None,
    ftol: float | None = None,
    xtol: float | None = None,
    gtol: float | None = None,
    max_nfev: int | None = None,
    diff_step: float | None = None,
    factor: float = 1.0,
    bounds: Any = None,
) -> BatchedLMResult:
    """B independent Levenberg–Marquardt fits in one vectorised call.

    The kernel of :func:`levenberg_marquardt` — per-fit scaling, trust
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
        ``jac(b, *args) -> (B, m, n)``, or differences (as for :func:`levenberg_marquardt`).
    ftol, xtol, gtol, max_nfev, diff_step, factor, bounds
        As for :func:`levenberg_marquardt`, applied to each fit.

    Returns
    -------
    BatchedLMResult
        ``x`` (B, n), ``cost``, ``n_iter``, ``nfev``, ``converged``, ``status``
        (B,), ``fun`` (B, m), ``jac`` (B, m, n); ``message`` per fit.

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
    opts = _lm.options(bounds=bounds, jac=jac, ftol=ftol, xtol=xtol, gtol=gtol,
                       max_nfev=max_nfev, diff_step=diff_step, factor=factor)  # fmt: skip
    if not isinstance(args, tuple | list):
        msg = f"`args` must be a tuple of arrays; got {type(args).__name__}"
        raise TypeError(msg)
    names = {f"args[{i}]": a for i, a in enumerate(args)}
    xp = _checks.namespace(x0_batch=x0_batch, **names)
    chunked = _xp.is_chunked(x0_batch)
    x = _checks.check_real_array(x0_batch, "x0_batch", xp=xp, ndim=2, small=not chunked)
    _checks.check_callable(residual, "residual", "residual(b, *args) -> (B, m)")
    B = x.shape[0]
    for name, a in names.items():
        if a.ndim < 1 or a.shape[0] != B:
            msg = f"`{name}` must have the batch axis first ({B} rows, like `x0_batch`); got shape {tuple(a.shape)}"
            raise ValueError(msg)
    if chunked:  # solved chunk by chunk, each chunk's fits seeing its library's blocks
        residual = _chunks_only(residual, "residual")
        opts = opts._replace(jac=_chunks_only(opts.jac, "jac")) if callable(opts.jac) else opts

    def solve(block: Array, *blocks: Array) -> tuple[Array, ...]:  # JAX: compiled per program
        ns = xp if block is x else _xp.array_namespace(block)
        functions, static = (residual, opts.jac), (opts._replace(jac=None), ns)
        return _xp.compile_per_program(_batched_fit, functions, static, (block, *blocks), xp=ns)

    result = BatchedLMResult(*_xp.map_batch(solve, [x, *args]))
    lazy = _xp.is_lazy(result.converged)  # Dask: read `converged` once computed
    failed = 0 if lazy else int(xp.sum(xp.astype(~result.converged, xp.int32)))
    if failed:
        message = f"{failed} of {B} fits stopped before converging (their `status` says why)"
        report_non_convergence(f"levenberg_marquardt_batched: {message}", raise_on_failure=False)
    return result


def _chunks_only(function: Callable[..., Array], name: str) -> Callable[..., Array]:
    """Wrap a user function for chunked fits: refuse the chunked arrays of a closure."""

    def on_chunks(*arrays: Array) -> Array:
        out = function(*arrays)
        if _xp.is_chunked(out):
            msg = (
                f"the fits are solved chunk by chunk: `{name}` got chunks of `x0_batch` and "
                "`args` but returned a chunked (Dask) array — pass per-fit data through `args`"
            )
            raise TypeError(msg)
        return out

    return on_chunks
