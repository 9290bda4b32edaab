"""Course 1 — linear algebra, eigenvectors: power iteration.

:mod:`m4ml_xp.linalg` gathers this module, :mod:`m4ml_xp.transformations` and
:mod:`m4ml_xp.bases`.
"""

from __future__ import annotations

from typing import NamedTuple

from m4ml_xp import _checks, _scaling, _xp
from m4ml_xp._xp import Array, Namespace, device, evaluate
from m4ml_xp.bases import _eps
from m4ml_xp.errors import report_non_convergence

__all__ = ["EigResult", "power_iteration"]


class EigResult(NamedTuple):
    """Result of :func:`power_iteration`.

    `status`: 0 converged, 1 `max_iter` reached, 2 the start vector is in the
    null space of `A` (``A x = 0``); `message` says which.
    """

    eigenvalue: Array
    eigenvector: Array
    n_iter: int
    converged: bool
    status: int
    message: str


def _flip_sign(v: Array, xp: Namespace) -> Array:
    """Make the largest-|component| entry of the vector `v` positive (like ``svd_flip``)."""
    largest = xp.take(v, xp.argmax(xp.abs(v))[None])[0]
    return xp.where(largest < 0, -v, v)


@_xp.full_precision
def power_iteration(
    A: Array,
    *,
    x0: Array | None = None,
    tol: float | None = None,
    max_iter: int = 1000,
    seed: int = 0,
    raise_on_failure: bool = False,
) -> EigResult:
    """Dominant eigenpair of a square matrix by power iteration.

    Iterates ``x ← A x / ‖A x‖`` and stops when the residual of the Rayleigh
    quotient ``λ = xᵀAx`` satisfies ``‖A x − λ x‖ ≤ tol · |λ|``.  The iteration
    runs on `A` scaled by a power of two to ``max|A| ≈ 1`` and the eigenvalue is
    scaled back, so any finite magnitude works (an eigenvalue beyond the
    dtype's range is ±inf).

    Parameters
    ----------
    A : (n, n) array
    x0 : (n,) array, optional
        Start vector; default a seeded random vector (a fixed vector such as all
        ones can be orthogonal to the dominant eigenvector).
    tol : float, optional
        Relative residual tolerance; default ``eps ** (2/3)`` of the dtype.
    max_iter : int
        Iteration limit.
    seed : int
        Seed of the NumPy ``Generator`` that draws the default start.
    raise_on_failure : bool
        Raise :class:`~m4ml_xp.errors.ConvergenceError` instead of warning.

    Returns
    -------
    EigResult
        ``eigenvalue`` (0-d array), unit ``eigenvector`` with its
        largest-|component| entry positive, ``n_iter``, ``converged``,
        ``status``, ``message``.

    Warns
    -----
    ConvergenceWarning
        When `max_iter` is reached first (``converged=False``); this happens when
        the two largest eigenvalues have equal modulus.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import power_iteration
    >>> result = power_iteration(np.asarray([[2.0, 1.0], [1.0, 2.0]]))
    >>> round(float(result.eigenvalue), 10), result.converged
    (3.0, True)
    """
    xp = _checks.namespace(A=A, x0=x0, optional=["x0"])
    A = _checks.check_real_array(A, "A", xp=xp, ndim=2, square=True, small=True)
    max_iter = _checks.check_int(max_iter, "max_iter", low=1)
    n = A.shape[0]
    dev = device(A)
    if x0 is None:
        draws = _xp.generator(_checks.check_seed(seed)).standard_normal(n)
        x = xp.asarray(draws, dtype=A.dtype, device=dev)
    else:
        x = _checks.check_real_array(x0, "x0", xp=xp, ndim=1, small=True)
        if x.shape[0] != n:
            msg = f"`x0` must have length {n} to match `A`; got shape {tuple(x.shape)}"
            raise ValueError(msg)
        x = xp.astype(x, A.dtype)
    eps = _eps(A, xp)
    tol = eps ** (2 / 3) if tol is None else _checks.check_real(tol, "tol", low=0.0, low_open=True)
    # Iterate on A_s = s·A (max|A_s| ≈ 1, exact): A x never over- or underflows; λ = λ_s / s.
    scale = _scaling.power_of_two_scale(_scaling.max_abs(A, xp=xp), xp=xp)
    (scale,) = evaluate(scale)  # Dask: A's scale read once, not in every iteration's graph
    A = A * scale
    norm = _scaling.vector_norm(x, xp=xp)
    _checks.check_bool_result(norm > 0, "`x0` must not be the zero vector", small=True)
    x = x / norm
    every = _xp.check_interval(xp, dev)
    status = 1  # max_iter reached, unless the loop breaks
    n_iter = 0
    while n_iter < max_iter:
        (y,) = evaluate(A @ x)  # Dask: the check and the next x share one product
        eigenvalue = xp.sum(x * y)
        residual = xp.linalg.vector_norm(y - eigenvalue * x)
        y_norm = xp.linalg.vector_norm(y)
        n_iter += 1
        if n_iter % every == 0 or n_iter == max_iter:
            residual_, eigenvalue_, y_norm_ = _xp.to_host(xp.stack([residual, eigenvalue, y_norm]))
            if y_norm_ == 0.0:  # A x = 0: x is an eigenvector of 0, the dominant eigenvalue
                # where A = 0, or (but for starts of probability 0) where a random start gets
                # there: every eigenvalue is 0.  A given start may just be a bad one
                status = 0 if x0 is None or not bool(xp.any(A != 0)) else 2
                break
            if residual_ <= tol * abs(eigenvalue_):
                status = 0
                break
        # A x = 0: x stays (a unit eigenvector of 0) for the next check (every 8 steps on a GPU)
        x = xp.where(y_norm > 0, y / xp.where(y_norm > 0, y_norm, 1.0), x)
        (x,) = evaluate(x)
    message = (  # indexed by `status`
        "converged: the residual ‖Ax − λx‖ is at most tol·|λ|",
        f"no convergence in {n_iter} iterations (the two largest eigenvalues may have equal modulus)",
        f"the iterates reached the null space of `A` after {n_iter} step(s) from the start "
        "vector; pass another `x0` or `seed`",
    )[status]
    converged = status == 0
    if not converged:
        report_non_convergence(f"power iteration: {message}", raise_on_failure=raise_on_failure)
    return EigResult(eigenvalue / scale, _flip_sign(x, xp), n_iter, converged, status, message)
