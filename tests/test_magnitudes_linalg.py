"""Every public function of linalg.py and geometry.py at any finite magnitude.

The answer for ``c · input`` must equal the magnitude-1 answer scaled as the
mathematics says (invariant, linear, quadratic in ``c``), for ``c`` across
1e±150 in float64 and 1e±15 in float32 — where squares, products and
determinants of the raw input overflow or underflow — and results of finite
inputs must be finite: never a silent NaN, inf or zero.  Oracles are NumPy /
SciPy float64 on magnitude-1 data, scaled by ``c`` afterwards.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage
import scipy.spatial.distance
from hypothesis import example, given, settings
from hypothesis import strategies as st

import m4ml_xp as mx
from tests._helpers import asarray, eps, to_numpy
from tests.conftest import examples

#: Random magnitudes per property (hypothesis draws an integer range's ends with raised
#: probability); every backend runs them, and JAX compiles per call.
MAGNITUDE_EXAMPLES = settings(max_examples=examples(10))

# Powers of ten for c: ±150 where the answer is quadratic in c (c² stays in range),
# ±300 where it is invariant or linear (raw squares over/underflow from 1e±154);
# float32 maps them to ±15 and ±30 (raw squares fail from 1e±19; inputs stay normal,
# as XLA flushes float32 subnormals to zero).
exponents = st.integers(-150, 150)
wide = st.integers(-300, 300)


def extremes(test):
    """Always try the ends of the wide range and the first overflowing squares."""
    for exponent in (300, -300, 160, -170):
        test = example(exponent=exponent)(test)
    return test


DTYPES = ["float64", "float32"]
SPD = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 3.0]])


def magnitude(exponent: int, dtype: str) -> float:
    return 10.0 ** (exponent if dtype == "float64" else int(exponent / 10))


def on(xp, values, dtype: str):
    """`values` (float64 NumPy, possibly times a huge/tiny c) as an `xp` array of `dtype`."""
    return asarray(xp, np.asarray(values, dtype=np.float64).astype(dtype))


def finite_numpy(result) -> np.ndarray:
    out = np.asarray(to_numpy(result), dtype=np.float64)
    assert np.all(np.isfinite(out)), f"finite input gave a non-finite result: {out}"
    return out


def check(result, expected, dtype: str, *, rtol: float = 64.0, atol: float = 0.0) -> None:
    """`result` finite, of `dtype`, and within `rtol`·eps (relative) / `atol` of `expected`."""
    assert str(result.dtype).rsplit(".", 1)[-1] == dtype
    got = finite_numpy(result)
    e = eps(np.dtype(dtype))
    np.testing.assert_allclose(got, expected, rtol=rtol * e, atol=atol)


def base_matrix(m: int = 4, n: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, n)) + np.eye(m, n) * n


def qr_positive(A: np.ndarray) -> np.ndarray:
    Q, R = np.linalg.qr(A)
    return Q * np.sign(np.diag(R))


parametrize_dtype = pytest.mark.parametrize("dtype", DTYPES)


# --------------------------------------------------------------------------- linalg
class TestTransformationMatrices:
    @parametrize_dtype
    @extremes
    @MAGNITUDE_EXAMPLES
    @given(exponent=wide)
    def test_rotation_of_any_finite_angle_is_finite_and_orthogonal(self, xp, dtype, exponent):
        theta = magnitude(exponent, dtype)
        R = finite_numpy(mx.rotation_matrix(on(xp, theta, dtype)))
        np.testing.assert_allclose(R @ R.T, np.eye(2), atol=16 * eps(np.dtype(dtype)))

    @parametrize_dtype
    @extremes
    @MAGNITUDE_EXAMPLES
    @given(exponent=wide)
    def test_scaling_is_linear_and_shear_keeps_its_ones(self, xp, dtype, exponent):
        c = magnitude(exponent, dtype)
        check(mx.scaling_matrix(on(xp, [2.0 * c, -c], dtype)), np.diag([2.0 * c, -c]), dtype)
        check(mx.shear_matrix(on(xp, c, dtype)), [[1.0, c], [0.0, 1.0]], dtype)

    @parametrize_dtype
    @extremes
    @MAGNITUDE_EXAMPLES
    @given(exponent=wide)
    def test_reflection_is_invariant(self, xp, dtype, exponent):
        c = magnitude(exponent, dtype)
        B = base_matrix(3, 3)
        q = qr_positive(B)[:, -1]
        expected = np.eye(3) - 2 * np.outer(q, q)
        check(mx.reflection_matrix(on(xp, c * B, dtype)), expected, dtype, atol=64 * eps(dtype))

    @parametrize_dtype
    @extremes
    @MAGNITUDE_EXAMPLES
    @given(exponent=wide)
    def test_change_of_basis_scales_inversely(self, xp, dtype, exponent):
        c = magnitude(exponent, dtype)
        B, r = base_matrix(3, 3), np.array([1.0, -2.0, 0.5])
        expected = np.linalg.solve(B, r)
        check(mx.change_of_basis(on(xp, r, dtype), on(xp, c * B, dtype)), expected / c, dtype)
        check(mx.change_of_basis(on(xp, c * r, dtype), on(xp, c * B, dtype)), expected, dtype)


def _sample_oracle(image: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Bilinear samples at ``T⁻¹`` of each pixel (grid-constant, cval 0), in float64."""
    h, w = image.shape
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    centre_r, centre_c = (h - 1) / 2, (w - 1) / 2
    position = np.stack([cols - centre_c, centre_r - rows]).reshape(2, -1)  # (x, y)
    source = np.linalg.solve(T, position)
    src_r = np.clip(centre_r - source[1], -4, h + 3)  # further out is cval all the same
    src_c = np.clip(centre_c + source[0], -4, w + 3)
    sampled = scipy.ndimage.map_coordinates(
        image, [src_r, src_c], order=1, mode="grid-constant", cval=0.0
    )
    return sampled.reshape(h, w)


class TestTransformImage:
    @parametrize_dtype
    @extremes
    @MAGNITUDE_EXAMPLES
    @given(exponent=wide)
    def test_scaled_transforms_are_invertible_and_sample_right(self, xp, dtype, exponent):
        c = magnitude(exponent, dtype)
        image = np.arange(25.0).reshape(5, 5) / 25
        for T in (c * np.eye(2), c * np.array([[0.6, -0.8], [0.8, 0.6]])):
            got = mx.transform_image(on(xp, image, dtype), on(xp, T, dtype), mode="grid-constant")
            check(got, _sample_oracle(image, T), dtype, atol=1e3 * eps(dtype))


class TestGramSchmidt:
    @parametrize_dtype
    @extremes
    @MAGNITUDE_EXAMPLES
    @given(exponent=wide)
    def test_invariant(self, xp, dtype, exponent):
        c = magnitude(exponent, dtype)
        A = base_matrix()
        expected = qr_positive(A)
        check(mx.gram_schmidt(on(xp, c * A, dtype)), expected, dtype, atol=64 * eps(dtype))

    @parametrize_dtype
    @extremes
    @MAGNITUDE_EXAMPLES
    @given(exponent=wide)
    def test_span_dimension_and_dependent_columns(self, xp, dtype, exponent):
        c = magnitude(exponent, dtype)
        B = base_matrix(4, 2)
        A = np.hstack([B, B @ np.array([[1.0], [-2.0]]), B[:, :1]])  # rank 2
        assert mx.span_dimension(on(xp, c * A, dtype)) == 2
        E = finite_numpy(mx.gram_schmidt(on(xp, c * A, dtype)))
        np.testing.assert_array_equal(E[:, 2:], 0.0)
        assert mx.span_dimension(on(xp, c * base_matrix(), dtype)) == 3

    def test_entries_near_the_largest_float(self, xp):
        A = np.diag([1.7e308, 1e300])
        np.testing.assert_array_equal(
            finite_numpy(mx.gram_schmidt(on(xp, A, "float64"))), np.eye(2)
        )
        A = np.array([[1.7e308, 1e300], [1e308, -1e300]])  # NumPy's QR overflows: scale it
        check(mx.gram_schmidt(on(xp, A, "float64")), qr_positive(A * 2.0**-1000), "float64")

    def test_absolute_tol_is_in_the_callers_units(self, xp):
        A = on(xp, 1e-200 * base_matrix(), "float64")
        assert mx.span_dimension(A, tol=1e-210) == 3
        assert mx.span_dimension(A, tol=1e-190) == 0


class TestEchelon:
    @parametrize_dtype
    @extremes
    @MAGNITUDE_EXAMPLES
    @given(exponent=wide)
    def test_row_echelon_and_singularity_are_invariant(self, xp, dtype, exponent):
        c = magnitude(exponent, dtype)
        A = base_matrix(3, 4)
        expected = to_numpy(mx.row_echelon(A))
        check(mx.row_echelon(on(xp, c * A, dtype)), expected, dtype, atol=64 * eps(dtype))
        singular = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])
        assert mx.is_singular(on(xp, c * singular, dtype))
        assert not mx.is_singular(on(xp, c * base_matrix(3, 3), dtype))

    def test_entries_near_the_largest_float(self, xp):
        A = np.array([[1.7e308, -1.7e308], [1.7e308, 1.7e308]])
        assert not mx.is_singular(on(xp, A, "float64"))
        check(mx.row_echelon(on(xp, A, "float64")), [[1.0, -1.0], [0.0, 1.0]], "float64")


class TestPowerIteration:
    @parametrize_dtype
    @extremes
    @MAGNITUDE_EXAMPLES
    @given(exponent=wide)
    def test_eigenvalue_is_linear_and_eigenvector_invariant(self, xp, dtype, exponent):
        c = magnitude(exponent, dtype)
        Q = qr_positive(base_matrix(3, 3))
        A = Q @ np.diag([5.0, -2.0, 1.0]) @ Q.T
        v = Q[:, 0] * np.sign(Q[np.argmax(np.abs(Q[:, 0])), 0])
        for x0 in (None, on(xp, c * np.ones(3), dtype)):
            result = mx.power_iteration(on(xp, c * A, dtype), x0=x0)
            assert result.converged
            check(result.eigenvalue, 5.0 * c, dtype, rtol=2**10)
            # the residual test stops at tol = eps^(2/3): the vector is that accurate
            check(result.eigenvector, v, dtype, rtol=0, atol=8 * eps(dtype) ** (2 / 3))


# --------------------------------------------------------------------------- geometry
def data(n: int = 12, d: int = 3, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) * np.array([1.0, 3.0, 0.5])[:d] + 2.0


class TestStatistics:
    @parametrize_dtype
    @extremes
    @MAGNITUDE_EXAMPLES
    @given(exponent=wide)
    def test_mean_is_linear(self, xp, dtype, exponent):
        c = magnitude(exponent, dtype)
        X = data()
        check(mx.mean(on(xp, c * X, dtype)), c * X.mean(axis=0), dtype)

    @parametrize_dtype
    @MAGNITUDE_EXAMPLES
    @given(exponent=exponents)
    def test_cov_is_quadratic(self, xp, dtype, exponent):
        c = magnitude(exponent, dtype)
        X = data()
        expected = c * c * np.cov(X.T, bias=True)
        check(mx.cov(on(xp, c * X, dtype)), expected, dtype, atol=256 * eps(dtype) * c * c)

    def test_near_the_largest_float(self, xp):
        X = np.array([[1.7e308, 1.0], [1.5e308, 3.0]])
        check(mx.mean(on(xp, X, "float64")), [1.6e308, 2.0], "float64")
        # the sum of squares overflows, their mean (the variance) does not
        X = np.array([[1.2e154, 0.0], [-1.2e154, 2.0]])
        expected = np.array([[1.44e308, -1.2e154], [-1.2e154, 1.0]])
        check(mx.cov(on(xp, X, "float64")), expected, "float64")

    @parametrize_dtype
    @extremes
    @MAGNITUDE_EXAMPLES
    @given(exponent=wide)
    def test_affine_rules_are_linear(self, xp, dtype, exponent):
        c = magnitude(exponent, dtype)
        m, b = np.array([1.0, -2.0, 0.5]), np.array([0.3, 1.0])
        A = base_matrix(2, 3)
        got = mx.affine_mean(on(xp, c * m, dtype), on(xp, A, dtype), on(xp, c * b, dtype))
        check(got, c * (A @ m + b), dtype)
        got = mx.affine_mean(on(xp, m, dtype), on(xp, c * A, dtype), on(xp, c * b, dtype))
        check(got, c * (A @ m + b), dtype)
        check(mx.affine_cov(on(xp, c * SPD, dtype), on(xp, A, dtype)), c * (A @ SPD @ A.T), dtype)

    @parametrize_dtype
    @MAGNITUDE_EXAMPLES
    @given(exponent=exponents)
    def test_affine_cov_is_quadratic_in_A(self, xp, dtype, exponent):
        c = magnitude(exponent, dtype)
        A = base_matrix(2, 3)
        got = mx.affine_cov(on(xp, SPD, dtype), on(xp, c * A, dtype))
        check(got, c * c * (A @ SPD @ A.T), dtype)


class TestInnerProducts:
    x = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, 1.0]])
    y = np.array([[0.5, 1.0, -1.0], [1.0, 1.0, 1.0]])

    @parametrize_dtype
    @MAGNITUDE_EXAMPLES
    @given(exponent=exponents)
    def test_inner_product_is_bilinear(self, xp, dtype, exponent):
        c = magnitude(exponent, dtype)
        x, y = self.x, self.y
        dot = np.sum(x * y, axis=-1)
        check(mx.inner_product(on(xp, c * x, dtype), on(xp, c * y, dtype)), c * c * dot, dtype)
        a_dot = np.sum(x * (y @ SPD), axis=-1)
        got = mx.inner_product(on(xp, c * x, dtype), on(xp, y, dtype), A=on(xp, c * SPD, dtype))
        check(got, c * c * a_dot, dtype)

    @parametrize_dtype
    @extremes
    @MAGNITUDE_EXAMPLES
    @given(exponent=wide)
    def test_norm_and_distance_are_linear(self, xp, dtype, exponent):
        c = magnitude(exponent, dtype)
        x, y = self.x, self.y
        dot = np.sum(x * y, axis=-1)
        check(mx.inner_product(on(xp, c * x, dtype), on(xp, y / c, dtype)), dot, dtype)
        check(mx.norm(on(xp, c * x, dtype)), c * np.linalg.norm(x, axis=-1), dtype)
        a_norm = np.sqrt(np.sum(x * (x @ SPD), axis=-1))
        check(mx.norm(on(xp, c * x, dtype), A=on(xp, SPD, dtype)), c * a_norm, dtype)
        check(mx.norm(on(xp, x, dtype), A=on(xp, c * SPD, dtype)), math.sqrt(c) * a_norm, dtype)
        expected = c * np.linalg.norm(x - y, axis=-1)
        check(mx.distance(on(xp, c * x, dtype), on(xp, c * y, dtype)), expected, dtype)
        d = x - y
        expected = c * np.sqrt(np.sum(d * (d @ SPD), axis=-1))
        got = mx.distance(on(xp, c * x, dtype), on(xp, c * y, dtype), A=on(xp, SPD, dtype))
        check(got, expected, dtype)

    @parametrize_dtype
    @extremes
    @MAGNITUDE_EXAMPLES
    @given(exponent=wide)
    def test_angle_is_invariant(self, xp, dtype, exponent):
        c = magnitude(exponent, dtype)
        x, y = self.x, self.y
        cosine = np.sum(x * y, -1) / np.linalg.norm(x, axis=-1) / np.linalg.norm(y, axis=-1)
        expected = np.arccos(cosine)
        check(mx.angle(on(xp, c * x, dtype), on(xp, c * y, dtype)), expected, dtype)
        check(mx.angle(on(xp, c * x, dtype), on(xp, y / c, dtype)), expected, dtype)
        a_cos = np.sum(x * (y @ SPD), -1) / np.sqrt(
            np.sum(x * (x @ SPD), -1) * np.sum(y * (y @ SPD), -1)
        )
        got = mx.angle(on(xp, c * x, dtype), on(xp, y, dtype), A=on(xp, c * SPD, dtype))
        check(got, np.arccos(a_cos), dtype)
        forty_five = mx.angle(on(xp, [c, 0.0], dtype), on(xp, [c, c], dtype))
        check(forty_five, math.pi / 4, dtype)


class TestPairwiseDistances:
    @parametrize_dtype
    @extremes
    @MAGNITUDE_EXAMPLES
    @given(exponent=wide)
    def test_linear_with_exact_zeros(self, xp, dtype, exponent):
        c = magnitude(exponent, dtype)
        X = data(6)
        X = np.vstack([X, X[:2]])  # duplicated rows: exact zeros
        expected = c * scipy.spatial.distance.cdist(X, X)
        got = mx.pairwise_distances(on(xp, c * X, dtype))
        check(got, expected, dtype, atol=64 * eps(dtype) * c)
        zeros = expected == 0
        assert np.all(finite_numpy(got)[zeros] == 0.0)
        Y = data(4, seed=2)
        got = mx.pairwise_distances(on(xp, c * X, dtype), on(xp, c * Y, dtype))
        check(got, c * scipy.spatial.distance.cdist(X, Y), dtype)


class TestProjections:
    @parametrize_dtype
    @extremes
    @MAGNITUDE_EXAMPLES
    @given(exponent=wide)
    def test_projection_is_invariant_and_project_linear(self, xp, dtype, exponent):
        c = magnitude(exponent, dtype)
        B = base_matrix(3, 2)
        Q = qr_positive(B)
        P = Q @ Q.T
        check(mx.projection_matrix(on(xp, c * B, dtype)), P, dtype, atol=64 * eps(dtype))
        x = data(4)
        got = mx.project(on(xp, c * x, dtype), on(xp, B, dtype))
        check(got, c * (x @ P), dtype, atol=64 * eps(dtype) * c)
        got = mx.project(on(xp, x, dtype), on(xp, c * B, dtype))
        check(got, x @ P, dtype, atol=64 * eps(dtype))
