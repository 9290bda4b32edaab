"""Course 1 — linear algebra, bases: Gram–Schmidt, span, echelon form, change of basis.

Conventions (see COURSE.md): vectors of a basis are the *columns* of a matrix.
:mod:`m4ml_xp.linalg` gathers this module, :mod:`m4ml_xp.transformations` and
:mod:`m4ml_xp.eigen`.
"""

from __future__ import annotations

from m4ml_xp import _checks, _scaling, _xp
from m4ml_xp._xp import Array, Namespace, device

__all__ = ["change_of_basis", "gram_schmidt", "is_singular", "row_echelon", "span_dimension"]


# --------------------------------------------------------------------------- helpers
#: Factor on ``max(m, n) · eps · scale`` in the default rank tolerances: rounding
#: in elimination and orthogonalisation grows with the conditioning of the leading
#: columns, and 64 separated the rank of every well-posed random case we tried.
_RANK_SAFETY = 64


def _eps(x: Array, xp: Namespace) -> float:
    return float(xp.finfo(x.dtype).eps)


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
    return _orthonormal_columns(A, tol=tol, xp=xp)


@_xp.fused("tol")
def _orthonormal_columns(A: Array, *, tol: float | None, xp: Namespace) -> Array:
    """Orthonormalise a non-empty `A` (modified Gram–Schmidt, two passes; one program on JAX)."""
    m, n = A.shape
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
        if columns:  # the second projection pass (see Notes)
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
def _echelon(A: Array, tol: float | None, xp: Namespace) -> tuple[Array, Array]:
    """Row echelon form with unit pivots by partial pivoting; returns (U, rank), rank 0-d."""
    m, n = A.shape
    A, scale = _scaling.scaled(A, xp=xp)  # unit pivots: nothing to undo (row_echelon's Notes)
    if tol is None:
        threshold = _RANK_SAFETY * max(m, n) * _eps(A, xp) * _scaling.max_abs(A, xp=xp)
    else:
        threshold = _checks.check_real(tol, "tol", low=0.0) * scale
    # Dask: the matrix (small, read whole) computed once and eliminated by its chunks' library
    return _xp.host_driven(_eliminate_with, (), (xp,), (A, threshold), xp=xp)


def _eliminate_with(xp: Namespace, A: Array, threshold: Array) -> tuple[Array, Array]:
    return _eliminate(A, threshold, xp=xp)


@_xp.fused()
def _eliminate(A: Array, threshold: Array, *, xp: Namespace) -> tuple[Array, Array]:
    """Gaussian elimination of the scaled `A`, one column a step, every step the same shapes.

    A step whose column has no pivot above `threshold` (or that comes after the
    last row) changes nothing, so the loop reads nothing back to the host: one
    program on JAX (a ``fori_loop``), no per-column synchronisation on GPUs.
    """
    m, n = A.shape
    rows = xp.arange(m, device=device(A))
    row_ids = xp.reshape(rows, (m, 1))
    col_ids = xp.reshape(xp.arange(n, device=device(A)), (1, n))

    def column(U: Array, j: Array) -> Array:
        return xp.take(U, xp.reshape(j, (1,)), axis=1)  # (m, 1)

    def step(state: tuple[Array, Array, Array]) -> tuple[Array, Array, Array]:
        U, rank, j = state
        candidates = xp.where(rows >= rank, xp.abs(column(U, j)[:, 0]), -1.0)
        pivot = xp.argmax(candidates)
        found = (rank < m) & (xp.max(candidates) > threshold)
        # swap rows `rank` and `pivot` by a permutation, not in place
        to_pivot, to_rank = found & (rows == rank), found & (rows == pivot)
        order = xp.where(to_pivot, pivot, xp.where(to_rank, rank, rows))
        swapped = xp.take(U, order, axis=0)
        head = xp.take(swapped, xp.reshape(rank, (1,)) % m, axis=0)  # (1, n)
        lead = column(head, j)
        pivot_row = head / xp.where(found, lead, 1.0)
        factors = xp.where(row_ids > rank, column(swapped, j), 0.0)
        eliminated = xp.where(row_ids == rank, pivot_row, swapped - factors * pivot_row)
        # entries eliminated below the pivot are exactly zero, not rounding residue
        eliminated = xp.where((row_ids > rank) & (col_ids == j), 0.0, eliminated)
        U = xp.where(found, eliminated, U)
        return U, rank + xp.astype(found, rank.dtype), j + 1

    zero = xp.zeros((), dtype=rows.dtype, device=device(A))
    U, rank, _ = _xp.repeat(step, (A, zero, zero), n, xp=xp)
    return xp.where(row_ids >= rank, 0.0, U), rank


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

    Every column is one step of the same shapes and nothing is read back to the
    host, so it runs under ``jax.jit`` (compiled once per shape; :func:`is_singular`
    reads the rank).

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
    return int(_echelon(A, tol, xp)[1]) < A.shape[0]


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
    rank = None if _xp.is_traced(B) else _echelon(B, None, xp)[1]  # a constant under jit: staged
    if rank is not None and not _xp.is_traced(rank) and int(rank) < B.shape[0]:
        msg = "`B` is singular: its columns are linearly dependent and not a basis"
        raise ValueError(msg)
    # c = B⁻¹ r = (s_B / s_r) · B_s⁻¹ r_s with B_s, r_s scaled to max ≈ 1 (exact).
    B, scale_B = _scaling.scaled(B, xp=xp)
    r, scale_r = _scaling.scaled(r, xp=xp)
    coordinates = xp.linalg.solve(B, r[:, None])[:, 0] if r.ndim == 1 else xp.linalg.solve(B, r)
    return _scaling.unscale(coordinates, scale_r, 1 / scale_B, xp=xp)
