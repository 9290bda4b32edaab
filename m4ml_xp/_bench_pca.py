"""``m4ml-xp bench pca``: our PCA on every backend against scikit-learn and torch, in one run.

MNIST t10k (10,000 × 784) and a 70,000 × 784 float32 matrix (t10k plus six
one-pixel shifts of it), k = 50.  Each row reports the best time, the largest
relative error of the 50 eigenvalues against float64 LAPACK on the same data,
and, for NumPy-based rows, the peak memory a fit adds (tracemalloc) relative to
the input's size.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from m4ml_xp import _xp
from m4ml_xp._bench import Timing, available_targets, best_time, format_table, mnist_or_synthetic
from m4ml_xp.pca import pca

SHIFTS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1))


def shifted_mnist(images: np.ndarray) -> np.ndarray:
    """The images and six one-pixel shifts of them: ``7·N`` rows (70,000 for t10k)."""
    square = images.reshape(-1, 28, 28)
    moved = [np.roll(square, shift, axis=(1, 2)).reshape(len(images), -1) for shift in SHIFTS]
    return np.concatenate([images, *moved]).astype(np.float32)


def reference_eigenvalues(X: np.ndarray, k: int) -> np.ndarray:
    """The top `k` covariance eigenvalues (÷ N − 1) in float64 LAPACK."""
    X64 = X.astype(np.float64)
    centred = X64 - X64.mean(axis=0)
    return np.linalg.eigvalsh(centred.T @ centred)[::-1][:k] / (len(X) - 1)


def peak_memory_ratio(run: Callable[[], Any], input_bytes: int) -> float:
    """The peak memory `run` allocates (tracemalloc: NumPy's buffers included) ÷ `input_bytes`."""
    tracemalloc.start()
    try:
        run()
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / input_bytes


def bench_pca(
    *, data: str | None = None, k: int = 50, repeat: int = 3, large: bool = True,
    log: Callable[[str], None] = print,
) -> list[tuple[str, list[Timing]]]:  # fmt: skip
    """Tables for t10k and (with `large`) the 70k matrix; ``max_diff`` is the eigenvalue error,
    ``note`` the memory ratio where measured."""
    images, _labels, described = mnist_or_synthetic(data)
    sets = [(described, images.astype(np.float32))]
    if large:
        sets.append((f"{described} + 6 one-pixel shifts", shifted_mnist(images)))
    tables = []
    for name, X in sets:
        log(f"  {name}: {X.shape[0]:,} × {X.shape[1]} float32")
        truth = reference_eigenvalues(X, k)
        rows: list[Timing] = []

        def add(label: str, run: Callable[[], Any], eigenvalues: Callable[[Any], np.ndarray],
                memory: bool = False, X: np.ndarray = X, truth: np.ndarray = truth,
                rows: list[Timing] = rows) -> None:  # fmt: skip
            run()
            seconds, result = best_time(run, repeat)
            values = np.asarray(eigenvalues(result), dtype=np.float64)[:k]
            error = float(np.max(np.abs(values - truth) / truth))
            note = f"{peak_memory_ratio(run, X.nbytes):.2f}x input" if memory else ""
            rows.append(Timing(label, seconds, None, error, note))
            log(f"    {label}: {seconds * 1e3:.1f} ms, eigenvalue error {error:.1e}")

        try:
            from sklearn.decomposition import PCA
        except ImportError:
            PCA = None
        if PCA is not None:
            for solver in ("full", "covariance_eigh", "randomized"):
                add(
                    f"sklearn PCA({solver})",
                    lambda solver=solver, X=X, PCA=PCA: PCA(
                        k, svd_solver=solver, random_state=0
                    ).fit(X),
                    lambda model: model.explained_variance_,
                    memory=True,
                )
        try:
            import torch
        except ImportError:
            torch = None
        if torch is not None:
            tensor = torch.from_numpy(X)
            add(
                "torch.pca_lowrank (cpu, niter=4)",
                lambda tensor=tensor, torch=torch: torch.pca_lowrank(
                    tensor, q=k, center=True, niter=4
                ),
                lambda out, n=X.shape[0]: (out[1].numpy().astype(np.float64) ** 2) / (n - 1),
            )
        for label, backend, xp, device in available_targets():
            Xb = xp.asarray(X, device=device)
            for method in ("covariance_eigh", "randomized"):
                add(
                    f"m4ml_xp {label} {method}",
                    lambda Xb=Xb, method=method: pca(Xb, k, method=method, seed=0),
                    lambda result: _xp.to_numpy(result.explained_variance),
                    memory=backend == "numpy",
                )

            def by_hand(Xb: Any = Xb, xp: Any = xp) -> Any:
                centred = Xb - xp.mean(Xb, axis=0)
                return xp.linalg.eigh(xp.linalg.matrix_transpose(centred) @ centred)[0]

            add(
                f"hand-written eigh(XcᵀXc) {label}",
                by_hand,
                lambda values, n=X.shape[0]: _xp.to_numpy(values)[::-1] / (n - 1),
            )
        tables.append((name, rows))
    return tables


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
