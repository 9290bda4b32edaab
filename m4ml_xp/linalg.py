"""Course 1 — linear algebra: transformations, Gram–Schmidt, echelon form, eigenvectors.

Conventions (see COURSE.md): vectors of a basis are the *columns* of a matrix;
2-D transformations act on ``(x, y)`` column vectors.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, NamedTuple

from m4ml_xp import _checks, _scaling, _xp
from m4ml_xp._xp import (
    device,
    evaluate,
    namespace_for,
)
from m4ml_xp.errors import report_non_convergence

Array = Any
Namespace = Any

__all__ = [
    "EigResult",
    "change_of_basis",
    "gram_schmidt",
    "is_singular",
    "power_iteration",
    "reflection_matrix",
    "rotation_matrix",
    "row_echelon",
    "scaling_matrix",
    "shear_matrix",
    "span_dimension",
    "transform_image",
]


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


# --------------------------------------------------------------------------- helpers
#: Factor on ``max(m, n) · eps · scale`` in the default rank tolerances: rounding
#: in elimination and orthogonalisation grows with the conditioning of the leading
#: columns, and 64 separated the rank of every well-posed random case we tried.
_RANK_SAFETY = 64


def _parameter(
    value: Any, name: str, *, xp: Namespace | None, device_: Any, dtype: Any
) -> tuple[Array, Namespace]:
    """Return a transformation parameter (Python number, sequence or array) as an array."""
    if isinstance(value, list | tuple):
        for item in value:
            _checks.check_real(item, f"{name}[...]", finite=True)
        xp = namespace_for(xp)
        dtype = _checks.check_float_dtype(dtype, xp=xp, device=device_)
        return xp.asarray([float(v) for v in value], dtype=dtype, device=device_), xp
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        _checks.check_real(value, name, finite=True)
        xp = namespace_for(xp)
        dtype = _checks.check_float_dtype(dtype, xp=xp, device=device_)
        return xp.asarray(float(value), dtype=dtype, device=device_), xp
    xp = _checks.namespace(**{name: value})
    array = _checks.check_real_array(value, name, xp=xp, allow_empty=True, small=True)
    if dtype is not None:
        array = xp.astype(array, dtype)
    return array, xp


def _eps(x: Array, xp: Namespace) -> float:
    return float(xp.finfo(x.dtype).eps)


# Device-aware copies of m4ml_xp._scaling's kernels: its `power_of_two_scale`
# builds its base 2.0 on the default device, which fails for arrays elsewhere
# (array-api-strict's "device1", a second GPU).  Same mathematics, base built
# with `full_like` so that it lives where the data lives.
def _flip_sign(v: Array, xp: Namespace) -> Array:
    """Make the largest-|component| entry of the vector `v` positive (like ``svd_flip``)."""
    largest = xp.take(v, xp.argmax(xp.abs(v))[None])[0]
    return xp.where(largest < 0, -v, v)


# --------------------------------------------------------------------------- transformations
def rotation_matrix(
    theta: float | Array, *, xp: Namespace | None = None, device: Any = None, dtype: Any = None
) -> Array:
    """2-D rotation by `theta` radians, counter-clockwise.

    Parameters
    ----------
    theta : float or array
        Angle in radians.  An array of angles of shape ``S`` gives a stack of
        matrices of shape ``S + (2, 2)``.
    xp, device, dtype : optional
        Namespace, device and dtype of the result when `theta` is a Python number
        (default NumPy, its default device and float).

    Returns
    -------
    array
        ``[[cos θ, -sin θ], [sin θ, cos θ]]``.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import rotation_matrix
    >>> np.round(rotation_matrix(np.pi / 2) @ np.asarray([1.0, 0.0]), 12)
    array([0., 1.])
    """
    angle, xp = _parameter(theta, "theta", xp=xp, device_=device, dtype=dtype)
    c, s = xp.cos(angle), xp.sin(angle)
    rows = [xp.stack([c, -s], axis=-1), xp.stack([s, c], axis=-1)]
    return xp.stack(rows, axis=-2)


def scaling_matrix(
    factors: Any, *, xp: Namespace | None = None, device: Any = None, dtype: Any = None
) -> Array:
    """Diagonal scaling matrix ``diag(factors)``.

    Parameters
    ----------
    factors : sequence of float or 1-D array
        Scale factor along each axis.
    xp, device, dtype : optional
        Namespace, device and dtype when `factors` is a Python sequence.

    Returns
    -------
    array
        Square matrix of shape ``(n, n)``.

    Examples
    --------
    >>> from m4ml_xp import scaling_matrix
    >>> scaling_matrix([2.0, 0.5])
    array([[2. , 0. ],
           [0. , 0.5]])
    """
    values, xp = _parameter(factors, "factors", xp=xp, device_=device, dtype=dtype)
    if values.ndim != 1 or values.shape[0] == 0:
        msg = f"`factors` must be a non-empty 1-D sequence; got shape {tuple(values.shape)}"
        raise ValueError(msg)
    n = values.shape[0]
    return xp.eye(n, dtype=values.dtype, device=_xp.device(values)) * values[None, :]


def shear_matrix(
    k: float,
    axis: int = 0,
    *,
    xp: Namespace | None = None,
    device: Any = None,
    dtype: Any = None,
) -> Array:
    """2-D shear matrix.

    Parameters
    ----------
    k : float
        Shear factor.
    axis : {0, 1}
        0 shears along x (``x' = x + k·y``), 1 along y (``y' = y + k·x``).
    xp, device, dtype : optional
        Namespace, device and dtype of the result.

    Returns
    -------
    array
        ``[[1, k], [0, 1]]`` for ``axis=0``, ``[[1, 0], [k, 1]]`` for ``axis=1``.

    Examples
    --------
    >>> from m4ml_xp import shear_matrix
    >>> shear_matrix(0.5)
    array([[1. , 0.5],
           [0. , 1. ]])
    """
    _checks.check_choice(axis, "axis", (0, 1))
    value, xp = _parameter(k, "k", xp=xp, device_=device, dtype=dtype)
    if value.ndim != 0:
        msg = f"`k` must be a scalar; got shape {tuple(value.shape)}"
        raise ValueError(msg)
    one, zero = xp.ones_like(value), xp.zeros_like(value)
    rows = [[one, value], [zero, one]] if axis == 0 else [[one, zero], [value, one]]
    return xp.stack([xp.stack(row) for row in rows])


@_xp.full_precision
def reflection_matrix(basis: Array) -> Array:
    """Reflection in the span of all columns of `basis` but the last.

    ``E = gram_schmidt(basis)``, ``T = E · diag(1, …, 1, −1) · Eᵀ`` — the course's
    mirror: the component along the last orthonormalised column flips sign.

    Parameters
    ----------
    basis : (n, n) array
        Linearly independent columns.

    Returns
    -------
    (n, n) array
        Symmetric orthogonal matrix with ``T @ T = I``.

    Raises
    ------
    ValueError
        If the columns of `basis` are linearly dependent.

    Notes
    -----
    Scale-invariant: ``reflection_matrix(c · basis)`` is ``reflection_matrix(basis)``
    for any finite ``c ≠ 0`` (the columns are orthonormalised by
    :func:`gram_schmidt`, which scales `basis` by a power of two first).

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import reflection_matrix
    >>> reflection_matrix(np.eye(2)) @ np.asarray([3.0, 4.0])
    array([ 3., -4.])
    """
    xp = _checks.namespace(basis=basis)
    basis = _checks.check_real_array(basis, "basis", xp=xp, ndim=2, square=True, small=True)
    E = gram_schmidt(basis)
    n = basis.shape[0]
    if not _xp.is_traced(E) and _count_nonzero_columns(E, xp) < n:
        msg = "`basis` must have linearly independent columns; they span fewer than n dimensions"
        raise ValueError(msg)
    flipped = xp.arange(n, device=device(E)) == n - 1
    return (xp.where(flipped[None, :], -E, E)) @ E.T


# --------------------------------------------------------------------------- images
def transform_image(
    images: Array,
    T: Array,
    *,
    order: int = 1,
    mode: str = "constant",
    cval: float = 0.0,
    image_shape: tuple[int, int] | None = None,
) -> Array:
    """Apply a 2×2 transformation to an image or a batch of images about their centre.

    Inverse mapping: each output pixel samples the input at ``T⁻¹`` of its
    position, with bilinear (``order=1``) or nearest (``order=0``) interpolation.
    Positions are ``(x, y)`` with x along columns and y *up* the rows, measured from
    the image centre ``((W−1)/2, (H−1)/2)``, so ``rotation_matrix(θ)`` turns the
    picture counter-clockwise as displayed.

    Parameters
    ----------
    images : (H, W) or (N, H, W) array, or (H·W,) or (N, H·W) with `image_shape`
        One image or a batch; integers are promoted to the default float.
        Flat rows (``load_mnist``'s (N, 784)) need ``image_shape=(28, 28)``: a
        2-D array whose width is a square number s² (s ≥ 4) other than its
        height is refused rather than read as one N×784 image (pass
        ``images[None, ...]`` for one such wide image).
    T : (2, 2) array
        Invertible transformation (rotation, scaling, shear, reflection, ...),
        of any finite magnitude: it is scaled by a power of two before its
        determinant is formed, so ``1e200 · I`` is invertible, not singular.
    order : {1, 0}
        1 for bilinear interpolation, 0 for nearest neighbour.
    mode : {"constant", "grid-constant"}
        As in :func:`scipy.ndimage.affine_transform`: ``"constant"`` gives `cval`
        to samples outside the input grid ``[0, H−1] × [0, W−1]``;
        ``"grid-constant"`` treats pixels outside as `cval` and interpolates
        across the border.
    cval : float
        Value outside the image.
    image_shape : (H, W) tuple of int, optional
        The shape of each image when `images` holds flattened rows.

    Returns
    -------
    array
        Same shape as `images`, floating dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import rotation_matrix, transform_image
    >>> image = np.zeros((3, 3)); image[1, 2] = 1.0       # a dot right of centre
    >>> transform_image(image, rotation_matrix(np.pi / 2))  # now above centre
    array([[0., 1., 0.],
           [0., 0., 0.],
           [0., 0., 0.]])
    >>> flat = np.zeros((5, 9)); flat[:, 5] = 1.0         # five flattened 3×3 dots
    >>> transform_image(flat, rotation_matrix(np.pi / 2), image_shape=(3, 3))[0]
    array([0., 1., 0., 0., 0., 0., 0., 0., 0.])
    """
    xp = _checks.namespace(images=images, T=T)
    if image_shape is None:
        images = _checks.check_real_array(images, "images", xp=xp, ndim=(2, 3), allow_bool=True)
        height, width = images.shape[-2], images.shape[-1]
        side = math.isqrt(width)
        if images.ndim == 2 and side >= 4 and side * side == width and height != width:
            msg = (
                f"`images` of shape {tuple(images.shape)} looks like {height} flattened "
                f"{side}×{side} images, not one {height}×{width} image: pass "
                f"image_shape=({side}, {side}) for flat rows (or images[None, ...] for one image)"
            )
            raise ValueError(msg)
    else:
        height, width = _image_shape(image_shape)
        images = _checks.check_real_array(images, "images", xp=xp, ndim=(1, 2), allow_bool=True)
        if images.shape[-1] != height * width:
            msg = (
                f"`images` rows must hold {height}×{width} = {height * width} pixels "
                f"(image_shape); got shape {tuple(images.shape)}"
            )
            raise ValueError(msg)
    _checks.check_choice(order, "order", (0, 1))
    _checks.check_choice(mode, "mode", ("constant", "grid-constant"))
    cval = _checks.check_real(cval, "cval")
    if tuple(T.shape) != (2, 2):
        msg = f"`T` must be a 2×2 matrix; got shape {tuple(T.shape)}"
        raise ValueError(msg)
    T = _checks.check_real_array(T, "T", xp=xp, small=True)
    dtype = images.dtype
    # T = T_s / s with max|T_s| ≈ 1: its determinant neither overflows nor
    # underflows, and T⁻¹ = s · T_s⁻¹.  The scale is clamped into the images'
    # dtype so that a float64 transform beyond float32's range keeps 0 · s = 0.
    T, inverse_scale = _scaling.scaled(T, xp=xp)
    info = xp.finfo(dtype)
    inverse_scale = xp.astype(
        xp.clip(inverse_scale, float(info.smallest_normal), float(info.max)), dtype
    )
    T = xp.astype(T, dtype)
    a, b, c, d = T[0, 0], T[0, 1], T[1, 0], T[1, 1]
    det = a * d - b * c
    scale = xp.max(xp.abs(T))
    _checks.check_bool_result(
        xp.abs(det) > 4 * _eps(T, xp) * scale * scale,
        "`T` must be invertible; its determinant is 0",
        small=True,
    )
    dev = device(images)
    rows = xp.arange(height, dtype=dtype, device=dev)
    cols = xp.arange(width, dtype=dtype, device=dev)
    centre_r, centre_c = (height - 1) / 2, (width - 1) / 2
    # output pixel -> (x, y) about the centre -> T⁻¹ -> source (row, col)
    y = xp.reshape(centre_r - rows, (height, 1))
    x = xp.reshape(cols - centre_c, (1, width))
    src_x = (d * x - b * y) / det * inverse_scale
    src_y = (a * y - c * x) / det * inverse_scale
    src_r = xp.reshape(centre_r - src_y, (-1,))
    src_c = xp.reshape(centre_c + src_x, (-1,))

    flat = xp.reshape(images, (-1, height * width))
    if order == 0:
        samples = [(xp.floor(src_r + 0.5), xp.floor(src_c + 0.5), None)]
    else:
        r0, c0 = xp.floor(src_r), xp.floor(src_c)
        fr, fc = src_r - r0, src_c - c0
        samples = [
            (r0, c0, (1 - fr) * (1 - fc)),
            (r0, c0 + 1, (1 - fr) * fc),
            (r0 + 1, c0, fr * (1 - fc)),
            (r0 + 1, c0 + 1, fr * fc),
        ]
    indexing = xp.__array_namespace_info__().default_dtypes(device=dev)["indexing"]
    out = xp.zeros((flat.shape[0], height * width), dtype=dtype, device=dev)
    inside_total = xp.zeros(height * width, dtype=dtype, device=dev)
    for r, c, weight in samples:
        inside = (r >= 0) & (r <= height - 1) & (c >= 0) & (c <= width - 1)
        index = xp.astype(xp.clip(r, 0, height - 1) * width + xp.clip(c, 0, width - 1), indexing)
        w = xp.ones_like(r) if weight is None else weight
        w_inside = xp.where(inside, w, 0.0)
        out = out + xp.take(flat, index, axis=1) * w_inside[None, :]
        inside_total = inside_total + w_inside
    if mode == "constant":
        on_grid = (src_r >= 0) & (src_r <= height - 1) & (src_c >= 0) & (src_c <= width - 1)
        out = xp.where(on_grid[None, :], out, cval)
    elif cval != 0.0:
        out = out + cval * (1 - inside_total)[None, :]
    return xp.reshape(out, images.shape)


def _image_shape(image_shape: Any) -> tuple[int, int]:
    """`image_shape` checked: two positive integers."""
    if (
        not isinstance(image_shape, tuple | list)
        or len(image_shape) != 2
        or not all(isinstance(n, int) and not isinstance(n, bool) for n in image_shape)
    ):
        msg = f"`image_shape` must be a tuple of two ints (H, W); got {image_shape!r}"
        raise TypeError(msg)
    if min(image_shape) < 1:
        msg = f"`image_shape` must be positive; got {tuple(image_shape)}"
        raise ValueError(msg)
    return int(image_shape[0]), int(image_shape[1])


# --------------------------------------------------------------------------- Gram–Schmidt
@_xp.full_precision
def gram_schmidt(A: Array, *, tol: float | None = None) -> Array:
    """Orthonormalise the columns of `A`, left to right (modified Gram–Schmidt).

    Each column has its components along the already-produced columns removed
    (using the updated vector, the *modified* variant), then is normalised if its
    norm exceeds `tol`; otherwise it becomes an exact zero column.  The output
    has `A`'s shape: no reordering, no sign flips, no dropped columns.

    Parameters
    ----------
    A : (m, n) array
        Columns to orthonormalise.
    tol : float, optional
        Absolute norm below which a column counts as dependent.  The course uses
        ``1e-14``; the default is relative, ``64 · max(m, n) · eps · max column
        norm``, so that it works for float32 and for matrices of any scale.

    Notes
    -----
    Any finite magnitude works: `A` is scaled by a power of two so that its
    largest entry is about 1 (exact, LAPACK's ``xLASCL``) and every column norm
    is taken BLAS-``nrm2`` style, so ``gram_schmidt(c · A) == gram_schmidt(A)``
    for any finite ``c ≠ 0`` — the output is orthonormal, nothing to undo — and
    an absolute `tol` is compared in `A`'s own units.

    Each column is projected twice against the earlier ones ("twice is
    enough"): in exact arithmetic the second pass removes nothing, in floating
    point it keeps the output orthonormal to working precision.  Because the
    column order is fixed (as in the course), a column that is *nearly*
    dependent on earlier ones amplifies rounding in later ones; the rank it
    reveals is then less reliable than an SVD's.

    Returns
    -------
    (m, n) array
        Orthonormal or zero columns spanning the same space as `A`.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import gram_schmidt
    >>> gram_schmidt(np.asarray([[1.0, 2.0, 1.0], [0.0, 0.0, 1.0]]))
    array([[1., 0., 0.],
           [0., 0., 1.]])
    """
    xp = _checks.namespace(A=A)
    A = _checks.check_real_array(A, "A", xp=xp, ndim=2, allow_empty=True)
    m, n = A.shape
    if tol is not None:
        tol = _checks.check_real(tol, "tol", low=0.0)
    if m == 0 or n == 0:
        return A
    A, scale = _scaling.scaled(A, xp=xp)  # max|A| ≈ 1: no norm over- or underflows
    if tol is None:
        column_norms = _scaling.vector_norm(A, xp=xp, axis=0)
        threshold = _RANK_SAFETY * max(m, n) * _eps(A, xp) * xp.max(column_norms)
    else:
        threshold = tol * scale  # the caller's units, in the scaled ones
    columns: list[Array] = []
    remaining = A
    for _ in range(n):
        v = remaining[:, 0]
        if columns:
            # A second projection pass ("twice is enough") removes what rounding left
            # of the earlier directions; exact arithmetic would remove nothing.
            Q = xp.stack(columns, axis=1)
            v = v - Q @ (v @ Q)
        norm = _scaling.vector_norm(v, xp=xp)
        keep = norm > threshold
        e = xp.where(keep, v / xp.where(keep, norm, 1.0), 0.0)
        columns.append(e)
        rest = remaining[:, 1:]
        remaining = rest - e[:, None] * (e @ rest)[None, :]
    return xp.stack(columns, axis=1)


def _count_nonzero_columns(E: Array, xp: Namespace) -> int:
    return int(xp.count_nonzero(xp.any(E != 0, axis=0)))


@_xp.full_precision
def span_dimension(A: Array, *, tol: float | None = None) -> int:
    """Dimension of the space spanned by the columns of `A`.

    The number of non-zero columns of :func:`gram_schmidt` ``(A, tol=tol)``.

    Parameters
    ----------
    A : (m, n) array
        Spanning vectors as columns.
    tol : float, optional
        Passed to :func:`gram_schmidt`.

    Returns
    -------
    int

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import span_dimension
    >>> span_dimension(np.asarray([[1.0, 2.0], [2.0, 4.0]]))
    1
    """
    xp = _checks.namespace(A=A)
    return _count_nonzero_columns(gram_schmidt(A, tol=tol), xp)


# --------------------------------------------------------------------------- echelon form
def _echelon(A: Array, tol: float | None, xp: Namespace) -> tuple[Array, int]:
    """Row echelon form with unit pivots by partial pivoting; returns (U, rank)."""
    m, n = A.shape
    dev = device(A)
    # Unit pivots make U invariant under A → c·A: scale by a power of two so that
    # max|A| ≈ 1 (exact) and no elimination step over- or underflows; nothing to undo.
    A, scale = _scaling.scaled(A, xp=xp)
    if tol is None:
        threshold = _RANK_SAFETY * max(m, n) * _eps(A, xp) * float(_scaling.max_abs(A, xp=xp))
    else:
        threshold = _checks.check_real(tol, "tol", low=0.0) * float(scale)
    row_ids = xp.reshape(xp.arange(m, device=dev), (m, 1))
    U = A
    rank = 0
    for j in range(n):
        if rank == m:
            break
        column = xp.abs(U[rank:, j])
        offset = int(xp.argmax(column))
        if float(column[offset]) <= threshold:
            continue
        pivot = rank + offset
        if pivot != rank:  # swap rows `rank` and `pivot` by a permutation, not in place
            order = list(range(m))
            order[rank], order[pivot] = pivot, rank
            U = xp.take(U, xp.asarray(order, device=dev), axis=0)
        pivot_row = U[rank, :] / U[rank, j]
        factors = xp.where(row_ids > rank, U[:, j : j + 1], 0.0)
        U = xp.where(row_ids == rank, pivot_row[None, :], U - factors * pivot_row[None, :])
        # entries eliminated below the pivot are exactly zero, not rounding residue
        below = (row_ids > rank) & (xp.reshape(xp.arange(n, device=dev), (1, n)) == j)
        U = xp.where(below, 0.0, U)
        rank += 1
    U = xp.where(row_ids >= rank, 0.0, U)
    return U, rank


def row_echelon(A: Array, *, tol: float | None = None) -> Array:
    """Row echelon form of `A` with unit pivots (partial pivoting).

    The course divides by pivots and tests them against exactly 0, which
    misclassifies floating-point rank-deficient matrices; here a pivot counts as
    zero when below a *relative* tolerance, and rows below the rank are zeroed.

    Parameters
    ----------
    A : (m, n) array
    tol : float, optional
        Absolute pivot tolerance; default ``64 · max(m, n) · eps · max|A|``.

    Returns
    -------
    (m, n) array
        Upper echelon form: each non-zero row starts with a 1, further right
        than the row above; zero rows last.

    Notes
    -----
    Scale-invariant (``row_echelon(c · A) == row_echelon(A)`` for any finite
    ``c ≠ 0``): `A` is scaled by a power of two so that ``max|A| ≈ 1`` first,
    and an absolute `tol` is compared in `A`'s own units.

    The pivot search reads one value per column back to the host, so this
    function (and :func:`is_singular`) cannot run under ``jax.jit``.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import row_echelon
    >>> row_echelon(np.asarray([[1.0, 2.0], [2.0, 4.0]]))
    array([[1., 2.],
           [0., 0.]])
    """
    xp = _checks.namespace(A=A)
    A = _checks.check_real_array(A, "A", xp=xp, ndim=2, small=True)
    return _echelon(A, tol, xp)[0]


def is_singular(A: Array, *, tol: float | None = None) -> bool:
    """Whether the square matrix `A` is (numerically) singular.

    True when the echelon form has a zero pivot under the relative tolerance of
    :func:`row_echelon`; agrees with the exact answer on integer matrices.  No
    determinant is formed, so it neither overflows nor underflows: the answer
    for ``c · A`` is the answer for `A` at any finite ``c ≠ 0``.

    Parameters
    ----------
    A : (n, n) array
    tol : float, optional
        Absolute pivot tolerance, as in :func:`row_echelon`.

    Returns
    -------
    bool

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import is_singular
    >>> is_singular(np.asarray([[1.0, 2.0], [2.0, 4.0]])), is_singular(np.eye(2))
    (True, False)
    """
    xp = _checks.namespace(A=A)
    A = _checks.check_real_array(A, "A", xp=xp, ndim=2, square=True, small=True)
    return _echelon(A, tol, xp)[1] < A.shape[0]


@_xp.full_precision
def change_of_basis(r: Array, B: Array) -> Array:
    """Coordinates of `r` in the basis formed by the columns of `B`.

    Solves ``B c = r``; for an orthogonal basis each coordinate equals the
    projection ``r·bᵢ / |bᵢ|²``.  `B` and `r` are each scaled by a power of two
    to a largest entry about 1 before the solve and the ratio is applied after,
    so any finite magnitudes work; coordinates beyond the dtype's range are ±inf.

    Parameters
    ----------
    r : (n,) or (n, k) array
        Vector(s) in the standard basis.
    B : (n, n) array
        Basis vectors as columns.

    Returns
    -------
    array
        Coordinates, same shape as `r`.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import change_of_basis
    >>> change_of_basis(np.asarray([3.0, 4.0]), np.asarray([[2.0, -2.0], [1.0, 4.0]]))
    array([2. , 0.5])
    """
    xp = _checks.namespace(r=r, B=B)
    B = _checks.check_real_array(B, "B", xp=xp, ndim=2, square=True, small=True)
    r = _checks.check_real_array(r, "r", xp=xp, ndim=(1, 2), small=True)
    if r.shape[0] != B.shape[0]:
        msg = f"`r` must have {B.shape[0]} rows to match `B` {tuple(B.shape)}; got shape {tuple(r.shape)}"
        raise ValueError(msg)
    dtype = xp.result_type(r, B)
    r, B = xp.astype(r, dtype), xp.astype(B, dtype)
    if not _xp.is_traced(B) and _echelon(B, None, xp)[1] < B.shape[0]:
        msg = "`B` is singular: its columns are linearly dependent and not a basis"
        raise ValueError(msg)
    # c = B⁻¹ r = (s_B / s_r) · B_s⁻¹ r_s with B_s, r_s scaled to max ≈ 1 (exact).
    B, scale_B = _scaling.scaled(B, xp=xp)
    r, scale_r = _scaling.scaled(r, xp=xp)
    coordinates = xp.linalg.solve(B, r[:, None])[:, 0] if r.ndim == 1 else xp.linalg.solve(B, r)
    return _scaling.unscale(coordinates, scale_r, 1 / scale_B, xp=xp)


# --------------------------------------------------------------------------- power iteration
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
        x = _xp.standard_normal(_checks.check_seed(seed), (n,), xp=xp, device=dev, dtype=A.dtype)
    else:
        x = _checks.check_real_array(x0, "x0", xp=xp, ndim=1, small=True)
        if x.shape[0] != n:
            msg = f"`x0` must have length {n} to match `A`; got shape {tuple(x.shape)}"
            raise ValueError(msg)
        x = xp.astype(x, A.dtype)
    eps = _eps(A, xp)
    tol = eps ** (2 / 3) if tol is None else _checks.check_real(tol, "tol", low=0.0, low_open=True)
    # Iterate on A_s = s·A (max|A_s| ≈ 1, exact): A x never over- or underflows; λ = λ_s / s.
    A, scale = _scaling.scaled(A, xp=xp)
    norm = _scaling.vector_norm(x, xp=xp)
    _checks.check_bool_result(norm > 0, "`x0` must not be the zero vector", small=True)
    x = x / norm
    every = _xp.check_interval(xp, dev)
    eigenvalue = xp.zeros((), dtype=A.dtype, device=dev)
    converged = False
    n_iter = 0
    null_start = False
    while n_iter < max_iter:
        y = A @ x
        eigenvalue = xp.sum(x * y)
        residual = xp.linalg.vector_norm(y - eigenvalue * x)
        y_norm = xp.linalg.vector_norm(y)
        n_iter += 1
        if n_iter % every == 0 or n_iter == max_iter:
            residual_, eigenvalue_, y_norm_ = _xp.to_host(xp.stack([residual, eigenvalue, y_norm]))
            if y_norm_ == 0.0:
                null_start = True  # A x = 0: the iteration cannot leave the null space
                break
            if residual_ <= tol * abs(eigenvalue_):
                converged = True
                break
        x = y / xp.where(y_norm > 0, y_norm, 1.0)
        (x,) = evaluate(x)
    status, message = 0, "converged: the residual ‖Ax − λx‖ is at most tol·|λ|"
    if not converged:
        status, message = (
            (2, "the start vector is in the null space of `A`; pass another `x0` or `seed`")
            if null_start
            else (
                1,
                f"no convergence in {n_iter} iterations (the two largest eigenvalues "
                "may have equal modulus)",
            )
        )
        report_non_convergence(
            f"power iteration: {message}", raise_on_failure=raise_on_failure, stacklevel=2
        )
    return EigResult(eigenvalue / scale, _flip_sign(x, xp), n_iter, converged, status, message)
