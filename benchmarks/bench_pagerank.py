"""PageRank benchmarks: m4ml_xp per backend, NetworkX and a hand-written SciPy CSR loop."""

from __future__ import annotations

import warnings

import numpy as np

from benchmarks.common import LARGE, XPBenchmark
from m4ml_xp import backends, generate_internet, pagerank, pagerank_edges
from m4ml_xp.cli.harness import common as harness

#: (nodes, edges); the issue's target is 100k nodes / 1M edges
SIZES = ["10k/100k", "100k/1M"] + (["1M/10M"] if LARGE else [])


def _size(label: str) -> tuple[int, int]:
    scale = {"k": 1_000, "M": 1_000_000}
    nodes, edges = (int(part[:-1]) * scale[part[-1]] for part in label.split("/"))
    return nodes, edges


class PageRankEdges(XPBenchmark):
    """From edge arrays to scores (operator built inside), NetworkX's tolerance."""

    params = [*XPBenchmark.params, SIZES]
    param_names = [*XPBenchmark.param_names, "graph"]

    def setup(self, backend, graph):
        super().setup(backend)
        self.n, n_edges = _size(graph)
        src, dst = harness.power_law_graph(self.n, n_edges)
        self.src, self.dst = self.asarray(src), self.asarray(dst)
        self.reference, _ = harness.scipy_pagerank(src, dst, self.n)
        self.run()  # JIT warm-up

    def run(self):
        return self.sync(pagerank_edges(self.src, self.dst, n_nodes=self.n, dtype=self.xp.float64))

    def time_pagerank_edges(self, backend, graph):
        self.run()

    def peakmem_pagerank_edges(self, backend, graph):
        self.run()

    def track_max_error_vs_scipy(self, backend, graph):
        scores = backends.to_numpy(self.run().scores)
        return float(np.abs(scores - self.reference).max())

    track_max_error_vs_scipy.unit = "abs"


class PageRankReferences:
    """The tools a user would otherwise reach for, on the same graphs."""

    params = [SIZES]
    param_names = ["graph"]
    timeout = 900

    def setup(self, graph):
        self.n, n_edges = _size(graph)
        self.src, self.dst = harness.power_law_graph(self.n, n_edges)

    def time_scipy_csr_loop(self, graph):
        harness.scipy_pagerank(self.src, self.dst, self.n)

    def time_networkx_pagerank(self, graph):
        import networkx as nx

        if not hasattr(self, "G"):
            self.G = nx.DiGraph()
            self.G.add_nodes_from(range(self.n))
            self.G.add_edges_from(zip(self.src.tolist(), self.dst.tolist(), strict=True))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nx.pagerank(self.G)


class PageRankDense(XPBenchmark):
    """The course's dense route on a generated internet."""

    params = [*XPBenchmark.params, [500, 2000]]
    param_names = [*XPBenchmark.param_names, "pages"]

    def setup(self, backend, pages):
        super().setup(backend)
        self.L = generate_internet(
            pages, seed=0, xp=self.xp, device=self.device, dtype=self.xp.float64
        )
        self.sync(pagerank(self.L))

    def time_pagerank_dense(self, backend, pages):
        self.sync(pagerank(self.L))
