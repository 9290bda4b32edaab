"""The Levenberg–Marquardt kernel behind :mod:`m4ml_xp.lsq`: one solver for one fit and many.

MINPACK's ``lmder``/``lmdif`` (Moré 1978) on a batch of B independent fits (one
fit is B = 1), every rule written once as a small named part: :func:`residual_scale`,
:func:`jacobian_provider`, ``decompose`` (:mod:`m4ml_xp._lm_linalg`),
:func:`lm_parameter`, :func:`radius_update`, :func:`termination`, composed by
:func:`solve` (a ``lax.while_loop`` on JAX).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

from m4ml_xp import _checks, _scaling, _xp
from m4ml_xp._lm_linalg import decompose
from m4ml_xp._xp import device

Array = Any
Namespace = Any

#: scipy.optimize.least_squares's status messages, which `status` shares (-2, -3: the batched
#: solver's fit whose residual, or user's `jac`, is not finite at its start).
MESSAGES = {
    -3: "The Jacobian `jac` returned is not finite at the start.",
    -2: "The residual is not finite at the start.",
    -1: "Improper input parameters.",
    0: "The maximum number of function evaluations is exceeded.",
    1: "`gtol` termination condition is satisfied.",
    2: "`ftol` termination condition is satisfied.",
    3: "`xtol` termination condition is satisfied.",
    4: "Both `ftol` and `xtol` termination conditions are satisfied.",
}
RUNNING = -10  # status of a fit still iterating
#: The tolerances when none is given: SciPy's, followed by the rounding-level polish.
DEFAULT_TOLERANCE = 1e-8


class Options(NamedTuple):
    jac: Any
    ftol: float
    xtol: float
    gtol: float
    polish: bool
    max_nfev: int | None
    diff_step: float | None
    factor: float


def options(
    *,
    bounds: Any,
    jac: Any,
    ftol: float | None,
    xtol: float | None,
    gtol: float | None,
    max_nfev: int | None,
    diff_step: float | None,
    factor: float,
) -> Options:
    """Validate the options every entry point shares; polish (:func:`solve`) if no tolerance is given."""
    if bounds is not None:
        msg = (
            "`bounds` are not supported by Levenberg–Marquardt; use a trust-region-reflective "
            "solver (scipy.optimize.least_squares(method='trf')) or reparametrise"
        )
        raise ValueError(msg)
    polish = ftol is None and xtol is None and gtol is None
    tolerances = [_checks.check_real(DEFAULT_TOLERANCE if value is None else value, name, low=0.0)
                  for value, name in ((ftol, "ftol"), (xtol, "xtol"), (gtol, "gtol"))]  # fmt: skip
    factor = _checks.check_real(factor, "factor", low=0.0, low_open=True)
    if diff_step is not None:
        diff_step = _checks.check_real(diff_step, "diff_step", low=0.0, low_open=True)
    if not callable(jac):
        _checks.check_choice(jac, "jac", (None, "2-point", "3-point"))
    return Options(jac, *tolerances, polish, max_nfev, diff_step, factor)


#: The default budget in iterations (at least; SciPy's 100·n where that is more).
#: SciPy's 100·n stops NIST's MGH17 and Bennett5 in their curved valleys from their
#: first starts (~750 iterations to converge); lmfit's default, 2000·(n+1)
#: evaluations with forward differences, is about 2000.
BUDGET_ITERATIONS = 1000


def max_nfev_for(max_nfev: int | None, jac: Any, n: int) -> int:
    """Return the budget: ``max(1000, 100·n)`` iterations, in evaluations (differences cost n or 2n)."""
    if max_nfev is None:
        exact = callable(jac) or jac == "autodiff"
        per_iteration = 1 if exact else n + 1 if jac == "2-point" else 2 * n + 1
        max_nfev = max(BUDGET_ITERATIONS, 100 * n) * per_iteration
    return _checks.check_int(max_nfev, "max_nfev", low=1)


def residual_scale(f: Array, *, xp: Namespace, axis: int | tuple[int, ...] | None = None) -> Array:
    """Return the power of two bringing ``max|f|`` (over `axis`) to about 1 (LAPACK's xLASCL).

    Exact, and every test of the solver is invariant under it: sums of squares
    of residuals of 1e160 or 1e-200 neither overflow nor underflow.
    """
    largest = _scaling.max_abs(f, xp=xp, axis=axis)
    return _scaling.power_of_two_scale(xp.where(largest > 0, largest, 1.0), xp=xp)


# --------------------------------------------------------------------------- Jacobians
def jacobian_provider(
    jac: Any,
    fun_of: Callable[[tuple[Array, ...]], Callable[[Array], Array]],
    n: int,
    *,
    xp: Namespace,
    diff_step: float | None,
    subsets: bool,
    analytic_of: Callable[[Array, tuple[Array, ...], int], Array],
) -> Callable[[Array, Array, tuple[Array, ...], Array], tuple[Array, Array]]:
    """Return ``J(x, f, data, close) -> (J, evaluations per fit)`` for a batch ``(B, n)``.

    `jac`: a callable (called, checked and scaled like the residual by
    ``analytic_of(x, data, m)``), ``"autodiff"`` (JAX, PyTorch: exact, like a callable no
    evaluations counted), or differences of ``fun_of(data)``: ``"2-point"``,
    ``"3-point"``, or ``None``: forward (n evaluations) for the fits not yet
    `close`, central (2n) for the others — forward differences' O(sqrt(eps))
    error biases Gauss–Newton's fixed point by as much, which costs
    ill-conditioned problems (Lanczos) certified digits.
    """
    if jac == "autodiff":

        def exact(x: Array, f: Array, data: tuple[Array, ...], close: Array) -> Array:
            J = _xp.autodiff_batch_jacobian(fun_of(data), x)
            return J, xp.zeros_like(close, dtype=xp.int32)

        return exact
    if callable(jac):

        def analytic(x: Array, f: Array, data: tuple[Array, ...], close: Array) -> Array:
            return analytic_of(x, data, f.shape[-1]), xp.zeros_like(close, dtype=xp.int32)

        return analytic

    def quotients(central: bool) -> Callable[..., tuple[Array]]:
        def J(x: Array, f: Array, *data: Array) -> tuple[Array]:
            eps = float(xp.finfo(x.dtype).eps)
            relative = diff_step if diff_step is not None else eps ** (1 / 3 if central else 1 / 2)
            h = relative * xp.where(x == 0, 1.0, xp.abs(x))
            h = (x + h) - x  # exactly representable steps
            eye, fun, columns = xp.eye(n, dtype=x.dtype, device=device(x)), fun_of(data), []
            for j in range(n):
                e = eye[j, :] * h[:, j : j + 1]
                low = fun(x - e) if central else f
                columns.append((fun(x + e) - low) / ((2 if central else 1) * h[:, j : j + 1]))
            return (xp.stack(columns, axis=-1),)

        return J

    def differences(x: Array, f: Array, data: tuple[Array, ...], close: Array) -> Array:
        if jac is not None:  # one kind throughout
            close = xp.full_like(close, jac == "3-point")
        elif not subsets:  # a closure's fits cannot be split: all central once any is close
            close = close | xp.any(close)
        zeros = xp.zeros((*f.shape, n), dtype=x.dtype, device=device(x))
        (J,) = rows_where(~close, quotients(False), (x, f, *data), (zeros,), xp=xp, subsets=subsets)
        (J,) = rows_where(close, quotients(True), (x, f, *data), (J,), xp=xp, subsets=subsets)
        return J, n + n * xp.astype(close, xp.int32)

    return differences


#: The fraction of a batch from which a user function runs on every row (the rest
#: discarded by ``where``) rather than on the needed rows gathered and scattered back:
#: past it the gathers cost more than the few rows computed in vain.
DENSE_FROM = 7 / 8


def rows_where(
    mask: Array,
    function: Callable[..., tuple[Array, ...]],
    arrays: tuple[Array, ...],
    defaults: tuple[Array, ...],
    *,
    xp: Namespace,
    subsets: bool,
) -> tuple[Array, ...]:
    """``where(mask, function(*arrays), defaults)``; the masked rows alone computed if `subsets`."""
    dense_from = DENSE_FROM if subsets else 0.0  # a closure's rows cannot be taken apart
    return _xp.replace_rows(mask, function, arrays, defaults, xp=xp, dense_from=dense_from)


# --------------------------------------------------------------------------- the LM step
def lm_parameter(
    s: Array, uf: Array, delta: Array, alpha: Array, cutoff_scale: float, *, xp: Namespace
) -> Array:
    """Moré's LM parameter α for radius `delta`, from the SVD of every ``J·D⁻¹`` (MINPACK's lmpar).

    The scaled step is ``q(α) = −V (s·uf / (s² + α))``; α = 0 (Gauss–Newton) when
    that step fits within 1.1·delta, else at most 10 safeguarded Newton steps on
    ``φ(α) = ‖q(α)‖ − delta`` until ``|φ| ≤ 0.1·delta``, fit by fit (masked).
    """
    delta = xp.where(delta > 0, delta, 1.0)  # finished fits: any positive radius
    norm = functools.partial(_norm, xp=xp)
    suf = s * uf
    full_rank = s[:, -1] > cutoff_scale * s[:, 0]
    safe_s = xp.where(s > 0, s, 1.0)
    gn_norm = norm(xp.where(s > 0, uf / safe_s, 0.0))
    gn_ok = full_rank & (gn_norm <= 1.1 * delta)
    upper = norm(suf) / delta

    # s² + α floored where its square is subnormal (XLA rewrites q/den as suf/den²): 0/0 for
    # a zero column in float32; directions that small are beyond the rank cutoff anyway
    floor = 2 * math.sqrt(float(xp.finfo(s.dtype).smallest_normal))

    def phi(a: Array) -> tuple[Array, Array]:
        denominator = xp.maximum(s * s + a[:, None], floor)
        q = suf / denominator
        q_norm = norm(q)
        slope = -xp.vecdot(q, q / denominator) / xp.where(q_norm > 0, q_norm, 1.0)
        return xp.where(q_norm > 0, q_norm - delta, -delta), xp.where(q_norm > 0, slope, 0.0)

    done = gn_ok | (upper == 0)
    # eager CPU backends stop once every fit has; on a GPU each such read is a round trip
    early_exit = not _xp.is_traced(done) and _xp.check_interval(xp, device(done)) == 1
    if early_exit and bool(xp.all(done)):  # Gauss–Newton steps (or none) throughout
        return xp.zeros_like(delta)
    value0, slope0 = phi(xp.zeros_like(delta))
    lower = xp.where(full_rank & (slope0 != 0), -value0 / xp.where(slope0 != 0, slope0, 1.0), 0.0)

    def newton(carry: tuple[Array, Array, Array, Array]) -> tuple[Array, Array, Array, Array]:
        a, lower, upper, done = carry  # α: the last step's if within [lower, upper], else:
        restart = xp.maximum(0.001 * upper, xp.sqrt(xp.maximum(lower * upper, 0.0)))
        a = xp.where(~done & ((a <= 0) | (a < lower) | (a > upper)), restart, a)
        value, slope = phi(a)
        done = done | (xp.abs(value) <= 0.1 * delta) | (slope == 0)
        upper = xp.where(~done & (value < 0), a, upper)
        step = value / xp.where(slope != 0, slope, 1.0)
        lower = xp.where(~done & (value > 0), xp.maximum(lower, a), lower)
        lower = xp.where(~done, xp.maximum(lower, a - step), lower)
        a = xp.where(done, a, xp.maximum(lower, a - (value + delta) * step / delta))
        return a, lower, upper, done

    until = (lambda c: bool(xp.all(c[3]))) if early_exit else None
    a, _, upper, _ = _xp.repeat(newton, (alpha, lower, upper, done), 10, xp=xp, until=until)
    return xp.where(gn_ok | (upper == 0), 0.0, xp.maximum(a, 0.0))


def _safe_divide(a: Array, b: Array, fallback: Array, *, xp: Namespace) -> Array:
    return xp.where(b != 0, a / xp.where(b != 0, b, 1.0), fallback)


def radius_update(
    actred: Array, prered: Array, dirder: Array, ratio: Array, fnorm_trial: Array, fnorm: Array,
    delta: Array, pnorm: Array, alpha: Array, *, xp: Namespace,
) -> tuple[Array, Array]:  # fmt: skip
    """MINPACK's update of the trust radius and the LM parameter from the step's `ratio`.

    ratio ≤ 1/4: shrink (by a safeguarded factor in [0.1, 0.5]); ratio ≥ 3/4 or a
    Gauss–Newton step: twice the step's length.  Returns ``(delta, alpha)``.
    """
    shrink = _safe_divide(0.5 * dirder, dirder + 0.5 * actred, 0.1, xp=xp)
    shrink = xp.where(actred >= 0, 0.5, shrink)
    shrink = xp.where((0.1 * fnorm_trial >= fnorm) | (shrink < 0.1), 0.1, shrink)
    low = ratio <= 0.25
    grow = ~low & ((alpha == 0) | (ratio >= 0.75))
    new_delta = xp.where(grow, pnorm / 0.5, delta)
    new_delta = xp.where(low, shrink * xp.minimum(delta, pnorm / 0.1), new_delta)
    new_alpha = xp.where(low, alpha / shrink, xp.where(grow, 0.5 * alpha, alpha))
    return new_delta, new_alpha


def termination(
    *, actred: Array, prered: Array, ratio: Array, delta: Array, xnorm: Array, fnorm: Array,
    nfev: Array, max_nfev: int, ftol: float, xtol: float, eps: float, running: Array,
    xp: Namespace,
) -> tuple[Array, Array]:  # fmt: skip
    """MINPACK's status ladder after a step: ``(status, stalled)`` codes per fit, else `running`.

    ``status``: 4 ftol and xtol, 2 ftol, 3 xtol, 0 ``max_nfev`` reached.  ``stalled``:
    the ftol (2) and xtol (3) tests at rounding (eps), or a zero residual (2).
    """
    ftol_met = (xp.abs(actred) <= ftol) & (prered <= ftol) & (0.5 * ratio <= 1)
    xtol_met = delta <= xtol * xnorm
    rounding = (xp.abs(actred) <= eps) & (prered <= eps) & (0.5 * ratio <= 1)
    status, stalled = running, running  # the last test met takes priority
    for met, value in ((nfev >= max_nfev, 0), (xtol_met, 3), (ftol_met, 2), (ftol_met & xtol_met, 4)):  # fmt: skip
        status = xp.where(met, value, status)
    for met, value in ((fnorm == 0, 2), (delta <= eps * xnorm, 3), (rounding, 2)):
        stalled = xp.where(met, value, stalled)
    return status, stalled


# --------------------------------------------------------------------------- the loop
class State(NamedTuple):
    x: Array
    f: Array
    J: Array
    fnorm: Array
    diag: Array
    delta: Array
    alpha: Array
    xnorm: Array
    first: Array
    central: Array  # J is exact or central differences (close to the solution)
    status: Array
    pending: Array  # the status of the usual tests once met, while polishing
    nfev: Array
    n_iter: Array
    gram_scale: Array  # (B, 1, 1): JᵀJ is formed of J·gram_scale (sum_of_squares_scale)
    data: tuple[Array, ...]  # the fits' rows of `args`, then their residual scales (B, 1)

    @property
    def scale(self) -> Array:
        """The power of two ``(B, 1)`` that ``f``, ``J`` and ``fnorm`` are scaled by."""
        return self.data[-1]


def _norm(a: Array, *, xp: Namespace, axis: int = -1) -> Array:
    return xp.sqrt(xp.vecdot(a, a, axis=axis))  # one fused pass, no temporaries


def solve(
    residual: Callable[..., Array],
    x: Array,
    args: tuple[Array, ...],
    opts: Options,
    *,
    xp: Namespace,
    one: bool = False,
) -> State:
    """Run the fits of ``x`` (B, n): ``residual(b, *args) -> (B, m)``.

    With `one` (B = 1), `residual` and an analytic ``opts.jac`` are one fit's:
    ``(n,) -> (m,)`` and ``(m, n)``.

    Each accepted step refreshes the Jacobian; a fit stops when a usual test is
    met — or, when polishing (no tolerance given), goes on while its steps still
    change the cost or x beyond rounding: it stops on a rejected step, on the
    rounding tests, or before evaluating a step whose predicted reduction or
    length is at rounding, and reports the usual test's status.  That turns
    SciPy's 1e-8 stopping point, some 1e-7 short of the optimum on a flat valley,
    into the optimum to the precision the problem allows, for a few evaluations.
    """
    B, n = x.shape
    dtype, dev = x.dtype, device(x)
    eps = float(xp.finfo(dtype).eps)
    subsets = bool(args) or B == 1
    if not subsets and not _xp.is_traced(x):
        # a closure over every fit's data takes all B rows; with each working row's index
        # passed along, finished fits can still leave the working set (eager backends)
        residual = _on_every_row(residual, x, xp=xp)
        opts = opts._replace(jac=_on_every_row(opts.jac, x, xp=xp)) if callable(opts.jac) else opts
        args = (xp.arange(B, device=dev),)

    def called(function: Callable[..., Array], name: str, v: Array, data: tuple) -> Array:
        out = function(v[0, :]) if one else function(v, *data[:-1])
        out = _checks.returned_array(out, name, v, xp=xp, castable=("integral",))
        return out[None, ...] if one else out

    unit_scale = True  # the scales are 1 until known: then, if all are exactly 1, not applied

    def fun_of(data: tuple[Array, ...]) -> Callable[[Array], Array]:
        def fun(v: Array) -> Array:
            out = called(residual, "residual", v, data)
            if one and out.ndim != 2:
                msg = f"`residual` must return a 1-D array of residuals; it returned shape {tuple(out.shape[1:])}"
                raise ValueError(msg)
            if out.ndim != 2 or out.shape[0] != v.shape[0]:
                msg = f"`residual` must return a ({v.shape[0]}, m) array for ({v.shape[0]}, {n}) parameters; got {tuple(out.shape)}"
                raise ValueError(msg)
            out = out if out.dtype == dtype else xp.astype(out, dtype)
            return out if unit_scale else out * data[-1]

        return fun

    def analytic_of(v: Array, data: tuple[Array, ...], m: int) -> Array:
        J = called(opts.jac, "jac", v, data)
        if J.ndim != 3 or tuple(J.shape[1:]) != (m, n):
            expected, got = ((m, n), J.shape[1:]) if one else ((v.shape[0], m, n), J.shape)
            msg = (
                f"`jac` must return the {expected} Jacobian (rows are residuals); got {tuple(got)}"
            )
            raise ValueError(msg)
        J = J if J.dtype == dtype else xp.astype(J, dtype)
        return J if unit_scale else J * data[-1][:, :, None]

    f0 = fun_of((*args, xp.ones((B, 1), dtype=dtype, device=dev)))(x)
    m = f0.shape[1]
    if m < n:
        msg = f"`residual` must return at least as many residuals as parameters; got {m} residuals for {n} parameters"
        raise ValueError(msg)
    finite_start = xp.all(xp.isfinite(f0), axis=1)
    scale = residual_scale(f0, xp=xp, axis=1)  # (B, 1); 1 where not finite
    unit_scale = _scaling.is_one(scale, xp=xp)
    f0 = xp.where(finite_start[:, None], f0 * scale, 0.0)
    zero = xp.zeros((B,), dtype=dtype, device=dev)
    running = xp.full((B,), RUNNING, dtype=xp.int32, device=dev)
    data = (*args, scale)
    # jac=None: exact Jacobians where the backend differentiates, differences elsewhere
    # (and for residuals it cannot trace)
    for jac in ("autodiff", None) if opts.jac is None and _xp.can_autodiff(x) else (opts.jac,):
        jacobian = jacobian_provider(
            jac, fun_of, n, xp=xp, diff_step=opts.diff_step, subsets=subsets,
            analytic_of=analytic_of,
        )  # fmt: skip
        exact = xp.full((B,), jac is not None, dtype=xp.bool, device=dev)
        try:
            J0, cost0 = jacobian(x, f0, data, exact)
            break
        except Exception:
            if jac != "autodiff":
                raise
    max_nfev = max_nfev_for(opts.max_nfev, jac, n)
    # a user's `jac` is refused where not finite; differences' non-finite entries become 0
    start = xp.where(xp.all(xp.isfinite(J0), axis=(1, 2)) | (not callable(jac)), running, -3)
    J0 = xp.where(xp.isfinite(J0), J0, 0.0)
    # parameters of 1e-30 (float32) or 1e200 give J the scale that makes JᵀJ under- or
    # overflow (column norms 0 or inf: the gradient test met at the start)
    j_scale = _scaling.sum_of_squares_scale(J0, xp=xp, axis=(1, 2))
    unit_gram = _scaling.is_one(j_scale, xp=xp)  # the usual case: J·1 not formed
    col0 = _norm(J0 if unit_gram else J0 * j_scale, xp=xp, axis=-2)
    col0 = col0 if unit_gram else col0 / j_scale[:, :, 0]
    diag0 = xp.where(col0 > 0, col0, 1.0)
    xnorm0 = _norm(diag0 * x, xp=xp)
    state = State(
        x=x, f=f0, J=J0, fnorm=_norm(f0, xp=xp), diag=diag0,
        delta=xp.where(xnorm0 > 0, opts.factor * xnorm0, zero + opts.factor), alpha=zero,
        xnorm=xnorm0, first=xp.ones_like(exact), central=exact,
        status=xp.where(finite_start, start, -2),
        pending=running, nfev=1 + cost0, n_iter=xp.zeros_like(cost0), gram_scale=j_scale,
        data=data,
    )  # fmt: skip
    step = _step(fun_of, jacobian, opts, eps=eps, cutoff_scale=eps * max(m, n), xp=xp,
                 max_nfev=max_nfev, subsets=subsets, unit_gram=unit_gram)  # fmt: skip
    # with rows passed on (per-fit `args`, or a closure's row indices), finished fits can
    # leave the working set (eager backends)
    return _xp.while_any(lambda s: s.status == RUNNING, step, state, xp=xp, retire=bool(args))


def _on_every_row(
    function: Callable[..., Array], x: Array, *, xp: Namespace
) -> Callable[..., Array]:
    """Return ``f(v, rows)``: the rows `rows` (ascending) of a closure's ``function(all B rows)``.

    The rows not in `rows` are evaluated at `x`, the starting points, where the
    closure is known to run; their results are discarded.
    """
    B = x.shape[0]

    def on_rows(v: Array, rows: Array) -> Array:
        if v.shape[0] == B:
            return function(v)
        every = xp.arange(B, dtype=rows.dtype, device=device(rows))
        position = xp.minimum(xp.searchsorted(rows, every), rows.shape[0] - 1)
        working = xp.take(rows, position) == every
        out = function(_xp.fill_masked(working, v, x, xp=xp))
        rows_out = getattr(out, "ndim", 0) >= 1 and out.shape[0] == B
        return xp.take(out, rows, axis=0) if rows_out else out

    return on_rows


def fit_fields(
    residual: Callable[..., Array], opts: Options, xp: Namespace, x: Array, *args: Array
) -> tuple[Array, ...]:
    """Return the fields of ``lsq.BatchedLMResult`` for the fits of `x` (one chunk)."""
    raw = solve(residual, x, args, opts, xp=xp)
    fnorm = raw.fnorm / raw.scale[:, 0]
    # in the working dtype: inf where ½‖f‖² exceeds its range (the fit itself is unaffected)
    representable = fnorm <= math.sqrt(float(xp.finfo(x.dtype).max))
    cost = xp.where(representable, 0.5 * xp.where(representable, fnorm, 0.0) ** 2, math.inf)
    f, J = (
        (raw.f, raw.J)
        if _scaling.is_one(raw.scale, xp=xp)
        else (raw.f / raw.scale, raw.J / raw.scale[:, :, None])
    )
    return raw.x, cost, f, J, raw.n_iter, raw.nfev, raw.status > 0, raw.status


def _step(
    fun_of: Callable[[tuple[Array, ...]], Callable[[Array], Array]],
    jacobian: Callable[..., tuple[Array, Array]],
    opts: Options,
    *,
    eps: float,
    cutoff_scale: float,
    max_nfev: int,
    subsets: bool,
    unit_gram: bool,
    xp: Namespace,
) -> Callable[[State], State]:
    """Return one iteration of every running fit: a trial step, accepted or not."""
    close_tol = math.sqrt(eps)  # forward differences' relative error
    norm = functools.partial(_norm, xp=xp)

    def body(s: State) -> State:
        active = s.status == RUNNING
        running = xp.full_like(s.status, RUNNING)
        polishing = s.pending != RUNNING
        gram = _xp.gram(s.J if unit_gram else s.J * s.gram_scale, xp=xp)  # (B, n, n)
        n = gram.shape[-1]  # the column norms from the diagonal (a strided view, no copy):
        col = xp.sqrt(xp.reshape(gram, (-1, n * n))[:, :: n + 1])
        col = col if unit_gram else col / s.gram_scale[:, :, 0]
        g = (s.f[:, None, :] @ s.J)[:, 0, :]
        # a zero column or residual has g = 0 there: its cosine is 0 with the divisor 1
        safe_fnorm = xp.where(s.fnorm > 0, s.fnorm, 1.0)
        cosines = xp.abs(g) / (xp.where(col > 0, col, 1.0) * safe_fnorm[:, None])
        gnorm = xp.max(cosines, axis=1)
        gtol_met = active & ~polishing & (gnorm <= opts.gtol)
        diag = xp.maximum(s.diag, col)
        gram_diag = diag if unit_gram else diag * s.gram_scale[:, :, 0]
        sv, Vt, uf = decompose(s.J, gram / (gram_diag[:, :, None] * gram_diag[:, None, :]), diag,
                               g, s.f, xp=xp)  # fmt: skip
        # forward differences' O(sqrt(eps)) column errors, amplified by cond(J·D⁻¹) beyond
        # the decomposition's own threshold (eps^-1/4), would steer the step: such a fit
        # takes no step on them but central differences first
        ill = ~s.central & (sv[:, -1] < eps**0.25 * sv[:, 0])
        stepping = active & ~ill  # MINPACK takes no step once gtol is met:
        stepping = stepping if opts.polish else stepping & ~gtol_met
        alpha = lm_parameter(sv, uf, s.delta, s.alpha, cutoff_scale, xp=xp)
        keep = ((sv > cutoff_scale * sv[:, :1]) | (alpha[:, None] > 0)) & (sv > 0)
        safe_den = xp.where(keep, sv * sv + alpha[:, None], 1.0)
        w = xp.where(keep, sv * uf / safe_den, 0.0)  # the step in V's basis
        q = -(w[:, None, :] @ Vt)[:, 0, :]
        p = q / diag  # q is the scaled step D·p
        pnorm = norm(q)
        delta = xp.where(s.first, xp.minimum(s.delta, pnorm), s.delta)
        # ‖J·p‖ = ‖S·Vᵀ·(D·p)‖ = ‖S·w‖ since J·D⁻¹ = U·S·Vᵀ and D·p = −V·w: no (B, m, n) pass
        jp_norm = norm(sv * w)
        temp1 = jp_norm / safe_fnorm  # 0 for a zero residual (uf = 0 and α = 0: no step)
        temp2 = xp.sqrt(alpha) * pnorm / safe_fnorm
        prered = temp1 * temp1 + 2 * temp2 * temp2
        dirder = -(temp1 * temp1 + temp2 * temp2)
        # polishing on an exact (or central) Jacobian at x: a step whose predicted
        # reduction (the rounding ftol test's predicted half) or length (the rounding
        # xtol test) is within eps ends the fit, as the stalled tests would, unevaluated
        settled = polishing & s.central & ((prered <= eps) | (pnorm <= eps * s.xnorm))
        stepping = stepping & ~settled
        x_trial = s.x + p
        (f_trial,) = rows_where(stepping, lambda x, *d: (fun_of(d)(x),), (x_trial, *s.data),
                                (s.f,), xp=xp, subsets=subsets)  # fmt: skip
        fnorm_trial = norm(f_trial)
        fnorm_trial = xp.where(xp.isfinite(fnorm_trial), fnorm_trial, math.inf)
        ratio_f = fnorm_trial / safe_fnorm
        actred = xp.where(0.1 * fnorm_trial < s.fnorm, 1 - ratio_f * ratio_f, -1.0)
        ratio = _safe_divide(actred, prered, 0.0, xp=xp)
        new_delta, new_alpha = radius_update(
            actred, prered, dirder, ratio, fnorm_trial, s.fnorm, delta, pnorm, alpha, xp=xp
        )
        accepted = stepping & (ratio >= 1e-4)
        x_new = xp.where(accepted[:, None], x_trial, s.x)
        f_new = xp.where(accepted[:, None], f_trial, s.f)
        fnorm_new = xp.where(accepted, fnorm_trial, s.fnorm)
        xnorm = xp.where(accepted, norm(diag * x_new), s.xnorm)
        nfev = s.nfev + xp.astype(stepping, xp.int32)
        tested, stalled = termination(
            actred=actred, prered=prered, ratio=ratio, delta=new_delta, xnorm=xnorm,
            fnorm=fnorm_new, nfev=nfev, max_nfev=max_nfev, ftol=opts.ftol, xtol=opts.xtol,
            eps=eps, running=running, xp=xp,
        )  # fmt: skip
        tested = xp.where(gtol_met, 1, tested)
        # adaptive differences: no fit stops on a forward-difference Jacobian, whose
        # O(sqrt(eps)) error can fake convergence; it is upgraded to central instead
        stalled = xp.where(s.central, stalled, running)
        tested = xp.where(ill & (tested != 0), running, tested)
        if opts.polish:  # the usual tests met: record their status and go on, to rounding
            met = (tested > 0) & ~polishing
            pending = xp.where(active & met, tested, s.pending)
            done = (polishing & ~accepted & s.central) | (stalled != RUNNING)
            status = xp.where(done, xp.where(pending != RUNNING, pending, stalled), running)
            out_of_budget = (nfev >= max_nfev) & (status == RUNNING)
            exhausted = xp.where(pending != RUNNING, pending, 0)
            status = xp.where(out_of_budget, exhausted, status)
        else:
            pending = s.pending
            final = (tested == 0) | ((tested != RUNNING) & s.central)
            status = xp.where(final, tested, stalled)
        status = xp.where(active, status, s.status)
        # close to the solution (the usual tests at forward differences' precision, or
        # met, or polishing): central differences from here on, the Jacobian upgraded now
        near = (xp.abs(actred) <= close_tol) & (prered <= close_tol)
        close = s.central | (pending != RUNNING) | (tested != RUNNING) | (gnorm <= close_tol)
        close = close | near | (new_delta <= close_tol * xnorm) | ill
        refresh = (accepted | (close & ~s.central)) & (status == RUNNING)
        J_new, cost = rows_where(
            refresh, lambda x, f, c, *d: jacobian(x, f, d, c), (x_new, f_new, close, *s.data),
            (s.J, nfev), xp=xp, subsets=subsets,  # nfev: any default, unread
        )  # fmt: skip
        return State(
            x=x_new, f=f_new, J=J_new, fnorm=fnorm_new,
            diag=xp.where(active[:, None], diag, s.diag),
            delta=xp.where(stepping, new_delta, s.delta),
            alpha=xp.where(stepping, new_alpha, s.alpha),
            xnorm=xnorm, first=s.first & ~stepping, central=xp.where(refresh, close, s.central),
            status=status, pending=pending, nfev=nfev + xp.where(refresh, cost, 0),
            n_iter=s.n_iter + xp.astype(accepted, xp.int32), gram_scale=s.gram_scale,
            data=s.data,
        )  # fmt: skip

    return body
