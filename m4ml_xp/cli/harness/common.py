"""Side-by-side benchmarks behind ``m4ml-xp bench``: us on each backend vs the reference tools.

One process times m4ml_xp on every installed backend and the tools a user
would otherwise reach for, on the same data and tolerance, and prints ratios.
The harness builds its inputs with NumPy on the host and moves them to each
backend before timing; every timed call is synchronised.
"""

from __future__ import annotations

import math
import platform
import time
import warnings
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from m4ml_xp import backends
from m4ml_xp.pagerank import pagerank_edges

#: label -> (backend, device) tried, in order; those that fail to import are skipped.
#: (The asv suite has its own ``m4ml_xp[...]`` labels, with array-api-strict and Dask:
#: benchmarks/common.py.)
TARGETS: dict[str, tuple[str, str | None]] = {
    "numpy": ("numpy", None),
    "torch:cpu": ("torch", "cpu"),
    "jax.numpy:cpu": ("jax", "cpu"),
    "cupy": ("cupy", "cuda:0"),
    "torch:cuda": ("torch", "cuda"),
    "jax.numpy:cuda": ("jax", "gpu"),
}


#: The labels of :data:`TARGETS` on a GPU; ``--targets gpu`` means these.
GPU_TARGETS = ("cupy", "torch:cuda", "jax.numpy:cuda")


def parse_targets(text: str | None) -> tuple[str, ...] | None:
    """``--targets``: None (every target), ``gpu`` (:data:`GPU_TARGETS`) or labels, comma-separated."""
    if text is None:
        return None
    labels = [part.strip() for part in text.split(",") if part.strip()]
    labels = [label for part in labels for label in (GPU_TARGETS if part == "gpu" else (part,))]
    unknown = sorted(set(labels) - set(TARGETS))
    if unknown or not labels:
        raise ValueError(f"`--targets` must name labels of {list(TARGETS)} or 'gpu'; got {text!r}")
    return tuple(labels)


def available_targets(
    only: Collection[str] | None = None,
) -> Iterator[tuple[str, str, Any, Any]]:
    """Yield ``(label, backend, namespace, device)`` for each of :data:`TARGETS` available.

    A target is available when its library imports and its device exists here; the
    others are skipped, and so are those not in `only` (labels) when it is given.
    """
    for label, (backend, device_name) in TARGETS.items():
        if only is not None and label not in only:
            continue
        try:
            xp, device = backends.resolve_backend(backend, device_name)
        except Exception:
            continue
        yield label, backend, xp, device


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
        result = backends.sync(fn())
        best = min(best, time.perf_counter() - start)
    return best, result


def power_law_graph(
    n_nodes: int, n_edges: int, seed: int = 0, *, distinct: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """`n_edges` random edges: uniform sources, Zipf-like destinations.

    Distinct by default, so that a NetworkX ``DiGraph`` (which merges parallel edges)
    sees the same graph as the edge arrays; ``distinct=False`` skips the sorting that
    takes most of the time at 100M edges (repeated edges then count twice everywhere).
    """
    if n_edges > n_nodes * n_nodes:
        raise ValueError(f"at most {n_nodes * n_nodes} distinct edges; asked for {n_edges}")
    rng = np.random.default_rng(seed)
    popularity = rng.permutation(n_nodes)
    if not distinct:
        src = rng.integers(0, n_nodes, n_edges)
        rank = np.minimum((rng.pareto(1.2, n_edges) * n_nodes / 50).astype(np.int64), n_nodes - 1)
        return src, popularity[rank]
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
    """Run a hand-written SciPy CSR PageRank with NetworkX's semantics: the fair baseline."""
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


def memory_floor_bytes(n_nodes: int, n_edges: int, itemsize: int) -> int:
    """Bytes one PageRank iteration must move at least: the CSR mat-vec's traffic.

    Each edge: its int32 column index and one float (the gathered score); each node: its
    int32 row offset, its old score read and its new score written.
    """
    return n_edges * (4 + itemsize) + n_nodes * (4 + 2 * itemsize)


def bench_pagerank(
    n_nodes: int = 100_000,
    n_edges: int = 1_000_000,
    *,
    repeat: int = 3,
    networkx: bool = True,
    dtype: str = "float64",
    tol: float = 1e-6,
    targets: Collection[str] | None = None,
    steady: int | None = None,
    bandwidth: float | None = None,
    log: Callable[[str], None] = print,
) -> list[Timing]:
    """Time :func:`pagerank_edges` on every backend vs NetworkX and a SciPy CSR loop.

    With `targets` (labels of :data:`TARGETS`) only those run, the graph may repeat edges
    (NetworkX is then not run) and the SciPy loop runs once.  With `steady` = K each row
    also reports the cost of one iteration without the set-up, ``(t(K iterations) −
    t(1 iteration)) / (K − 1)`` (the tolerance never met), and, on a GPU with `bandwidth`
    (TB/s), that cost over the time :func:`memory_floor_bytes` takes at that bandwidth.
    (With NetworkX's ``n·tol`` criterion a 10M-node graph converges in one iteration.)
    """
    src, dst = power_law_graph(n_nodes, n_edges, distinct=targets is None or networkx)
    log(f"  graph: {n_nodes:,} nodes, {src.size:,} edges")
    rows: list[Timing] = []
    scipy_time, (reference, scipy_iters) = best_time(
        lambda: scipy_pagerank(src, dst, n_nodes, tol=tol), repeat if targets is None else 1
    )
    rows.append(Timing("scipy CSR loop (hand-written)", scipy_time, scipy_iters, 0.0))
    for label, _backend, xp, device in available_targets(targets):
        try:
            s = xp.asarray(src, device=device)
            d = xp.asarray(dst, device=device)
            float_dtype = getattr(xp, dtype)
        except Exception:
            continue

        def run(
            max_iter: int = 1000,
            tol: float = tol,
            s: Any = s,
            d: Any = d,
            float_dtype: Any = float_dtype,
        ) -> Any:
            with warnings.catch_warnings():  # the steady runs stop early on purpose
                warnings.simplefilter("ignore")
                return pagerank_edges(
                    s, d, n_nodes=n_nodes, dtype=float_dtype, tol=tol, max_iter=max_iter
                )

        try:
            run()  # warm-up: JIT compilation, CUDA context, caches
            seconds, result = best_time(run, repeat)
        except Exception as exc:  # e.g. a GPU out of memory at 100M edges: a row, not a crash
            message = " ".join(f"{type(exc).__name__}: {exc}".split())[:120]
            rows.append(Timing(f"m4ml_xp {label}", math.nan, None, None, f"failed: {message}"))
            log(f"  {label}: failed: {message}")
            continue
        scores = np.asarray(backends.to_numpy(result.scores), dtype=np.float64)
        note = ""
        if steady is not None and steady > 1:
            # tol 1e-300: below any L1 change, so exactly max_iter iterations
            first, one = best_time(lambda run=run: run(1, 1e-300), repeat)
            last, many = best_time(lambda run=run: run(steady, 1e-300), repeat)
            per_iter = max(last - first, 0.0) / max(many.n_iter - one.n_iter, 1)
            note = f"steady {per_iter * 1e3:.3f} ms/iter"
            if bandwidth and label in GPU_TARGETS:
                itemsize = 4 if dtype == "float32" else 8
                floor = memory_floor_bytes(n_nodes, src.size, itemsize) / (bandwidth * 1e12)
                note += (
                    f", floor {floor * 1e3:.3f} ms at {bandwidth:g} TB/s, "
                    f"{per_iter / floor:.1f}x floor"
                )
        rows.append(
            Timing(
                f"m4ml_xp {label}",
                seconds,
                result.n_iter,
                float(np.abs(scores - reference).max()),
                note,
            )
        )
        log(f"  {label}: {seconds * 1e3:.1f} ms" + (f" ({note})" if note else ""))
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
    for name, info in backends.available_backends().items():
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
    """Return the PageRank table with ratios to NetworkX and to the SciPy loop."""
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
        "note",
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
                r.note or "-",
            ]
        )
    title = (
        f"pagerank_edges: {n_nodes:,} nodes, {n_edges:,} edges, tol {tol:g} (NetworkX semantics: "
        "L1 change < n·tol), from edge arrays to scores, best of runs"
    )
    numpy_row = by_name.get("m4ml_xp numpy")
    goals = []
    if numpy_row is not None:
        vs_networkx = f"{nx_row.seconds / numpy_row.seconds:.1f}x" if nx_row else "not run"
        goals = [
            f"goal numpy >= 50x networkx.pagerank: {vs_networkx}",
            f"goal numpy <= 1.5x the SciPy CSR loop: {numpy_row.seconds / scipy_time:.2f}x",
        ]
    table = format_table(title, header, lines, markdown=markdown)
    bullet = "- " if markdown else "  "
    return table + ("\n\n" + "\n".join(bullet + g for g in goals) if goals else "")


# --------------------------------------------------------------------------- MLP
def format_table(title: str, header: list[str], lines: list[list[str]], *, markdown: bool) -> str:
    """Return a plain-text or Markdown table."""
    if markdown:
        out = [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([title, fmt.format(*header), *(fmt.format(*line) for line in lines)])


def mnist_or_synthetic(data: str | None, limit: int = 10_000) -> tuple[np.ndarray, np.ndarray, str]:
    """Return MNIST t10k (float32 pixels / 255, labels) from `data` or ``M4ML_XP_DATA``.

    Else random data of the same shape (the timings do not depend on the values).
    """
    import os

    from m4ml_xp.datasets import load_mnist

    location = data or os.environ.get("M4ML_XP_DATA")
    if location:
        images, labels = load_mnist(location, limit=limit, dtype=np.float32)
        return images, labels, f"MNIST t10k ({images.shape[0]:,} images)"
    rng = np.random.default_rng(0)
    images = rng.random((limit, 784), dtype=np.float32)
    return images, rng.integers(0, 10, limit), f"random data shaped like MNIST t10k ({limit:,})"


def torch_epoch(
    params: list,
    X: np.ndarray,
    y: np.ndarray,
    order: np.ndarray,
    lr: float,
    batch: int,
    device: str,
) -> Callable[[], Any]:
    """Torch autograd + ``optim.SGD``: the same network, start and batch order."""
    import torch
    import torch.nn.functional as F

    Xt = torch.as_tensor(X, device=device)
    yt = torch.as_tensor(y, device=device)
    perm = torch.as_tensor(order, device=device)

    def run() -> Any:
        leaves = [
            torch.tensor(np.asarray(a), device=device, requires_grad=True)
            for layer in params
            for a in layer
        ]
        W1, b1, W2, b2 = leaves
        opt = torch.optim.SGD(leaves, lr=lr)
        for start in range(0, X.shape[0], batch):
            idx = perm[start : start + batch]
            logits = torch.relu(Xt[idx] @ W1 + b1) @ W2 + b2
            loss = F.cross_entropy(logits, yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return [leaf.detach() for leaf in leaves]

    return run


def jax_scan_epoch(
    params: list,
    X: np.ndarray,
    y: np.ndarray,
    order: np.ndarray,
    lr: float,
    batch: int,
    device: Any,
) -> Callable[[], Any]:
    """Return a hand-written JAX epoch: ``jax.grad`` of the loss, SGD, ``lax.scan`` over the batches."""
    import jax
    import jax.numpy as jnp

    n_batches = X.shape[0] // batch
    batches = jax.device_put(order[: n_batches * batch].reshape(n_batches, batch), device)
    Xj, yj = jax.device_put(X, device), jax.device_put(y, device)
    start = [jax.device_put(np.asarray(a), device) for layer in params for a in layer]

    def loss(p: Any, xb: Any, yb: Any) -> Any:
        W1, b1, W2, b2 = p
        logits = jax.nn.relu(xb @ W1 + b1) @ W2 + b2
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), yb[:, None], axis=1))

    @jax.jit
    def epoch(p: Any, X: Any, y: Any, batches: Any) -> Any:
        def step(p: Any, idx: Any) -> Any:
            g = jax.grad(loss)(p, X[idx], y[idx])
            return [a - lr * b for a, b in zip(p, g, strict=True)], None

        return jax.lax.scan(step, p, batches)[0]

    return lambda: epoch(start, Xj, yj, batches)


def bench_nn(
    *,
    data: str | None = None,
    batch: int = 100,
    lr: float = 0.1,
    hidden: int = 128,
    repeat: int = 3,
    log: Callable[[str], None] = print,
) -> tuple[list[Timing], str]:
    """One epoch of a 784-hidden-10 ReLU/softmax MLP, SGD, float32.

    Every backend vs torch autograd + ``optim.SGD`` and a ``jax.lax.scan`` epoch, on the
    same batches.
    """
    from m4ml_xp.nn import init_mlp, train_mlp
    from m4ml_xp.optimize import sgd

    X, y, described = mnist_or_synthetic(data)
    params_np = init_mlp([784, hidden, 10], seed=0, dtype=np.float32, init="he")
    order = np.random.default_rng(0).permutation(
        X.shape[0]
    )  # train_mlp's first-epoch order for seed 0
    optimizer = sgd(lr)
    rows: list[Timing] = []
    references: dict[str, list[np.ndarray]] = {}

    def add(name: str, run: Callable[[], Any], key: str | None = None) -> None:
        run()  # warm-up: JIT compilation, CUDA context, allocator
        seconds, result = best_time(run, repeat)
        leaves = [np.asarray(backends.to_numpy(a), dtype=np.float64) for a in _flatten(result)]
        if key is not None:
            references[key] = leaves
        base = references.get("torch:cpu")
        diff = (
            max(float(np.abs(a - b).max()) for a, b in zip(leaves, base, strict=True))
            if base
            else None
        )
        rows.append(Timing(name, seconds, X.shape[0] // batch, diff))
        log(f"  {name}: {seconds * 1e3:.1f} ms")

    for label, device_name in (("torch:cpu", "cpu"), ("torch:cuda", "cuda")):
        try:
            import torch

            if device_name == "cuda" and not torch.cuda.is_available():
                continue
        except ImportError:
            log("  torch is not installed (pip install 'm4ml_xp[torch]'): no torch autograd row")
            break
        add(
            f"torch autograd + optim.SGD ({device_name})",
            torch_epoch(params_np, X, y, order, lr, batch, device_name),
            key=label,
        )
    for platform_name in ("cpu", "gpu"):
        try:
            import jax

            jax_device = jax.devices(platform_name)[0]
        except Exception:
            continue
        add(
            f"jax.jit + lax.scan reference ({platform_name})",
            jax_scan_epoch(params_np, X, y, order, lr, batch, jax_device),
        )
    for label, _backend, xp, device in available_targets():
        params = [
            (xp.asarray(W, device=device), xp.asarray(b, device=device)) for W, b in params_np
        ]
        Xb, yb = xp.asarray(X, device=device), xp.asarray(y, device=device)

        def run(params: Any = params, Xb: Any = Xb, yb: Any = yb) -> Any:
            return train_mlp(
                params,
                Xb,
                yb,
                optimizer=optimizer,
                epochs=1,
                batch_size=batch,
                seed=0,
                activation="relu",
                output="softmax",
                loss="cross_entropy",
                progress=False,
            ).params

        add(f"m4ml_xp {label}", run)
    return rows, described


def _flatten(tree: Any) -> list[Any]:
    if isinstance(tree, list | tuple):
        return [leaf for part in tree for leaf in _flatten(part)]
    return [tree]


def format_nn(rows: list[Timing], *, described: str, batch: int, markdown: bool = False) -> str:
    """Return the MLP table with the goal ratios: numpy vs torch CPU, our JAX vs the scan reference."""
    by_name = {r.name: r for r in rows}

    def ratio(ours: str, reference: str) -> str:
        a, b = by_name.get(ours), by_name.get(reference)
        return f"{a.seconds / b.seconds:.2f}" if a and b else "-"

    torch_cpu = by_name.get("torch autograd + optim.SGD (cpu)")
    header = [
        "implementation",
        "epoch [ms]",
        "steps",
        "ms/step",
        "time / torch CPU",
        "max abs param diff vs torch",
    ]
    lines = [
        [
            r.name,
            f"{r.seconds * 1e3:.1f}",
            str(r.n_iter),
            f"{r.seconds * 1e3 / r.n_iter:.3f}",
            f"{r.seconds / torch_cpu.seconds:.2f}" if torch_cpu else "-",
            f"{r.max_diff:.1e}" if r.max_diff is not None else "-",
        ]
        for r in rows
    ]
    title = f"one epoch of a 784-128-10 MLP (ReLU, softmax + cross-entropy, SGD, float32, batch {batch}) on {described}"
    table = format_table(title, header, lines, markdown=markdown)
    goals = [
        f"goal numpy <= 1.0x torch CPU: {ratio('m4ml_xp numpy', 'torch autograd + optim.SGD (cpu)')}",
        f"goal jax <= 1.1x lax.scan reference (cpu): {ratio('m4ml_xp jax.numpy:cpu', 'jax.jit + lax.scan reference (cpu)')}",
        f"jax on GPU vs lax.scan reference (gpu): {ratio('m4ml_xp jax.numpy:cuda', 'jax.jit + lax.scan reference (gpu)')}",
        f"torch:cuda vs torch autograd (cuda): {ratio('m4ml_xp torch:cuda', 'torch autograd + optim.SGD (cuda)')}",
    ]
    return table + "\n\n" + "\n".join(("- " if markdown else "  ") + g for g in goals)
