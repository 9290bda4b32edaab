"""Course 1 linear algebra, on every backend, against NumPy/SciPy oracles."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import scipy.ndimage
from hypothesis import given
from hypothesis import strategies as st

import m4ml_xp as mx
from m4ml_xp.errors import ConvergenceWarning
from tests._helpers import asarray, assert_close_to, default_float, eps, to_numpy
from tests.conftest import Backend, sizes

angles = st.floats(-10.0, 10.0, allow_nan=False)


def _random_basis(rng: np.random.Generator, n: int) -> np.ndarray:
    """A well-conditioned random basis (columns)."""
    return rng.standard_normal((n, n)) + n * np.eye(n)


def _dependent_after_leading(seed: int, m: int, n: int, rank: int) -> tuple[np.ndarray, int]:
    """`rank` random leading columns, then combinations of them: a well-posed rank.

    (With the column order fixed, a column *nearly* dependent on earlier ones makes
    any order-preserving method's rank ill-posed, so hypothesis builds clear cases.)
    """
    rng = np.random.default_rng(seed)
    rank = min(rank, m, n)
    B = rng.standard_normal((m, rank))
    return np.hstack([B, B @ rng.standard_normal((rank, n - rank))]), rank


def _jit(xp, fn):
    """`fn` under ``jax.jit``: the test is JAX's (elsewhere it would compare a result with itself)."""
    if not xp.__name__.startswith("jax"):
        pytest.skip("jit is JAX's")
    import jax

    return jax.jit(fn)


# --------------------------------------------------------------------------- transformations
def test_numpy_scalars_keep_their_dtype_as_0d_arrays_do():
    assert mx.rotation_matrix(np.float32(0.3)).dtype == np.float32
    assert mx.shear_matrix(np.float32(0.2)).dtype == np.float32
    assert mx.rotation_matrix(np.float64(0.3)).dtype == mx.rotation_matrix(0.3).dtype == np.float64
    with pytest.raises(TypeError, match="`theta` has dtype float16"):
        mx.rotation_matrix(np.float16(0.3))


class TestRotationMatrix:
    @given(theta=angles)
    def test_matches_formula_and_is_orthogonal(self, xp, theta):
        R = mx.rotation_matrix(asarray(xp, theta))
        expected = np.array(
            [[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]]
        )
        assert_close_to(R, expected, rtol=0, atol=4 * eps(R.dtype), xp=xp)
        R_np = to_numpy(R)
        np.testing.assert_allclose(R_np @ R_np.T, np.eye(2), atol=8 * eps(R.dtype))
        assert np.linalg.det(R_np) == pytest.approx(1.0, abs=8 * eps(R.dtype))

    def test_batch_of_angles_on_device(self, xp, device):
        theta = np.linspace(0, np.pi, 5)
        R = mx.rotation_matrix(asarray(xp, theta, device))
        assert R.shape == (5, 2, 2)
        expected = np.stack([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        assert_close_to(
            R, np.moveaxis(expected, -1, 0), rtol=0, atol=4 * eps(R.dtype), xp=xp, device=device
        )

    def test_python_float_with_namespace_device_and_dtype(self, xp, device):
        R = mx.rotation_matrix(np.pi / 2, xp=xp, device=device, dtype=xp.float32)
        assert R.dtype == xp.float32
        assert_close_to(
            R,
            np.array([[0.0, -1.0], [1.0, 0.0]]),
            rtol=0,
            atol=1e-7,
            xp=xp,
            device=device,
            dtype=xp.float32,
        )

    def test_float32_is_kept(self, xp):
        R = mx.rotation_matrix(asarray(xp, np.float32(0.3)))
        assert R.dtype == xp.float32

    def test_under_jax_jit(self, xp):
        R = _jit(xp, mx.rotation_matrix)(asarray(xp, 0.25))
        c, s = np.cos(0.25), np.sin(0.25)
        expected = np.array([[c, -s], [s, c]], dtype=to_numpy(R).dtype)
        assert_close_to(R, expected, rtol=0, atol=4 * eps(R.dtype), xp=xp)

    @pytest.mark.parametrize("bad", ["ninety", None, [1.0, "a"]])
    def test_rejects_non_numbers(self, bad):
        with pytest.raises(TypeError, match="`theta"):
            mx.rotation_matrix(bad)

    def test_rejects_nan(self, xp):
        with pytest.raises(ValueError, match="`theta`"):
            mx.rotation_matrix(asarray(xp, np.nan))
        with pytest.raises(ValueError, match="`theta`"):
            mx.rotation_matrix(math.inf)


class TestScalingMatrix:
    def test_is_diagonal(self, xp, device):
        S = mx.scaling_matrix(asarray(xp, [2.0, -1.0, 0.5], device))
        assert_close_to(S, np.diag([2.0, -1.0, 0.5]), rtol=0, xp=xp, device=device)

    def test_python_sequence(self):
        np.testing.assert_array_equal(mx.scaling_matrix([3, 4]), np.diag([3.0, 4.0]))

    def test_rejects_bad_shapes(self, xp):
        with pytest.raises(ValueError, match="`factors`"):
            mx.scaling_matrix(asarray(xp, np.ones((2, 2))))
        with pytest.raises(ValueError, match="`factors`"):
            mx.scaling_matrix([])


class TestShearMatrix:
    def test_a_bool_axis_is_refused(self):
        # True == 1: it passed as the axis 1 without a word
        with pytest.raises(ValueError, match="`axis` must be one of 0, 1; got True"):
            mx.shear_matrix(0.5, True)

    @pytest.mark.parametrize(
        ("axis", "expected"), [(0, [[1, 0.5], [0, 1]]), (1, [[1, 0], [0.5, 1]])]
    )
    def test_matches_definition(self, xp, device, axis, expected):
        H = mx.shear_matrix(asarray(xp, 0.5, device), axis=axis)
        assert_close_to(H, np.array(expected), rtol=0, xp=xp, device=device)

    def test_shears_unit_square(self):
        corner = mx.shear_matrix(2.0) @ np.array([1.0, 1.0])
        np.testing.assert_array_equal(corner, [3.0, 1.0])

    def test_rejects_bad_axis(self):
        with pytest.raises(ValueError, match="`axis`"):
            mx.shear_matrix(1.0, axis=2)


class TestReflectionMatrix:
    @pytest.mark.parametrize("n", [2, 3, 5])
    def test_matches_householder_of_scipy_qr(self, xp, device, n):
        basis = _random_basis(np.random.default_rng(n), n)
        Q, _ = scipy.linalg.qr(basis)
        normal = Q[:, -1]  # the sign of QR's column does not matter in I - 2 q qᵀ
        expected = np.eye(n) - 2 * np.outer(normal, normal)
        T = mx.reflection_matrix(asarray(xp, basis, device))
        assert_close_to(T, expected, rtol=0, atol=50 * eps(T.dtype), xp=xp, device=device)

    def test_is_an_involution(self, xp):
        basis = _random_basis(np.random.default_rng(7), 4)
        T = to_numpy(mx.reflection_matrix(asarray(xp, basis)))
        np.testing.assert_allclose(T @ T, np.eye(4), atol=1e-12)
        np.testing.assert_allclose(T, T.T, atol=1e-12)

    def test_course_example_mirror(self):
        # the mirror spanned by the first two columns leaves them fixed
        basis = np.array([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
        T = mx.reflection_matrix(basis)
        np.testing.assert_allclose(T @ basis[:, :2], basis[:, :2], atol=1e-14)

    def test_rejects_dependent_columns(self, xp):
        with pytest.raises(ValueError, match="`basis`"):
            mx.reflection_matrix(asarray(xp, [[1.0, 2.0], [2.0, 4.0]]))

    def test_rejects_non_square(self, xp):
        with pytest.raises(ValueError, match="`basis` must be a square"):
            mx.reflection_matrix(asarray(xp, np.ones((2, 3))))


# --------------------------------------------------------------------------- images
def _scipy_transform(
    images: np.ndarray, T: np.ndarray, shift: tuple[float, float] = (0.0, 0.0), **kwargs
) -> np.ndarray:
    """The oracle: scipy.ndimage in (row, col) index space (`shift` is (x, y), y up)."""
    h, w = images.shape[-2:]
    P = np.array([[0.0, 1.0], [-1.0, 0.0]])  # (dr, dc) -> (x, y)
    M = np.linalg.inv(P) @ np.linalg.inv(T) @ P
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    # source index = centre + M (index − centre) − P⁻¹ T⁻¹ shift
    offset = centre - M @ centre - np.linalg.inv(P) @ np.linalg.inv(T) @ np.asarray(shift)
    out = [
        scipy.ndimage.affine_transform(im, M, offset=offset, **kwargs)
        for im in images.reshape(-1, h, w)
    ]
    return np.stack(out).reshape(images.shape)


def _source_coordinates(T: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    P = np.array([[0.0, 1.0], [-1.0, 0.0]])
    M = np.linalg.inv(P) @ np.linalg.inv(T) @ P
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    offsets = np.stack([rows - centre[0], cols - centre[1]])
    src = np.tensordot(M, offsets, axes=1) + centre[:, None, None]
    return src[0], src[1]


invertible = st.tuples(*[st.floats(-2, 2) for _ in range(4)]).filter(
    lambda t: abs(t[0] * t[3] - t[1] * t[2]) > 0.2
)


class TestTransformImage:
    @given(entries=invertible)
    def test_grid_constant_matches_scipy(self, xp, entries):
        T = np.array(entries).reshape(2, 2)
        images = np.random.default_rng(0).random((3, 9, 12))
        out = mx.transform_image(asarray(xp, images), asarray(xp, T), mode="grid-constant")
        expected = _scipy_transform(images, T, order=1, mode="grid-constant")
        assert_close_to(out, expected, rtol=0, atol=1e3 * eps(out.dtype), xp=xp)

    @pytest.mark.parametrize("order", [0, 1])
    @pytest.mark.parametrize("theta", [0.3, 1.0, 2.5])
    def test_constant_mode_matches_scipy_away_from_edges(self, xp, device, order, theta):
        T = (
            np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
            * 1.1
        )
        images = np.random.default_rng(1).random((2, 11, 10))
        out = to_numpy(
            mx.transform_image(asarray(xp, images, device), asarray(xp, T, device), order=order)
        )
        expected = _scipy_transform(images, T, order=order, mode="constant")
        # Samples within rounding of the grid's edge (or of a half-pixel for nearest)
        # flip between inside and outside; compare all others.
        r, c = _source_coordinates(T, 11, 10)
        ambiguous = np.zeros_like(r, dtype=bool)
        for coord, size in ((r, 11), (c, 10)):
            ambiguous |= np.isclose(coord, 0, atol=1e-9) | np.isclose(coord, size - 1, atol=1e-9)
            if order == 0:
                ambiguous |= np.isclose(coord % 1, 0.5, atol=1e-9)
        mask = np.broadcast_to(~ambiguous, images.shape)
        assert mask.mean() > 0.9
        np.testing.assert_allclose(out[mask], expected[mask], atol=1e-12)

    def test_result_on_input_device(self, xp, device):
        images = np.random.default_rng(5).random((2, 5, 6))
        T = np.array([[0.8, 0.3], [-0.2, 1.1]])
        out = mx.transform_image(asarray(xp, images, device), asarray(xp, T, device))
        expected = _scipy_transform(images, T, order=1, mode="grid-constant")
        # compare where constant and grid-constant agree: samples inside the grid
        r, c = _source_coordinates(T, 5, 6)
        inside = (r >= 1e-9) & (r <= 4 - 1e-9) & (c >= 1e-9) & (c <= 5 - 1e-9)
        expected = np.where(inside, expected, 0.0)
        assert_close_to(
            out * asarray(xp, inside.astype(float), device),
            expected,
            rtol=0,
            atol=1e-12,
            xp=xp,
            device=device,
        )

    def test_quarter_turn_of_a_digit_stroke(self, xp):
        image = np.zeros((5, 5))
        image[2, 3:] = 1.0  # a stroke to the right of centre
        T = mx.rotation_matrix(np.pi / 2, xp=xp, dtype=xp.float64)
        out = to_numpy(mx.transform_image(asarray(xp, image), T))
        expected = np.zeros((5, 5))
        expected[:2, 2] = 1.0  # now above centre: counter-clockwise as displayed
        np.testing.assert_allclose(out, expected, atol=1e-12)

    def test_batch_equals_single_images(self, xp, device):
        images = np.random.default_rng(2).random((4, 8, 8))
        T = asarray(xp, [[1.0, 0.4], [0.0, 1.0]], device)
        batch = to_numpy(mx.transform_image(asarray(xp, images, device), T))
        for i in range(4):
            single = to_numpy(mx.transform_image(asarray(xp, images[i], device), T))
            np.testing.assert_allclose(batch[i], single, atol=1e-14)

    def test_flat_rows_with_image_shape_equal_the_image_batch(self, xp, device):
        images = np.random.default_rng(6).random((4, 5, 6))
        T = asarray(xp, [[0.8, -0.3], [0.4, 1.2]], device)
        flat = mx.transform_image(asarray(xp, images.reshape(4, 30), device), T, image_shape=(5, 6))
        batch = to_numpy(mx.transform_image(asarray(xp, images, device), T))
        assert_close_to(flat, batch.reshape(4, 30), rtol=0, atol=0, xp=xp, device=device)
        one = mx.transform_image(asarray(xp, images[1].reshape(30), device), T, image_shape=(5, 6))
        assert_close_to(one, batch[1].reshape(30), rtol=0, atol=0, xp=xp, device=device)

    def test_flat_rows_without_image_shape_are_refused(self, xp):
        """(N, 784) rows are N flattened 28×28 digits, never one N×784 image."""
        T = asarray(xp, np.eye(2))
        with pytest.raises(ValueError, match=r"image_shape=\(28, 28\)"):
            mx.transform_image(asarray(xp, np.zeros((5, 784))), T)
        with pytest.raises(ValueError, match=r"image_shape=\(4, 4\)"):
            mx.transform_image(asarray(xp, np.zeros((3, 16))), T)
        square = mx.transform_image(asarray(xp, np.zeros((16, 16))), T)  # one square image
        assert tuple(square.shape) == (16, 16)
        wide = mx.transform_image(asarray(xp, np.zeros((1, 3, 16))), T)  # one wide image
        assert tuple(wide.shape) == (1, 3, 16)

    def test_rejects_bad_image_shape(self, xp):
        T = asarray(xp, np.eye(2))
        flat = asarray(xp, np.zeros((2, 12)))
        with pytest.raises(ValueError, match="`images` rows must hold 3×5 = 15"):
            mx.transform_image(flat, T, image_shape=(3, 5))
        with pytest.raises(TypeError, match="`image_shape`"):
            mx.transform_image(flat, T, image_shape=12)
        with pytest.raises(ValueError, match="`image_shape`"):
            mx.transform_image(flat, T, image_shape=(0, 12))
        with pytest.raises(ValueError, match="`images`"):
            mx.transform_image(asarray(xp, np.zeros((2, 3, 4))), T, image_shape=(3, 4))

    def test_uint8_images_are_promoted(self, xp):
        images = np.random.default_rng(3).integers(0, 256, (2, 6, 6), dtype=np.uint8)
        out = mx.transform_image(asarray(xp, images), asarray(xp, np.eye(2)))
        assert xp.isdtype(out.dtype, "real floating")
        np.testing.assert_allclose(to_numpy(out), images, atol=1e-4)

    def test_float32_and_cval(self, xp):
        images = np.ones((4, 4), dtype=np.float32)
        out = mx.transform_image(
            asarray(xp, images), asarray(xp, np.eye(2, dtype=np.float32) * 2), cval=-1.0
        )
        assert out.dtype == xp.float32
        expected = _scipy_transform(images.astype(np.float64), np.eye(2) * 2, order=1, cval=-1.0)
        np.testing.assert_allclose(to_numpy(out), expected, atol=1e-6)

    def test_under_jax_jit(self, xp):
        images = asarray(xp, np.random.default_rng(4).random((2, 6, 7)))
        T = asarray(xp, [[0.9, -0.2], [0.3, 1.1]])
        out = _jit(xp, mx.transform_image)(images, T)
        # the NumPy backend's result, itself tested against scipy.ndimage above
        expected = to_numpy(mx.transform_image(to_numpy(images), to_numpy(T)))
        assert_close_to(out, expected, rtol=0, atol=16 * eps(out.dtype), xp=xp)

    @pytest.mark.parametrize("mode", ["constant", "grid-constant"])
    def test_stack_of_transforms_and_shifts_match_scipy(self, xp, device, mode):
        rng = np.random.default_rng(7)
        images = rng.random((3, 9, 8))
        T = np.eye(2) + rng.uniform(-0.4, 0.4, (3, 2, 2))
        shifts = rng.uniform(-2.0, 2.0, (3, 2))
        out = mx.transform_image(
            asarray(xp, images, device),
            asarray(xp, T, device),
            offset=asarray(xp, shifts, device),
            mode=mode,
        )
        out = np.array(to_numpy(out))  # writeable
        for i in range(3):
            expected = _scipy_transform(images[i], T[i], tuple(shifts[i]), order=1, mode=mode)
            if mode == "constant":  # compare away from the grid's edge (rounding flips it)
                h, w = images.shape[1:]
                r, c = _source_coordinates(T[i], h, w)
                shift_rc = np.linalg.inv(T[i]) @ shifts[i]  # (x, y) -> (−row, col) below
                r, c = r + shift_rc[1], c - shift_rc[0]
                away = (np.abs(r) > 1e-6) & (np.abs(r - h + 1) > 1e-6)
                away &= (np.abs(c) > 1e-6) & (np.abs(c - w + 1) > 1e-6)
                out[i], expected = np.where(away, out[i], 0.0), np.where(away, expected, 0.0)
            np.testing.assert_allclose(out[i], expected, atol=100 * eps(default_float(xp)))

    def test_stack_equals_one_call_per_image(self, xp, device):
        rng = np.random.default_rng(8)
        images = rng.random((4, 7 * 6))
        T = mx.rotation_matrix(rng.uniform(-1.0, 1.0, 4))  # (4, 2, 2)
        shifts = rng.uniform(-1.5, 1.5, (4, 2))
        batch = mx.transform_image(
            asarray(xp, images, device),
            asarray(xp, T, device),
            image_shape=(7, 6),
            offset=asarray(xp, shifts, device),
        )
        unshifted = mx.transform_image(
            asarray(xp, images, device), asarray(xp, T, device), image_shape=(7, 6)
        )
        for i in range(4):
            single = mx.transform_image(
                asarray(xp, images[i : i + 1], device),
                asarray(xp, T[i], device),
                image_shape=(7, 6),
                offset=tuple(shifts[i]),
            )
            alone = mx.transform_image(
                asarray(xp, images[i], device), asarray(xp, T[i], device), image_shape=(7, 6)
            )
            assert_close_to(
                unshifted[i, :], to_numpy(alone), rtol=0, atol=1e-12, xp=xp, device=device
            )
            assert_close_to(
                batch[i : i + 1, :], to_numpy(single), rtol=0, atol=1e-12, xp=xp, device=device
            )

    def test_whole_pixel_shifts_move_the_picture(self, xp):
        image = np.zeros((5, 5))
        image[2, 2] = 1.0
        identity = asarray(xp, np.eye(2))
        right = to_numpy(mx.transform_image(asarray(xp, image), identity, offset=(1, 0)))
        up = to_numpy(mx.transform_image(asarray(xp, image), identity, offset=(0, 2)))
        np.testing.assert_array_equal(right, np.roll(image, 1, axis=1))
        np.testing.assert_array_equal(up, np.roll(image, -2, axis=0))  # y is up the rows

    def test_stack_and_shift_under_jax_jit(self, xp):
        images = asarray(xp, np.random.default_rng(9).random((2, 6, 7)))
        T = asarray(xp, [[[0.9, -0.2], [0.3, 1.1]], [[1.0, 0.0], [0.0, 1.0]]])
        shifts = asarray(xp, [[0.5, -1.0], [0.0, 0.25]])
        out = _jit(xp, lambda im, t, o: mx.transform_image(im, t, offset=o))(images, T, shifts)
        expected = mx.transform_image(to_numpy(images), to_numpy(T), offset=to_numpy(shifts))
        assert_close_to(out, expected, rtol=0, atol=16 * eps(out.dtype), xp=xp)

    def test_rejects_mismatched_stacks_and_shifts(self, xp):
        images, T = asarray(xp, np.ones((3, 4, 4))), asarray(xp, np.eye(2))
        with pytest.raises(ValueError, match=r"`T` of shape \(2, 2, 2\) needs a batch of 2"):
            mx.transform_image(images, asarray(xp, np.stack([np.eye(2)] * 2)))
        with pytest.raises(ValueError, match="needs a batch of 1 images"):
            mx.transform_image(asarray(xp, np.ones((4, 4))), asarray(xp, np.eye(2)[None]))
        with pytest.raises(ValueError, match=r"`offset` must be .* shape \(2,\) or \(3, 2\)"):
            mx.transform_image(images, T, offset=asarray(xp, np.zeros((2, 2))))
        with pytest.raises(ValueError, match="`offset`"):
            mx.transform_image(images, T, offset=(1.0, 2.0, 3.0))
        with pytest.raises(ValueError, match=r"`T` must be invertible.*at least one image"):
            mx.transform_image(
                images, asarray(xp, np.stack([np.eye(2), np.eye(2), np.zeros((2, 2))]))
            )

    def test_rejects_singular_T(self, xp):
        with pytest.raises(ValueError, match="`T` must be invertible"):
            mx.transform_image(asarray(xp, np.ones((3, 3))), asarray(xp, [[1.0, 2.0], [2.0, 4.0]]))

    def test_rejects_bad_shapes_and_options(self, xp):
        image, T = asarray(xp, np.ones((3, 3))), asarray(xp, np.eye(2))
        with pytest.raises(ValueError, match="`images`"):
            mx.transform_image(asarray(xp, np.ones(3)), T)
        with pytest.raises(ValueError, match="`T`"):
            mx.transform_image(image, asarray(xp, np.eye(3)))
        with pytest.raises(ValueError, match="`order`"):
            mx.transform_image(image, T, order=3)
        with pytest.raises(ValueError, match="`mode`"):
            mx.transform_image(image, T, mode="wrap")

    def test_rejects_nan_images(self, xp):
        # on Dask the check travels with the chunks and fires when the result is computed
        with pytest.raises(ValueError, match="`images`"):
            to_numpy(
                mx.transform_image(asarray(xp, np.full((3, 3), np.nan)), asarray(xp, np.eye(2)))
            )


# --------------------------------------------------------------------------- Gram–Schmidt
class TestGramSchmidt:
    @pytest.mark.parametrize("shape", [(4, 4), (6, 3), (5, 1)])
    def test_matches_scipy_qr_with_positive_diagonal(self, xp, device, shape):
        A = np.random.default_rng(sum(shape)).standard_normal(shape)
        Q, R = scipy.linalg.qr(A, mode="economic")
        expected = Q * np.sign(np.diag(R))[None, :]  # QR with R's diagonal > 0 is Gram–Schmidt
        E = mx.gram_schmidt(asarray(xp, A, device))
        assert_close_to(E, expected, rtol=0, atol=100 * eps(E.dtype), xp=xp, device=device)

    def test_orthonormal_to_rounding_on_ill_conditioned_columns(self, xp):
        # Hilbert(8), cond ~ 1e10: one classical pass loses orthogonality to ~1e-7;
        # the second pass ("twice is enough") restores it to rounding
        A = asarray(xp, scipy.linalg.hilbert(8))
        E = to_numpy(mx.gram_schmidt(A)).astype(np.float64)
        e = eps(A.dtype)
        if e > 1e-10:
            pytest.skip("float32 (JAX's x64 off): Hilbert(8) is singular at its precision")
        np.testing.assert_allclose(E.T @ E, np.eye(8), rtol=0, atol=32 * 8 * e)

    def test_dependent_columns_become_exact_zeros(self, xp):
        rng = np.random.default_rng(5)
        a, b = rng.standard_normal(4), rng.standard_normal(4)
        A = np.stack([a, b, 2 * a - 3 * b, rng.standard_normal(4)], axis=1)
        E = to_numpy(mx.gram_schmidt(asarray(xp, A)))
        assert np.all(E[:, 2] == 0)
        np.testing.assert_allclose(np.linalg.norm(E[:, [0, 1, 3]], axis=0), 1.0, atol=1e-14)

    def test_course_absolute_tolerance(self, xp):
        A = np.array([[1.0, 1.0], [0.0, 1e-12]])
        assert np.count_nonzero(to_numpy(mx.gram_schmidt(asarray(xp, A), tol=1e-14))[:, 1]) == 1
        assert np.all(to_numpy(mx.gram_schmidt(asarray(xp, A), tol=1e-10))[:, 1] == 0)

    @given(
        data=st.integers(0, 10_000),
        m=sizes(1, 7),
        n=sizes(1, 7),
        rank=sizes(0, 7),
    )
    def test_orthonormal_same_span(self, xp, data, m, n, rank):
        A, rank = _dependent_after_leading(data, m, n, rank)
        E = to_numpy(mx.gram_schmidt(asarray(xp, A)))
        kept = np.any(E != 0, axis=0)
        np.testing.assert_allclose(E[:, kept].T @ E[:, kept], np.eye(kept.sum()), atol=1e-12)
        np.testing.assert_allclose(E @ E.T @ A, A, atol=1e-10 * max(1.0, np.abs(A).max()))
        assert kept.sum() == np.linalg.matrix_rank(A) == rank
        assert np.all(kept[:rank])
        assert not np.any(kept[rank:])

    def test_float32(self, xp):
        A = np.random.default_rng(6).standard_normal((5, 5)).astype(np.float32)
        A[:, 4] = A[:, 0] + A[:, 1]
        E = mx.gram_schmidt(asarray(xp, A))
        assert E.dtype == xp.float32
        E = to_numpy(E)
        assert np.all(E[:, 4] == 0)
        np.testing.assert_allclose(E[:, :4].T @ E[:, :4], np.eye(4), atol=1e-5)

    def test_under_jax_jit(self, xp):
        A = asarray(xp, np.random.default_rng(8).standard_normal((4, 3)))
        out = _jit(xp, mx.gram_schmidt)(A)
        Q, R = scipy.linalg.qr(to_numpy(A).astype(np.float64), mode="economic")
        expected = (Q * np.sign(np.diag(R))[None, :]).astype(to_numpy(A).dtype)
        assert_close_to(out, expected, rtol=0, atol=100 * eps(out.dtype), xp=xp)

    def test_input_not_modified(self, xp):
        A_np = np.random.default_rng(9).standard_normal((3, 3))
        A = asarray(xp, A_np)
        mx.gram_schmidt(A)
        np.testing.assert_array_equal(to_numpy(A), A_np)

    def test_rejects(self, xp):
        with pytest.raises(ValueError, match="`A` must be a 2-D"):
            mx.gram_schmidt(asarray(xp, np.ones(3)))
        with pytest.raises(TypeError, match="`A` must have a real"):
            mx.gram_schmidt(asarray(xp, np.ones((2, 2), dtype=np.complex128)))
        with pytest.raises(ValueError, match="`tol`"):
            mx.gram_schmidt(asarray(xp, np.eye(2)), tol=-1.0)
        with pytest.raises(TypeError, match="`A` must be an array"):
            mx.gram_schmidt([[1.0, 0.0], [0.0, 1.0]])


class TestSpanDimension:
    @pytest.mark.parametrize(("m", "n", "rank"), [(4, 4, 2), (5, 3, 3), (3, 6, 1), (4, 4, 0)])
    def test_matches_matrix_rank(self, xp, m, n, rank):
        rng = np.random.default_rng(m * n + rank)
        A = rng.standard_normal((m, rank)) @ rng.standard_normal((rank, n))
        assert mx.span_dimension(asarray(xp, A)) == np.linalg.matrix_rank(A) == rank

    def test_returns_python_int(self, xp):
        assert type(mx.span_dimension(asarray(xp, np.eye(3)))) is int


# --------------------------------------------------------------------------- echelon form
def _check_echelon(U: np.ndarray, rank: int) -> None:
    pivot_cols = []
    for i, row in enumerate(U):
        nonzero = np.flatnonzero(row)
        if i >= rank:
            assert nonzero.size == 0
            continue
        assert row[nonzero[0]] == pytest.approx(1.0)
        assert not pivot_cols or nonzero[0] > pivot_cols[-1]
        assert np.all(U[i + 1 :, nonzero[0]] == 0)
        pivot_cols.append(nonzero[0])


class TestRowEchelon:
    @given(
        data=st.integers(0, 10_000),
        m=sizes(1, 7),
        n=sizes(1, 7),
        rank=sizes(0, 7),
        transpose=st.booleans(),
    )
    def test_echelon_shape_rank_and_row_space(self, xp, data, m, n, rank, transpose):
        A, rank = _dependent_after_leading(data, m, n, rank)
        A = A.T if transpose else A
        U = to_numpy(mx.row_echelon(asarray(xp, A)))
        _check_echelon(U, rank)
        assert np.linalg.matrix_rank(np.vstack([A, U])) == rank  # same row space

    def test_integer_matrix_exact(self, xp, device):
        A = np.array([[1, 2, 3], [2, 4, 6], [1, 0, 1]])
        U = mx.row_echelon(asarray(xp, A, device))
        assert xp.isdtype(U.dtype, "real floating")
        expected = np.array([[1.0, 2.0, 3.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
        assert_close_to(
            U,
            expected,
            rtol=0,
            atol=4 * eps(U.dtype),
            xp=xp,
            device=device,
            dtype=default_float(xp, device),
        )

    def test_under_jax_jit_and_one_program_per_shape(self, xp, backend):
        """The elimination reads nothing back to the host: it traces under ``jax.jit``, and on
        JAX a new shape compiles a few programs, not a few per column (68 for 7 x 9 before)."""
        A, rank = _dependent_after_leading(3, 7, 9, 4)
        echelon = _jit(xp, mx.row_echelon) if backend is Backend.JAX else mx.row_echelon
        U = to_numpy(echelon(asarray(xp, A)))
        _check_echelon(U, rank)
        assert np.linalg.matrix_rank(np.vstack([A, U])) == rank
        if backend is Backend.JAX:
            import jax

            compiled = []

            def listener(event, _, **__):
                compiled.append(event.endswith("backend_compile_duration"))

            jax.monitoring.register_event_duration_secs_listener(listener)
            try:
                B, _ = _dependent_after_leading(4, 11, 6, 5)
                mx.row_echelon(asarray(xp, B))
            finally:
                jax.monitoring.unregister_event_duration_listener(listener)
            assert 0 < sum(compiled) <= 12

    def test_rejects(self, xp):
        with pytest.raises(ValueError, match="`A` must not be empty"):
            mx.row_echelon(asarray(xp, np.ones((0, 3))))
        with pytest.raises(ValueError, match="`A`"):
            mx.row_echelon(asarray(xp, [[1.0, np.inf]]))


class TestIsSingular:
    @pytest.mark.parametrize(
        "A",
        [
            [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
            [[2, 0, 0, 0], [0, 3, 0, 0], [0, 0, 4, 4], [0, 0, 5, 5]],
            [[0, 7, -5, 3], [2, 8, 0, 4], [3, 12, 0, 5], [1, 3, 1, 3]],
            [[1, 1, 1], [2, 2, 2], [3, 3, 4]],
            [[0, 0], [0, 0]],
        ],
    )
    def test_course_integer_matrices_exact(self, xp, A):
        A = np.array(A)
        expected = np.linalg.matrix_rank(A) < A.shape[0]
        assert mx.is_singular(asarray(xp, A)) is bool(expected)

    @pytest.mark.parametrize("seed", range(5))
    def test_float_rank_deficient_where_exact_zero_test_fails(self, xp, seed):
        rng = np.random.default_rng(seed)
        A = rng.standard_normal((5, 4)) @ rng.standard_normal((4, 5))  # rank 4 of 5
        assert np.linalg.matrix_rank(A) == 4
        assert mx.is_singular(asarray(xp, A))
        assert not mx.is_singular(asarray(xp, A + np.eye(5)))

    def test_scale_invariant(self, xp):
        A = np.array([[1.0, 2.0], [3.0, 6.0]]) * 1e-20
        assert mx.is_singular(asarray(xp, A))
        assert not mx.is_singular(asarray(xp, np.eye(2) * 1e-20))

    def test_rejects_non_square(self, xp):
        with pytest.raises(ValueError, match="`A` must be a square"):
            mx.is_singular(asarray(xp, np.ones((2, 3))))


class TestChangeOfBasis:
    def test_matches_numpy_solve(self, xp, device):
        rng = np.random.default_rng(10)
        B, r = _random_basis(rng, 4), rng.standard_normal(4)
        out = mx.change_of_basis(asarray(xp, r, device), asarray(xp, B, device))
        assert_close_to(out, np.linalg.solve(B, r), rtol=1e3 * eps(out.dtype), xp=xp, device=device)

    def test_several_vectors(self, xp):
        rng = np.random.default_rng(11)
        B, R = _random_basis(rng, 3), rng.standard_normal((3, 5))
        out = mx.change_of_basis(asarray(xp, R), asarray(xp, B))
        assert_close_to(out, np.linalg.solve(B, R), rtol=1e3 * eps(out.dtype), xp=xp)

    def test_orthogonal_basis_is_projection(self, xp):
        B = np.array([[3.0, -4.0], [4.0, 3.0]])
        r = np.array([5.0, -1.0])
        expected = (B.T @ r) / np.sum(B * B, axis=0)
        assert_close_to(
            mx.change_of_basis(asarray(xp, r), asarray(xp, B)), expected, rtol=1e-14, xp=xp
        )

    def test_rejects(self, xp):
        with pytest.raises(ValueError, match="`B` is singular"):
            mx.change_of_basis(asarray(xp, [1.0, 2.0]), asarray(xp, [[1.0, 2.0], [2.0, 4.0]]))
        with pytest.raises(ValueError, match="`r` must have 2 rows"):
            mx.change_of_basis(asarray(xp, [1.0, 2.0, 3.0]), asarray(xp, np.eye(2)))


class TestPowerIteration:
    @pytest.mark.parametrize("n", [3, 10, 40])
    def test_matches_eigh_dominant_pair(self, xp, device, n):
        rng = np.random.default_rng(n)
        Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
        values = np.linspace(1.0, 2.0, n)
        values[-1] = 4.0  # a clear gap
        A = (Q * values) @ Q.T
        w, V = np.linalg.eigh(A)
        v = V[:, -1] * np.sign(V[np.argmax(np.abs(V[:, -1])), -1])
        result = mx.power_iteration(asarray(xp, A, device))
        assert result.converged is True
        assert (result.status, result.message[:10]) == (0, "converged:")
        assert type(result.n_iter) is int
        assert_close_to(result.eigenvalue, np.asarray(w[-1]), rtol=1e-9, xp=xp, device=device)
        assert_close_to(result.eigenvector, v, rtol=0, atol=1e-8, xp=xp, device=device)

    def test_batched_convergence_checks(self, xp, monkeypatch):
        asked = []
        monkeypatch.setattr(mx._xp, "check_interval", lambda xp, device, **_: asked.append(1) or 8)
        A = np.diag([4.0, 1.0, 0.5])
        result = mx.power_iteration(asarray(xp, A))
        assert asked, "power_iteration did not ask the patched check_interval"
        assert result.converged
        assert result.n_iter % 8 == 0
        assert float(result.eigenvalue) == pytest.approx(4.0, rel=1e-9)

    def test_dask_reads_the_matrix_once_per_iteration(self, backend):
        """On Dask each iteration's product is computed once, shared by the convergence check
        and the next vector, and the matrix's scale once in all (not in every graph)."""
        if backend is not Backend.DASK:
            pytest.skip("counts Dask's reads of the matrix's chunks")
        import dask.array as da

        reads = []

        def counted(block):
            reads.append(1)
            return block

        A = np.diag(np.linspace(1.0, 2.0, 40))
        A[0, 0] = 4.0  # a clear gap
        matrix = da.from_array(A, chunks=(20, 20)).map_blocks(counted)
        result = mx.power_iteration(matrix, seed=0)
        assert result.converged
        assert float(result.eigenvalue) == pytest.approx(4.0, rel=1e-9)
        # 4 chunks, read once per product, plus a few whole reads for the checks and the scale
        # (before: twice per iteration, 322 reads here)
        assert len(reads) <= 4 * (result.n_iter + 4)

    def test_negative_dominant_eigenvalue(self, xp):
        A = np.diag([-5.0, 2.0, 1.0])
        result = mx.power_iteration(asarray(xp, A))
        assert result.converged
        assert float(result.eigenvalue) == pytest.approx(-5.0, rel=1e-9)

    def test_given_start_and_float32(self, xp):
        A = np.array([[2.0, 1.0], [1.0, 2.0]], dtype=np.float32)
        result = mx.power_iteration(
            asarray(xp, A), x0=asarray(xp, np.array([1.0, 0.0], dtype=np.float32))
        )
        assert result.eigenvector.dtype == xp.float32
        assert float(result.eigenvalue) == pytest.approx(3.0, rel=1e-5)

    def test_reports_non_convergence(self, xp):
        with pytest.warns(ConvergenceWarning, match="power iteration"):
            result = mx.power_iteration(asarray(xp, [[0.0, -1.0], [1.0, 0.0]]), max_iter=50)
        assert result.converged is False
        assert result.n_iter == 50
        assert result.status == 1
        assert result.message.startswith("no convergence in 50 iterations")

    @pytest.mark.parametrize(
        "A", [[[0.0]], [[0.0, 0.0], [0.0, 0.0]], [[0.0, 1.0], [0.0, 0.0]]], ids=str
    )
    @pytest.mark.parametrize("every", [1, 8], ids=["check-every-step", "check-every-8-gpu"])
    def test_every_eigenvalue_zero_converges_to_zero(self, xp, A, every, monkeypatch):
        # the zero and nilpotent matrices: 0 is the dominant eigenvalue, exactly; "pass another
        # x0" (non-convergence, a warning) could never help.  A GPU checks every 8 steps: the
        # eigenvector is still the last nonzero iterate, not 0/1 = 0
        from m4ml_xp import _xp

        monkeypatch.setattr(_xp, "check_interval", lambda *a, **k: every)
        result = mx.power_iteration(asarray(xp, np.array(A)), seed=0)
        assert result.converged
        assert result.status == 0
        assert float(to_numpy(result.eigenvalue)) == 0.0
        v = to_numpy(result.eigenvector)
        assert np.linalg.norm(v) == pytest.approx(1.0)
        np.testing.assert_array_equal(np.array(A) @ v, np.zeros(len(A)))

    def test_start_in_the_null_space_has_its_own_status(self, xp):
        with pytest.warns(ConvergenceWarning, match="null space"):
            result = mx.power_iteration(
                asarray(xp, np.diag([1.0, 0.0])), x0=asarray(xp, np.array([0.0, 1.0]))
            )
        assert result.converged is False
        assert result.status == 2
        assert "null space" in result.message

    def test_raise_on_failure(self, xp):
        with pytest.raises(mx.ConvergenceError, match="power iteration"):
            mx.power_iteration(
                asarray(xp, np.diag([1.0, 0.999])), max_iter=3, raise_on_failure=True
            )

    def test_max_iter_one_on_hard_case(self, xp):
        A = np.diag([1.0, 0.999, 0.5])
        with pytest.warns(ConvergenceWarning):
            assert mx.power_iteration(asarray(xp, A), max_iter=1).converged is False

    def test_seed_reproducible(self, xp):
        A = asarray(xp, np.diag([3.0, 1.0]))
        with pytest.warns(ConvergenceWarning):
            a = mx.power_iteration(A, seed=3, max_iter=2, tol=1e-300)
        with pytest.warns(ConvergenceWarning):
            b = mx.power_iteration(A, seed=3, max_iter=2, tol=1e-300)
        np.testing.assert_array_equal(to_numpy(a.eigenvector), to_numpy(b.eigenvector))

    def test_rejects(self, xp):
        A = asarray(xp, np.eye(2))
        with pytest.raises(ValueError, match="`x0` must have length 2"):
            mx.power_iteration(A, x0=asarray(xp, np.ones(3)))
        with pytest.raises(ValueError, match="`max_iter`"):
            mx.power_iteration(A, max_iter=0)
        with pytest.raises(ValueError, match="`tol`"):
            mx.power_iteration(A, tol=-1e-3)


# --------------------------------------------------------------------------- common contract
MIXABLE = [b for b in Backend if b not in (Backend.NUMPY, Backend.NUMPY_READONLY)]


class TestMixedInputs:
    def test_every_two_array_function_names_both(self, xp, backend):
        if backend in (Backend.NUMPY, Backend.NUMPY_READONLY):
            pytest.skip("mixing needs a second library")
        ours = asarray(xp, np.eye(2))
        with pytest.raises(TypeError, match=r"`images` is a \w+ array, `T` is a numpy array"):
            mx.transform_image(asarray(xp, np.ones((3, 3))), np.eye(2))
        with pytest.raises(TypeError, match=r"`A` is a \w+ array, `x0` is a numpy array"):
            mx.power_iteration(ours, x0=np.ones(2))

    def test_mixed_libraries_are_named(self, xp, backend):
        if backend in (Backend.NUMPY, Backend.NUMPY_READONLY):
            pytest.skip("mixing needs a second library")
        with pytest.raises(TypeError, match=r"`r` is a .* `B` is a numpy array"):
            mx.change_of_basis(asarray(xp, [1.0, 2.0]), np.eye(2))

    def test_mismatched_devices_are_named(self, xp, backend):
        if backend is not Backend.ARRAY_API_STRICT:
            pytest.skip("a second device without a GPU exists only in array-api-strict")
        import array_api_strict

        r = asarray(xp, [1.0, 2.0], array_api_strict.Device("device1"))
        with pytest.raises(ValueError, match="`r` and `B` are on different devices"):
            mx.change_of_basis(r, asarray(xp, np.eye(2)))
