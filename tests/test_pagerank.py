"""PageRank, dense and sparse, on every backend against networkx.pagerank."""

from __future__ import annotations

import importlib
import sys
from typing import ClassVar

import networkx as nx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import m4ml_xp as mx
from m4ml_xp.errors import ConvergenceWarning
from tests._helpers import asarray, assert_close_to, eps, to_numpy
from tests.conftest import Backend, sizes


def random_graph(seed: int, n: int, n_edges: int, *, dangling: int = 3, weighted: bool = False):
    """Random edges with at least `dangling` pages that link nowhere (and duplicates)."""
    rng = np.random.default_rng(seed)
    src = rng.integers(dangling, n, n_edges)  # pages 0..dangling-1 have no out-links
    dst = rng.integers(0, n, n_edges)
    weights = rng.uniform(0.1, 2.0, n_edges) if weighted else np.ones(n_edges)
    return src, dst, weights


def nx_graph(src, dst, weights, n: int) -> nx.MultiDiGraph:
    """The oracle's graph; a MultiDiGraph so parallel edges add their weights."""
    G = nx.MultiDiGraph()
    G.add_nodes_from(range(n))
    G.add_weighted_edges_from(zip(src.tolist(), dst.tolist(), weights.tolist(), strict=True))
    return G


def nx_scores(G: nx.Graph, n: int, **kwargs) -> np.ndarray:
    scores = nx.pagerank(G, **kwargs)
    return np.array([scores[i] for i in range(n)])


def nx_iterations(G: nx.Graph, **kwargs) -> int:
    """NetworkX's iteration count: the smallest max_iter at which it does not raise."""
    for max_iter in range(1, 1000):
        try:
            nx.pagerank(G, max_iter=max_iter, **kwargs)
        except nx.PowerIterationFailedConvergence:
            continue
        return max_iter
    raise AssertionError("networkx did not converge")


def as_dict(values: np.ndarray) -> dict[int, float]:
    return dict(enumerate(values.tolist()))


def scipy_pagerank(src, dst, n: int, damping: float = 0.85) -> np.ndarray:
    """Float64 oracle for large graphs (networkx is slow there): SciPy CSR, to 1e-15 in L1."""
    import scipy.sparse as sparse

    out_degree = np.bincount(src, minlength=n).astype(np.float64)
    P = sparse.csr_array((1.0 / out_degree[src], (dst, src)), shape=(n, n))
    dangling = out_degree == 0
    x = np.full(n, 1.0 / n)
    for _ in range(2000):
        new = damping * (P @ x + x[dangling].sum() / n) + (1.0 - damping) / n
        if np.abs(new - x).sum() < 1e-15:
            return new
        x = new
    raise AssertionError("the oracle did not converge")


def hub_graph(seed: int, n: int, n_edges: int, share: float):
    """Random links, a `share` of them to page 0 (one float32 run of ~share·E terms)."""
    rng = np.random.default_rng(seed)
    src = rng.integers(0, n, n_edges)
    dst = np.where(rng.random(n_edges) < share, 0, rng.integers(0, n, n_edges))
    return src, dst


def dense_link_matrix(src, dst, weights, n: int) -> np.ndarray:
    """L[to, from] with out-weights normalised; dangling columns stay zero."""
    L = np.zeros((n, n))
    np.add.at(L, (dst, src), weights)
    sums = L.sum(axis=0)
    return np.divide(L, sums, out=np.zeros_like(L), where=sums > 0)


# --------------------------------------------------------------------------- generators
class TestGenerateInternet:
    def test_column_stochastic_and_seeded(self, xp, device):
        L = mx.generate_internet(30, seed=4, xp=xp, device=device, dtype=xp.float64)
        L_np = to_numpy(L)
        np.testing.assert_allclose(L_np.sum(axis=0), 1.0, rtol=1e-12)
        assert np.all(L_np > 0)  # the course adds 1e-10 everywhere
        np.testing.assert_array_equal(L_np, mx.generate_internet(30, seed=4))
        assert not np.array_equal(L_np, mx.generate_internet(30, seed=5))

    def test_link_law(self):
        # the course generator: link probability 1 - (2/π)·atan(2(|i-j|+1))
        L = mx.generate_internet(400, seed=0)
        no_links = np.all(L[0] == L, axis=0)  # a linkless column is uniform after 1e-10
        links = (L > 1e-6) & ~no_links[None, :]
        d = np.abs(np.subtract.outer(np.arange(400), np.arange(400)))
        for k in (0, 1, 5):
            p = 1 - 2 / np.pi * np.arctan(2 * (k + 1))
            observed = links[d == k].mean()
            assert abs(observed - p) < 4 * np.sqrt(p * (1 - p) / (d == k).sum())

    def test_rejects_bad_size(self):
        with pytest.raises(ValueError, match="`n`"):
            mx.generate_internet(0)
        with pytest.raises(TypeError, match="`n`"):
            mx.generate_internet(2.5)
        with pytest.raises(ValueError, match="use generate_internet_edges"):
            mx.generate_internet(1_000_000)


class TestGenerateInternetEdges:
    def test_same_law_as_dense_generator(self):
        n = 3000
        src, dst = mx.generate_internet_edges(n, seed=1)
        d = np.abs(src - dst)
        for k in (0, 1, 3):
            p = 1 - 2 / np.pi * np.arctan(2 * (k + 1))
            pairs = n if k == 0 else 2 * (n - k)
            observed = (d == k).sum() / pairs
            assert abs(observed - p) < 4 * np.sqrt(p * (1 - p) / pairs)
        assert len(set(zip(src.tolist(), dst.tolist(), strict=True))) == src.size  # no duplicates

    def test_links_spread_uniformly_over_pages_and_directions(self):
        from scipy import stats

        n = 20_000
        src, dst = mx.generate_internet_edges(n, seed=5)
        for k in (2, 10):  # far distances take the vectorised path, near ones choice()
            forward = src[dst - src == k]
            backward = dst[src - dst == k]
            assert abs(forward.size - backward.size) < 4 * np.sqrt(forward.size + backward.size)
            assert stats.kstest(forward / (n - k), "uniform").pvalue > 1e-3
            assert stats.kstest(backward / (n - k), "uniform").pvalue > 1e-3

    def test_seeded_on_backend(self, xp, device):
        src, dst = mx.generate_internet_edges(500, seed=2, xp=xp, device=device)
        ref_src, ref_dst = mx.generate_internet_edges(500, seed=2)
        np.testing.assert_array_equal(to_numpy(src), ref_src)
        np.testing.assert_array_equal(to_numpy(dst), ref_dst)
        assert src.dtype == xp.int64


# --------------------------------------------------------------------------- dense
class TestPageRank:
    @pytest.mark.parametrize("damping", [0.5, 0.85, 1.0])
    def test_matches_networkx(self, xp, device, damping):
        n = 40
        src, dst, w = random_graph(3, n, 150, weighted=True)
        L = dense_link_matrix(src, dst, w, n)
        G = nx_graph(src, dst, w, n)
        expected = nx_scores(G, n, alpha=damping, tol=1e-15, max_iter=10_000)
        result = mx.pagerank(asarray(xp, L, device), damping=damping, tol=1e-13)
        assert result.converged is True
        assert (result.status, result.message[:10]) == (0, "converged:")
        assert type(result.n_iter) is int
        assert isinstance(result.error, float)
        assert_close_to(result.scores, expected, rtol=1e-9, xp=xp, device=device)

    def test_course_generated_internet(self, xp):
        L = mx.generate_internet(60, seed=7)
        damped = 0.9 * L + 0.1 / 60
        w, V = np.linalg.eig(damped)
        v = np.real(V[:, np.argmax(np.real(w))])
        result = mx.pagerank(asarray(xp, L), damping=0.9)
        assert_close_to(result.scores, v / v.sum(), rtol=1e-9, xp=xp)

    def test_float32(self, xp):
        L = mx.generate_internet(50, seed=8).astype(np.float32)
        result = mx.pagerank(asarray(xp, L))
        assert result.scores.dtype == xp.float32
        assert result.converged
        ref = mx.pagerank(L.astype(np.float64)).scores
        np.testing.assert_allclose(to_numpy(result.scores), ref, rtol=1e3 * eps(np.float32))
        # renormalised in float32: rounding each score moves the sum by at most eps/2
        assert abs(np.sum(to_numpy(result.scores), dtype=np.float64) - 1) <= eps(np.float32)

    def test_tol_that_cannot_fail_warns(self, xp):
        L = asarray(xp, mx.generate_internet(20, seed=9))
        with pytest.warns(
            UserWarning, match=r"`tol` gives an L1 change threshold tol = 2 >= 2"
        ) as rec:
            result = mx.pagerank(L, tol=2.0)
        assert [w.category for w in rec] == [UserWarning]  # a bad option, not non-convergence
        assert result.n_iter == 1

    def test_max_iter_one_reports(self, xp):
        L = mx.generate_internet(20, seed=9)
        with pytest.warns(ConvergenceWarning, match="did not converge"):
            result = mx.pagerank(asarray(xp, L), max_iter=1)
        assert result.converged is False
        assert result.n_iter == 1
        assert result.status == 1
        assert result.message.startswith("PageRank did not converge in 1 iterations")

    def test_input_not_modified(self, xp):
        L_np = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
        L = asarray(xp, L_np)
        mx.pagerank(L)
        np.testing.assert_array_equal(to_numpy(L), L_np)

    def test_rejects(self, xp):
        good = asarray(xp, np.full((3, 3), 1 / 3))
        with pytest.raises(ValueError, match="`L` must be a square"):
            mx.pagerank(asarray(xp, np.ones((2, 3)) / 2))
        with pytest.raises(ValueError, match="`damping`"):
            mx.pagerank(good, damping=1.5)
        with pytest.raises(ValueError, match="`tol`"):
            mx.pagerank(good, tol=-1.0)
        with pytest.raises(TypeError, match="`L` must have a real"):
            mx.pagerank(asarray(xp, np.ones((2, 2), dtype=np.complex128)))
        with pytest.raises(ValueError, match="`L` must not be empty"):
            mx.pagerank(asarray(xp, np.ones((0, 0))))

    @pytest.mark.skip_xp_backend(Backend.DASK, reason="column sums of lazy arrays are not checked")
    def test_rejects_non_stochastic(self, xp):
        with pytest.raises(ValueError, match="column-stochastic"):
            mx.pagerank(asarray(xp, np.ones((3, 3))))

    def test_rejects_bad_values(self, xp):
        # on Dask these checks travel with the chunks and fire when computed
        with pytest.raises(ValueError, match="non-negative"):
            mx.pagerank(asarray(xp, [[1.5, 0.0], [-0.5, 1.0]]))
        with pytest.raises(ValueError, match="finite"):
            mx.pagerank(asarray(xp, [[np.nan, 0.0], [1.0, 1.0]]))


# --------------------------------------------------------------------------- sparse
class TestPageRankEdges:
    @pytest.mark.parametrize("weighted", [False, True])
    def test_matches_networkx_scores_and_iterations(self, xp, device, weighted):
        n = 200
        src, dst, w = random_graph(11, n, 900, weighted=weighted)
        G = nx_graph(src, dst, w, n)
        result = mx.pagerank_edges(
            asarray(xp, src, device, chunks=250),
            asarray(xp, dst, device, chunks=250),
            n_nodes=n,
            weights=asarray(xp, w, device, chunks=250) if weighted else None,
            tol=1e-6,  # NetworkX's default: its iterations, not the 1e-6-accurate default
            dtype=xp.float64,
        )
        assert result.converged is True
        assert result.n_iter == nx_iterations(G)
        assert_close_to(result.scores, nx_scores(G, n), rtol=1e-12, xp=xp, device=device)

    def test_personalization_dangling_nstart(self, xp, device):
        n = 120
        src, dst, w = random_graph(12, n, 500, dangling=10, weighted=True)
        rng = np.random.default_rng(0)
        p, d, x0 = rng.random(n), rng.random(n), rng.random(n)
        d[:50] = 0.0
        G = nx_graph(src, dst, w, n)
        kwargs = dict(
            alpha=0.7, personalization=as_dict(p), dangling=as_dict(d), nstart=as_dict(x0)
        )
        result = mx.pagerank_edges(
            asarray(xp, src, device),
            asarray(xp, dst, device),
            n_nodes=n,
            weights=asarray(xp, w, device),
            damping=0.7,
            personalization=asarray(xp, p, device),
            dangling=asarray(xp, d, device),
            nstart=asarray(xp, x0, device),
            tol=1e-9,
        )
        assert result.n_iter == nx_iterations(G, tol=1e-9, **kwargs)
        assert_close_to(
            result.scores, nx_scores(G, n, tol=1e-9, **kwargs), rtol=1e-12, xp=xp, device=device
        )

    def test_isolated_pages_and_self_loops(self, xp):
        src, dst = np.array([0, 1, 1, 3]), np.array([0, 0, 3, 1])  # page 2 isolated, 0 self-loops
        G = nx_graph(src, dst, np.ones(4), 5)
        result = mx.pagerank_edges(
            asarray(xp, src), asarray(xp, dst), n_nodes=5, tol=1e-12, dtype=xp.float64
        )
        assert_close_to(result.scores, nx_scores(G, 5, tol=1e-12), rtol=1e-12, xp=xp)

    def test_agrees_with_dense_pagerank(self, xp):
        n = 300
        src, dst = mx.generate_internet_edges(n, seed=3)
        L = dense_link_matrix(src, dst, np.ones(src.size), n)
        dense = mx.pagerank(asarray(xp, L), tol=1e-14)
        sparse = mx.pagerank_edges(
            asarray(xp, src),
            asarray(xp, dst),
            n_nodes=n,
            tol=1e-14 / n,
            max_iter=1000,
            dtype=xp.float64,
        )
        np.testing.assert_allclose(to_numpy(sparse.scores), to_numpy(dense.scores), rtol=1e-10)

    def test_float32(self, xp):
        n = 500
        src, dst, w = random_graph(13, n, 3000, weighted=True)
        result = mx.pagerank_edges(
            asarray(xp, src),
            asarray(xp, dst),
            n_nodes=n,
            weights=asarray(xp, w.astype(np.float32)),
            tol=1e-6,
        )
        assert result.scores.dtype == xp.float32
        expected = nx_scores(nx_graph(src, dst, w, n), n)  # same iterations, in float64
        np.testing.assert_allclose(to_numpy(result.scores), expected, rtol=1e-4)
        assert abs(np.sum(to_numpy(result.scores), dtype=np.float64) - 1) <= eps(np.float32)

    @pytest.mark.parametrize("weighted", [False, True])
    def test_dtype_option_checked_with_and_without_weights(self, xp, weighted):
        src, dst, w = random_graph(15, 20, 60, weighted=True)
        weights = asarray(xp, w) if weighted else None
        with pytest.raises(TypeError, match="`dtype` must be a real floating dtype"):
            mx.pagerank_edges(
                asarray(xp, src), asarray(xp, dst), n_nodes=20, weights=weights, dtype=xp.int64
            )

    @pytest.mark.parametrize("dtype", [np.uint8, np.uint32, np.int16])
    def test_narrow_and_unsigned_indices(self, xp, dtype):
        src, dst, _ = random_graph(19, 60, 200)
        result = mx.pagerank_edges(
            asarray(xp, src.astype(dtype)),
            asarray(xp, dst.astype(dtype)),
            n_nodes=60,
            tol=1e-6,
            dtype=xp.float64,
        )
        expected = nx_scores(nx_graph(src, dst, np.ones(200), 60), 60)
        assert_close_to(result.scores, expected, rtol=1e-12, xp=xp)

    def test_int32_indices(self, xp):
        src, dst, _ = random_graph(14, 50, 200)
        result = mx.pagerank_edges(
            asarray(xp, src.astype(np.int32)),
            asarray(xp, dst.astype(np.int32)),
            n_nodes=50,
            tol=1e-6,
            dtype=xp.float64,
        )
        expected = nx_scores(nx_graph(src, dst, np.ones(200), 50), 50)
        assert_close_to(result.scores, expected, rtol=1e-12, xp=xp)

    @pytest.mark.parametrize("every", [3, 8])
    def test_batched_convergence_checks_stop_at_the_same_iteration(self, xp, monkeypatch, every):
        # GPU backends read the error back every few iterations; the result must not change
        asked = []
        monkeypatch.setattr(
            mx._xp, "check_interval", lambda xp, device, **_: asked.append(1) or every
        )
        src, dst, w = random_graph(17, 150, 700, weighted=True)
        G = nx_graph(src, dst, w, 150)
        result = mx.pagerank_edges(
            asarray(xp, src), asarray(xp, dst), n_nodes=150, weights=asarray(xp, w), tol=1e-10
        )
        assert asked, "pagerank_edges did not ask the patched check_interval"
        assert result.n_iter == nx_iterations(G, tol=1e-10)
        assert_close_to(result.scores, nx_scores(G, 150, tol=1e-10), rtol=1e-12, xp=xp)
        with pytest.warns(ConvergenceWarning):
            short = mx.pagerank_edges(asarray(xp, src), asarray(xp, dst), n_nodes=150, max_iter=5)
        assert short.n_iter == 5

    def test_dask_runs_the_scheduler_once_per_block_of_iterations(self, xp, backend):
        """On Dask a block of 8 iterations and their errors are computed in one pass (each
        scheduler run costs milliseconds whatever the graph's size), with NetworkX's stop."""
        if backend is not Backend.DASK:
            pytest.skip("counts Dask's scheduler runs")
        from dask.callbacks import Callback

        runs = []
        src, dst, _ = random_graph(18, 120, 600)
        with Callback(start=lambda dsk: runs.append(1)):
            result = mx.pagerank_edges(
                asarray(xp, src, chunks=200), asarray(xp, dst, chunks=200), n_nodes=120, tol=1e-10
            )  # fmt: skip
        G = nx_graph(src, dst, np.ones(600), 120)
        assert result.n_iter == nx_iterations(G, tol=1e-10)
        assert_close_to(result.scores, nx_scores(G, 120, tol=1e-10), rtol=1e-12, xp=xp)
        # two per block (the block, its errors read) and a few for the set-up; one step
        # per run took two per iteration (about 2 * n_iter)
        assert len(runs) <= 2 * (-(-result.n_iter // 8)) + 12 < result.n_iter

    def test_raise_on_failure(self, xp):
        src, dst, _ = random_graph(15, 100, 400)
        with pytest.raises(mx.ConvergenceError, match="did not converge in 2 iterations"):
            mx.pagerank_edges(
                asarray(xp, src), asarray(xp, dst), n_nodes=100, max_iter=2, raise_on_failure=True
            )
        with pytest.raises(mx.ConvergenceError):
            mx.pagerank(
                asarray(xp, mx.generate_internet(20, seed=1)), max_iter=1, raise_on_failure=True
            )

    def test_max_iter_reports(self, xp):
        src, dst, _ = random_graph(15, 100, 400)
        with pytest.warns(ConvergenceWarning, match="did not converge in 1 iterations"):
            result = mx.pagerank_edges(asarray(xp, src), asarray(xp, dst), n_nodes=100, max_iter=1)
        assert result.converged is False
        assert result.n_iter == 1

    @given(seed=st.integers(0, 10_000), n=sizes(1, 40), n_edges=sizes(0, 120))
    def test_properties(self, xp, seed, n, n_edges):
        rng = np.random.default_rng(seed)
        src, dst = rng.integers(0, n, n_edges), rng.integers(0, n, n_edges)
        result = mx.pagerank_edges(
            asarray(xp, src),
            asarray(xp, dst),
            n_nodes=n,
            tol=1e-12,
            max_iter=1000,
            dtype=xp.float64,
        )
        scores = to_numpy(result.scores)
        assert np.all(scores > 0)
        assert scores.sum() == pytest.approx(1.0, abs=1e-10)
        order = rng.permutation(n_edges)  # edge order does not matter
        shuffled = mx.pagerank_edges(
            asarray(xp, src[order]),
            asarray(xp, dst[order]),
            n_nodes=n,
            tol=1e-12,
            max_iter=1000,
            dtype=xp.float64,
        )
        np.testing.assert_allclose(to_numpy(shuffled.scores), scores, rtol=1e-10)

    def test_heavy_tailed_float32_matches_float64(self, xp):
        # a hub receiving 70% of 1.5M links: one float32 run of ~1M terms, which used to move
        # 1.6e-5 (SciPy), 5.6e-5 (torch), 3.1e-3 (JAX) of the mass
        n = 30_000
        src, dst = hub_graph(2, n, 1_500_000, share=0.7)
        result = mx.pagerank_edges(
            asarray(xp, src), asarray(xp, dst), n_nodes=n, tol=2e-7 / n, dtype=xp.float32
        )
        assert result.converged
        assert result.scores.dtype == xp.float32
        scores = to_numpy(result.scores).astype(np.float64)
        assert abs(scores.sum() - 1.0) <= eps(np.float32)  # renormalised in float32
        assert np.abs(scores - scipy_pagerank(src, dst, n)).sum() < 1e-5

    def test_default_tol_is_accurate_at_any_size(self, xp):
        # NetworkX's n·1e-6 is 0.02 here: it stopped after a few iterations, ~1e-3 off in L1
        n = 20_000
        src, dst = mx.generate_internet_edges(n, seed=5)
        result = mx.pagerank_edges(asarray(xp, src), asarray(xp, dst), n_nodes=n, dtype=xp.float64)
        assert result.converged
        assert np.abs(to_numpy(result.scores) - scipy_pagerank(src, dst, n)).sum() < 1e-6

    def test_tol_that_cannot_fail_warns(self, xp):
        src, dst = asarray(xp, [0, 1, 2, 2]), asarray(xp, [1, 2, 0, 1])
        match = r"`tol` gives an L1 change threshold n_nodes · tol = 3 >= 2"
        with pytest.warns(UserWarning, match=match) as rec:
            result = mx.pagerank_edges(src, dst, n_nodes=3, tol=1.0)
        assert [w.category for w in rec] == [UserWarning]  # a bad option, not non-convergence
        assert result.n_iter == 1

    @pytest.mark.parametrize(
        "index_dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint32]
    )
    def test_no_edges_dangling_pages_every_index_dtype(self, xp, index_dtype):
        # cuSPARSE refused some of these (empty, nnz > rows·cols, index types mixed)
        cases = [
            (np.zeros(0, int), np.zeros(0, int), 4),  # no edges: every page dangling
            (np.array([0, 1, 1]), np.array([1, 0, 0]), 6),  # pages 2..5 without any edge
            (np.array([0, 0, 0]), np.array([0, 0, 0]), 1),  # one page, parallel self-loops
            (np.array([2, 2, 2, 2]), np.array([0, 0, 0, 1]), 3),  # nnz > n: parallel edges
        ]
        for src, dst, n in cases:
            result = mx.pagerank_edges(
                asarray(xp, src.astype(index_dtype)),
                asarray(xp, dst.astype(index_dtype)),
                n_nodes=n,
                tol=1e-12,
                dtype=xp.float64,
            )
            expected = nx_scores(nx_graph(src, dst, np.ones(src.size), n), n, tol=1e-12)
            assert_close_to(result.scores, expected, rtol=1e-12, xp=xp)

    def test_inputs_not_modified(self, xp):
        src, dst, w = random_graph(16, 30, 90, weighted=True)
        arrays = [asarray(xp, a) for a in (src, dst, w)]
        mx.pagerank_edges(arrays[0], arrays[1], n_nodes=30, weights=arrays[2])
        for array, original in zip(arrays, (src, dst, w), strict=True):
            np.testing.assert_array_equal(to_numpy(array), original)

    def test_rejects(self, xp):
        src, dst = asarray(xp, [0, 1]), asarray(xp, [1, 0])
        with pytest.raises(ValueError, match="`src` and `dst` must have the same length"):
            mx.pagerank_edges(src, asarray(xp, [1, 0, 1]), n_nodes=2)
        with pytest.raises(TypeError, match="`src` must have an integer dtype"):
            mx.pagerank_edges(asarray(xp, [0.0, 1.0]), dst, n_nodes=2)
        with pytest.raises(ValueError, match="`dst` must be a 1-D"):
            mx.pagerank_edges(src, asarray(xp, [[1, 0]]), n_nodes=2)
        with pytest.raises(ValueError, match="`damping`"):
            mx.pagerank_edges(src, dst, n_nodes=2, damping=-0.1)
        with pytest.raises(ValueError, match="`n_nodes`"):
            mx.pagerank_edges(src, dst, n_nodes=0)
        with pytest.raises(ValueError, match="`tol`"):
            mx.pagerank_edges(src, dst, n_nodes=2, tol=0.0)
        with pytest.raises(ValueError, match="`weights` must have one entry per edge"):
            mx.pagerank_edges(src, dst, n_nodes=2, weights=asarray(xp, [1.0]))
        with pytest.raises(ValueError, match="`personalization` must have length"):
            mx.pagerank_edges(src, dst, n_nodes=2, personalization=asarray(xp, [1.0]))
        with pytest.raises(TypeError, match="`weights` must be an array"):
            mx.pagerank_edges(src, dst, n_nodes=2, weights=[1.0, 1.0])

    def test_rejects_bad_values(self, xp, backend):
        src, dst = asarray(xp, [0, 1]), asarray(xp, [1, 0])
        with pytest.raises(ValueError, match=r"`src` must hold node indices in \[0, n_nodes\)"):
            mx.pagerank_edges(asarray(xp, [0, 2]), dst, n_nodes=2)
        with pytest.raises(ValueError, match="`dst` must hold node indices"):
            mx.pagerank_edges(src, asarray(xp, [-1, 0]), n_nodes=2)
        with pytest.raises(ValueError, match="`weights` must be non-negative"):
            mx.pagerank_edges(src, dst, n_nodes=2, weights=asarray(xp, [1.0, -1.0]))
        with pytest.raises(ValueError, match="`weights` must contain only finite"):
            mx.pagerank_edges(src, dst, n_nodes=2, weights=asarray(xp, [1.0, np.inf]))
        with pytest.raises(ValueError, match="`dangling` must be non-negative"):
            mx.pagerank_edges(src, dst, n_nodes=2, dangling=asarray(xp, [2.0, -1.0]))
        if backend is not Backend.DASK:  # a global sum: not checked on lazy arrays
            with pytest.raises(ValueError, match="`personalization` must have a positive sum"):
                mx.pagerank_edges(src, dst, n_nodes=2, personalization=asarray(xp, [0.0, 0.0]))

    def test_mixed_libraries_are_named(self, xp, backend):
        if backend in (Backend.NUMPY, Backend.NUMPY_READONLY):
            pytest.skip("mixing needs a second library")
        with pytest.raises(TypeError, match=r"`src` is a \w+ array, `dst` is a numpy array"):
            mx.pagerank_edges(asarray(xp, [0, 1]), np.array([1, 0]), n_nodes=2)

    def test_mismatched_devices_are_named(self, xp, backend):
        if backend is not Backend.ARRAY_API_STRICT:
            pytest.skip("a second device without a GPU exists only in array-api-strict")
        import array_api_strict

        src = asarray(xp, [0, 1], array_api_strict.Device("device1"))
        with pytest.raises(ValueError, match="`src` and `dst` are on different devices"):
            mx.pagerank_edges(src, asarray(xp, [1, 0]), n_nodes=2)


@pytest.mark.slow
@pytest.mark.xp_backend_only(Backend.DASK)
def test_dask_distributed_cluster_matches_networkx():
    """Chunked edge lists on a real dask.distributed LocalCluster, as on many machines."""
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    n = 2000
    src, dst, w = random_graph(21, n, 20_000, weighted=True)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        result = mx.pagerank_edges(
            da.from_array(src, chunks=3000),
            da.from_array(dst, chunks=3000),
            n_nodes=n,
            weights=da.from_array(w, chunks=3000),
            tol=1e-6,
        )
        scores = result.scores.compute()
    G = nx_graph(src, dst, w, n)
    assert result.n_iter == nx_iterations(G)
    np.testing.assert_allclose(scores, nx_scores(G, n), rtol=1e-12)


def test_numpy_without_scipy_uses_bincount(monkeypatch):
    """SciPy is optional at run time: the NumPy path falls back to bincount mat-vecs."""
    src, dst, w = random_graph(18, 80, 300, weighted=True)
    G = nx_graph(src, dst, w, 80)
    expected, expected_iterations = nx_scores(G, 80, tol=1e-10), nx_iterations(G, tol=1e-10)
    monkeypatch.setitem(sys.modules, "scipy.sparse", None)  # makes `import scipy.sparse` fail
    probes = []
    sparse_layer = importlib.import_module("m4ml_xp._xp._sparse")
    has_scipy_sparse = sparse_layer._has_scipy_sparse
    monkeypatch.setattr(
        sparse_layer, "_has_scipy_sparse", lambda: probes.append(has_scipy_sparse()) or probes[-1]
    )
    result = mx.pagerank_edges(src, dst, n_nodes=80, weights=w, tol=1e-10)
    assert probes == [False], f"the SciPy probe answered {probes}: the fallback did not run"
    assert result.n_iter == expected_iterations
    np.testing.assert_allclose(result.scores, expected, rtol=1e-12)


# --------------------------------------------------------------------------- magnitudes
class TestMagnitudes:
    """Weights scaled by any ``c`` give the magnitude-1 scores (PageRank uses ratios only).

    Out-weights of 1e308s overflow and of subnormal weights keep a few bits at
    most, unless the weights are scaled first; results are finite and sum to 1,
    never a silent NaN, inf or zero.
    """

    #: float64 powers of two from the subnormal 2**-1071 to 2**1020 (8·c stays finite),
    #: float32 from 2**-146 to 2**124: integer weights 1..8 times c are then exact
    POWERS: ClassVar[dict[str, tuple[int, int]]] = {
        "float64": (-1071, 1020),
        "float32": (-146, 124),
    }

    @staticmethod
    def check(result, expected: np.ndarray, dtype: str) -> None:
        scores = np.asarray(to_numpy(result.scores), dtype=np.float64)
        assert str(result.scores.dtype).rsplit(".", 1)[-1] == dtype
        assert np.all(np.isfinite(scores)), scores
        assert np.all(scores > 0), scores
        assert result.converged
        np.testing.assert_allclose(scores, expected, atol=1e-9 if dtype == "float64" else 2e-5)

    @pytest.mark.parametrize("dtype", ["float64", "float32"])
    @pytest.mark.skip_xp_backend(
        Backend.JAX, reason="XLA flushes subnormal floats to zero on the CPU"
    )
    @given(seed=st.integers(0, 10_000), position=st.floats(0.0, 1.0))
    def test_power_of_two_scaled_weights_down_to_subnormals(self, xp, dtype, seed, position):
        low, high = self.POWERS[dtype]
        c = 2.0 ** round(low + position * (high - low))
        src, dst, _ = random_graph(seed, 12, 40)
        weights = np.random.default_rng(seed).integers(1, 9, 40).astype(np.float64)
        expected = nx_scores(nx_graph(src, dst, weights, 12), 12, tol=1e-12, max_iter=1000)
        scaled = (weights * c).astype(dtype)
        assert np.all(scaled == (weights * c))  # exact: the scores of c·w are those of w
        result = mx.pagerank_edges(
            asarray(xp, src),
            asarray(xp, dst),
            n_nodes=12,
            weights=asarray(xp, scaled),
            tol=1e-12 if dtype == "float64" else None,
            max_iter=1000,
        )
        self.check(result, expected, dtype)

    @pytest.mark.parametrize("dtype", ["float64", "float32"])
    @given(seed=st.integers(0, 10_000), exponent=st.integers(-300, 300))
    def test_real_weights_scaled_by_any_normal_magnitude(self, xp, dtype, seed, exponent):
        c = 10.0 ** (exponent if dtype == "float64" else exponent * 35 // 300)
        src, dst, weights = random_graph(seed, 12, 40, weighted=True)
        result = mx.pagerank_edges(
            asarray(xp, src),
            asarray(xp, dst),
            n_nodes=12,
            weights=asarray(xp, (weights * c).astype(dtype)),
            personalization=asarray(xp, np.arange(1.0, 13.0) * c),
            tol=1e-12 if dtype == "float64" else None,
            max_iter=1000,
        )
        personalization = {i: float(i + 1) for i in range(12)}
        expected = nx_scores(
            nx_graph(src, dst, weights, 12),
            12,
            tol=1e-12,
            max_iter=1000,
            personalization=personalization,
        )
        self.check(result, expected, dtype)

    @pytest.mark.skip_xp_backend(Backend.DASK, reason="column sums of lazy arrays are not checked")
    @pytest.mark.parametrize("c", [1e-300, 1e-30, 1e30, 1e300])
    def test_dense_matrix_not_column_stochastic_is_refused(self, xp, c):
        src, dst, weights = random_graph(0, 8, 30, weighted=True)
        L = dense_link_matrix(src, dst, weights, 8)
        with pytest.raises(ValueError, match="`L` must be column-stochastic"):
            mx.pagerank(asarray(xp, L * c))
