"""Scale-safe building blocks: the magnitudes LAPACK's drivers and BLAS guard against.

A sum of squares of finite numbers overflows once they pass ``sqrt(max)``
(1.3e154 in float64, 1.8e19 in float32) and underflows to zero below
``sqrt(tiny)`` (1.5e-154, 1.1e-19); a determinant or a product of two such
numbers sooner.  LAPACK's drivers scale the input into a safe range first and
undo it on the results (``xLASCL``), BLAS's ``nrm2`` scales as it sums.  Here
the scale is a power of two, so scaling and unscaling are exact (no rounding)
for every normal number, and costs one reduction (the largest magnitude) and
one multiplication — written once with standard functions.
"""

from __future__ import annotations

import math

from array_api_compat import device

from m4ml_xp._xp import Array, Namespace, fused, is_lazy

__all__ = [
    "is_one",
    "max_abs",
    "power_of_two_scale",
    "scaled",
    "sum_of_squares_scale",
    "unscale",
    "vector_norm",
]


@fused("axis")
def max_abs(x: Array, *, xp: Namespace, axis: int | tuple[int, ...] | None = None) -> Array:
    """Largest magnitude of `x` (over `axis`, kept as a length-1 axis when given)."""
    return xp.max(xp.abs(x), axis=axis, keepdims=axis is not None)


@fused()
def power_of_two_scale(magnitude: Array, *, xp: Namespace) -> Array:
    """``2**k`` bringing `magnitude` to within a factor √2 of 1, in `magnitude`'s dtype.

    Zero, infinite and NaN magnitudes get 1 (nothing to scale).  ``k`` is clamped
    so that the scale itself stays finite and normal: subnormal magnitudes are
    brought up as far as a normal power of two reaches, and the largest finite
    numbers come to within 4 of 1.  Made on `magnitude`'s device.
    """
    info = xp.finfo(magnitude.dtype)
    usable = (magnitude > 0) & xp.isfinite(magnitude)
    safe = xp.where(usable, magnitude, xp.ones_like(magnitude))
    largest_exponent = float(math.frexp(float(info.max))[1] - 1)  # 127 / 1023
    smallest_exponent = float(math.frexp(float(info.smallest_normal))[1] - 1)  # -126 / -1022
    exponent = xp.clip(-xp.round(xp.log2(safe)), smallest_exponent, largest_exponent)
    two = xp.asarray(2.0, dtype=magnitude.dtype, device=device(magnitude))
    return xp.pow(two, exponent)


@fused("axis")
def scaled(
    x: Array, *, xp: Namespace, axis: int | tuple[int, ...] | None = None
) -> tuple[Array, Array]:
    """Return ``(x · s, s)`` with ``s`` a power of two making ``max|x · s|`` about 1.

    Divide a result that is linear in `x` by ``s`` (quadratic: by ``s²``) to
    undo the scaling, as LAPACK's drivers do with ``xLASCL``.
    """
    scale = power_of_two_scale(max_abs(x, xp=xp, axis=axis), xp=xp)
    return x * scale, scale


@fused("axis", "keepdims")
def vector_norm(
    x: Array, *, xp: Namespace, axis: int | tuple[int, ...] | None = -1, keepdims: bool = False
) -> Array:
    """Euclidean norm over `axis` that neither overflows nor underflows (BLAS ``nrm2``).

    Exact to rounding for any finite `x` whose norm is representable: the
    squares are summed after scaling by a power of two.
    """
    if axis is None:
        x, axis = xp.reshape(x, (-1,)), 0
    x_scaled, scale = scaled(x, xp=xp, axis=axis)
    norm = xp.linalg.vector_norm(x_scaled, axis=axis, keepdims=True) / scale
    return norm if keepdims else xp.squeeze(norm, axis=axis)


@fused()
def unscale(y: Array, *scales: Array, xp: Namespace) -> Array:
    """``y / (s₁ · s₂ · …)`` for power-of-two scales, without a spurious overflow.

    The product of the scales may itself leave the range (``2**1022 · 2**1022``);
    dividing by its exponent in steps of at most a normal power of two keeps every
    intermediate between ``y`` and the result, so only a result that is truly out
    of range overflows (to ±inf) or underflows (to 0).  Exact for normal results.
    """
    dtype = y.dtype
    info = xp.finfo(dtype)
    largest = float(math.frexp(float(info.max))[1] - 2)  # 1022 / 126: 2**±step is normal
    # integers; rounded because some backends' log2 (XLA's) is not exact at 2**k
    exponent = sum(xp.round(xp.log2(xp.astype(s, dtype))) for s in scales)
    for _ in range(len(scales) + 1):
        step = xp.clip(exponent, -largest, largest)
        y = y * xp.pow(xp.full_like(step, 2.0), -step)
        exponent = exponent - step
    return y


def sum_of_squares_scale(x: Array, *, xp: Namespace, axis: int | tuple[int, ...]) -> Array:
    """Powers of two keeping sums of squares of `x` over `axis` representable; 1 where they are.

    A largest magnitude within the fourth roots of the dtype's range needs none: that
    leaves room for long sums and for `x` to change by orders of magnitude (an
    iteration's Jacobian).
    """
    largest = max_abs(x, xp=xp, axis=axis)
    info = xp.finfo(x.dtype)
    safe = (largest >= float(info.smallest_normal) ** 0.25) & (largest <= float(info.max) ** 0.25)
    return xp.where(safe | (largest == 0), 1.0, power_of_two_scale(largest, xp=xp))


def is_one(scale: Array, *, xp: Namespace) -> bool:
    """Whether every scale is exactly 1, known without computing (not traced or lazy): then skipped."""
    return not is_lazy(scale) and bool(xp.all(scale == 1))
