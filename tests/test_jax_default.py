"""JAX as its users run it: 64-bit types off and the default matmul precision.

The ``xp`` fixture turns on ``jax_enable_x64`` for the float64 tests; users
rarely do, and JAX's default precision multiplies float32 matrices in TF32 on
NVIDIA GPUs (about 1e-4 relative error).  So every public function runs here
with float32 inputs under JAX's own defaults and must return finite float32
results that agree with the float64 NumPy run of the same call, without a
warning; and every matrix product it makes — eager or traced, inside its own
``jit`` or a caller's — must be asked for at ``HIGHEST`` precision whatever
the caller set.  TF32 changes no number on a CPU, so the last is checked on
the computation itself: the ``dot_general`` operations JAX builds.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import m4ml_xp as mx
from tests._helpers import to_numpy
from tests.conftest import Backend, _import_backend
from tests.contract_registry import DATA, FUNCTIONS

pytestmark = pytest.mark.xp_backend_only(Backend.JAX)

EPS32 = float(np.finfo(np.float32).eps)


@pytest.fixture
def jax_user() -> Iterator[Any]:
    """JAX's namespace under JAX's own defaults: x64 off, default matmul precision."""
    _import_backend(Backend.JAX)
    import jax
    from array_api_compat import array_namespace

    with jax.enable_x64(False), jax.default_matmul_precision(None):
        yield array_namespace(jax.numpy.empty(0))


def _leaves(tree: Any) -> list[Any]:
    """Every array in a result (named tuples, dataclass-like results, lists, dicts)."""
    if isinstance(tree, np.ndarray | np.generic) or hasattr(tree, "__array_namespace__"):
        return [tree]
    if hasattr(tree, "_asdict"):
        tree = list(tree._asdict().values())
    elif hasattr(tree, "__dataclass_fields__"):
        tree = [getattr(tree, name) for name in tree.__dataclass_fields__]
    if isinstance(tree, dict):
        tree = list(tree.values())
    if isinstance(tree, list | tuple):
        return [leaf for item in tree for leaf in _leaves(item)]
    return []


def _float32(tree: Any, xp: Any) -> Any:
    """Registry inputs (NumPy) on `xp`, floating arrays as float32."""
    if isinstance(tree, np.ndarray):
        values = tree.astype(np.float32) if tree.dtype.kind == "f" else tree
        return xp.asarray(values) if xp is not np else values
    if isinstance(tree, list | tuple):
        return type(tree)(_float32(v, xp) for v in tree)
    if isinstance(tree, dict):
        return {k: _float32(v, xp) for k, v in tree.items()}
    return tree


def _call(name: str, xp: Any) -> Any:
    """The registry's valid call of `name`: float32 inputs on `xp`, float64 ones on NumPy."""
    entry = FUNCTIONS[name]
    if entry.needs_data and not (DATA / entry.needs_data).is_dir():
        pytest.skip(f"{name} needs {DATA / entry.needs_data}")
    inputs = entry.inputs(np.random.default_rng(0))
    if xp is not np:
        inputs = _float32(inputs, xp)
    options = {"seed": 3, **entry.seeded} if entry.seeded is not None else {}
    return entry.call({**inputs, "xp": xp, "device": None}, **options)


def _record_dot_precisions(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record the precision of every ``dot_general`` JAX builds from now on, eager or traced.

    Kernels that JAX has cached from an earlier call build none: they were
    traced under the same precision setting (it is part of the cache key).
    """
    import jax

    primitive = jax.lax.dot_general_p
    bind = primitive.bind
    seen: list[Any] = []

    def recording(*args: Any, **params: Any) -> Any:
        seen.append(params.get("precision"))
        return bind(*args, **params)

    monkeypatch.setattr(primitive, "bind", recording)
    return seen


# ------------------------------------------------------------------ every public function
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_float32_under_jax_defaults(
    name: str, jax_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every public function as users run JAX: float32 results, accurate, full precision.

    Float32 in, float32 out, finite where the float64 NumPy run is, no
    warning, agreement with that run to float32 rounding; and every matrix
    product built at HIGHEST precision although the caller left JAX's default
    (TF32 for float32 on an NVIDIA GPU).
    """
    import jax

    seen = _record_dot_precisions(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = _call(name, jax_user)
    highest = (jax.lax.Precision.HIGHEST, jax.lax.Precision.HIGHEST)
    lower = [p for p in seen if p != highest]
    ours = _leaves(result)
    if FUNCTIONS[name].returns_arrays:
        _assert_float32_close_to_numpy(name, ours)
    else:
        assert not ours
    assert not lower, f"{name} built {len(lower)} of {len(seen)} matrix products at {lower[0]}"


def _assert_float32_close_to_numpy(name: str, ours: list[Any]) -> None:
    """`ours` (float32 results) against the float64 NumPy run of the same call."""
    reference = [np.asarray(to_numpy(leaf)) for leaf in _leaves(_call(name, np))]
    assert len(ours) == len(reference), f"{name}: {len(ours)} arrays, NumPy {len(reference)}"
    tol = 1000 * EPS32  # the registry's problems are well conditioned
    for index, (leaf, expected) in enumerate(zip(ours, reference, strict=True)):
        got = np.asarray(to_numpy(leaf))
        where = f"{name}, output {index}"
        if expected.dtype.kind in "iu":  # counts of iterations: rounding may change them
            assert got.dtype.kind in "iu", f"{where}: {got.dtype}, not an integer"
            continue
        if expected.dtype.kind != "f":
            np.testing.assert_array_equal(got, expected, err_msg=where)
            continue
        assert got.dtype == np.float32, f"{where}: {got.dtype}, not float32"
        if got.shape != expected.shape:  # a path of iterates, stopped at another step
            assert got.shape[1:] == expected.shape[1:], f"{where}: shape {got.shape}"
            rows = min(got.shape[0], expected.shape[0])
            got, expected = got[:rows, ...], expected[:rows, ...]
        assert (np.isfinite(got) == np.isfinite(expected)).all(), where
        scale = max(float(np.max(np.abs(expected), initial=0.0)), 1.0)
        np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * scale, err_msg=where)


def test_a_float64_request_without_64_bit_types_is_refused_in_words(jax_user):
    """JAX would hand back float32 (with a truncation warning) for a float64 it lacks."""
    for make in (
        lambda: mx.init_mlp([2, 3, 1], xp=jax_user, dtype=jax_user.float64),
        lambda: mx.generate_internet(4, xp=jax_user, dtype=jax_user.float64),
    ):
        with pytest.raises(ValueError, match=r"`dtype` .*float64.* is not available"):
            make()


def test_index_work_without_64_bit_types_warns_nothing(jax_user):
    """Row masks and narrow edge indices widen to int32, not a truncated int64 (a warning)."""
    X = jax_user.asarray(np.random.default_rng(0).random((5, 3)), dtype=jax_user.float32)
    src, dst = (jax_user.asarray(v, dtype=jax_user.int8) for v in ([0, 1, 2], [1, 2, 0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        D = mx.pairwise_distances(X)  # Y omitted: the symmetric route masks rows
        scores = mx.pagerank_edges(src, dst, n_nodes=3).scores
    np.testing.assert_allclose(to_numpy(D), mx.pairwise_distances(np.asarray(X)), atol=1e-5)
    np.testing.assert_allclose(to_numpy(scores), np.full(3, 1 / 3), rtol=1e-6)


@pytest.mark.parametrize("method", ["covariance_eigh", "svd", "gram", "randomized"])
def test_pca_float32_matches_scikit_learn_float64(
    method: str, jax_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each route against an independent oracle: scikit-learn's full SVD of the float64 data."""
    import jax
    from sklearn.decomposition import PCA as SkPCA

    rng = np.random.default_rng(0)
    n = 40 if method == "gram" else 400  # the Gram route is for fewer samples than features
    X = rng.standard_normal((n, 60)) * np.geomspace(10.0, 0.1, 60) + 50.0
    reference = SkPCA(5, svd_solver="full").fit(X)
    seen = _record_dot_precisions(monkeypatch)
    result = mx.pca(jax_user.asarray(X.astype(np.float32)), 5, method=method, seed=0)
    if method != "svd":  # the SVD route forms no matrix product: nothing to record there
        assert seen, "no matrix product was recorded: the patched bind never ran"
    assert set(seen) <= {(jax.lax.Precision.HIGHEST, jax.lax.Precision.HIGHEST)}, set(seen)
    assert result.components.dtype == jax_user.float32
    variance = np.asarray(to_numpy(result.explained_variance))
    expected = reference.explained_variance_
    tol = 1e-3 if method == "randomized" else 1e-5
    np.testing.assert_allclose(variance, expected, rtol=0, atol=tol * expected[0])
    cosines = np.abs(np.sum(to_numpy(result.components) * reference.components_, axis=1))
    np.testing.assert_allclose(cosines, 1.0, atol=100 * tol)


# ------------------------------------------------------------------ inside a caller's jit
def _dot_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.search(r"stablehlo\.dot(_general)?\b", line)]


#: Functions that trace under ``jax.jit`` (no host reads), with float32 arguments.  (PCA's
#: SVD route multiplies no matrices: ``svd`` is one solver call.)
TRACEABLE: dict[str, Any] = {
    "pca covariance_eigh": lambda X, Y: mx.pca(X, 3, method="covariance_eigh"),
    "pca gram": lambda X, Y: mx.pca(X[:8, :], 3, method="gram"),
    "pca randomized": lambda X, Y: mx.pca(X, 3, method="randomized", seed=0),
    "reconstruct": lambda X, Y: mx.reconstruct(X, mx.pca(X, 2)),
    "cov": lambda X, Y: mx.cov(X),
    "affine_cov": lambda X, Y: mx.affine_cov(mx.cov(X), Y[:3, :]),
    "pairwise_distances": lambda X, Y: mx.pairwise_distances(X, Y),
    "projection_matrix": lambda X, Y: mx.projection_matrix(Y[:2, :].T),
    "project": lambda X, Y: mx.project(X, Y[:2, :].T),
    "inner_product": lambda X, Y: mx.inner_product(X[0], Y[0], A=mx.cov(X)),
    "angle": lambda X, Y: mx.angle(X[0], Y[0], A=mx.cov(X)),
}


@pytest.mark.parametrize("ambient", ["tensorfloat32", "default"])
@pytest.mark.parametrize("name", list(TRACEABLE))
def test_jitted_calls_lower_every_product_at_highest(
    name: str, ambient: str, jax_user: Any
) -> None:
    """Called inside the caller's ``jit``, the library's products still lower at HIGHEST."""
    import jax

    rng = np.random.default_rng(1)
    X = jax_user.asarray(rng.standard_normal((30, 6)).astype(np.float32))
    Y = jax_user.asarray(rng.standard_normal((7, 6)).astype(np.float32))
    with jax.default_matmul_precision(ambient):
        text = jax.jit(TRACEABLE[name]).lower(X, Y).as_text()
    dots = _dot_lines(text)
    assert dots, f"{name}: no matrix product in the lowered module"
    lower = [line.strip() for line in dots if "precision = [HIGHEST, HIGHEST]" not in line]
    assert not lower, f"{name}: {len(lower)} of {len(dots)} products below HIGHEST: {lower[0]}"
