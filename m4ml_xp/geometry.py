"""Course 3 — the geometry and statistics of data sets.

Data matrices are ``(N, D)`` with the samples as rows.  Means and covariances
are computed in two passes (centre, then multiply), so float32 keeps its
accuracy when the mean is large compared with the spread.  Inner products
``⟨x, y⟩_A = xᵀAy`` take an optional symmetric positive definite ``A``
(checked); the vector functions broadcast over leading axes.

Every function works at any finite magnitude, as LAPACK's drivers do: inputs
are scaled by powers of two (exact) to a largest entry about 1 — per vector,
per column or per matrix — before anything is squared or multiplied, and the
scales are undone on the result in steps that cannot overflow spuriously.  A
result is ±inf (or 0) only when the true answer lies beyond the dtype's range:
``inner_product`` of two 1e200 vectors is inf (1e400), ``norm`` of one is
1e200.  The cost is one extra reduction (a largest magnitude) per input.
"""

from __future__ import annotations

import math

from m4ml_xp import _checks, _scaling, _xp
from m4ml_xp._xp import Array, Namespace
from m4ml_xp.errors import warn

__all__ = [
    "affine_cov",
    "affine_mean",
    "angle",
    "cov",
    "distance",
    "inner_product",
    "mean",
    "norm",
    "pairwise_distances",
    "project",
    "projection_matrix",
]


# --------------------------------------------------------------------------- statistics
def mean(X: Array) -> Array:
    """Return the mean of the rows of `X`.

    Parameters
    ----------
    X : (N, D) array
        Samples as rows.

    Returns
    -------
    (D,) array
        Each column is scaled by a power of two before it is summed, so the
        mean of finite samples is finite (``mean([[1.7e308], [1.7e308]])`` is
        1.7e308, not inf).

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import mean
    >>> mean(np.array([[1.0, 2.0], [3.0, 6.0]]))
    array([2., 4.])
    """
    xp = _checks.namespace(X=X)
    X = _checks.check_real_array(X, "X", xp=xp, ndim=2)
    X, scale = _scaling.scaled(X, xp=xp, axis=0)  # per column: the sum cannot overflow
    return xp.mean(X, axis=0) / scale[0, :]


@_xp.full_precision
def cov(X: Array, *, correction: float = 0) -> Array:
    """Return the covariance matrix of the rows of `X`: ``X̄ᵀX̄ / (N − correction)``.

    `X` is centred first (two passes), which keeps float32 accurate where the
    one-pass ``E[xxᵀ] − mmᵀ`` loses it to cancellation.  Columns are scaled by
    powers of two before and after centring, so ``cov(c · X) = c² · cov(X)``
    holds while ``c² · cov(X)`` is representable (beyond it: inf, the true
    answer out of range).

    Parameters
    ----------
    X : (N, D) array
        Samples as rows.
    correction : float
        0 (default, the course's biased estimator, ``numpy.cov(..., bias=True)``)
        or 1 (unbiased); any value in ``[0, N)``.

    Returns
    -------
    (D, D) array

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import cov
    >>> cov(np.array([[1.0, 2.0], [3.0, 6.0]]))
    array([[1., 2.],
           [2., 4.]])
    """
    xp = _checks.namespace(X=X)
    X = _checks.check_real_array(X, "X", xp=xp, ndim=2)
    N = X.shape[0]
    correction = _checks.check_real(correction, "correction", low=0.0, high=N, high_open=True)
    X, scale_x = _scaling.scaled(X, xp=xp, axis=0)
    centred = X - xp.mean(X, axis=0)
    centred, scale_c = _scaling.scaled(centred, xp=xp, axis=0)
    C = (xp.linalg.matrix_transpose(centred) @ centred) / (N - correction)
    column = (xp.reshape(scale_x, (-1, 1)), xp.reshape(scale_c, (-1, 1)))
    with _xp.quiet_overflow():  # beyond the dtype: inf, reported below in words
        C = _scaling.unscale(C, *column, scale_x, scale_c, xp=xp)
    if not _xp.is_lazy(C) and _checks.fails(xp.all(xp.isfinite(C))):
        msg = f"cov: the covariance of `X` is beyond what {C.dtype} holds: inf there (the true value, out of range)"
        warn(msg, RuntimeWarning)
    return C


@_xp.full_precision
def affine_mean(m: Array, A: Array, b: Array) -> Array:
    """Return the mean of ``A·x + b`` when `x` has mean `m`: ``A·m + b``.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import affine_mean
    >>> affine_mean(np.array([1.0, 2.0]), np.array([[2.0, 0.0], [0.0, 3.0]]), np.array([1.0, 1.0]))
    array([3., 7.])
    """
    xp = _checks.namespace(m=m, A=A, b=b)
    m = _checks.check_real_array(m, "m", xp=xp, ndim=1)
    A = _checks.check_real_array(A, "A", xp=xp, ndim=2)
    b = _checks.check_real_array(b, "b", xp=xp, ndim=1)
    m, A, b = _checks.promoted(m, A, b, xp=xp)
    if A.shape[1] != m.shape[0] or b.shape[0] != A.shape[0]:
        msg = (
            f"`A` must be (K, D) with `m` (D,) and `b` (K,); got A {tuple(A.shape)}, "
            f"m {tuple(m.shape)}, b {tuple(b.shape)}"
        )
        raise ValueError(msg)
    A, scale_A = _scaling.scaled(A, xp=xp)
    m, scale_m = _scaling.scaled(m, xp=xp)
    return _scaling.unscale(A @ m, scale_A, scale_m, xp=xp) + b


@_xp.full_precision
def affine_cov(S: Array, A: Array) -> Array:
    """Return the covariance of ``A·x + b`` when `x` has covariance `S`: ``A·S·Aᵀ``.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import affine_cov
    >>> affine_cov(np.eye(2), np.array([[1.0, 1.0], [0.0, 2.0]]))
    array([[2., 2.],
           [2., 4.]])
    """
    xp = _checks.namespace(S=S, A=A)
    S = _checks.check_real_array(S, "S", xp=xp, ndim=2, square=True)
    if not _xp.is_lazy(S):  # a global check: not computed on Dask (nor read from a tracer)
        _checks.check_symmetric(S, "S")  # a covariance
    A = _checks.check_real_array(A, "A", xp=xp, ndim=2)
    S, A = _checks.promoted(S, A, xp=xp)
    if A.shape[1] != S.shape[0]:
        msg = f"`A` must have {S.shape[0]} columns to match `S` {tuple(S.shape)}; got {tuple(A.shape)}"
        raise ValueError(msg)
    A, scale_A = _scaling.scaled(A, xp=xp)
    S, scale_S = _scaling.scaled(S, xp=xp)
    return _scaling.unscale(A @ S @ xp.linalg.matrix_transpose(A), scale_A, scale_A, scale_S, xp=xp)


# --------------------------------------------------------------------------- inner products
def _vectors(
    x: Array, y: Array | None, A: Array | None
) -> tuple[Namespace, Array, Array | None, Array | None]:
    """Return validated `x`, `y` (same last axis) and `A` (symmetric positive definite)."""
    xp = _checks.namespace(optional=["y", "A"], x=x, y=y, A=A)
    x = _checks.check_real_array(x, "x", xp=xp)
    if x.ndim < 1:
        raise ValueError("`x` must be a vector (at least 1-D); got a 0-d array")
    D = x.shape[-1]
    if y is not None:
        y = _checks.check_real_array(y, "y", xp=xp)
        if y.ndim < 1 or y.shape[-1] != D:
            msg = f"`x` and `y` must have the same length along their last axis; got {tuple(x.shape)} and {tuple(y.shape)}"
            raise ValueError(msg)
        _checks.check_broadcastable(x, y, ("x", "y"))
    if A is not None:
        A = _checks.check_spd(A, "A", xp=xp, n=D)
    return (xp, *_checks.promoted(x, y, A, xp=xp))


def _inner(x: Array, y: Array, A: Array | None, xp: Namespace) -> Array:
    if A is None:
        return xp.vecdot(x, y)
    return xp.vecdot(x, y @ A)  # A symmetric: (A·y)ᵀ = yᵀ·A


def _per_vector(v: Array, xp: Namespace) -> tuple[Array, Array]:
    """`v` scaled to max ≈ 1 along its last axis, and the scales (without that axis)."""
    v, scale = _scaling.scaled(v, xp=xp, axis=-1)
    return v, scale[..., 0]


def _root_inner(v: Array, A: Array | None, xp: Namespace) -> Array:
    """``sqrt(⟨v, v⟩_A)`` of scaled `v` and `A`, clamped at 0 against rounding."""
    zero = xp.zeros((), dtype=v.dtype, device=_xp.device(v))
    return xp.sqrt(xp.maximum(_inner(v, v, A, xp), zero))


def _a_norm(v: Array, A: Array | None, xp: Namespace) -> Array:
    """``‖v‖_A`` at any finite magnitude (nrm2-style scaling of `v` and `A`)."""
    if A is None:
        return _scaling.vector_norm(v, xp=xp, axis=-1)
    v, scale_v = _per_vector(v, xp)
    A, scale_A = _scaling.scaled(A, xp=xp)
    return _scaling.unscale(_root_inner(v, A, xp), scale_v, xp=xp) / xp.sqrt(scale_A)


@_xp.full_precision
def inner_product(x: Array, y: Array, *, A: Array | None = None) -> Array:
    """``⟨x, y⟩_A = xᵀ·A·y`` (the dot product without `A`), over the last axis.

    Parameters
    ----------
    x, y : (..., D) arrays
        Broadcast against each other.
    A : (D, D) array, optional
        Symmetric positive definite (checked).

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import inner_product
    >>> x, y = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    >>> float(inner_product(x, y)), float(inner_product(x, y, A=np.array([[2.0, 1.0], [1.0, 2.0]])))
    (1.0, 7.0)
    """
    xp, x, y, A = _vectors(x, y, A)
    x, scale_x = _per_vector(x, xp)
    y, scale_y = _per_vector(y, xp)
    if A is None:
        return _scaling.unscale(_inner(x, y, None, xp), scale_x, scale_y, xp=xp)
    A, scale_A = _scaling.scaled(A, xp=xp)
    return _scaling.unscale(_inner(x, y, A, xp), scale_x, scale_y, scale_A, xp=xp)


@_xp.full_precision
def norm(x: Array, *, A: Array | None = None) -> Array:
    """``‖x‖_A = sqrt(⟨x, x⟩_A)``, over the last axis.

    Computed BLAS-``nrm2`` style (scaled by powers of two before squaring), so
    it is finite whenever the norm is representable: ``norm(1e200 · x)`` is
    ``1e200 · norm(x)``, though ``⟨x, x⟩`` itself overflows.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import norm
    >>> float(norm(np.array([3.0, 4.0])))
    5.0
    """
    xp, x, _, A = _vectors(x, None, A)
    return _a_norm(x, A, xp)


@_xp.full_precision
def distance(x: Array, y: Array, *, A: Array | None = None) -> Array:
    """``‖x − y‖_A``, over the last axis (symmetric in `x` and `y`).

    Scale-safe like :func:`norm`: ``distance(c·x, c·y) = |c| · distance(x, y)``
    for any finite ``c`` while the result is representable (beyond: inf).

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import distance
    >>> float(distance(np.array([1.0, 1.0]), np.array([4.0, 5.0])))
    5.0
    """
    xp, x, y, A = _vectors(x, y, A)
    difference = x - y  # overflows only if the distance itself does: then inf
    overflowed = xp.any(xp.isinf(difference), axis=-1)
    return xp.where(overflowed, xp.inf, _a_norm(difference, A, xp))


@_xp.full_precision
def angle(x: Array, y: Array, *, A: Array | None = None) -> Array:
    """Return the angle between `x` and `y` in radians, ``arccos(⟨x,y⟩_A / (‖x‖_A‖y‖_A))``.

    Computed as ``2·atan2(‖u − v‖_A, ‖u + v‖_A)`` with ``u``, ``v`` the unit vectors
    (Kahan), which stays accurate for nearly parallel and nearly opposite
    vectors, where ``arccos`` loses half the digits.  Each vector (and `A`) is
    scaled by a power of two to a largest entry about 1 before its norm is
    taken, so the angle is the same at any finite magnitude.  A zero vector has
    no angle: ``ValueError``.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import angle
    >>> round(float(angle(np.array([1.0, 0.0]), np.array([1.0, 1.0]))), 12) == round(np.pi / 4, 12)
    True
    """
    xp, x, y, A = _vectors(x, y, A)
    x, y = _per_vector(x, xp)[0], _per_vector(y, xp)[0]
    if A is not None:
        A = _scaling.scaled(A, xp=xp)[0]  # the angle does not depend on A's scale

    def positive(v: Array) -> Array:
        return _xp.array_namespace(v).all(v > 0)

    message = "the angle of a zero vector is undefined: `{}` has norm 0"
    nx = _checks.check_values(_root_inner(x, A, xp), positive, message.format("x"))
    ny = _checks.check_values(_root_inner(y, A, xp), positive, message.format("y"))
    u, v = x / nx[..., None], y / ny[..., None]
    return 2 * xp.atan2(_root_inner(u - v, A, xp), _root_inner(u + v, A, xp))


# --------------------------------------------------------------------------- distances between sets
@_xp.full_precision
def pairwise_distances(X: Array, Y: Array | None = None) -> Array:
    """Euclidean distances between the rows of `X` and of `Y` (default `X`): ``(N, M)``.

    Computed by ``‖x‖² + ‖y‖² − 2·x·y`` on data centred at a common mean (one
    matrix product), then every pair whose squared distance is small next to
    ``‖x‖² + ‖y‖²`` — where that expansion cancels — is recomputed directly from
    ``x − y``: identical rows give exact zeros and near neighbours keep their
    digits in float32 too.  (Under ``jax.jit`` the recomputation, whose size
    depends on the data, is skipped.)  `X` and `Y` are scaled by one power of
    two to a largest entry about 1 first (exact) and the distances scaled back,
    so ``pairwise_distances(c·X) = |c| · pairwise_distances(X)`` with its exact
    zeros at any finite magnitude; accuracy is relative to the largest entry.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import pairwise_distances
    >>> X = np.array([[0.0, 0.0], [3.0, 4.0]])
    >>> pairwise_distances(X)
    array([[0., 5.],
           [5., 0.]])
    """
    xp = _checks.namespace(optional=["Y"], X=X, Y=Y)
    X = _checks.check_real_array(X, "X", xp=xp, ndim=2)
    same = Y is None
    Y = X if same else _checks.check_real_array(Y, "Y", xp=xp, ndim=2)
    if Y.shape[1] != X.shape[1]:
        msg = f"`X` and `Y` must have the same number of columns; got {tuple(X.shape)} and {tuple(Y.shape)}"
        raise ValueError(msg)
    X, Y = _checks.promoted(X, Y, xp=xp)
    largest = _scaling.max_abs(X, xp=xp)
    if not same:
        largest = xp.maximum(largest, _scaling.max_abs(Y, xp=xp))
    scale = _scaling.power_of_two_scale(largest, xp=xp)
    return _xp.map_block_pairs(_pairwise_eager, X * scale, Y * scale) / scale


@_xp.fused()
def _expanded_squares(X: Array, Y: Array, *, xp: Namespace) -> tuple[Array, Array]:
    """Squared distances by the expansion, and the pairs where it cancels (one program on JAX)."""
    centre = (xp.sum(X, axis=0) + xp.sum(Y, axis=0)) / (X.shape[0] + Y.shape[0])
    Xc, Yc = X - centre, Y - centre
    x2, y2 = xp.vecdot(Xc, Xc), xp.vecdot(Yc, Yc)
    scale = x2[:, None] + y2[None, :]
    squared = xp.maximum(scale - 2 * (Xc @ xp.linalg.matrix_transpose(Yc)), xp.zeros_like(scale))
    eps = float(xp.finfo(X.dtype).eps)
    return squared, squared <= math.sqrt(eps) * scale


def _pairwise_eager(X: Array, Y: Array) -> Array:
    xp = _xp.array_namespace(X, Y)
    squared, suspect = _expanded_squares(X, Y, xp=xp)
    if _xp.is_traced(squared):
        return xp.sqrt(squared)
    if bool(xp.any(suspect)):  # the pairs themselves stay on the device
        i, j = xp.nonzero(suspect)
        difference = xp.take(X, i, axis=0) - xp.take(Y, j, axis=0)
        exact = xp.vecdot(difference, difference)
        flat = _xp.fill_masked(xp.reshape(suspect, (-1,)), exact, xp.reshape(squared, (-1,)), xp=xp)
        squared = xp.reshape(flat, squared.shape)
    return xp.sqrt(squared)


# --------------------------------------------------------------------------- projections
@_xp.full_precision
def projection_matrix(B: Array) -> Array:
    """Return the orthogonal projection onto the column span of `B`: ``B (BᵀB)⁻¹ Bᵀ``.

    Built from an orthonormal basis of the span (the SVD's left vectors with
    non-negligible singular values), so a rank-deficient `B` projects onto its
    span rather than failing, and the result is exactly symmetric.  `B` is
    scaled by a power of two first: any finite magnitude gives the same `P`.

    Parameters
    ----------
    B : (D,) or (D, M) array
        One vector, or M basis vectors as columns.

    Returns
    -------
    (D, D) array

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import projection_matrix
    >>> projection_matrix(np.array([1.0, 1.0]))
    array([[0.5, 0.5],
           [0.5, 0.5]])
    """
    xp = _checks.namespace(B=B)
    B = _checks.check_real_array(B, "B", xp=xp, ndim=(1, 2))
    if B.ndim == 1:
        B = B[:, None]
    B = _scaling.scaled(B, xp=xp)[0]  # the span does not depend on the scale
    U, s, _Vt = xp.linalg.svd(_xp.one_chunk(B), full_matrices=False)
    cutoff = float(xp.finfo(s.dtype).eps) * max(B.shape) * xp.max(s)
    _checks.check_bool_result(xp.any(s > cutoff), "`B` must not be zero: it spans nothing")
    U = U * xp.astype(s > cutoff, U.dtype)
    P = U @ xp.linalg.matrix_transpose(U)
    return (P + xp.linalg.matrix_transpose(P)) / 2


@_xp.full_precision
def project(x: Array, B: Array) -> Array:
    """Return the orthogonal projection of `x` onto the column span of `B`.

    `x` is one vector ``(D,)``, the course's column vector ``(D, 1)`` (the
    result is then a column too) or data rows ``(N, D)``.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import project
    >>> project(np.array([2.0, 0.0]), np.array([1.0, 1.0]))
    array([1., 1.])
    >>> project(np.array([[2.0], [0.0]]), np.array([[1.0], [1.0]]))  # columns, as in the course
    array([[1.],
           [1.]])
    """
    xp = _checks.namespace(x=x, B=B)
    x = _checks.check_real_array(x, "x", xp=xp, ndim=(1, 2))
    x, P = _checks.promoted(x, projection_matrix(B), xp=xp)
    D = P.shape[0]
    column = x.ndim == 2 and tuple(x.shape) == (D, 1) and D != 1
    if not column and x.shape[-1] != D:
        msg = (
            f"`x` must be a vector of {D} entries, a ({D}, 1) column or rows of {D} entries "
            f"to match `B`; got shape {tuple(x.shape)}"
        )
        raise ValueError(msg)
    x, scale = _scaling.scaled(x, xp=xp)
    # P is symmetric: P @ x projects a column as x @ P projects rows
    return (P @ x if column else x @ P) / scale
