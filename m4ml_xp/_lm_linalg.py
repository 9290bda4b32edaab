"""The Levenberg–Marquardt kernel's linear algebra: the step's decomposition, batched.

Singular values and vectors of every scaled Jacobian ``J·D⁻¹`` in a batch,
from small Gram matrices (a Jacobi eigensolver written with elementwise
operations for n ≤ 4, the library's ``eigh`` beyond) or, for ill-conditioned
fits, the SVD; library calls in chunks of at most ``_DECOMPOSITION_CHUNK`` fits.
And :func:`covariance`, ``(JᵀJ)⁻¹`` at the optimum from the SVD, for ``curve_fit``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from m4ml_xp import _scaling, _xp
from m4ml_xp._xp import device
from m4ml_xp.errors import RankWarning, warn

Array = Any
Namespace = Any


def decompose(
    J: Array, gram: Array, diag: Array, g: Array, f: Array, *, xp: Namespace
) -> tuple[Array, Array, Array]:
    """Singular values ``s``, right vectors ``Vt`` and ``Uᵀf`` of every ``J·D⁻¹``.

    ``gram`` is ``(J·D⁻¹)ᵀ(J·D⁻¹)`` and ``g`` is ``Jᵀf``.

    Well-conditioned fits (cond ≤ eps^-1/4, about 8·10³ in float64) take the
    eigendecomposition of the small ``n × n`` Gram matrix — a few times cheaper
    than an ``m × n`` SVD, and squaring the condition number then costs at most
    ~sqrt(eps) relative accuracy in the *step*, never in the converged point,
    which the gradient ``Jᵀf`` (computed directly) decides.  The others get the
    SVD.  The Gram matrices go through :func:`_batched_eigh`; the SVDs run in
    chunks of at most ``_DECOMPOSITION_CHUNK`` fits.
    """
    eigenvalues, W = _batched_eigh(gram, xp=xp)  # ascending
    sv = xp.sqrt(xp.maximum(xp.flip(eigenvalues, axis=1), 0.0))
    V = xp.flip(W, axis=2)
    Vt = xp.linalg.matrix_transpose(V)
    scaled_g = ((g / diag)[:, None, :] @ V)[:, 0, :]
    uf = xp.where(sv > 0, scaled_g / xp.where(sv > 0, sv, 1.0), 0.0)
    eps = float(xp.finfo(J.dtype).eps)
    ill = eigenvalues[:, 0] < math.sqrt(eps) * eigenvalues[:, -1]

    def svd(J: Array, diag: Array, f: Array) -> tuple[Array, Array, Array]:
        U, sv, Vt = _xp.svd(J / diag[:, None, :], xp=xp)
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
    ones, and a single matrix (one fit: a library call beats a loop of sweeps), by
    the library's ``eigh`` in chunks of ``_DECOMPOSITION_CHUNK`` matrices.
    """
    if A.shape[-1] <= _JACOBI_MAX_N and A.shape[0] > 1:
        return _jacobi_eigh(A, xp=xp)
    return _in_chunks(lambda S: _xp.eigh(S, xp=xp), (A,), xp=xp)


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


# --------------------------------------------------------------------------- covariance
@_xp.fused("absolute_sigma")
def covariance(
    J: Array, f: Array, absolute_sigma: bool, *, xp: Namespace
) -> tuple[Array, Array, Array]:
    """Return ``(JᵀJ)⁻¹``, the standard errors and whether they could be estimated (per fit).

    Infinite along singular directions; scaled by the reduced chi-square
    ``‖f‖² / (m − n)`` unless `absolute_sigma`.  ``J`` is scaled by a power of two
    before its SVD and ``‖f‖`` taken nrm2-style, so that Jacobians and residuals
    of any finite magnitude (`sigma` of 1e±300) give the covariance wherever it is
    representable, and ``inf`` (not a warning or NaN) where it overflows.
    """
    m, n = J.shape[-2:]
    largest = _scaling.max_abs(J, xp=xp, axis=(-2, -1))
    scale = _scaling.power_of_two_scale(
        xp.where(largest > 0, largest, xp.ones_like(largest)), xp=xp
    )  # (..., 1, 1)
    J_scaled = J * scale
    _U, s, Vt = xp.linalg.svd(J_scaled, full_matrices=False)
    cutoff = float(xp.finfo(s.dtype).eps) * max(m, n) * xp.max(s, axis=-1, keepdims=True)
    keep = s > cutoff
    if absolute_sigma:
        numerator = scale[..., 0]  # 1/s_true = scale/s
    elif m <= n:  # no degrees of freedom left to estimate the noise: SciPy's answer
        cov = xp.full((*J.shape[:-2], n, n), math.inf, dtype=J.dtype, device=device(J))
        return cov, xp.linalg.diagonal(cov), xp.zeros(J.shape[:-2], dtype=xp.bool, device=device(J))
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
    return cov, stderr, xp.all(keep, axis=-1)


def warn_if_not_estimated(estimated: Array, *, xp: Namespace) -> None:
    """Warn, as SciPy's ``curve_fit`` does, where the covariance could not be estimated.

    `estimated`: :func:`covariance`'s flag, ``()`` or ``(B,)``; lazy (Dask) flags are not read.
    An estimated covariance too large for the dtype is inf too, without this warning.
    """
    if _xp.is_lazy(estimated):
        return
    flags = xp.reshape(estimated, (-1,))
    (count,) = _xp.to_host(xp.reshape(xp.sum(xp.astype(~flags, xp.int32)), (1,)))
    if count:
        which = "" if estimated.ndim == 0 else f" of {count} of {flags.shape[0]} fits"
        warn(f"curve_fit: the covariance of the parameters{which} could not be estimated (a singular "
             "Jacobian at the optimum, or no more observations than parameters): it is inf there",
             RankWarning)  # fmt: skip


def _times_or_inf(a: Array, b: Array, *, xp: Namespace) -> Array:
    """Return ``a · b`` for positive finite `b`, ``±inf`` where it overflows (no warning)."""
    big = xp.abs(a) > float(xp.finfo(a.dtype).max) / xp.maximum(b, xp.ones_like(b))
    infinity = xp.where(a > 0, xp.full_like(a, math.inf), xp.full_like(a, -math.inf))
    return xp.where(big, infinity, xp.where(big, xp.zeros_like(a), a) * b)
