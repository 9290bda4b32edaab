"""``m4ml-xp pca``: the project's main job — PCA of MNIST, with its table and plots.

MNIST comes from ``--data``, ``M4ML_XP_DATA`` or the embedded 2,000-image
sample; ``--backend auto`` takes the fastest GPU backend for PCA that works
(``backends.AUTO_ORDER["pca"]``: torch, then CuPy, then JAX) and NumPy otherwise.  Prints the explained-variance table,
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

from m4ml_xp import backends
from m4ml_xp.cli.options import CLIError, add_backend_arguments, positive_int, resolve


def add_parser(commands: Any) -> None:
    """Add ``pca`` to the sub-commands."""
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


def run(args: argparse.Namespace) -> int:
    """Run the PCA job: table, timing and (unless ``--no-plots``) three PNGs."""
    from m4ml_xp.datasets import load_mnist
    from m4ml_xp.pca import pca

    label, xp, device = resolve(args.backend, args.device, "pca")
    dtype = getattr(xp, args.dtype)
    images, labels = load_mnist(args.data, limit=args.limit, xp=xp, device=device, dtype=dtype)
    env = os.environ.get("M4ML_XP_DATA")
    source = args.data or (f"$M4ML_XP_DATA ({env})" if env else "the embedded sample")
    N, D = images.shape
    k = args.n_components
    if k > min(N, D):
        raise CLIError(
            f"--n-components {k} > {min(N, D)}: the data have {N:,} images of {D} pixels"
        )
    print(f"MNIST: {N:,} images × {D} pixels from {source}; backend {label}, {args.dtype}")
    pca(images[: min(N, 256), :], min(k, 16, min(N, 256) - 1), method=args.method)  # warm-up
    start = time.perf_counter()
    result = pca(images, k, method=args.method, seed=args.seed)
    backends.sync(result.components)
    seconds = time.perf_counter() - start
    ratio = backends.to_numpy(result.explained_variance_ratio)
    variance = backends.to_numpy(result.explained_variance)
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
    components = backends.to_numpy(result.components)
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
    coordinates = backends.to_numpy(
        (images - result.mean) @ xp.linalg.matrix_transpose(result.components[:2, :])
    )
    digits = backends.to_numpy(labels)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    scatter = ax.scatter(coordinates[:, 0], coordinates[:, 1], c=digits, cmap="tab10", s=4)
    ax.legend(*scatter.legend_elements(), title="digit", fontsize=7, loc="best")
    ax.set(xlabel="component 1", ylabel="component 2", title="MNIST on its first two components")
    fig.tight_layout()
    fig.savefig(out / "components_scatter.png", dpi=100)
    plt.close(fig)
    print(f"wrote eigendigits.png, explained_variance.png, components_scatter.png to {out}")
    return 0
