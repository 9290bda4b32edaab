"""Course 3 — principal component analysis.

``pca`` centres the data (subtracting the mean only), then finds the leading
directions by one of four routes: the eigendecomposition of the covariance
matrix (``X̄ᵀX̄``, the data centred *first* — two passes — so float32 keeps
about 1e-6 relative eigenvalue accuracy), the thin SVD of ``X̄``, the
eigendecomposition of the ``N × N`` Gram matrix ``X̄X̄ᵀ`` when there are fewer
samples than features (the course's trick), or a seeded randomized SVD
(Halko, Martinsson & Tropp 2011).  Signs are deterministic: each component's
largest-magnitude entry is positive, as scikit-learn's ``svd_flip``.

Any finite magnitude works, as in LAPACK's drivers: the pass that checks `X`
is finite also reads its largest magnitude (``max X`` and ``−min X``, no
temporary), and data outside a quarter of the dtype's exponent range (about
1e±77 in float64, 1e±9 in float32) is worked on multiplied by a power of two
``s`` bringing it near 1 — exact, no rounding — and the results are scaled
back (``xLASCL``): components and ratios unchanged, singular values and the
mean ÷ ``s``, variances ÷ ``s²``.  A result the dtype cannot hold is not
hidden: where the variance of `X` overflows (data beyond ~1e154 in float64,
~1e19 in float32) or underflows (below ~1e-154, ~1e-19), ``explained_variance``
is ``inf`` or ``0`` and a ``RuntimeWarning`` says so, while the components,
ratios, singular values and mean stay right.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

from m4ml_xp import _checks, _scaling, _xp
from m4ml_xp._xp import Array, Namespace
from m4ml_xp.errors import warn

__all__ = ["PCAResult", "pca", "reconstruct", "reconstruction_error"]

METHODS = ("auto", "covariance_eigh", "svd", "gram", "randomized")


class PCAResult(NamedTuple):
    """Result of :func:`pca`; arrays of the input's library and device.

    ``components`` is ``(k, D)`` (rows, like scikit-learn), ``explained_variance``
    divides by ``N − 1`` like scikit-learn (the course's "principal values"
    divide by ``N``: multiply by ``(N − 1) / N``), ``explained_variance_ratio`` is
    the share of the total variance, ``singular_values`` those of the centred
    data, ``mean`` the ``(D,)`` mean removed first.
    """

    components: Array
    explained_variance: Array
    explained_variance_ratio: Array
    singular_values: Array
    mean: Array


@_xp.full_precision
def pca(
    X: Array,
    n_components: int | float | None = None,
    *,
    method: str = "auto",
    seed: int | None = None,
    oversampling: int = 10,
    power_iterations: int | None = None,
) -> PCAResult:
    """Principal components of the rows of `X`.

    Parameters
    ----------
    X : (N, D) array
        Samples as rows; ``N >= 2``.
    n_components : int, float or None
        How many components: an int in ``[1, min(N, D)]``, a float in ``(0, 1)``
        for the fewest components that explain that fraction of the variance
        (exact methods only), or None for ``min(N, D)``.
    method : {"auto", "covariance_eigh", "svd", "gram", "randomized"}
        ``"auto"``: ``"covariance_eigh"`` when ``N >= D`` or `X` is a Dask array, else ``"gram"``.
    seed : int, optional
        Seeds the randomized method's test matrix (a NumPy ``Generator``: the
        same numbers on every backend).
    oversampling, power_iterations : int
        The randomized method's extra columns and QR-normalised power iterations
        (default as scikit-learn: 7 when ``k < 0.1·min(N, D)``, else 4).

    Returns
    -------
    PCAResult

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import pca
    >>> X = np.array([[2.0, 0.0], [0.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    >>> result = pca(X, 1)
    >>> result.components, result.explained_variance
    (array([[1., 0.]]), array([2.]))
    """
    xp = _checks.namespace(X=X)
    X = _checks.check_real_array(X, "X", xp=xp, ndim=2, finite=_xp.is_lazy(X))
    N, D = X.shape
    if N < 2:
        msg = f"`X` must have at least 2 samples (rows); got shape {tuple(X.shape)}"
        raise ValueError(msg)
    _checks.check_choice(method, "method", METHODS)
    if method == "auto":
        method = "covariance_eigh" if N >= D or _xp.is_chunked(X) else "gram"
    if _xp.is_chunked(X) and method != "covariance_eigh":
        msg = (
            "`method` must be 'covariance_eigh' for Dask arrays (a distributed reduction); "
            f"got {method!r}"
        )
        raise ValueError(msg)
    k, fraction = _n_components(n_components, N, D, method)
    omega = None  # the randomized route's Gaussian test matrix, drawn on the host from `seed`
    if method == "randomized":
        seed = _checks.check_int(seed if seed is not None else 0, "seed")
        oversampling = _checks.check_int(oversampling, "oversampling")
        if power_iterations is None:
            power_iterations = 7 if k < 0.1 * min(N, D) else 4
        power_iterations = _checks.check_int(power_iterations, "power_iterations")
        omega = _xp.generator(seed).standard_normal((D, min(k + oversampling, N, D)))
        omega = xp.asarray(omega, dtype=X.dtype, device=_xp.device(X))
    scale = working_scale(X, "X", xp=xp)
    if fraction is None:
        result = _route(xp, method, k, power_iterations)(X, scale, omega)
        return _warn_if_unrepresentable(result, xp=xp, scale=scale)
    # a variance fraction: the count is read from the variances on the host
    mean, singular, components, total = _route(xp, method, None, None)(X, scale, omega)
    return finish_result(
        singular, components, total, mean, N, k, fraction, xp=xp, scale=scale, warn=True
    )


@_xp.fused()
def largest_magnitude(X: Array, *, xp: Namespace) -> Array:
    """``max |X|`` as ``max(max X, −min X)``: two reductions, no ``|X|`` temporary.

    NaN propagates through both, so the result is finite exactly when `X` is.
    """
    return xp.maximum(xp.max(X), -xp.min(X))


def working_scale(X: Array, name: str, *, xp: Namespace, also: Array | None = None) -> Array | None:
    """Return the power of two to multiply `X` by before squaring it, or None where none is needed.

    One pass over `X` (and `also`, e.g. a mean to subtract) reads its largest
    magnitude; for eager arrays that value is read on the host, which checks that
    `X` is finite (``ValueError`` naming `name`) and returns None when it lies
    within a quarter of the dtype's exponent range (``2**±255`` in float64,
    ``2**±31`` in float32): there sums of squares of ``N`` rows neither overflow
    nor lose digits to underflow, and the computation runs exactly as written.
    Lazy arrays (Dask, JAX tracers) always get the scale, computed in their graph.
    """
    largest = largest_magnitude(X, xp=xp)
    if also is not None:
        largest = xp.maximum(largest, largest_magnitude(also, xp=xp))
    if _xp.is_lazy(largest):
        return _scaling.power_of_two_scale(largest, xp=xp)
    value = float(_xp.to_host(largest))  # torch: no scalar-of-a-graph warning
    if not math.isfinite(value):  # the check's own message, naming `name`
        _checks.check_real_array(largest, name, xp=xp, small=True)
    limit = 2.0 ** (int(math.log2(float(xp.finfo(X.dtype).max))) // 4)
    if value == 0 or 1 / limit <= value <= limit:
        return None
    return _scaling.power_of_two_scale(largest, xp=xp)


@functools.lru_cache(maxsize=32)
def _route(
    xp: Namespace, method: str, k: int | None, power_iterations: int | None
) -> Callable[[Array, Array | None, Array | None], Any]:
    """Return `method`'s route as one function ``(X, scale, omega)``, compiled where the backend compiles.

    On JAX the mean, the decomposition and the finish are one dispatch (and one
    compilation per shape) instead of some fifty small ones.  `scale` is None or
    a power of two (see :func:`working_scale`): the covariance route multiplies
    each row block by it as it is centred — no scaled copy of `X` — the others
    work on a scaled copy; the results are scaled back.  `omega` is the
    randomized route's test matrix.  The function returns the :class:`PCAResult`
    of `k` components, or for ``k=None`` the parts ``(mean, singular values,
    components, total)`` (a variance fraction's count is read on the host).
    """

    def route(X: Array, scale: Array | None, omega: Array | None) -> Any:
        if method == "covariance_eigh":
            mean = xp.mean(X, axis=0) if scale is None else scaled_mean(X, scale, xp=xp)
            scatter = centred_scatter(X, mean, xp=xp, scale=scale)
            # Dask: in one pass over X (with the scale), which the results never read again
            mean, scatter, scale = _xp.evaluate(mean, scatter, scale)
            singular, components, total = scatter_decomposition(scatter, xp=xp)
        else:
            work = X if scale is None else X * scale  # a scaled copy only for extreme magnitudes
            mean = xp.mean(work, axis=0)
            if method == "randomized":
                singular, components = _randomized(work, mean, omega, power_iterations, xp=xp)
                total = centred_sum_of_squares(work, mean, xp=xp)
            elif method == "svd":
                _U, singular, components = xp.linalg.svd(work - mean, full_matrices=False)
                total = xp.sum(singular * singular)
            else:  # gram
                centred = work - mean
                gram = centred @ xp.linalg.matrix_transpose(centred)
                singular, vectors, total = scatter_decomposition(gram, xp=xp)
                directions = vectors @ centred  # (N, D): rows vᵀX̄, of norm s
                lengths = xp.linalg.vector_norm(directions, axis=1, keepdims=True)
                components = directions / xp.where(lengths > 0, lengths, xp.ones_like(lengths))
        if scale is not None:
            mean = mean / scale
        if k is None:
            return mean, singular, components, total
        return finish_result(
            singular, components, total, mean, X.shape[0], k, None, xp=xp, scale=scale
        )

    return _xp.compile_step(route, xp)


def scatter_decomposition(scatter: Array, *, xp: Namespace) -> tuple[Array, Array, Array]:
    """From ``X̄ᵀX̄`` (or ``X̄X̄ᵀ``): the singular values of X̄, eigenvectors as rows, the trace."""
    eigenvalues, V = _xp.eigh(scatter, xp=xp)
    eigenvalues, V = xp.flip(eigenvalues, axis=0), xp.flip(V, axis=1)  # descending
    singular = xp.sqrt(xp.maximum(eigenvalues, xp.zeros_like(eigenvalues)))
    return singular, xp.linalg.matrix_transpose(V), xp.sum(xp.linalg.diagonal(scatter))


def finish_result(
    singular: Array,
    components: Array,
    total: Array,
    mean: Array,
    N: int,
    k: int,
    fraction: float | None,
    *,
    xp: Namespace,
    scale: Array | None = None,
    warn: bool = False,
) -> PCAResult:
    """Finish every route: variances ÷ (N − 1), the component count, svd_flip signs.

    The count is the one a variance `fraction` asks for, else `k`.  `singular`
    and `total` are those of the data multiplied by `scale` (None: 1), undone
    here (ratios need no undoing); `mean` is the data's own.  With `warn`, a
    leading variance the dtype cannot hold is reported (eager arrays only).
    """
    total = total / (N - 1)
    total = xp.where(total > 0, total, 1.0)  # constant data: every variance and ratio is 0
    variance = singular * singular / (N - 1)
    if fraction is not None:
        shares = _xp.to_host(xp.cumulative_sum(variance) / total)
        k = min(sum(share < fraction - 1e-12 for share in shares) + 1, variance.shape[0])
    components = _flip_signs(components[:k, :], xp=xp)
    variance, singular = variance[:k], singular[:k]
    ratio = variance / total
    if scale is not None:
        with warnings.catch_warnings():  # an overflow to inf is reported below, in words
            warnings.simplefilter("ignore", RuntimeWarning)
            # not `variance / scale / scale`: XLA rewrites that as one division by s², which
            # underflows (flushed to 0) or overflows in float32 for extreme data
            variance = _scaling.unscale(variance, scale, scale, xp=xp)
            singular = singular / scale
    result = PCAResult(components, variance, ratio, singular, mean)
    return _warn_if_unrepresentable(result, xp=xp, scale=scale) if warn else result


def _warn_if_unrepresentable(result: PCAResult, *, xp: Namespace, scale: Array | None) -> PCAResult:
    """Warn when the leading variance overflowed to inf or underflowed below the normal range.

    Only scaled (extreme) data can get there; lazy results are not read.
    """
    if scale is None or _xp.is_lazy(result.explained_variance):
        return result
    first, singular = _xp.to_host(
        xp.stack([result.explained_variance[0], result.singular_values[0]])
    )  # one read (torch: no scalar-of-a-graph warning)
    dtype = result.explained_variance.dtype
    underflow = 0 <= first < float(xp.finfo(dtype).smallest_normal)
    if math.isinf(first) or (underflow and singular > 0):
        how = "overflows to inf" if math.isinf(first) else "underflows below the normal range"
        msg = (
            f"`explained_variance` {how} in {dtype}: the variance of `X` "
            f"(singular value² / (N − 1)) is beyond what {dtype} holds; the components, "
            "explained_variance_ratio, singular_values and mean are right"
        )
        warn(msg, RuntimeWarning)
    return result


@_xp.full_precision
def reconstruct(X: Array, result: PCAResult) -> Array:
    """Return the course's reconstruction: ``X̄·Cᵀ·C + mean``, the rows projected onto the components.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import pca, reconstruct
    >>> X = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.1]])
    >>> np.round(reconstruct(X, pca(X, 1)), 2)
    array([[1.01, 0.99],
           [1.98, 2.02],
           [3.01, 3.09]])
    """
    _, _, scale, projected, _ = _projection(X, result)
    return (projected if scale is None else projected / scale) + result.mean


@_xp.full_precision
def reconstruction_error(X: Array, result: PCAResult) -> Array:
    """Return the course's error: the squared L2 error per row of :func:`reconstruct`, averaged.

    On the data the components were fitted to it equals the sum of the
    discarded eigenvalues of the biased covariance ``X̄ᵀX̄/N``.  The residuals are
    squared after scaling by a power of two, so the error is right at any
    magnitude it can be represented at (beyond, it is ``inf`` or ``0``).

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import pca, reconstruction_error
    >>> X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.5], [0.0, -0.5]])
    >>> float(reconstruction_error(X, pca(X, 1)))
    0.125
    """
    xp, X, scale, projected, centred = _projection(X, result)
    residual = projected - centred  # x̂ − x, on the scaled data where scaled
    error = xp.mean(xp.sum(residual * residual, axis=1))
    if scale is None:
        return error
    with warnings.catch_warnings():  # an error beyond the dtype is inf or 0, as documented
        warnings.simplefilter("ignore", RuntimeWarning)
        return _scaling.unscale(error, scale, scale, xp=xp)


def _projection(X: Array, result: PCAResult) -> tuple[Namespace, Array, Array | None, Array, Array]:
    """Check `X` against `result`; return ``(xp, X, scale, X̄CᵀC, X̄)``, the last two times `scale`."""
    if not all(hasattr(result, field) for field in ("components", "mean")):
        msg = (
            f"`result` must be a PCAResult (from pca or streaming_pca); got {type(result).__name__}"
        )
        raise TypeError(msg)
    xp = _checks.namespace(X=X, components=result.components)
    X = _checks.check_real_array(X, "X", xp=xp, ndim=2, finite=_xp.is_lazy(X))
    if X.shape[1] != result.components.shape[1]:
        msg = f"`X` must have {result.components.shape[1]} columns like the fitted data; got {tuple(X.shape)}"
        raise ValueError(msg)
    scale = working_scale(X, "X", xp=xp, also=result.mean)
    C = result.components
    centred = X - result.mean if scale is None else X * scale - result.mean * scale
    return xp, X, scale, (centred @ xp.linalg.matrix_transpose(C)) @ C, centred


def scaled_mean(X: Array, scale: Array, *, xp: Namespace) -> Array:
    """``mean(X · scale)`` over the rows, without a scaled copy of `X`."""
    return (
        _over_centred_blocks(X, None, lambda block, _rows: xp.sum(block, axis=0), scale=scale)
        / X.shape[0]
    )


def centred_scatter(X: Array, mean: Array, *, xp: Namespace, scale: Array | None = None) -> Array:
    """``(X·s − mean)ᵀ(X·s − mean)``, two-pass accurate, without an ``(N, D)`` centred copy.

    `s` is `scale` (None: 1); `mean` is that of ``X·s``.
    """
    return _over_centred_blocks(
        X, mean, lambda block, _rows: xp.linalg.matrix_transpose(block) @ block, scale=scale
    )


def centred_sum_of_squares(X: Array, mean: Array, *, xp: Namespace) -> Array:
    """``Σ‖x − mean‖²`` over the rows, without an ``(N, D)`` centred copy."""
    return _over_centred_blocks(X, mean, lambda block, _rows: xp.sum(xp.vecdot(block, block)))


def _over_centred_blocks(
    X: Array,
    mean: Array | None,
    reduce: Callable[[Array, slice], Array],
    *,
    scale: Array | None = None,
    blocks: int = 8,
) -> Array:
    """Sum over row blocks of ``reduce(X[rows]·scale − mean, rows)`` (None: no scale, no mean).

    Each centred copy is ``1/blocks`` of the input.  Dask arrays and JAX tracers
    take the one-expression form (Dask already works chunk by chunk; ``jit``
    shapes must be static).
    """

    def centred(block: Array) -> Array:
        if scale is not None:
            block = block * scale
        return block if mean is None else block - mean

    N = X.shape[0]
    if _xp.is_lazy(X) or 2 * blocks > N:
        return reduce(centred(X), slice(0, N))
    size = -(-N // blocks)
    total = None
    for start in range(0, N, size):
        rows = slice(start, min(start + size, N))  # the standard has no out-of-range stops
        part = reduce(centred(X[rows, :]), rows)
        total = part if total is None else total + part
    return total


def _n_components(value: Any, N: int, D: int, method: str) -> tuple[int, float | None]:
    """(k, fraction): the count to compute, and the variance fraction if one was asked."""
    largest = min(N, D)
    if value is None:
        return largest, None
    if isinstance(value, float) and not value.is_integer():
        if not 0 < value < 1:
            msg = f"`n_components` as a fraction of the variance must be in (0, 1); got {value}"
            raise ValueError(msg)
        if method == "randomized":
            raise ValueError(
                "`n_components` as a variance fraction needs an exact method, not 'randomized'"
            )
        return largest, value
    k = _checks.check_int(value, "n_components", low=1)
    if k > largest:
        msg = f"`n_components` must be <= min(N, D) = {largest} for X of shape ({N}, {D}); got {k}"
        raise ValueError(msg)
    return k, None


def _randomized(
    X: Array, mean: Array, omega: Array, power_iterations: int, *, xp: Namespace
) -> tuple[Array, Array]:
    """Halko–Martinsson–Tropp randomized SVD of the implicitly centred `X`: ``(s, Vᵀ)``.

    `omega` is the ``(D, k + oversampling)`` Gaussian test matrix.  No ``(N, D)``
    centred copy: the power iterations centre implicitly (``X̄A = XA − 1(meanᵀA)``,
    whose rounding only perturbs the subspace), and the final projection ``QᵀX̄``,
    which sets the singular values, block by block.
    """
    row = xp.reshape(mean, (1, X.shape[1]))
    transposed = xp.linalg.matrix_transpose(X)

    def centred_times(A: Array) -> Array:  # X̄ A
        return X @ A - row @ A

    def centred_t_times(B: Array) -> Array:  # X̄ᵀ B
        return transposed @ B - xp.linalg.matrix_transpose(row) @ xp.sum(B, axis=0, keepdims=True)

    Q, _ = xp.linalg.qr(centred_times(omega))
    for _ in range(power_iterations):
        Q, _ = xp.linalg.qr(centred_t_times(Q))
        Q, _ = xp.linalg.qr(centred_times(Q))
    small = _over_centred_blocks(  # Qᵀ X̄, (width, D)
        X, mean, lambda block, rows: xp.linalg.matrix_transpose(Q[rows, :]) @ block
    )
    _U, singular, Vt = xp.linalg.svd(small, full_matrices=False)
    return singular, Vt


@_xp.fused()
def _flip_signs(components: Array, *, xp: Namespace) -> Array:
    """Each row's largest-magnitude entry positive (ties: the positive one wins)."""
    magnitude = xp.abs(components)
    largest = xp.max(magnitude, axis=1, keepdims=True)
    extreme = xp.where(magnitude == largest, components, xp.full_like(components, -math.inf))
    top = xp.max(extreme, axis=1, keepdims=True)
    return components * xp.where(top < 0, -xp.ones_like(top), xp.ones_like(top))
