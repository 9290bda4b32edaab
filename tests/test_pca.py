"""PCA on every backend: scikit-learn and NumPy's eigh/SVD as oracles."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import pytest
from array_api_compat import device as device_of
from hypothesis import given
from hypothesis import strategies as st

import m4ml_xp as mx
from tests._helpers import asarray, assert_close_to, eps, to_numpy
from tests.conftest import Backend, sizes


def low_rank_data(seed: int, n: int, d: int, offset: float = 0.0) -> np.ndarray:
    """Data with a clear spectrum: decaying scales along random directions, plus noise."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((d, d)))[0]
    scales = 10.0 ** -np.linspace(0, 2, d)
    return offset + (rng.standard_normal((n, d)) * scales) @ basis.T


def tf32_where_jax(backend: Backend) -> contextlib.AbstractContextManager[Any]:
    """On JAX, the caller's default matmul precision set to TF32; elsewhere nothing."""
    if backend is not Backend.JAX:
        return contextlib.nullcontext()
    import jax

    return jax.default_matmul_precision("tensorfloat32")


def methods_for(backend: Backend) -> list[str]:
    return ["covariance_eigh"] if backend is Backend.DASK else ["covariance_eigh", "svd", "gram"]


class TestAgainstScikitLearn:
    @pytest.mark.parametrize("shape", [(60, 8), (8, 30)], ids=["tall", "wide"])
    def test_exact_methods_match_sklearn_full(self, xp, backend, shape):
        from sklearn.decomposition import PCA

        n, d = shape
        X = low_rank_data(1, n, d)
        k = min(n, d) - 1  # the last direction of a wide centred matrix is null
        reference = PCA(n_components=k, svd_solver="full").fit(X)
        for method in ["auto", *methods_for(backend)]:  # auto: a route the backend has
            result = mx.pca(asarray(xp, X, chunks=(20, -1)), k, method=method)
            tol = 1e4 * eps(result.components.dtype)
            assert_close_to(result.components, reference.components_, rtol=tol, atol=tol, xp=xp)
            assert_close_to(
                result.explained_variance, reference.explained_variance_, rtol=tol, atol=tol, xp=xp
            )
            assert_close_to(
                result.explained_variance_ratio,
                reference.explained_variance_ratio_,
                rtol=tol,
                atol=tol,
                xp=xp,
            )
            assert_close_to(
                result.singular_values, reference.singular_values_, rtol=tol, atol=tol, xp=xp
            )
            assert_close_to(result.mean, reference.mean_, rtol=tol, atol=tol, xp=xp)

    def test_randomized_matches_sklearn_randomized_and_full(self, xp, backend):
        from sklearn.decomposition import PCA

        if backend is Backend.DASK:
            pytest.skip("Dask takes the covariance route")
        rng = np.random.default_rng(2)
        basis = np.linalg.qr(rng.standard_normal((40, 40)))[0]
        scales = np.concatenate([[10.0, 8, 6, 4, 2], np.full(35, 0.02)])  # a gap after 5
        # the offset tests the implicit centring of the power iterations
        X = 50.0 + (rng.standard_normal((200, 40)) * scales) @ basis.T
        exact = PCA(n_components=5, svd_solver="full").fit(X)
        sketched = PCA(n_components=5, svd_solver="randomized", random_state=0).fit(X)
        np.testing.assert_allclose(
            sketched.explained_variance_, exact.explained_variance_, rtol=1e-8
        )
        result = mx.pca(asarray(xp, X), 5, method="randomized", seed=0)
        tol = 1e-9  # (σ₁₆/σ₅)^(2q+1) with q = 4 power iterations: the sketch is exact here
        assert_close_to(result.components, exact.components_, rtol=tol, atol=tol, xp=xp)
        assert_close_to(result.explained_variance, exact.explained_variance_, rtol=tol, xp=xp)
        again = mx.pca(asarray(xp, X), 5, method="randomized", seed=0)
        np.testing.assert_array_equal(to_numpy(again.components), to_numpy(result.components))

    @given(seed=st.integers(0, 2**32 - 1), n=sizes(3, 25), d=sizes(2, 8))
    def test_routes_agree_with_numpy_eigh(self, xp, backend, seed, n, d):
        X = low_rank_data(seed, n, d, offset=3.0)
        centred = X - X.mean(axis=0)
        eigenvalues = np.linalg.eigvalsh(centred.T @ centred)[::-1][: min(n, d)] / (n - 1)
        for method in methods_for(backend):
            result = mx.pca(asarray(xp, X, chunks=(10, -1)), method=method)
            tol = 1e4 * eps(result.explained_variance.dtype)
            assert_close_to(
                result.explained_variance, eigenvalues, rtol=tol, atol=tol * eigenvalues[0], xp=xp
            )
            C = to_numpy(result.components)
            np.testing.assert_allclose(
                np.linalg.norm(C, axis=1), 1, rtol=1e3 * eps(result.components.dtype)
            )
            # svd_flip's convention: the largest magnitude positive, a tie to the positive
            # entry (a null direction's rounding noise can tie, as torch's gram route did)
            assert (C.max(axis=1) >= -C.min(axis=1)).all()


@pytest.mark.xp_backend_only(Backend.NUMPY)
@pytest.mark.parametrize("method", ["covariance_eigh", "randomized"])
def test_peak_memory_added_is_below_the_input_size(method):
    """The issue's bound (1.2x the input): no (N, D) centred copy is made."""
    import tracemalloc

    X = low_rank_data(5, 6000, 120, offset=1.0)
    mx.pca(X[:200, :], 10, method=method, seed=0)  # first-call imports and caches are not the run's
    tracemalloc.start()
    try:
        mx.pca(X, 10, method=method, seed=0)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= 0.6 * X.nbytes  # a centred copy alone would be 1.0x


class TestAccuracyAndOptions:
    @pytest.mark.parametrize("method", ["covariance_eigh", "svd", "gram"])
    def test_a_variance_fraction_met_exactly_keeps_the_fewest(self, xp, backend, method):
        # variances 4/3 and 16/3 of 20/3: one component explains exactly 0.8; the fewest that
        # explain the fraction is 1 (scikit-learn's searchsorted(side="right") takes 2)
        if backend is Backend.DASK and method != "covariance_eigh":
            pytest.skip("Dask arrays take the covariance route")
        X = asarray(xp, np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]]))
        assert mx.pca(X, 0.8, method=method).components.shape[0] == 1
        assert mx.pca(X, 0.81, method=method).components.shape[0] == 2

    def test_float32_covariance_route_keeps_eigenvalues_to_1e_6(self, xp, backend):
        """Centring first: a large mean (pixel-like offsets) costs nothing in float32.

        On JAX the caller asks for TF32 products (the default for float32 on an NVIDIA GPU,
        ~1e-4 error there): the library must ask for full precision itself.
        """
        X = low_rank_data(3, 2000, 20, offset=100.0)
        reference = np.linalg.eigvalsh(np.cov(X, rowvar=False))[::-1][:10]
        with tf32_where_jax(backend):
            result = mx.pca(
                asarray(xp, X.astype(np.float32), chunks=(500, -1)), 10, method="covariance_eigh"
            )
        assert result.explained_variance.dtype == xp.float32
        error = np.abs(to_numpy(result.explained_variance) - reference) / reference[0]
        assert error.max() < 1e-6

    def test_variance_fraction_picks_the_fewest_components(self, xp):
        X = low_rank_data(4, 100, 10)
        full = mx.pca(asarray(xp, X))
        shares = np.cumsum(to_numpy(full.explained_variance_ratio))
        result = mx.pca(asarray(xp, X), 0.95)
        assert result.components.shape[0] == int(np.searchsorted(shares, 0.95) + 1)
        assert float(to_numpy(result.explained_variance_ratio).sum()) >= 0.95

    def test_constant_columns_and_device(self, xp, device):
        X = low_rank_data(5, 30, 4)
        X[:, 2] = 7.0
        result = mx.pca(asarray(xp, X, device), 3)
        assert device_of(result.components) == device
        values = to_numpy(result.explained_variance)
        assert np.isfinite(values).all()
        assert np.isfinite(to_numpy(result.components)).all()

    def test_constant_data_has_zero_variance_ratios_not_nan(self, xp):
        for n_components in (2, 0.9):  # a count, and a variance fraction
            result = mx.pca(asarray(xp, np.ones((6, 3))), n_components)
            np.testing.assert_array_equal(to_numpy(result.explained_variance_ratio), 0.0)
            np.testing.assert_array_equal(to_numpy(result.explained_variance), 0.0)

    def test_bad_inputs(self, xp):
        X = asarray(xp, low_rank_data(6, 10, 4))
        with pytest.raises(ValueError, match="`X` must be a 2-D"):
            mx.pca(asarray(xp, np.ones(4)), 1)
        with pytest.raises(ValueError, match="at least 2 samples"):
            mx.pca(asarray(xp, np.ones((1, 4))), 1)
        with pytest.raises(ValueError, match=r"`n_components` must be <= min\(N, D\) = 4"):
            mx.pca(X, 5)
        with pytest.raises(ValueError, match="`n_components` must be >= 1"):
            mx.pca(X, 0)
        with pytest.raises(ValueError, match=r"fraction of the variance must be in \(0, 1\)"):
            mx.pca(X, 1.5)
        with pytest.raises(TypeError, match="`n_components` must be an integer"):
            mx.pca(X, "3")
        with pytest.raises(ValueError, match="`method` must be one of"):
            mx.pca(X, 2, method="eig")
        bad = np.ones((5, 3))
        bad[2, 1] = np.nan
        with pytest.raises(ValueError, match="`X` must contain only finite"):
            to_numpy(mx.pca(asarray(xp, bad), 2).components)


class TestCourseReconstruction:
    def test_result_that_is_not_a_pca_result_is_refused(self, xp):
        X = asarray(xp, np.ones((3, 2)))
        for function in (mx.reconstruct, mx.reconstruction_error):
            with pytest.raises(TypeError, match="`result` must be a PCAResult"):
                function(X, (1, 2))

    def test_error_is_the_sum_of_the_discarded_eigenvalues(self, xp, backend):
        X = low_rank_data(7, 80, 6, offset=2.0)
        centred = X - X.mean(axis=0)
        principal_values = np.linalg.eigvalsh(centred.T @ centred / len(X))[::-1]  # the course's /N
        for k in (1, 3, 6):
            result = mx.pca(asarray(xp, X, chunks=(30, -1)), k, method=methods_for(backend)[-1])
            error = float(
                to_numpy(mx.reconstruction_error(asarray(xp, X, chunks=(30, -1)), result))
            )
            assert error == pytest.approx(principal_values[k:].sum(), rel=1e-9, abs=1e-12)
        full = mx.pca(asarray(xp, X), 6)
        assert_close_to(mx.reconstruct(asarray(xp, X), full), X, rtol=1e-10, atol=1e-10, xp=xp)

    def test_gram_route_gives_the_same_reconstruction(self, xp, backend):
        """The course's N < D trick: the same components, so the same reconstruction."""
        if backend is Backend.DASK:
            pytest.skip("Dask takes the covariance route")
        X = low_rank_data(8, 10, 40)
        by_gram = mx.pca(asarray(xp, X), 5, method="gram")
        by_svd = mx.pca(asarray(xp, X), 5, method="svd")
        assert_close_to(
            mx.reconstruct(asarray(xp, X), by_gram), to_numpy(mx.reconstruct(asarray(xp, X), by_svd)),
            rtol=1e-9, atol=1e-9, xp=xp,
        )  # fmt: skip


class TestDistributed:
    def test_dask_pca_on_a_local_cluster_equals_numpy(self, xp, backend):
        """The covariance route as a distributed reduction: tasks on real workers."""
        if backend is not Backend.DASK:
            pytest.skip("dask.distributed runs Dask arrays")
        from dask.distributed import Client, LocalCluster, get_task_stream

        X = low_rank_data(14, 4000, 12, offset=10.0)
        with (
            LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            X_d = asarray(xp, X, chunks=(500, -1))
            with get_task_stream(client) as stream:
                result = mx.pca(X_d, 4)
                components, variance = (
                    to_numpy(result.components),
                    to_numpy(result.explained_variance),
                )
            workers = {task["worker"] for task in stream.data}
        assert len(workers) == 2  # the reduction ran on both workers
        reference = mx.pca(X, 4)
        np.testing.assert_allclose(components, reference.components, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(variance, reference.explained_variance, rtol=1e-10)


@pytest.mark.xp_backend_only(Backend.TORCH)
def test_tensors_that_require_grad_keep_their_graph_without_warnings():
    import warnings

    import torch

    X = torch.tensor(low_rank_data(7, 20, 4), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warned of scalars and asarray of graph tensors
        result = mx.pca(X, 2)
        mx.reconstruction_error(X, result)
        mx.streaming_pca([X[:10], X[10:]], 2)
        mx.PCA(2).fit(X).transform(X)
        path = mx.gradient_descent(lambda v: 2 * v, X[0] * 1.0, lr=0.1, n_steps=2).path
    result.explained_variance.sum().backward()
    assert X.grad is not None
    assert torch.isfinite(X.grad).all()
    assert path.grad_fn is not None


@pytest.mark.xp_backend_only(Backend.DASK)
@pytest.mark.parametrize("n_components", [2, 0.9])
def test_dask_reads_the_data_in_one_pass_and_the_results_never_again(n_components):
    import dask
    import dask.array as da

    reads = []

    def counted(block):
        reads.append(block.shape)
        return block

    X = da.from_array(low_rank_data(3, 400, 5), chunks=(100, 5)).map_blocks(counted)
    result = mx.pca(X, n_components)
    during = len(reads)
    dask.compute(*result)
    assert len(reads) == during  # every result field is computed from the one pass
    assert during <= 2 * X.numblocks[0]  # was 10 (a count) or 14 (a fraction) in all, for 4
