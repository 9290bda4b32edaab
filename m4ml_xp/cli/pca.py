"""``m4ml-xp pca``: the project's main job — PCA of MNIST, with its table and plots.

MNIST comes from ``--data``, ``M4ML_XP_DATA`` or the embedded 2,000-image
sample; ``--backend auto`` takes the fastest GPU backend for PCA that works
(``_xp.AUTO_ORDER["pca"]``: torch, then CuPy, then JAX) and NumPy otherwise.  Prints the explained-variance table,
the reconstruction error (the course's per-image MSE) and the timing; writes
three PNGs: the eigen-digits, the explained-variance / MSE curves and the
first two components scattered by digit.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from m4ml_xp import _xp


def add_backend_arguments(
    parser: argparse.ArgumentParser, *, job: str, default: str = "numpy"
) -> None:
    """``--backend`` (``auto``: the fastest GPU backend for `job` that works) and ``--device``."""
    order = ", then ".join(_xp.AUTO_ORDER[job])
    parser.add_argument(
        "--backend", default=default, choices=["auto", *sorted(_xp.BACKENDS)],
        help=f"auto: the fastest working GPU backend for this job ({order}), else numpy",
    )  # fmt: skip
    parser.add_argument(
        "--device", default=None,
        help="e.g. cpu, cuda, cuda:1, gpu (default: the backend's own default device)",
    )  # fmt: skip


def backend_label(name: str, dev: Any) -> str:
    """``numpy``, ``cupy``, ``torch:cpu``, ``torch:cuda``, ``jax:cuda:0``: where the work runs."""
    return name if name in ("numpy", "cupy", "dask") else f"{name}:{dev}"


def pick_backend(name: str, device: str | None, job: str = "pca") -> tuple[str, Any, Any]:
    """Return ``(label, namespace, device)``: `name`, or with ``auto`` the fastest for `job`.

    ``auto`` takes the first backend of ``_xp.AUTO_ORDER[job]`` that imports and computes
    on its GPU (on `device` when given), and NumPy on the CPU when none does.
    """
    if name != "auto":
        xp, dev = _xp.resolve_backend(name, device)
        return backend_label(name, dev), xp, dev
    if device is None:
        backend, gpu = _xp.auto_backend(job)
    elif device == "cpu":
        backend, gpu = "numpy", None
    else:  # auto among the backends that have this device

        def works(candidate: str) -> bool:
            try:
                _xp.resolve_backend(candidate, device)
            except Exception:
                return False
            return True

        backend, gpu = _xp.auto_backend(job, works)
        gpu = device if backend != "numpy" else None
    xp, dev = _xp.resolve_backend(backend, gpu)
    if backend == "numpy":
        return "numpy (auto: no GPU backend works here)", xp, dev
    return f"{backend_label(backend, dev)} (auto: fastest for {job})", xp, dev


def run(args: argparse.Namespace) -> int:
    from m4ml_xp.datasets import load_mnist
    from m4ml_xp.pca import pca

    label, xp, device = pick_backend(args.backend, args.device, "pca")
    dtype = getattr(xp, args.dtype)
    images, labels = load_mnist(args.data, limit=args.limit, xp=xp, device=device, dtype=dtype)
    env = os.environ.get("M4ML_XP_DATA")
    source = args.data or (f"$M4ML_XP_DATA ({env})" if env else "the embedded sample")
    N, D = images.shape
    k = min(args.n_components, N, D)
    print(f"MNIST: {N:,} images × {D} pixels from {source}; backend {label}, {args.dtype}")
    pca(images[: min(N, 256), :], min(k, 16, min(N, 256) - 1), method=args.method)  # warm-up
    start = time.perf_counter()
    result = pca(images, k, method=args.method, seed=args.seed)
    _xp.sync(result.components)
    seconds = time.perf_counter() - start
    ratio = _xp.to_numpy(result.explained_variance_ratio)
    variance = _xp.to_numpy(result.explained_variance)
    print(f"pca(method={args.method!r}, n_components={k}) in {seconds * 1e3:.1f} ms")
    print(f"  {'component':>9} {'variance':>11} {'ratio':>8} {'cumulative':>10}")
    cumulative = np.cumsum(ratio)
    shown = sorted({*range(min(10, k)), *(i - 1 for i in (20, 50, 100, 200) if i <= k)})
    for i in shown:
        print(f"  {i + 1:9d} {variance[i]:11.5f} {ratio[i]:8.4f} {cumulative[i]:10.4f}")
    # the course's MSE: the discarded variance (biased, /N) = total − kept
    total = float(variance[0] / ratio[0]) if ratio[0] > 0 else 0.0  # all the variance
    mse = np.maximum((total - np.cumsum(variance)) * (N - 1) / N, 0.0)
    print(
        f"  reconstruction MSE per image with {k} components: {mse[-1]:.4f} "
        f"(with none: {total * (N - 1) / N:.4f})"
    )
    if args.no_plots:
        return 0
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install 'm4ml_xp[plot]'): no PNGs written")
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    components = _xp.to_numpy(result.components)
    grid = min(16, k)
    fig, axes = plt.subplots(2, (grid + 1) // 2, figsize=(1.6 * ((grid + 1) // 2), 3.6))
    for i, ax in enumerate(np.ravel(axes)):
        ax.axis("off")
        if i < grid:
            limit = float(np.abs(components[i]).max())  # zero is white in every panel
            ax.imshow(components[i].reshape(28, 28), cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_title(f"{i + 1}", fontsize=8)
    fig.suptitle("eigen-digits: the first principal components")
    fig.savefig(out / "eigendigits.png", dpi=100)
    plt.close(fig)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(np.arange(1, k + 1), cumulative, "-", color="steelblue")
    left.set(xlabel="components", ylabel="explained variance (cumulative)", ylim=(0, 1.02))
    right.semilogy(np.arange(1, k + 1), np.maximum(mse, 1e-12), "-", color="crimson")
    right.set(xlabel="components", ylabel="MSE per image", title="reconstruction error")
    fig.tight_layout()
    fig.savefig(out / "explained_variance.png", dpi=100)
    plt.close(fig)
    coordinates = _xp.to_numpy(
        (images - result.mean) @ xp.linalg.matrix_transpose(result.components[:2, :])
    )
    digits = _xp.to_numpy(labels)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    scatter = ax.scatter(coordinates[:, 0], coordinates[:, 1], c=digits, cmap="tab10", s=4)
    ax.legend(*scatter.legend_elements(), title="digit", fontsize=7, loc="best")
    ax.set(xlabel="component 1", ylabel="component 2", title="MNIST on its first two components")
    fig.tight_layout()
    fig.savefig(out / "components_scatter.png", dpi=100)
    plt.close(fig)
    print(f"wrote eigendigits.png, explained_variance.png, components_scatter.png to {out}")
    return 0


def add_parser(commands: Any, positive_int: Any) -> None:
    job = commands.add_parser("pca", help="the main job: PCA of MNIST (table, timing, PNGs)")
    job.add_argument(
        "--data", help="MNIST directory (default $M4ML_XP_DATA, else the embedded sample)"
    )
    job.add_argument("--limit", type=positive_int, help="use the first N images")
    add_backend_arguments(job, job="pca", default="auto")
    job.add_argument(
        "--method", default="auto", choices=["auto", "covariance_eigh", "svd", "gram", "randomized"]
    )
    job.add_argument("--n-components", type=positive_int, default=50)
    job.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    job.add_argument("--seed", type=int, default=0, help="for --method randomized")
    job.add_argument("--out", default="m4ml-xp-pca", help="folder for the PNGs")
    job.add_argument("--no-plots", action="store_true")
    job.set_defaults(func=run)
