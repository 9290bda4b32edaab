"""Course 3 geometry and statistics on every backend: NumPy and SciPy as oracles."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.spatial.distance
from array_api_compat import device as device_of
from hypothesis import given
from hypothesis import strategies as st

import m4ml_xp as mx
from tests._helpers import asarray, assert_close_to, eps, to_numpy
from tests.conftest import Backend, sizes

SPD = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 3.0]])


def data(seed: int, n: int = 20, d: int = 3, offset: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return offset + rng.standard_normal((n, d)) * rng.uniform(0.1, 10, d)


class TestStatistics:
    def test_a_covariance_beyond_the_dtype_is_said_not_hidden(self, xp, backend):
        # float32 data of 1e30: variances of ~1e60 are inf, the true answer out of range; NumPy
        # said so in its own words from inside the unscaling ("overflow encountered in multiply")
        X = asarray(
            xp, (np.random.default_rng(0).standard_normal((50, 4)) * 1e30).astype(np.float32)
        )
        if backend is Backend.DASK:  # lazy: nothing is read to warn, and the chunks' NumPy
            with np.errstate(over="ignore"):  # overflows when computed, outside the library
                assert np.isinf(to_numpy(mx.cov(X))).any()
            return
        with pytest.warns(RuntimeWarning) as caught:
            C = mx.cov(X)
        assert len(caught) == 1
        assert re.fullmatch(
            r"cov: the covariance of `X` is beyond what \S*float32 holds: inf there \(the true "
            r"value, out of range\)",
            str(caught[0].message),
        )
        assert np.isinf(to_numpy(C)).any()

    @given(seed=st.integers(0, 2**32 - 1), n=sizes(2, 30), d=sizes(1, 5))
    def test_mean_and_cov_match_numpy(self, xp, seed, n, d):
        X = data(seed, n, d)
        X_b = asarray(xp, X, chunks=(7, -1))
        tol = 100 * eps(X_b.dtype)
        assert_close_to(mx.mean(X_b), X.mean(axis=0), rtol=tol, atol=tol * np.abs(X).max(), xp=xp)
        scale = np.abs(X).max() ** 2
        assert_close_to(
            mx.cov(X_b),
            np.cov(X, rowvar=False, bias=True).reshape(d, d),
            rtol=tol,
            atol=tol * scale,
            xp=xp,
        )
        assert_close_to(
            mx.cov(X_b, correction=1),
            np.cov(X, rowvar=False).reshape(d, d),
            rtol=tol,
            atol=tol * scale,
            xp=xp,
        )

    def test_float32_cov_keeps_its_digits_with_a_large_mean(self, xp, backend):
        """Two passes: centring first keeps ~1e-6; E[xxᵀ] − mmᵀ would cancel 1e4² against 1."""
        X = data(3, 500, 4, offset=1e4).astype(np.float32)
        reference = np.cov(X.astype(np.float64), rowvar=False, bias=True)
        S = to_numpy(mx.cov(asarray(xp, X, chunks=(100, -1))))
        assert S.dtype == np.float32
        assert np.abs(S - reference).max() / np.abs(reference).max() < 1e-5

    @given(seed=st.integers(0, 2**32 - 1))
    def test_affine_rules_match_the_transformed_data(self, xp, seed):
        rng = np.random.default_rng(seed)
        X = data(seed, 25, 3)
        A, b = rng.standard_normal((2, 3)), rng.standard_normal(2)
        transformed = X @ A.T + b
        m, S = mx.mean(asarray(xp, X)), mx.cov(asarray(xp, X))
        tol = 1e3 * eps(m.dtype)
        scale = np.abs(transformed).max()
        assert_close_to(
            mx.affine_mean(m, asarray(xp, A), asarray(xp, b)),
            transformed.mean(axis=0),
            rtol=tol,
            atol=tol * scale,
            xp=xp,
        )
        assert_close_to(
            mx.affine_cov(S, asarray(xp, A)),
            np.cov(transformed, rowvar=False, bias=True),
            rtol=tol,
            atol=tol * scale**2,
            xp=xp,
        )

    def test_device_and_bad_inputs(self, xp, device, backend):
        X = asarray(xp, data(0), device)
        assert device_of(mx.cov(X)) == device
        with pytest.raises(ValueError, match="`X` must be a 2-D"):
            mx.mean(asarray(xp, np.ones(3)))
        with pytest.raises(ValueError, match=r"`correction` must be in \[0.0, 2"):
            mx.cov(asarray(xp, np.ones((2, 3))), correction=2)
        with pytest.raises(ValueError, match="`A` must be \\(K, D\\)"):
            mx.affine_mean(
                asarray(xp, np.ones(3)), asarray(xp, np.ones((2, 2))), asarray(xp, np.ones(2))
            )
        with pytest.raises(ValueError, match="`A` must have 3 columns"):
            mx.affine_cov(asarray(xp, np.eye(3)), asarray(xp, np.ones((2, 2))))
        if backend is not Backend.DASK:  # a global check: not computed on Dask's lazy S
            with pytest.raises(ValueError, match="`S` must be symmetric"):
                mx.affine_cov(asarray(xp, np.triu(np.ones((3, 3)))), asarray(xp, np.eye(3)))
        with pytest.raises(TypeError, match="`X` must be an array"):
            mx.mean([[1.0, 2.0]])


@pytest.mark.xp_backend_only(Backend.JAX)
def test_jax_transforms_with_a_traced_and_a_constant_argument():
    """Under grad, vmap and jit a tracer has no device (the constant's is not compared with
    it), and a closed-over constant's checks are staged, not read."""
    import jax
    import jax.numpy as jnp

    x, y = jnp.array([1.0, 2.0, 3.0]), jnp.array([0.0, 1.0, 5.0])
    gradient = jax.grad(lambda a: mx.distance(a, y))(x)
    np.testing.assert_allclose(np.asarray(gradient), (x - y) / np.linalg.norm(x - y), rtol=1e-6)
    B = jnp.array([[1.0], [1.0], [0.0]])
    projected = jax.vmap(lambda row: mx.project(row, B))(jnp.eye(3))
    np.testing.assert_allclose(
        np.asarray(projected), [[0.5, 0.5, 0], [0.5, 0.5, 0], [0, 0, 0]], rtol=1e-6, atol=1e-6
    )
    A, b = jnp.eye(3), jnp.ones(3)
    np.testing.assert_allclose(np.asarray(jax.jit(lambda m: mx.affine_mean(m, A, b))(x)), x + 1)
    # a constant's value checks inside the caller's jit are staged, not read (nor refused)
    inner = jax.jit(lambda a: mx.distance(a, y, A=2 * A))(x)
    np.testing.assert_allclose(float(inner), np.sqrt(2) * np.linalg.norm(x - y), rtol=1e-6)
    coordinates = jax.jit(lambda r: mx.change_of_basis(r, 2 * A))(x)
    np.testing.assert_allclose(np.asarray(coordinates), np.asarray(x) / 2, rtol=1e-6)


class TestInnerProducts:
    @given(seed=st.integers(0, 2**32 - 1))
    def test_match_numpy_and_scipy(self, xp, seed):
        rng = np.random.default_rng(seed)
        x, y = rng.standard_normal(3), rng.standard_normal(3)
        xb, yb, A = asarray(xp, x), asarray(xp, y), asarray(xp, SPD)
        tol = 100 * eps(xb.dtype)
        assert_close_to(mx.inner_product(xb, yb), np.asarray(x @ y), rtol=tol, atol=tol, xp=xp)
        assert_close_to(
            mx.inner_product(xb, yb, A=A), np.asarray(x @ SPD @ y), rtol=tol, atol=tol, xp=xp
        )
        assert_close_to(mx.norm(xb), np.asarray(np.linalg.norm(x)), rtol=tol, xp=xp)
        assert_close_to(mx.norm(xb, A=A), np.asarray(np.sqrt(x @ SPD @ x)), rtol=tol, xp=xp)
        assert_close_to(
            mx.distance(xb, yb), np.asarray(scipy.spatial.distance.euclidean(x, y)), rtol=tol, xp=xp
        )
        assert_close_to(
            mx.distance(xb, yb, A=A),
            np.asarray(scipy.spatial.distance.mahalanobis(x, y, SPD)),
            rtol=tol,
            xp=xp,
        )
        cosine = scipy.spatial.distance.cosine(x, y)
        assert_close_to(
            mx.angle(xb, yb),
            np.asarray(np.arccos(1 - cosine)),
            rtol=1e3 * tol,
            atol=1e3 * tol,
            xp=xp,
        )
        general = np.arccos(x @ SPD @ y / np.sqrt((x @ SPD @ x) * (y @ SPD @ y)))
        assert_close_to(
            mx.angle(xb, yb, A=A), np.asarray(general), rtol=1e3 * tol, atol=1e3 * tol, xp=xp
        )
        # symmetric, and broadcast over rows
        assert_close_to(mx.angle(yb, xb), to_numpy(mx.angle(xb, yb)), rtol=tol, atol=tol, xp=xp)
        rows = asarray(xp, np.stack([x, y]))
        assert_close_to(mx.norm(rows), np.linalg.norm(np.stack([x, y]), axis=1), rtol=tol, xp=xp)

    def test_angles_of_parallel_and_opposite_vectors_keep_their_digits(self, xp):
        """arccos(cos) would leave sqrt(eps) ≈ 1.5e-8 here; Kahan's formula leaves rounding."""
        x = asarray(xp, np.array([1e-3, 2e-3, 3e-3]))
        assert float(to_numpy(mx.angle(x, 7 * x))) <= 4 * eps(x.dtype)
        assert float(to_numpy(mx.angle(x, -2 * x))) == pytest.approx(np.pi, rel=4 * eps(x.dtype))

    @pytest.mark.parametrize("function", [mx.inner_product, mx.distance, mx.angle])
    @pytest.mark.parametrize("with_A", [False, True])
    def test_shapes_that_do_not_broadcast_name_both(self, xp, function, with_A):
        x, y = asarray(xp, np.ones((2, 3))), asarray(xp, np.ones((4, 3)))
        A = asarray(xp, SPD) if with_A else None
        message = r"`x` and `y` must broadcast against each other; got shapes \(2, 3\) and \(4, 3\)"
        with pytest.raises(ValueError, match=message):
            function(x, y, A=A)
        rows = function(x, asarray(xp, np.ones((1, 3))), A=A)  # a broadcasting batch still works
        assert rows.shape == (2,)

    def test_bad_inputs(self, xp):
        x = asarray(xp, np.ones(3))
        with pytest.raises(ValueError, match="`A` must be symmetric"):
            mx.inner_product(x, x, A=asarray(xp, np.triu(SPD)))
        with pytest.raises(ValueError, match="`A` must be positive definite"):
            mx.norm(x, A=asarray(xp, np.diag([1.0, -1.0, 1.0])))
        with pytest.raises(ValueError, match="`A` must be \\(3, 3\\)"):
            mx.norm(x, A=asarray(xp, np.eye(2)))
        with pytest.raises(ValueError, match="same length along their last axis"):
            mx.distance(x, asarray(xp, np.ones(2)))
        with pytest.raises(ValueError, match="angle of a zero vector"):
            to_numpy(mx.angle(x, asarray(xp, np.zeros(3))))


class TestPairwiseDistances:
    @given(seed=st.integers(0, 2**32 - 1), n=sizes(1, 12), m=sizes(1, 12))
    def test_matches_cdist(self, xp, seed, n, m):
        rng = np.random.default_rng(seed)
        X, Y = rng.standard_normal((n, 4)), rng.standard_normal((m, 4))
        D = mx.pairwise_distances(asarray(xp, X, chunks=(5, 2)), asarray(xp, Y, chunks=(4, -1)))
        assert D.shape == (n, m)
        tol = 100 * eps(D.dtype)
        assert_close_to(D, scipy.spatial.distance.cdist(X, Y), rtol=tol, atol=tol, xp=xp)

    def test_identical_rows_are_exact_zeros_and_float32_keeps_near_neighbours(self, xp):
        rng = np.random.default_rng(5)
        base = 1e3 + rng.standard_normal((40, 16))
        near = base + 1e-2 * rng.standard_normal((40, 16))  # d ≈ 0.04 next to norms ≈ 4000
        X = np.concatenate([base, near]).astype(np.float32)
        D = to_numpy(mx.pairwise_distances(asarray(xp, X, chunks=(30, -1))))
        assert D.dtype == np.float32
        assert (np.diag(D) == 0).all()
        reference = scipy.spatial.distance.cdist(X.astype(np.float64), X.astype(np.float64))
        off = ~np.eye(80, dtype=bool)
        assert (np.abs(D - reference)[off] / reference[off]).max() < 1e-5

    def test_device_and_bad_inputs(self, xp, device):
        X = asarray(xp, np.ones((3, 2)), device)
        assert device_of(mx.pairwise_distances(X)) == device
        with pytest.raises(ValueError, match="same number of columns"):
            mx.pairwise_distances(X, asarray(xp, np.ones((3, 3)), device))


class TestProjections:
    @given(seed=st.integers(0, 2**32 - 1), d=sizes(2, 6), k=sizes(1, 3))
    def test_matches_the_normal_equations_and_is_a_projection(self, xp, seed, d, k):
        rng = np.random.default_rng(seed)
        B = rng.standard_normal((d, min(k, d)))
        P = mx.projection_matrix(asarray(xp, B))
        expected = B @ np.linalg.solve(B.T @ B, B.T)
        tol = 1e3 * eps(P.dtype) * np.linalg.cond(B) ** 2
        assert_close_to(P, expected, rtol=tol, atol=tol, xp=xp)
        P_np = to_numpy(P)
        np.testing.assert_array_equal(P_np, P_np.T)
        np.testing.assert_allclose(P_np @ P_np, P_np, atol=1e3 * eps(P.dtype))
        x = rng.standard_normal(d)
        assert_close_to(
            mx.project(asarray(xp, x), asarray(xp, B)), expected @ x, rtol=tol, atol=tol, xp=xp
        )

    def test_one_vector_and_a_rank_deficient_basis(self, xp):
        b = np.array([1.0, 2.0, 2.0])
        P = mx.projection_matrix(asarray(xp, b))
        tol = 100 * eps(P.dtype)
        assert_close_to(P, np.outer(b, b) / 9, rtol=tol, atol=tol, xp=xp)
        B = np.stack([b, 2 * b], axis=1)  # one direction twice
        assert_close_to(
            mx.projection_matrix(asarray(xp, B)),
            np.outer(b, b) / 9,
            rtol=1e3 * tol,
            atol=1e3 * tol,
            xp=xp,
        )

    def test_a_column_vector_gives_a_column(self, xp, device):
        """The course's (D, 1) column: the same projection as the (D,) vector, as a column."""
        rng = np.random.default_rng(8)
        B, x = rng.standard_normal((4, 2)), rng.standard_normal(4)
        expected = B @ np.linalg.solve(B.T @ B, B.T @ x)
        B_b = asarray(xp, B, device)
        column = mx.project(asarray(xp, x[:, None], device), B_b)
        tol = 100 * eps(column.dtype)
        assert_close_to(column, expected[:, None], rtol=tol, atol=tol, xp=xp, device=device)
        rows = mx.project(asarray(xp, np.stack([x, 2 * x]), device), B_b)  # (N, D) rows
        assert_close_to(
            rows, np.stack([expected, 2 * expected]), rtol=tol, atol=tol, xp=xp, device=device
        )
        with pytest.raises(ValueError, match="`x`"):
            mx.project(asarray(xp, np.ones((3, 1)), device), B_b)  # a column of the wrong length

    def test_bad_inputs(self, xp, backend):
        with pytest.raises(ValueError, match="`B` must be a 1-D or 2-D"):
            mx.projection_matrix(asarray(xp, np.ones((2, 2, 2))))
        with pytest.raises(
            ValueError, match=r"`x` must be a vector of 3 entries, a \(3, 1\) column"
        ):
            mx.project(asarray(xp, np.ones(2)), asarray(xp, np.ones(3)))
        if backend is not Backend.DASK:  # the zero check reads a value: eager only
            with pytest.raises(ValueError, match="`B` must not be zero"):
                mx.projection_matrix(asarray(xp, np.zeros(3)))
