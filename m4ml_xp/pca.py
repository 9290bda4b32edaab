"""Course 3 — principal component analysis.

``pca`` centres the data (subtracting the mean only), then finds the leading
directions by one of four routes: the eigendecomposition of the covariance
matrix (``X̄ᵀX̄``, the data centred *first* — two passes — so float32 keeps
about 1e-6 relative eigenvalue accuracy), the thin SVD of ``X̄``, the
eigendecomposition of the ``N × N`` Gram matrix ``X̄X̄ᵀ`` when there are fewer
samples than features (the course's trick), or a seeded randomized SVD
(Halko, Martinsson & Tropp 2011).  Signs are deterministic: each component's
largest-magnitude entry is positive, as scikit-learn's ``svd_flip``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

from m4ml_xp import _checks, _xp

Array = Any
Namespace = Any

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
        ``"auto"``: ``"covariance_eigh"`` when ``N >= D``, else ``"gram"``.
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
    X = _checks.check_real_array(X, "X", xp=xp, ndim=2)
    N, D = X.shape
    if N < 2:
        msg = f"`X` must have at least 2 samples (rows); got shape {tuple(X.shape)}"
        raise ValueError(msg)
    _checks.check_choice(method, "method", METHODS)
    if method == "auto":
        method = "covariance_eigh" if N >= D else "gram"
    if _xp.is_dask_array(X) and method != "covariance_eigh":
        msg = (
            "`method` must be 'covariance_eigh' for Dask arrays (a distributed reduction); "
            f"got {method!r}"
        )
        raise ValueError(msg)
    k, fraction = _n_components(n_components, N, D, method)
    if method == "covariance_eigh" and fraction is None:
        return _covariance_route(xp, k)(X)
    if method == "covariance_eigh":  # the count is read from the variances on the host
        mean, singular, components, total = _covariance_route(xp, None)(X)
        return finish_result(singular, components, total, mean, N, k, fraction, xp=xp)
    mean = xp.mean(X, axis=0)
    if method == "randomized":
        seed = _checks.check_int(seed if seed is not None else 0, "seed")
        oversampling = _checks.check_int(oversampling, "oversampling")
        if power_iterations is None:
            power_iterations = 7 if k < 0.1 * min(N, D) else 4
        power_iterations = _checks.check_int(power_iterations, "power_iterations")
        singular, components = _randomized(X, mean, k, seed, oversampling, power_iterations, xp=xp)
        total = centred_sum_of_squares(X, mean, xp=xp)
        return finish_result(singular, components, total, mean, N, k, fraction, xp=xp)
    if method == "svd":
        _U, singular, components = xp.linalg.svd(X - mean, full_matrices=False)
        total = xp.sum(singular * singular)
    else:  # gram
        centred = X - mean
        gram = centred @ xp.linalg.matrix_transpose(centred)
        total = xp.sum(xp.linalg.diagonal(gram))
        eigenvalues, V = _descending_eigh(gram, xp=xp)
        singular = xp.sqrt(xp.maximum(eigenvalues, xp.zeros_like(eigenvalues)))
        directions = xp.linalg.matrix_transpose(centred) @ V  # (D, N): Xcᵀv, of norm s
        lengths = xp.linalg.vector_norm(directions, axis=0)
        safe = xp.where(lengths > 0, lengths, xp.ones_like(lengths))
        components = xp.linalg.matrix_transpose(directions / safe)
    return finish_result(singular, components, total, mean, N, k, fraction, xp=xp)


@functools.lru_cache(maxsize=32)
def _covariance_route(xp: Namespace, k: int | None) -> Callable[[Array], Any]:
    """Return the covariance route as one function of `X`, compiled where the backend compiles.

    On JAX the mean, the centred ``X̄ᵀX̄``, ``eigh`` and the finish are one dispatch
    instead of some fifty small ones.  The function returns the :class:`PCAResult` of
    `k` components, or for ``k=None`` the parts ``(mean, singular values, components,
    total)`` (a variance fraction's count is read on the host).
    """

    def route(X: Array) -> Any:
        mean = xp.mean(X, axis=0)
        singular, components, total = scatter_decomposition(centred_scatter(X, mean, xp=xp), xp=xp)
        if k is None:
            return mean, singular, components, total
        return finish_result(singular, components, total, mean, X.shape[0], k, None, xp=xp)

    return _xp.compile_step(route, xp)


def scatter_decomposition(scatter: Array, *, xp: Namespace) -> tuple[Array, Array, Array]:
    """Return the covariance route from ``X̄ᵀX̄``.

    Singular values of X̄, components (rows) and the total sum of squares.
    """
    eigenvalues, V = _descending_eigh(scatter, xp=xp)
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
) -> PCAResult:
    """Finish every route: variances ÷ (N − 1), the component count, svd_flip signs.

    The count is the one a variance `fraction` asks for, else `k`.
    """
    total = total / (N - 1)
    variance = singular * singular / (N - 1)
    if fraction is not None:
        shares = _xp.to_numpy(xp.cumulative_sum(variance) / total)
        k = min(int((shares < fraction - 1e-12).sum()) + 1, variance.shape[0])
    components = _flip_signs(components[:k, :], xp=xp)
    variance, singular = variance[:k], singular[:k]
    return PCAResult(components, variance, variance / total, singular, mean)


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
    xp = _checks.namespace(X=X, components=result.components)
    X = _checks.check_real_array(X, "X", xp=xp, ndim=2)
    if X.shape[1] != result.components.shape[1]:
        msg = f"`X` must have {result.components.shape[1]} columns like the fitted data; got {tuple(X.shape)}"
        raise ValueError(msg)
    C = result.components
    return ((X - result.mean) @ xp.linalg.matrix_transpose(C)) @ C + result.mean


@_xp.full_precision
def reconstruction_error(X: Array, result: PCAResult) -> Array:
    """Return the course's error: the squared L2 error per row of :func:`reconstruct`, averaged.

    On the data the components were fitted to it equals the sum of the
    discarded eigenvalues of the biased covariance ``X̄ᵀX̄/N``.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import pca, reconstruction_error
    >>> X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.5], [0.0, -0.5]])
    >>> float(reconstruction_error(X, pca(X, 1)))
    0.125
    """
    xp = _checks.namespace(X=X, components=result.components)
    difference = reconstruct(X, result) - X
    return xp.mean(xp.sum(difference * difference, axis=1))


def centred_scatter(X: Array, mean: Array, *, xp: Namespace) -> Array:
    """``(X − mean)ᵀ(X − mean)``, two-pass accurate, without an ``(N, D)`` centred copy."""
    return _over_centred_blocks(
        X, mean, lambda block, _rows: xp.linalg.matrix_transpose(block) @ block
    )


def centred_sum_of_squares(X: Array, mean: Array, *, xp: Namespace) -> Array:
    """``Σ‖x − mean‖²`` over the rows, without an ``(N, D)`` centred copy."""
    return _over_centred_blocks(X, mean, lambda block, _rows: xp.sum(xp.vecdot(block, block)))


def _over_centred_blocks(
    X: Array, mean: Array, reduce: Callable[[Array, slice], Array], *, blocks: int = 8
) -> Array:
    """Return ``reduce(X − mean, rows)`` for a `reduce` that sums over rows, block by block.

    The sum over row blocks of ``reduce(X[rows] − mean, rows)``, so that each centred copy
    is ``1/blocks`` of the input.  Dask arrays and JAX tracers take the one-expression form (Dask already works
    chunk by chunk; ``jit`` shapes must be static).
    """
    N = X.shape[0]
    if _xp.is_lazy(X) or 2 * blocks > N:
        return reduce(X - mean, slice(0, N))
    size = -(-N // blocks)
    total = None
    for start in range(0, N, size):
        rows = slice(start, min(start + size, N))  # the standard has no out-of-range stops
        part = reduce(X[rows, :] - mean, rows)
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


def _descending_eigh(S: Array, *, xp: Namespace) -> tuple[Array, Array]:
    """Eigenvalues (descending) and eigenvectors (columns) of a symmetric matrix."""
    eigenvalues, V = _xp.eigh(S, xp=xp)
    return xp.flip(eigenvalues, axis=0), xp.flip(V, axis=1)


def _randomized(
    X: Array,
    mean: Array,
    k: int,
    seed: int,
    oversampling: int,
    power_iterations: int,
    *,
    xp: Namespace,
) -> tuple[Array, Array]:
    """Halko–Martinsson–Tropp randomized SVD of the implicitly centred `X`.

    A sketch of the range, QR-normalised power iterations, a small SVD; returns the leading singular values and right singular vectors (rows).

    No ``(N, D)`` centred copy is made: the power iterations centre implicitly
    (``X̄A = XA − 1(meanᵀA)``, whose rounding — eps relative to the uncentred rows —
    only perturbs the subspace), and the final projection ``QᵀX̄``, which sets the
    singular values, centres block by block.
    """
    N, D = X.shape
    width = min(k + oversampling, N, D)
    row = xp.reshape(mean, (1, D))
    transposed = xp.linalg.matrix_transpose(X)

    def centred_times(A: Array) -> Array:  # X̄ A
        return X @ A - row @ A

    def centred_t_times(B: Array) -> Array:  # X̄ᵀ B
        return transposed @ B - xp.linalg.matrix_transpose(row) @ xp.sum(B, axis=0, keepdims=True)

    omega = _xp.generator(seed).standard_normal((D, width))
    Q, _ = xp.linalg.qr(centred_times(xp.asarray(omega, dtype=X.dtype, device=_xp.device(X))))
    for _ in range(power_iterations):
        Q, _ = xp.linalg.qr(centred_t_times(Q))
        Q, _ = xp.linalg.qr(centred_times(Q))
    small = _over_centred_blocks(  # Qᵀ X̄, (width, D)
        X, mean, lambda block, rows: xp.linalg.matrix_transpose(Q[rows, :]) @ block
    )
    _U, singular, Vt = xp.linalg.svd(small, full_matrices=False)
    return singular, Vt


def _flip_signs(components: Array, *, xp: Namespace) -> Array:
    """Each row's largest-magnitude entry positive (ties: the positive one wins)."""
    magnitude = xp.abs(components)
    largest = xp.max(magnitude, axis=1, keepdims=True)
    extreme = xp.where(magnitude == largest, components, xp.full_like(components, -math.inf))
    top = xp.max(extreme, axis=1, keepdims=True)
    return components * xp.where(top < 0, -xp.ones_like(top), xp.ones_like(top))
