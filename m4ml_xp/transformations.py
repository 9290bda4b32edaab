"""Course 1 — linear algebra, transformations: rotations, scalings, shears, reflections, images.

Conventions (see COURSE.md): 2-D transformations act on ``(x, y)`` column vectors.
:mod:`m4ml_xp.linalg` gathers this module, :mod:`m4ml_xp.bases` and :mod:`m4ml_xp.eigen`.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from m4ml_xp import _checks, _scaling, _xp
from m4ml_xp._xp import Array, Namespace, device
from m4ml_xp.bases import _count_nonzero_columns, _eps, gram_schmidt

__all__ = [
    "reflection_matrix",
    "rotation_matrix",
    "scaling_matrix",
    "shear_matrix",
    "transform_image",
]


# --------------------------------------------------------------------------- helpers
def _parameter(
    value: Any, name: str, *, xp: Namespace | None, device_: Any, dtype: Any
) -> tuple[Array, Namespace]:
    """Return a transformation parameter (Python number, sequence or array) as an array."""
    if xp is None:  # a NumPy scalar keeps its dtype, as a 0-d array would (np.float32: float32)
        value = _xp.numpy_scalar_as_array(value, _xp.namespace_for(None))
    sequence = isinstance(value, list | tuple)
    if sequence or (isinstance(value, numbers.Real) and not isinstance(value, bool)):
        for item in value if sequence else [value]:
            _checks.check_real(item, f"{name}[...]" if sequence else name, finite=True)
        xp = _checks.creation_namespace(xp, device_)
        dtype = _checks.check_float_dtype(dtype, xp=xp, device=device_)
        data = [float(v) for v in value] if sequence else float(value)
        return xp.asarray(data, dtype=dtype, device=device_), xp
    xp = _checks.namespace(**{name: value})
    array = _checks.check_real_array(value, name, xp=xp, allow_empty=True, small=True)
    if dtype is not None:
        array = xp.astype(array, dtype)
    return array, xp


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
    offset: Any = None,
) -> Array:
    """Apply a 2×2 transformation (and a shift) to an image or a batch of images about their centre.

    Inverse mapping: each output pixel at ``p`` samples the input at
    ``T⁻¹(p − offset)``, with bilinear (``order=1``) or nearest (``order=0``)
    interpolation — the forward map is ``p ↦ T·p + offset``.  Positions are
    ``(x, y)`` with x along columns and y *up* the rows, measured from the image
    centre ``((W−1)/2, (H−1)/2)``, so ``rotation_matrix(θ)`` turns the picture
    counter-clockwise as displayed and ``offset=(1, 0)`` moves it one pixel right.

    Parameters
    ----------
    images : (H, W) or (N, H, W) array, or (H·W,) or (N, H·W) with `image_shape`
        One image or a batch; integers are promoted to the default float.
        Flat rows (``load_mnist``'s (N, 784)) need ``image_shape=(28, 28)``: a
        2-D array whose width is a square number s² (s ≥ 4) other than its
        height is refused rather than read as one N×784 image (pass
        ``images[None, ...]`` for one such wide image).
    T : (2, 2) or (N, 2, 2) array
        Invertible transformation (rotation, scaling, shear, reflection, ...),
        of any finite magnitude: it is scaled by a power of two before its
        determinant is formed, so ``1e200 · I`` is invertible, not singular.
        A stack ``(N, 2, 2)`` gives each of the N images of a batch its own.
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
    offset : (2,) or (N, 2) array or a pair of numbers, optional
        Shift ``(x, y)`` in pixels (x right, y up) applied after `T`; sub-pixel
        shifts are interpolated.  ``(N, 2)`` gives each image of a batch its own.

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
    >>> T = np.stack([np.eye(2), rotation_matrix(np.pi)])   # one transform per image
    >>> transform_image(flat[:2], T, image_shape=(3, 3), offset=(0, -1))[:, [5, 6, 8]]
    array([[0., 0., 1.],
           [0., 1., 0.]])
    """
    arrays = {"images": images, "T": T}
    if offset is not None and not isinstance(offset, list | tuple):
        arrays["offset"] = offset  # an array: of the images' library
    xp = _checks.namespace(**arrays)
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
    n_images = math.prod(images.shape[:-1] if image_shape is not None else images.shape[:-2])
    batched = T.ndim == 3
    if tuple(T.shape[-2:]) != (2, 2) or T.ndim not in (2, 3):
        msg = f"`T` must be a 2×2 matrix or a stack (N, 2, 2); got shape {tuple(T.shape)}"
        raise ValueError(msg)
    if batched and (T.shape[0] != n_images or images.ndim == (1 if image_shape else 2)):
        msg = (
            f"`T` of shape {tuple(T.shape)} needs a batch of {T.shape[0]} images (one "
            f"transform each); `images` has shape {tuple(images.shape)}"
        )
        raise ValueError(msg)
    T = _checks.check_real_array(T, "T", xp=xp, small=True)
    dtype, dev = images.dtype, device(images)
    # T = T_s / s with max|T_s| ≈ 1 (per matrix): its determinant neither overflows nor
    # underflows, and T⁻¹ = s · T_s⁻¹.  The scale is clamped into the images'
    # dtype so that a float64 transform beyond float32's range keeps 0 · s = 0.
    T, inverse_scale = _scaling.scaled(T, xp=xp, axis=(-2, -1) if batched else None)
    info = xp.finfo(dtype)
    inverse_scale = xp.astype(
        xp.clip(inverse_scale, float(info.smallest_normal), float(info.max)), dtype
    )
    T = xp.astype(T, dtype)
    # one set of source coordinates per transform: (1, 1, 1) shared, or (N, 1, 1) per image
    a, b, c, d = (xp.reshape(T[..., i, j], (-1, 1, 1)) for i, j in ((0, 0), (0, 1), (1, 0), (1, 1)))
    inverse_scale = xp.reshape(inverse_scale, (-1, 1, 1))
    det = a * d - b * c
    scale = xp.max(xp.abs(T), axis=(-2, -1)) if batched else xp.max(xp.abs(T))
    _checks.check_bool_result(
        xp.all(xp.abs(xp.reshape(det, scale.shape)) > 4 * _eps(T, xp) * scale * scale),
        "`T` must be invertible; its determinant is 0"
        + (" for at least one image of the batch" if batched else ""),
        small=True,
    )
    shift_x, shift_y = _offset(offset, n_images, xp=xp, device_=dev, dtype=dtype)
    return _resample(
        images, (a, b, c, d), inverse_scale / det, shift_x, shift_y,
        height=height, width=width, order=order, mode=mode, cval=cval, xp=xp,
    )  # fmt: skip


@_xp.fused("height", "width", "order", "mode", "cval")
def _resample(
    images: Array, T: tuple[Array, ...], inverse: Array, shift_x: Array, shift_y: Array, *,
    height: int, width: int, order: int, mode: str, cval: float, xp: Namespace,
) -> Array:  # fmt: skip
    """Sample every image at ``T⁻¹(p − offset)`` (``inverse`` = 1/det); one program on JAX."""
    a, b, c, d = T
    dtype, dev = images.dtype, device(images)
    rows = xp.arange(height, dtype=dtype, device=dev)
    cols = xp.arange(width, dtype=dtype, device=dev)
    centre_r, centre_c = (height - 1) / 2, (width - 1) / 2
    # output pixel -> (x, y) about the centre, less the shift -> T⁻¹ -> source (row, col).
    # Each source coordinate is a part along the rows plus a part along the columns
    # ((M, H, 1) + (M, 1, W)): one full-size addition each, not a dozen.
    y = xp.reshape(centre_r - rows, (1, height, 1)) - shift_y
    x = xp.reshape(cols - centre_c, (1, 1, width)) - shift_x
    src_c = (centre_c + d * inverse * x) - b * inverse * y  # (M, H, W): M = 1 or N
    src_r = (centre_r - a * inverse * y) + c * inverse * x
    src_c, src_r = (xp.reshape(v, (v.shape[0], -1)) for v in (src_c, src_r))

    # a border of one pixel around every image holds what lies outside the grid
    # ("grid-constant": cval; "constant": 0, which only ever gets weight 0), so the
    # neighbours need no bounds masks: clipped into [−1, H] × [−1, W] they read it
    border = cval if mode == "grid-constant" else 0.0
    framed = xp.reshape(images, (-1, height, width))
    n = framed.shape[0]
    side = xp.full((n, height, 1), border, dtype=dtype, device=dev)
    framed = xp.concat([side, framed, side], axis=2)
    top = xp.full((n, 1, width + 2), border, dtype=dtype, device=dev)
    framed = xp.reshape(xp.concat([top, framed, top], axis=1), (n, -1))
    indexing = xp.__array_namespace_info__().default_dtypes(device=dev)["indexing"]
    per_image = src_r.shape[0] > 1
    if per_image:  # gather from the whole batch at once: image i's pixels start at i·(H+2)(W+2)
        starts = xp.arange(n, dtype=indexing, device=dev)[:, None] * ((height + 2) * (width + 2))
        every_pixel = xp.reshape(framed, (-1,))

    def row_start(r: Array) -> Array:
        start = xp.astype(xp.clip(r, -1, height) + 1, indexing) * (width + 2)
        return start + starts if per_image else start

    def column(c: Array) -> Array:
        return xp.astype(xp.clip(c, -1, width) + 1, indexing)

    def gather(index: Array) -> Array:
        if per_image:
            return xp.reshape(xp.take(every_pixel, xp.reshape(index, (-1,))), index.shape)
        return xp.take(framed, index[0, :], axis=1)

    if order == 0:
        out = gather(row_start(xp.floor(src_r + 0.5)) + column(xp.floor(src_c + 0.5)))
    else:
        r0, c0 = xp.floor(src_r), xp.floor(src_c)
        fr, fc = src_r - r0, src_c - c0
        upper, lower = row_start(r0), row_start(r0 + 1)
        left, right = column(c0), column(c0 + 1)
        above = gather(upper + left)
        above = above + (gather(upper + right) - above) * fc
        below = gather(lower + left)
        below = below + (gather(lower + right) - below) * fc
        out = above + (below - above) * fr
    if mode == "constant":
        on_grid = (src_r >= 0) & (src_r <= height - 1) & (src_c >= 0) & (src_c <= width - 1)
        out = xp.where(on_grid, out, cval)
    return xp.reshape(out, images.shape)


def _offset(
    offset: Any, n_images: int, *, xp: Namespace, device_: Any, dtype: Any
) -> tuple[Array | float, Array | float]:
    """`offset` checked, as x and y shifts shaped ``(1, 1, 1)`` or ``(N, 1, 1)`` (0.0: none)."""
    if offset is None:
        return 0.0, 0.0
    if isinstance(offset, list | tuple):
        shift, _ = _parameter(offset, "offset", xp=xp, device_=device_, dtype=dtype)
    else:
        shift = _checks.check_real_array(offset, "offset", xp=xp, ndim=(1, 2), small=True)
        shift = xp.astype(shift, dtype)
    if tuple(shift.shape) not in ((2,), (n_images, 2)):
        msg = (
            f"`offset` must be (x, y) or one pair per image, shape (2,) or ({n_images}, 2); "
            f"got shape {tuple(shift.shape)}"
        )
        raise ValueError(msg)
    shift = xp.reshape(shift, (-1, 2))
    return xp.reshape(shift[:, 0], (-1, 1, 1)), xp.reshape(shift[:, 1], (-1, 1, 1))


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
