"""``m4ml-xp bench pca``: our PCA on every backend against scikit-learn and torch, in one run.

MNIST t10k (10,000 × 784) and a 70,000 × 784 float32 matrix (t10k plus six
one-pixel shifts of it), k = 50.  Each row reports the best time, the largest
relative error of the 50 eigenvalues against float64 LAPACK on the same data,
and, for NumPy-based rows, the peak memory a fit adds (tracemalloc) relative to
the input's size.
"""

from __future__ import annotations

import math
import time
import tracemalloc
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any

import numpy as np
from array_api_compat import is_cupy_namespace, is_torch_namespace

from m4ml_xp import backends
from m4ml_xp.cli.harness.common import (
    Timing,
    available_targets,
    best_time,
    format_table,
    mnist_or_synthetic,
)
from m4ml_xp.pca import pca

SHIFTS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1))


def shifted_mnist(images: np.ndarray) -> np.ndarray:
    """Return the images and six one-pixel shifts of them: ``7·N`` rows (70,000 for t10k)."""
    square = images.reshape(-1, 28, 28)
    moved = [np.roll(square, shift, axis=(1, 2)).reshape(len(images), -1) for shift in SHIFTS]
    return np.concatenate([images, *moved]).astype(np.float32)


def more_rows(images: np.ndarray, n_rows: int) -> np.ndarray:
    """Return `n_rows` float32 rows: the 70k matrix of :func:`shifted_mnist` repeated."""
    shifted = shifted_mnist(images)
    return np.resize(shifted, (n_rows, shifted.shape[1]))


def reference_eigenvalues(X: np.ndarray, k: int, *, block: int = 100_000) -> np.ndarray:
    """Return the top `k` covariance eigenvalues (÷ N − 1) in float64 LAPACK.

    Centred in float64 `block` rows at a time: no float64 copy of a large `X`.
    """
    mean = X.mean(axis=0, dtype=np.float64)
    scatter = np.zeros((X.shape[1], X.shape[1]))
    for start in range(0, len(X), block):
        centred = X[start : start + block].astype(np.float64) - mean
        scatter += centred.T @ centred
    return np.linalg.eigvalsh(scatter)[::-1][:k] / (len(X) - 1)


def peak_memory_ratio(run: Callable[[], Any], input_bytes: int) -> float:
    """Return the peak memory `run` allocates (tracemalloc: NumPy's buffers included) ÷ `input_bytes`."""
    tracemalloc.start()
    try:
        run()
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / input_bytes


def bench_pca(
    *, data: str | None = None, k: int = 50, repeat: int = 3, large: bool = True,
    rows: Sequence[int] = (), targets: Collection[str] | None = None,
    log: Callable[[str], None] = print,
) -> list[tuple[str, list[Timing]]]:  # fmt: skip
    """Tables for t10k, (with `large`) the 70k matrix and (`rows`) the 70k matrix repeated.

    ``max_diff`` is the eigenvalue error, ``note`` the memory ratio where measured.
    With `targets` (labels of ``common.TARGETS``) only those backends run, and of the
    CPU references only scikit-learn's ``covariance_eigh`` (the ratios' base), plus
    scikit-learn on torch CUDA through its array-API dispatch when ``torch:cuda`` is a
    target (needs ``SCIPY_ARRAY_API=1`` in the environment).
    """
    images, _labels, described = mnist_or_synthetic(data)
    sets = [(described, images.astype(np.float32))]
    if large:
        sets.append((f"{described} + 6 one-pixel shifts", shifted_mnist(images)))
    for n_rows in rows:
        sets.append((f"{n_rows:,} rows: the shifted set repeated", more_rows(images, n_rows)))
    tables = []
    for name, X in sets:
        log(f"  {name}: {X.shape[0]:,} × {X.shape[1]} float32")
        truth = reference_eigenvalues(X, k)
        rows: list[Timing] = []

        def add(label: str, run: Callable[[], Any], eigenvalues: Callable[[Any], np.ndarray],
                memory: bool = False, X: np.ndarray = X, truth: np.ndarray = truth,
                rows: list[Timing] = rows) -> None:  # fmt: skip
            try:
                run()
                seconds, result = best_time(run, repeat)
                values = np.asarray(eigenvalues(result), dtype=np.float64)[:k]
            except Exception as exc:  # e.g. a GPU out of memory at 1M rows: a row, not a crash
                message = " ".join(f"{type(exc).__name__}: {exc}".split())[:120]
                rows.append(Timing(label, math.nan, None, None, f"failed: {message}"))
                log(f"    {label}: failed: {message}")
                return
            error = float(np.max(np.abs(values - truth) / truth))
            note = f"{peak_memory_ratio(run, X.nbytes):.2f}x input" if memory else ""
            rows.append(Timing(label, seconds, None, error, note))
            log(f"    {label}: {seconds * 1e3:.1f} ms, eigenvalue error {error:.1e}")

        try:
            from sklearn.decomposition import PCA
        except ImportError:
            PCA = None
            log(
                "    scikit-learn is not installed (pip install 'm4ml_xp[bench]'): no reference rows"
            )
        if PCA is not None:
            solvers = (
                ("full", "covariance_eigh", "randomized")
                if targets is None
                else ("covariance_eigh",)
            )
            for solver in solvers:
                add(
                    f"sklearn PCA({solver})",
                    lambda solver=solver, X=X, PCA=PCA: PCA(
                        k, svd_solver=solver, random_state=0
                    ).fit(X),
                    lambda model: model.explained_variance_,
                    memory=targets is None,
                )
        try:
            import torch
        except ImportError:
            torch = None
        if (
            PCA is not None
            and torch is not None
            and targets is not None
            and "torch:cuda" in targets
        ):
            _sklearn_on_torch_cuda(add, PCA, torch, X, k, log)
        if torch is not None and targets is None:
            tensor = torch.from_numpy(X)
            add(
                "torch.pca_lowrank (cpu, niter=4)",
                lambda tensor=tensor, torch=torch: torch.pca_lowrank(
                    tensor, q=k, center=True, niter=4
                ),
                lambda out, n=X.shape[0]: (out[1].numpy().astype(np.float64) ** 2) / (n - 1),
            )
        for label, backend, xp, device in available_targets(targets):
            Xb = xp.asarray(X, device=device)
            for method in ("covariance_eigh", "randomized"):
                add(
                    f"m4ml_xp {label} {method}",
                    lambda Xb=Xb, method=method: pca(Xb, k, method=method, seed=0),
                    lambda result: backends.to_numpy(result.explained_variance),
                    memory=backend == "numpy",
                )

            def by_hand(Xb: Any = Xb, xp: Any = xp) -> Any:
                centred = Xb - xp.mean(Xb, axis=0)
                return xp.linalg.eigh(xp.linalg.matrix_transpose(centred) @ centred)[0]

            add(
                f"hand-written eigh(XcᵀXc) {label}",
                by_hand,
                lambda values, n=X.shape[0]: backends.to_numpy(values)[::-1] / (n - 1),
            )
        tables.append((name, rows))
    return tables


def _sklearn_on_torch_cuda(
    add: Callable[..., None], PCA: Any, torch: Any, X: np.ndarray, k: int,
    log: Callable[[str], None],
) -> None:  # fmt: skip
    """scikit-learn's PCA(covariance_eigh) on a torch CUDA tensor (array-API dispatch)."""
    try:
        import sklearn

        if not torch.cuda.is_available():
            return
        tensor = torch.from_numpy(X).to("cuda")

        def fit(tensor: Any = tensor) -> Any:
            with sklearn.config_context(array_api_dispatch=True):
                model = PCA(k, svd_solver="covariance_eigh").fit(tensor)
            torch.cuda.synchronize()  # a model is no array: best_time cannot sync it
            return model

        add(
            "sklearn PCA(covariance_eigh) torch:cuda (array-API dispatch)",
            fit,
            lambda model: model.explained_variance_.cpu().numpy(),
        )
    except Exception as exc:  # dispatch needs array-api-compat and SCIPY_ARRAY_API=1
        log(f"    sklearn on torch:cuda: not run ({type(exc).__name__}: {exc})")


def format_pca(tables: list[tuple[str, list[Timing]]], *, k: int, markdown: bool = False) -> str:
    """One table per data set, and the goal ratios of the issue."""
    texts, goals = [], []
    for name, rows in tables:
        by_name = {r.name: r for r in rows}
        base = by_name.get("sklearn PCA(covariance_eigh)")
        lines = [
            [
                r.name,
                f"{r.seconds * 1e3:.1f}",
                f"{r.seconds / base.seconds:.2f}" if base else "-",
                f"{r.max_diff:.1e}" if r.max_diff is not None else "-",
                r.note or "-",
            ]
            for r in rows
        ]
        header = ["implementation", "time [ms]", "time / sklearn covariance_eigh",
                  "max rel. eigenvalue error (vs float64)", "peak memory added"]  # fmt: skip
        texts.append(
            format_table(f"PCA, k = {k}, float32: {name}", header, lines, markdown=markdown)
        )
        ours = by_name.get("m4ml_xp numpy covariance_eigh")
        if ours and base:
            goals.append(
                f"{name}: numpy covariance_eigh / sklearn covariance_eigh = {ours.seconds / base.seconds:.2f} "
                f"(goal <= 1.0), eigenvalue error {ours.max_diff:.1e} (goal <= 1e-6), memory {ours.note} "
                "(goal <= 1.2x)"
            )
    return "\n\n".join(texts) + "\n\n" + "\n".join(("- " if markdown else "  ") + g for g in goals)


class GeneratedChunks:
    """``rows × 784`` float32 chunks of uniform [0, 1) pixels, ``total_bytes`` in all.

    Generated on the host by `workers` threads ahead of their use (at most ``2·workers``
    chunks held), yielded in order.  Nothing is kept: the data can exceed host and device
    memory.
    """

    def __init__(self, total_bytes: float, rows: int, *, workers: int = 4, seed: int = 0):
        self.rows, self.workers, self.seed = rows, workers, seed
        self.n_chunks = max(1, math.ceil(total_bytes / (rows * 784 * 4)))
        self.nbytes = self.n_chunks * rows * 784 * 4

    def __len__(self) -> int:
        """Return the number of chunks."""
        return self.n_chunks

    def _make(self, index: int) -> np.ndarray:
        return np.random.default_rng([self.seed, index]).random((self.rows, 784), dtype=np.float32)

    def __iter__(self) -> Iterator[np.ndarray]:
        """Yield the chunks in order, generated ahead by the worker threads."""
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(self.workers) as pool:
            ahead = min(self.n_chunks, 2 * self.workers)
            pending = deque(pool.submit(self._make, i) for i in range(ahead))
            following = len(pending)
            while pending:
                chunk = pending.popleft().result()
                if following < self.n_chunks:
                    pending.append(pool.submit(self._make, following))
                    following += 1
                yield chunk


def host_to_device_bandwidth(xp: Any, device: Any, nbytes: int = 1 << 28) -> dict[str, float]:
    """GB/s of one ``nbytes`` copy from host to `device`.

    From pageable NumPy memory (``xp.asarray``) and, on CUDA, from page-locked memory.
    """
    host = np.ones(nbytes // 4, dtype=np.float32)
    rates: dict[str, float] = {}
    if device is None or "cpu" in str(device).lower():
        return rates  # host memory: nothing to copy

    def best(copy: Callable[[], Any]) -> float:
        seconds, _ = best_time(lambda: backends.sync(copy()), 3)
        return nbytes / seconds / 1e9

    rates["pageable"] = best(lambda: xp.asarray(host, device=device))
    if is_cupy_namespace(xp):
        import cupy
        import cupyx

        pinned = cupyx.empty_pinned(host.shape, dtype=host.dtype)
        rates["pinned"] = best(lambda: cupy.asarray(pinned))
    elif is_torch_namespace(xp) and getattr(device, "type", "") == "cuda":
        import torch

        pinned = torch.from_numpy(host).pin_memory()
        rates["pinned"] = best(lambda: pinned.to(device, non_blocking=True))
    return rates


def bench_streaming(
    xp: Any, device: Any, *, gigabytes: float, rows: int = 65_536, workers: int = 4,
    k: int = 50, progress: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """Stream `gigabytes` of generated 784-wide float32 rows through ``streaming_pca``.

    On `xp`/`device`; the throughput is reported next to the host generation rate and the
    host-to-device bandwidth.  Uniform pixels have every covariance eigenvalue near 1/12:
    the largest deviation, about ``2·sqrt(784 / rows streamed)``, checks the result.
    """
    from m4ml_xp.pca_stream import streaming_pca

    sample = GeneratedChunks(min(gigabytes * 1e9, 2e9), rows, workers=workers, seed=1)
    start = time.perf_counter()
    for _chunk in sample:
        pass
    generation = sample.nbytes / (time.perf_counter() - start) / 1e9
    chunks = GeneratedChunks(gigabytes * 1e9, rows, workers=workers)
    start = time.perf_counter()
    result = streaming_pca(chunks, k, xp=xp, device=device, progress=progress)
    variance = backends.to_numpy(backends.sync(result.explained_variance)).astype(np.float64)
    seconds = time.perf_counter() - start
    streamed = chunks.nbytes
    return {
        "bytes": streamed,
        "seconds": seconds,
        "throughput": streamed / seconds / 1e9,
        "generation": generation,
        "bandwidth": host_to_device_bandwidth(xp, device),
        "deviation": float(np.max(np.abs(variance * 12 - 1))),
    }


def format_streaming(label: str, run: dict[str, Any], *, markdown: bool = False) -> str:
    """One table: the streamed size, time, throughput and the rates it is bounded by."""
    bandwidth = run["bandwidth"]
    header = ["backend", "streamed [GB]", "time [s]", "throughput [GB/s]",
              "host generation [GB/s]", "H2D pageable [GB/s]", "H2D pinned [GB/s]",
              "max abs(12·λ − 1)"]  # fmt: skip
    line = [
        label,
        f"{run['bytes'] / 1e9:.3g}",
        f"{run['seconds']:.3g}",
        f"{run['throughput']:.2f}",
        f"{run['generation']:.2f}",
        f"{bandwidth['pageable']:.2f}" if "pageable" in bandwidth else "-",
        f"{bandwidth['pinned']:.2f}" if "pinned" in bandwidth else "-",
        f"{run['deviation']:.1e}",
    ]
    title = "Streaming PCA of generated 784-wide float32 rows, k = 50"
    return format_table(title, header, [line], markdown=markdown)
