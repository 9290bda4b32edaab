"""PageRank: m4ml_xp on every backend beside NetworkX and a hand-written SciPy CSR loop."""

from __future__ import annotations

import warnings

import numpy as np

from benchmarks.common import Benchmark, implementations, sizes
from m4ml_xp import backends, generate_internet, pagerank, pagerank_edges
from m4ml_xp.cli.harness import common as harness

#: (nodes, edges); the issue's target is 100k nodes / 1M edges
GRAPHS = sizes(["10k/100k", "100k/1M"], ["10k/100k"], large=["1M/10M"])


def _size(label: str) -> tuple[int, int]:
    scale = {"k": 1_000, "M": 1_000_000}
    nodes, edges = (int(part[:-1]) * scale[part[-1]] for part in label.split("/"))
    return nodes, edges


class PageRankEdges(Benchmark):
    """From edge arrays to scores (operator built inside), NetworkX's semantics and tolerance."""

    params = [implementations("networkx", "scipy"), GRAPHS]
    param_names = [*Benchmark.param_names, "graph"]
    timeout = 900

    def prepare(self, implementation, graph):
        n, n_edges = _size(graph)
        src, dst = harness.power_law_graph(n, n_edges)
        self.reference, _ = harness.scipy_pagerank(src, dst, n)
        if implementation == "scipy":
            return lambda: harness.scipy_pagerank(src, dst, n)[0]
        if implementation == "networkx":
            import networkx as nx

            G = nx.DiGraph()
            G.add_nodes_from(range(n))
            G.add_edges_from(zip(src.tolist(), dst.tolist(), strict=True))

            def networkx_pagerank():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    scores = nx.pagerank(G)
                return np.fromiter((scores[i] for i in range(n)), dtype=np.float64, count=n)

            return networkx_pagerank
        src_xp, dst_xp = self.asarray(src), self.asarray(dst)
        dtype = self.xp.float64
        return lambda: pagerank_edges(src_xp, dst_xp, n_nodes=n, dtype=dtype).scores

    def time_pagerank_edges(self, implementation, graph):
        self.run()

    def peakmem_pagerank_edges(self, implementation, graph):
        self.run()

    def track_max_error_vs_scipy(self, implementation, graph):
        scores = backends.to_numpy(self.run())
        return float(np.abs(scores - self.reference).max())

    track_max_error_vs_scipy.unit = "abs"


class PageRankDense(Benchmark):
    """The course's dense route on a generated internet; ARPACK's eigenvector as the reference."""

    params = [implementations("scipy eigs"), sizes([500, 2000], [300])]
    param_names = [*Benchmark.param_names, "pages"]

    def prepare(self, implementation, pages):
        if implementation == "scipy eigs":
            from scipy.sparse.linalg import eigs

            damping = 0.85
            M = damping * generate_internet(pages, seed=0) + (1 - damping) / pages
            return lambda: eigs(M, k=1, which="LM")
        L = generate_internet(pages, seed=0, xp=self.xp, device=self.device, dtype=self.xp.float64)
        return lambda: pagerank(L).scores

    def time_pagerank_dense(self, implementation, pages):
        self.run()
