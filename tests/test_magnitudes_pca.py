"""PCA at any finite magnitude: ``pca(c·X)`` is ``pca(X)`` scaled as the mathematics says.

Components and variance ratios do not change with ``c``, singular values, the mean,
projections and reconstructions scale by ``c``, variances and the reconstruction error
by ``c²`` — for ``c`` across 1e±150 in float64 and 1e±15 in float32 (where squares of
the data overflow or underflow the dtype), on every backend, every method, the
streaming route and the estimator.  The oracle is scikit-learn in float64 on the same
data divided by ``c`` (magnitude 1).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import m4ml_xp as mx
from tests._helpers import asarray, eps, to_numpy
from tests.conftest import Backend, examples
from tests.test_pca import low_rank_data

N, D, K = 40, 5, 3


def methods_for(backend: Backend) -> list[str]:
    if backend is Backend.DASK:
        return ["auto", "covariance_eigh"]
    return ["auto", "covariance_eigh", "svd", "gram", "randomized"]


def data(exponent: int, dtype: type) -> tuple[np.ndarray, float, object]:
    """``c·X`` in `dtype`, ``c = 10**exponent``, and scikit-learn's PCA of it divided by c."""
    from sklearn.decomposition import PCA

    c = 10.0**exponent
    X = (low_rank_data(3, N, D, offset=2.0) * c).astype(dtype)
    reference = PCA(K, svd_solver="full").fit(X.astype(np.float64) / c)
    return X, c, reference


def close(actual, expected, tol, *, name, c=1.0, power=0, dtype=np.float64):
    """`actual` equals ``expected · c**power`` to `tol` relative to the largest expected entry.

    Entries the dtype can hold (normal numbers, with a factor 4 to spare) must be right and
    finite; those beyond must be ``inf`` (overflow) or below the normal range (underflow);
    the factor-4 margins are not judged.
    """
    got = to_numpy(actual).astype(np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore"):
        magnitude = np.abs(expected) * c * c if power == 2 else np.abs(expected) * c**power
        unscaled = got / c / c if power == 2 else got / c if power == 1 else got
    info = np.finfo(dtype)
    held = (magnitude <= float(info.max) / 4) & (magnitude >= 4 * float(info.smallest_normal))
    held |= expected == 0
    assert np.isfinite(got[held]).all(), f"{name}: not finite where representable: {got}"
    scale = np.abs(expected[held]).max(initial=0.0)
    np.testing.assert_allclose(
        unscaled[held], expected[held], rtol=tol, atol=tol * scale, err_msg=name
    )
    assert np.isinf(got[magnitude > 4 * float(info.max)]).all(), f"{name}: {got}"
    below = (magnitude < float(info.smallest_normal) / 4) & (expected != 0)
    assert (np.abs(got[below]) < float(info.smallest_normal)).all(), f"{name}: {got}"


def check_result(result, c, reference, tol, dtype, *, what):
    assert result.components.dtype == result.explained_variance.dtype
    close(result.components, reference.components_, tol, name=f"{what} components")
    close(result.explained_variance_ratio, reference.explained_variance_ratio_, tol,
          name=f"{what} ratio")  # fmt: skip
    assert (to_numpy(result.explained_variance_ratio) > 0).all()
    for name, value, power in (
        ("explained_variance", reference.explained_variance_, 2),
        ("singular_values", reference.singular_values_, 1),
        ("mean", reference.mean_, 1),
    ):
        close(getattr(result, name), value, tol, name=f"{what} {name}", c=c, power=power,
              dtype=dtype)  # fmt: skip


def tolerance(dtype: type) -> float:
    return (1e4 if dtype is np.float64 else 2e3) * eps(dtype)


def expected_warning(leading_variance: float, dtype: type) -> bool | None:
    """Whether the leading variance is beyond `dtype` (True), held (False), or at the edge."""
    info = np.finfo(dtype)
    if 4 * float(info.smallest_normal) <= leading_variance <= float(info.max) / 4:
        return False
    if float(info.smallest_normal) / 4 <= leading_variance <= 4 * float(info.max):
        return None
    return True


def run_family(xp, backend, exponent, dtype):
    from sklearn.decomposition import PCA

    X, c, reference = data(exponent, dtype)
    tol = tolerance(dtype)
    kw = {"c": c, "dtype": dtype}
    Xb = asarray(xp, X, chunks=(15, -1))
    with np.errstate(over="ignore", under="ignore"):
        leading = float(reference.explained_variance_[0]) * c * c
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for method in methods_for(backend):
            result = mx.pca(Xb, K, method=method, seed=0)
            check_result(result, c, reference, tol, dtype, what=method)
        fraction = mx.pca(Xb, 0.95)  # far from a boundary: 2 components hold 0.95
        shares = np.cumsum(
            PCA(svd_solver="full").fit(X.astype(np.float64) / c).explained_variance_ratio_
        )
        assert fraction.components.shape[0] == int(np.searchsorted(shares, 0.95) + 1) == 2
        chunks = [asarray(xp, X[a:b]) for a, b in ((0, 7), (7, 30), (30, N))]
        check_result(mx.streaming_pca(chunks, K), c, reference, tol, dtype, what="streaming_pca")
        model = mx.PCA(K).fit(Xb)
        check_result(
            mx.PCAResult(model.components_, model.explained_variance_,
                         model.explained_variance_ratio_, model.singular_values_, model.mean_),
            c, reference, tol, dtype, what="PCA.fit",
        )  # fmt: skip
        streamed = mx.PCA(K)
        for a, b in ((0, 12), (12, N)):
            streamed.partial_fit(asarray(xp, X[a:b]))
        close(streamed.components_, reference.components_, tol, name="partial_fit")
        close(streamed.explained_variance_, reference.explained_variance_, tol,
              name="partial_fit variance", power=2, **kw)  # fmt: skip
        Z = model.transform(Xb)
        Z_ref = reference.transform(X.astype(np.float64) / c)
        close(Z, Z_ref, tol, name="transform", power=1, **kw)
        rebuilt_ref = reference.inverse_transform(Z_ref)
        close(model.inverse_transform(Z), rebuilt_ref, tol, name="inverse_transform", power=1, **kw)
        whitened = mx.PCA(K, whiten=True).fit(Xb)
        Zw = whitened.transform(Xb)
        close(Zw, Z_ref / np.sqrt(reference.explained_variance_), tol, name="whiten")
        close(whitened.inverse_transform(Zw), rebuilt_ref, tol,
              name="whitened inverse_transform", power=1, **kw)  # fmt: skip
        result = mx.pca(Xb, K)
        close(mx.reconstruct(Xb, result), rebuilt_ref, tol, name="reconstruct", power=1, **kw)
        centred = X.astype(np.float64) / c - reference.mean_
        discarded = centred - (centred @ reference.components_.T) @ reference.components_
        error = mx.reconstruction_error(Xb, result)
        close(error, (discarded**2).sum(axis=1).mean(), 100 * tol,
              name="reconstruction_error", power=2, **kw)  # fmt: skip
    messages = [f"{w.category.__name__}: {w.message}" for w in caught]
    want = expected_warning(leading, dtype)
    if want is False:
        assert not messages
    elif want and backend is not Backend.DASK:  # in words, and no stray overflow warnings
        assert messages
        assert all(m.startswith("RuntimeWarning: `explained_variance`") for m in messages)
    # (lazy Dask results are not read by the library: NumPy warns as they are computed)


@settings(max_examples=examples(12), deadline=None)
@given(exponent=st.integers(-300, 300))
def test_scaled_data_float64(xp, backend, exponent):
    run_family(xp, backend, exponent, np.float64)


@settings(max_examples=examples(12), deadline=None)
@given(exponent=st.integers(-35, 35))
def test_scaled_data_float32(xp, backend, exponent):
    run_family(xp, backend, exponent, np.float32)


@pytest.mark.parametrize("exponent", [-300, -150, 150, 300])
def test_the_extremes_float64(xp, backend, exponent):
    """The ends of the ranges, which random draws may miss."""
    run_family(xp, backend, exponent, np.float64)


@pytest.mark.parametrize("exponent", [-35, -15, 15, 35])
def test_the_extremes_float32(xp, backend, exponent):
    run_family(xp, backend, exponent, np.float32)


@pytest.mark.parametrize(
    ("dtype", "c", "how"),
    [
        (np.float64, 1e200, "overflows to inf"),
        (np.float64, 1e-170, "underflows"),
        (np.float32, 1e25, "overflows to inf"),
        (np.float32, 1e-25, "underflows"),
    ],
)
def test_a_variance_beyond_the_dtype_is_said_not_hidden(xp, backend, dtype, c, how):
    """The variance of 1e200 data is 1e400: ``inf`` in float64, with a warning in words;
    the components, ratios, singular values and mean stay right."""
    from sklearn.decomposition import PCA

    X = (low_rank_data(3, N, D, offset=2.0) * c).astype(dtype)
    reference = PCA(K, svd_solver="full").fit(X.astype(np.float64) / c)
    tol = tolerance(dtype)
    for method in methods_for(backend):
        if backend is Backend.DASK:  # lazy results are not read, so not reported by m4ml_xp
            context = warnings.catch_warnings()  # NumPy's own warnings, as they are computed
        else:
            context = pytest.warns(RuntimeWarning, match=f"`explained_variance` {how}")
        with context:
            if backend is Backend.DASK:
                warnings.filterwarnings(
                    "ignore", "(overflow|underflow) encountered", RuntimeWarning
                )
            result = mx.pca(asarray(xp, X), K, method=method)
            result = mx.PCAResult(*(to_numpy(part) for part in result))
        close(result.components, reference.components_, tol, name=method)
        close(result.explained_variance_ratio, reference.explained_variance_ratio_, tol,
              name=method)  # fmt: skip
        singular = to_numpy(result.singular_values).astype(np.float64) / c
        close(np.asarray(singular), reference.singular_values_, tol, name=method)
        mean = to_numpy(result.mean).astype(np.float64) / c
        close(np.asarray(mean), reference.mean_, tol, name=method)
        variance = to_numpy(result.explained_variance)
        if how.startswith("overflows"):
            assert np.isinf(variance).all()
        else:
            assert (variance < np.finfo(dtype).smallest_normal).all()


def test_streaming_chunks_of_wildly_different_magnitudes(xp):
    """Zeros, then tiny rows, then huge ones: the running scale falls twice and the
    accumulated scatter is rescaled exactly; the result equals the batch PCA."""
    X = low_rank_data(4, 60, D, offset=1.0)
    chunks = [np.zeros((5, D)), X[:20] * 1e-140, X[20:] * 1e140]
    everything = np.concatenate(chunks)
    streamed = mx.streaming_pca([asarray(xp, chunk) for chunk in chunks], K)
    batch = mx.pca(asarray(xp, everything), K)
    tol = tolerance(np.float64)
    close(streamed.components, to_numpy(batch.components), tol, name="components")
    for name in ("explained_variance", "singular_values", "mean"):
        close(getattr(streamed, name), to_numpy(getattr(batch, name)), tol, name=name)


def test_states_saved_without_a_scale_still_load(xp, tmp_path):
    """A state saved before the scale was kept (count, mean, scatter, n_chunks) resumes."""
    X = low_rank_data(5, 50, D, offset=1.0)
    model = mx.PCA(K).partial_fit(asarray(xp, X[:30]))
    parts = model.state_dict()
    assert float(parts["scale"]) != 1.0  # magnitude-1 data: a scale near 1, a power of two
    old = {key: parts[key] for key in ("count", "mean", "scatter", "n_chunks")}
    old["scatter"] = parts["scatter"] / parts["scale"] ** 2  # as earlier versions kept it
    path = tmp_path / "old.npz"
    np.savez(path, **old)
    resumed = mx.StreamingState.load(path, xp=xp)
    assert float(to_numpy(resumed.scale)) == 1.0
    model_old = mx.PCA(K).load_state_dict(old, xp=xp).partial_fit(asarray(xp, X[30:]))
    whole = mx.PCA(K).fit(asarray(xp, X))
    tol = tolerance(np.float64)
    close(model_old.components_, to_numpy(whole.components_), tol, name="components")
    close(model_old.explained_variance_, to_numpy(whole.explained_variance_), tol,
          name="variance")  # fmt: skip


def test_non_finite_input_is_still_refused_naming_it(xp, backend):
    """Finiteness is now read off the magnitude pass (NaN propagates through max/min)."""
    fitted = mx.pca(asarray(xp, low_rank_data(6, 10, 4)), 2)
    for bad_value in (np.nan, np.inf, -np.inf):
        bad = np.ones((5, 4))
        bad[2, 1] = bad_value
        with pytest.raises(ValueError, match="`X` must contain only finite"):
            to_numpy(mx.pca(asarray(xp, bad), 2).components)
        with pytest.raises(ValueError, match="`X` must contain only finite"):
            to_numpy(mx.reconstruct(asarray(xp, bad), fitted))
        model = mx.PCA(2).fit(asarray(xp, low_rank_data(6, 10, 4)))
        with pytest.raises(ValueError, match="`X` must contain only finite"):
            to_numpy(model.transform(asarray(xp, bad)))
        with pytest.raises(ValueError, match="`Z` must contain only finite"):
            to_numpy(model.inverse_transform(asarray(xp, bad[:, :2])))
