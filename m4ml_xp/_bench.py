"""Side-by-side benchmarks behind ``m4ml-xp bench``: us on each backend vs the reference tools.

One process times m4ml_xp on every installed backend and the tools a user
would otherwise reach for, on the same data and tolerance, and prints ratios.
The harness builds its inputs with NumPy on the host and moves them to each
backend before timing; every timed call is synchronised.
"""

from __future__ import annotations

import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from m4ml_xp import _xp
from m4ml_xp.pagerank import pagerank_edges

#: label -> (backend, device) tried, in order; those that fail to import are skipped.
#: The labels are also the asv ``backend`` parameter (benchmarks/common.py).
TARGETS: dict[str, tuple[str, str | None]] = {
    "numpy": ("numpy", None),
    "torch:cpu": ("torch", "cpu"),
    "jax.numpy:cpu": ("jax", "cpu"),
    "cupy": ("cupy", "cuda:0"),
    "torch:cuda": ("torch", "cuda"),
    "jax.numpy:cuda": ("jax", "gpu"),
}


@dataclass
class Timing:
    """One row of a benchmark table."""

    name: str
    seconds: float
    n_iter: int | None = None
    max_diff: float | None = None
    note: str = ""


def best_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Best wall-clock time of `repeat` synchronised calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = _xp.sync(fn())
        best = min(best, time.perf_counter() - start)
    return best, result


def power_law_graph(n_nodes: int, n_edges: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n_edges` distinct random edges: uniform sources, Zipf-like destinations.

    Distinct, so that a NetworkX ``DiGraph`` (which merges parallel edges) sees
    the same graph as the edge arrays.
    """
    if n_edges > n_nodes * n_nodes:
        raise ValueError(f"at most {n_nodes * n_nodes} distinct edges; asked for {n_edges}")
    rng = np.random.default_rng(seed)
    popularity = rng.permutation(n_nodes)
    keys = np.zeros(0, dtype=np.int64)
    draw = n_edges
    while keys.size < n_edges:
        src = rng.integers(0, n_nodes, draw)
        rank = np.minimum((rng.pareto(1.2, draw) * n_nodes / 50).astype(np.int64), n_nodes - 1)
        keys = np.sort(np.concatenate([keys, src * n_nodes + popularity[rank]]))
        keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]  # faster than np.unique
        draw = 2 * (n_edges - keys.size) + 1000
    keys = np.sort(rng.choice(keys, size=n_edges, replace=False))
    return keys // n_nodes, keys % n_nodes


def scipy_pagerank(
    src: np.ndarray,
    dst: np.ndarray,
    n: int,
    *,
    alpha: float = 0.85,
    tol: float = 1e-6,
    max_iter: int = 100,
) -> tuple[np.ndarray, int]:
    """A hand-written SciPy CSR PageRank with NetworkX's semantics: the fair baseline."""
    import scipy.sparse as sparse

    A = sparse.csr_array((np.ones(src.size), (src, dst)), shape=(n, n))
    out = np.asarray(A.sum(axis=1)).ravel()
    inv = np.divide(1.0, out, out=np.zeros_like(out), where=out != 0)
    P = (sparse.dia_array((inv, 0), shape=(n, n)) @ A).T.tocsr()
    dangling = out == 0
    x = np.full(n, 1.0 / n)
    p = np.full(n, 1.0 / n)
    for i in range(max_iter):
        last = x
        x = alpha * (P @ x + x[dangling].sum() * p) + (1 - alpha) * p
        if np.abs(x - last).sum() < n * tol:
            return x, i + 1
    raise RuntimeError("SciPy PageRank did not converge")


def bench_pagerank(
    n_nodes: int = 100_000,
    n_edges: int = 1_000_000,
    *,
    repeat: int = 3,
    networkx: bool = True,
    dtype: str = "float64",
    tol: float = 1e-6,
    log: Callable[[str], None] = print,
) -> list[Timing]:
    """Time :func:`pagerank_edges` on every backend vs NetworkX and a SciPy CSR loop."""
    src, dst = power_law_graph(n_nodes, n_edges)
    rows: list[Timing] = []
    scipy_time, (reference, scipy_iters) = best_time(
        lambda: scipy_pagerank(src, dst, n_nodes, tol=tol), repeat
    )
    rows.append(Timing("scipy CSR loop (hand-written)", scipy_time, scipy_iters, 0.0))
    for label, (backend, device_name) in TARGETS.items():
        try:
            xp, device = _xp.resolve_backend(backend, device_name)
            s = xp.asarray(src, device=device)
            d = xp.asarray(dst, device=device)
            float_dtype = getattr(xp, dtype)
        except Exception:
            continue

        def run(s: Any = s, d: Any = d, float_dtype: Any = float_dtype) -> Any:
            return pagerank_edges(s, d, n_nodes=n_nodes, dtype=float_dtype, tol=tol, max_iter=1000)

        run()  # warm-up: JIT compilation, CUDA context, caches
        seconds, result = best_time(run, repeat)
        scores = np.asarray(_xp.to_numpy(result.scores), dtype=np.float64)
        rows.append(
            Timing(
                f"m4ml_xp {label}", seconds, result.n_iter, float(np.abs(scores - reference).max())
            )
        )
        log(f"  {label}: {seconds * 1e3:.1f} ms")
    if networkx:
        import networkx as nx

        G = nx.DiGraph()
        G.add_nodes_from(range(n_nodes))
        G.add_edges_from(zip(src.tolist(), dst.tolist(), strict=True))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nx_time, nx_scores = best_time(lambda: nx.pagerank(G, tol=tol, max_iter=1000), 1)
        nx_array = np.array([nx_scores[i] for i in range(n_nodes)])
        rows.append(
            Timing(
                "networkx.pagerank",
                nx_time,
                None,
                float(np.abs(nx_array - reference).max()),
                note="graph prebuilt; time includes its conversion to SciPy",
            )
        )
    return rows


def machine_description() -> str:
    """CPU, Python and library versions, for the record."""
    versions = []
    for name, info in _xp.available_backends().items():
        if info["available"]:
            versions.append(f"{name} {info['version']}")
    try:
        import scipy

        versions.append(f"scipy {scipy.__version__}")
        import networkx

        versions.append(f"networkx {networkx.__version__}")
    except ImportError:
        pass
    import os

    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; " + ", ".join(versions)
    )


def format_pagerank(
    rows: list[Timing], *, n_nodes: int, n_edges: int, tol: float = 1e-6, markdown: bool = False
) -> str:
    """The PageRank table with ratios to NetworkX and to the SciPy loop."""
    by_name = {r.name: r for r in rows}
    scipy_time = by_name["scipy CSR loop (hand-written)"].seconds
    nx_row = by_name.get("networkx.pagerank")
    header = [
        "implementation",
        "time [ms]",
        "iters",
        "ms/iter",
        "speed-up vs networkx",
        "time / scipy loop",
        "max abs diff vs scipy",
    ]
    lines = []
    for r in rows:
        per_iter = f"{r.seconds * 1e3 / r.n_iter:.2f}" if r.n_iter else "-"
        vs_nx = f"{nx_row.seconds / r.seconds:.1f}x" if nx_row else "-"
        lines.append(
            [
                r.name,
                f"{r.seconds * 1e3:.1f}",
                str(r.n_iter or "-"),
                per_iter,
                vs_nx,
                f"{r.seconds / scipy_time:.2f}",
                f"{r.max_diff:.1e}" if r.max_diff is not None else "-",
            ]
        )
    title = (
        f"pagerank_edges: {n_nodes:,} nodes, {n_edges:,} edges, tol {tol:g} (NetworkX semantics: "
        "L1 change < n·tol), from edge arrays to scores, best of runs"
    )
    if markdown:
        out = [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([title, fmt.format(*header), *(fmt.format(*line) for line in lines)])
