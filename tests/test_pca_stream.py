"""Streaming PCA (m4ml_xp.pca_stream) on every backend: batch PCA and scikit-learn as oracles."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from array_api_compat import device as device_of
from hypothesis import given
from hypothesis import strategies as st

import m4ml_xp as mx
from tests._helpers import asarray, assert_close_to, eps, to_numpy
from tests.conftest import Backend, sizes
from tests.test_pca import low_rank_data


class TestStreaming:
    @given(seed=st.integers(0, 2**32 - 1), cuts=st.lists(sizes(1, 119), max_size=6))
    def test_streaming_equals_batch_on_random_chunkings(self, xp, seed, cuts):
        X = low_rank_data(seed, 120, 5, offset=50.0)
        edges = [0, *sorted(set(cuts)), 120]
        chunks = [asarray(xp, X[a:b]) for a, b in itertools.pairwise(edges)]
        streamed = mx.streaming_pca(chunks, 3)
        batch = mx.pca(asarray(xp, X), 3, method="covariance_eigh")
        tol = 1e4 * eps(streamed.components.dtype)
        for got, want in zip(streamed, batch, strict=True):
            assert_close_to(got, to_numpy(want), rtol=tol, atol=tol * 100, xp=xp)

    def test_numpy_chunks_stream_onto_the_backend(self, xp, device):
        X = low_rank_data(9, 300, 6)
        memmap_like = (X[i : i + 64] for i in range(0, 300, 64))  # host chunks
        result = mx.streaming_pca(memmap_like, 2, xp=xp, device=device)
        assert device_of(result.components) == device
        expected = mx.pca(asarray(xp, X, device), 2)
        assert_close_to(
            result.explained_variance,
            to_numpy(expected.explained_variance),
            rtol=1e-10,
            xp=xp,
            device=device,
        )

    def test_finiteness_is_read_once_per_stream_and_names_the_first_bad_chunk(self, xp, backend):
        from m4ml_xp._checks import StreamFiniteness

        if backend is Backend.DASK:
            pytest.skip("Dask chunks carry their own check, raised when computed")

        finiteness = StreamFiniteness("chunks", xp=xp)
        values = [np.eye(2), np.array([[np.nan, 0.0]]), np.ones((1, 2)), np.full((1, 2), np.inf)]
        for index, block in enumerate(values):
            finiteness.add(asarray(xp, block), index)  # recorded on the device, not read yet
        with pytest.raises(ValueError, match=r"`chunks\[1\]` must contain only finite"):
            finiteness.verify()
        finiteness.add(asarray(xp, np.eye(2)), 4)
        finiteness.verify()  # only what arrived since the last verification

    def test_resume_after_an_interruption_gives_the_same_result(self, xp, tmp_path):
        X = low_rank_data(10, 500, 4)
        pieces = [X[i : i + 50] for i in range(0, 500, 50)]
        path = tmp_path / "state.npz"

        def killed_after(n):
            for i, piece in enumerate(pieces):
                if i == n:
                    raise KeyboardInterrupt  # the run dies between two chunks
                yield asarray(xp, piece)

        with pytest.raises(KeyboardInterrupt):
            mx.streaming_pca(killed_after(6), 2, checkpoint=path, xp=xp)
        assert mx.StreamingState.load(path).n_chunks == 6
        resumed = mx.streaming_pca((asarray(xp, p) for p in pieces), 2, checkpoint=path, xp=xp)
        uninterrupted = mx.streaming_pca((asarray(xp, p) for p in pieces), 2, xp=xp)
        for got, want in zip(resumed, uninterrupted, strict=True):
            np.testing.assert_allclose(to_numpy(got), to_numpy(want), rtol=1e-12, atol=1e-14)

    def test_bad_streams(self, xp, tmp_path):
        for namespace in (xp, None):  # None: the library is the first chunk's, and there is none
            with pytest.raises(ValueError, match="`chunks` was empty"):
                mx.streaming_pca(iter([]), 2, xp=namespace)
        with pytest.raises(TypeError, match="`chunks` must be an iterable of arrays; got int"):
            mx.streaming_pca(5, 2)
        with pytest.raises(ValueError, match=r"`chunks\[1\]` must have 3 columns"):
            mx.streaming_pca([asarray(xp, np.ones((4, 3))), asarray(xp, np.ones((4, 2)))], 1)
        bad = np.ones((4, 3))
        bad[0, 0] = np.inf
        with pytest.raises(ValueError, match=r"`chunks\[1\]` must contain only finite"):
            to_numpy(mx.streaming_pca([asarray(xp, np.eye(3)), asarray(xp, bad)], 1).components)
        chunks = [asarray(xp, np.eye(3)) for _ in range(5)]
        chunks[3] = asarray(xp, bad)
        path = tmp_path / "state.npz"
        with pytest.raises(ValueError, match=r"`chunks\[3\]` must contain only finite"):
            mx.streaming_pca(iter(chunks), 1, checkpoint=path, checkpoint_every=1, xp=xp)
        assert mx.StreamingState.load(path).n_chunks == 3  # no state saved past the bad chunk
        broken = tmp_path / "broken.npz"
        broken.write_text("not a state")
        with pytest.raises(ValueError, match="not a saved streaming-PCA state"):
            mx.StreamingState.load(broken)

    def test_a_chunk_of_another_library_is_refused(self, xp, backend):
        if backend is Backend.ARRAY_API_STRICT:
            pytest.skip(
                "the other library here is NumPy, whose host chunks stream onto any backend"
            )
        strict = pytest.importorskip("array_api_strict")
        chunks = [asarray(xp, np.eye(3)), strict.asarray(np.eye(3))]
        with pytest.raises(TypeError, match=r"`chunks\[1\]` comes from array_api_strict"):
            mx.streaming_pca(chunks, 1)


class TestEstimator:
    def test_later_batches_join_the_fitted_library(self, xp):
        # a host NumPy batch after the first is moved to the fitted library, as streaming_pca
        # moves NumPy chunks; torch's state met NumPy in array-api-compat's internals
        rng = np.random.default_rng(3)
        A, B = rng.standard_normal((6, 3)), rng.standard_normal((5, 3))
        first = asarray(xp, A)  # float32 under JAX's defaults
        model = mx.PCA(2).partial_fit(first).partial_fit(B)
        whole = np.concatenate([A, B])
        expected = np.sort(np.linalg.eigvalsh(np.cov(whole, rowvar=False)))[-1:-3:-1].copy()
        rtol = 1e3 * eps(first.dtype)
        assert_close_to(model.explained_variance_, expected, rtol=rtol, xp=xp, dtype=first.dtype)

    def test_later_batches_take_the_models_dtype(self, xp):
        # float32 first: a float64 batch is merged in float32, as one float32 fit of both
        rng = np.random.default_rng(4)
        A, B = rng.standard_normal((6, 3)), rng.standard_normal((5, 3))
        model = mx.PCA(2).partial_fit(asarray(xp, A.astype(np.float32))).partial_fit(asarray(xp, B))
        assert model.components_.dtype == xp.float32
        assert model.mean_.dtype == xp.float32
        chunks = [asarray(xp, A.astype(np.float32)), asarray(xp, B)]
        assert mx.streaming_pca(chunks, 2).components.dtype == xp.float32

    def test_a_batch_of_another_library_is_refused(self):
        torch = pytest.importorskip("torch")
        model = mx.PCA(2).partial_fit(np.random.default_rng(0).standard_normal((6, 3)))
        with pytest.raises(
            TypeError, match="`X` comes from torch, but the model was fitted on numpy"
        ):
            model.partial_fit(torch.zeros((4, 3), dtype=torch.float64))

    def test_matches_scikit_learn(self, xp, backend):
        from sklearn.decomposition import PCA

        X = low_rank_data(11, 90, 7)
        for whiten in (False, True):
            ours = mx.PCA(3, whiten=whiten).fit(asarray(xp, X, chunks=(30, -1)))
            theirs = PCA(3, whiten=whiten, svd_solver="full").fit(X)
            tol = 1e-9
            for name in ("components_", "explained_variance_", "explained_variance_ratio_",
                         "singular_values_", "mean_"):  # fmt: skip
                assert_close_to(
                    getattr(ours, name), getattr(theirs, name), rtol=tol, atol=tol, xp=xp
                )
            assert ours.n_components_ == theirs.n_components_
            Z = ours.transform(asarray(xp, X, chunks=(30, -1)))
            assert_close_to(Z, theirs.transform(X), rtol=1e-8, atol=1e-8, xp=xp)
            assert_close_to(
                ours.inverse_transform(Z),
                theirs.inverse_transform(theirs.transform(X)),
                rtol=1e-8,
                atol=1e-8,
                xp=xp,
            )

    def test_partial_fit_equals_fit_and_incremental_pca(self, xp):
        from sklearn.decomposition import IncrementalPCA

        X = low_rank_data(12, 200, 6, offset=5.0)
        model = mx.PCA(3)
        reference = IncrementalPCA(3)
        for i in range(0, 200, 40):
            model.partial_fit(asarray(xp, X[i : i + 40]))
            reference.partial_fit(X[i : i + 40])
        whole = mx.PCA(3).fit(asarray(xp, X))
        assert_close_to(model.components_, to_numpy(whole.components_), rtol=1e-9, atol=1e-9, xp=xp)
        # exact: the batch fit's variances, where IncrementalPCA (top-k kept between batches) drifts
        assert_close_to(
            model.explained_variance_, to_numpy(whole.explained_variance_), rtol=1e-9, xp=xp
        )
        ours = np.abs(to_numpy(model.explained_variance_) / to_numpy(whole.explained_variance_) - 1)
        theirs = np.abs(reference.explained_variance_ / to_numpy(whole.explained_variance_) - 1)
        assert ours.max() < theirs.max()
        assert_close_to(model.mean_, reference.mean_, rtol=1e-12, atol=1e-12, xp=xp)
        resumed = mx.PCA(3).load_state_dict(model.state_dict(), xp=xp)
        assert_close_to(resumed.components_, to_numpy(model.components_), rtol=0, atol=0, xp=xp)

    def test_variance_fraction_and_whitening_while_streaming(self, xp):
        """`PCA(0.9).partial_fit`: after each call, the fewest components explaining 90 % of
        the variance seen so far — the count may change as rows arrive — and whitened
        projections of unit variance, exactly as a batch fit on the same rows."""
        X = low_rank_data(13, 240, 8, offset=2.0)
        model = mx.PCA(0.9, whiten=True)
        for start, stop in ((0, 60), (60, 120), (120, 240)):
            model.partial_fit(asarray(xp, X[start:stop]))
            batch = mx.PCA(0.9, whiten=True).fit(asarray(xp, X[:stop]))
            assert model.n_components_ == batch.n_components_
            assert_close_to(
                model.components_, to_numpy(batch.components_), rtol=1e-9, atol=1e-9, xp=xp
            )
        ratio = to_numpy(model.explained_variance_ratio_)
        assert ratio.sum() >= 0.9 > ratio[:-1].sum()
        Z = to_numpy(model.transform(asarray(xp, X)))
        np.testing.assert_allclose(Z.var(axis=0, ddof=1), 1.0, rtol=1e-9)
        assert_close_to(
            model.inverse_transform(asarray(xp, Z)), to_numpy(mx.reconstruct(asarray(xp, X),
            mx.pca(asarray(xp, X), model.n_components_))), rtol=1e-9, atol=1e-9, xp=xp)  # fmt: skip

    def test_whitening_a_component_of_no_variance_gives_zeros_not_nan(self, xp):
        rng = np.random.default_rng(2)
        X = np.outer(rng.standard_normal(12), [1.0, 2.0, -1.0])  # rank 1: one direction
        model = mx.PCA(2, whiten=True).fit(asarray(xp, X))
        Z = to_numpy(model.transform(asarray(xp, X)))
        assert np.isfinite(Z).all()
        np.testing.assert_array_equal(Z[:, 1], 0.0)
        np.testing.assert_allclose(np.std(Z[:, 0], ddof=1), 1.0, rtol=1e-12)
        back = to_numpy(model.inverse_transform(asarray(xp, Z)))
        np.testing.assert_allclose(back, X, atol=1e-12 * np.abs(X).max())

    def test_bad_use(self, xp):
        with pytest.raises(ValueError, match="not fitted yet"):
            mx.PCA(2).transform(asarray(xp, np.ones((3, 3))))
        model = mx.PCA(2).fit(asarray(xp, low_rank_data(13, 10, 4)))
        with pytest.raises(ValueError, match="`X` must have 4 columns"):
            model.transform(asarray(xp, np.ones((3, 3))))
        with pytest.raises(ValueError, match="`Z` must have 2 columns"):
            model.inverse_transform(asarray(xp, np.ones((3, 3))))
