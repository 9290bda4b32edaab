"""``m4ml-xp pca``: the project's main job — PCA of MNIST, with its table and plots.

MNIST comes from ``--data``, ``M4ML_XP_DATA`` or the embedded 2,000-image
sample; ``--backend auto`` takes the fastest GPU backend for PCA that works
(``backends.AUTO_ORDER["pca"]``: torch, then CuPy, then JAX) and NumPy otherwise.  Prints the explained-variance table,
the reconstruction error (the course's per-image MSE) and the timing; writes
three PNGs: the eigen-digits, the explained-variance / MSE curves and the
first two components scattered by digit.

``--augment K`` then runs the PCA of K randomly rotated, sheared and shifted
copies of every digit (:mod:`m4ml_xp.cli.augment`), made on the device chunk by
chunk and streamed, with a progress bar and the throughput; the table compares
the two spectra, the PNGs show the augmented PCA, and two more are written: the
spectrum with and without augmentation, and a few digits with their copies.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from m4ml_xp import backends
from m4ml_xp.cli import pca_plots
from m4ml_xp.cli.augment import (
    CPU_CHUNK_ROWS,
    GPU_CHUNK_ROWS,
    Augmentation,
    AugmentedDigits,
    augmented_pca,
    default_chunk_rows,
)
from m4ml_xp.cli.options import (
    CLIError,
    add_backend_arguments,
    nonnegative_float,
    nonnegative_int,
    positive_int,
    resolve,
)


def add_parser(commands: Any) -> None:
    """Add ``pca`` to the sub-commands."""
    job = commands.add_parser("pca", help="the main job: PCA of MNIST (table, timing, PNGs)")
    job.add_argument(
        "--data", help="MNIST directory (default $M4ML_XP_DATA, else the embedded sample)"
    )
    job.add_argument("--limit", type=positive_int, help="use the first N images")
    add_backend_arguments(job, job="pca", default="auto")
    job.add_argument(
        "--method",
        default="auto",
        choices=["auto", "covariance_eigh", "svd", "gram", "randomized"],
        help="PCA route (auto: by shape and backend)",
    )
    job.add_argument(
        "--n-components", type=positive_int, default=50, help="components to keep (<= 784)"
    )
    job.add_argument(
        "--dtype", default="float32", choices=["float32", "float64"], help="working dtype"
    )
    job.add_argument(
        "--seed", type=nonnegative_int, default=0, help="for --method randomized and --augment"
    )
    job.add_argument("--out", default="m4ml-xp-pca", help="folder for the PNGs")
    job.add_argument("--no-plots", action="store_true", help="print the table only")
    augment = job.add_argument_group("augmentation (the MNIST-8M recipe, streamed)")
    augment.add_argument(
        "--augment", type=positive_int, metavar="K",
        help="also PCA of K copies of every digit, each randomly rotated, sheared and shifted, "
        "made on the device chunk by chunk and streamed (K = 800 on t10k: 8M digits, 25 GB)",
    )  # fmt: skip
    augment.add_argument(
        "--chunk-rows", type=positive_int, metavar="ROWS",
        help=f"rows per streamed chunk (default {GPU_CHUNK_ROWS:,} on a GPU, {CPU_CHUNK_ROWS:,} on the CPU)",
    )  # fmt: skip
    augment.add_argument(
        "--max-rotation", type=nonnegative_float, default=15.0, metavar="DEGREES",
        help="rotations drawn uniformly in ±DEGREES (default 15)",
    )  # fmt: skip
    augment.add_argument(
        "--max-shear", type=nonnegative_float, default=0.15, metavar="K",
        help="shears x' = x + k·y with k uniform in ±K (default 0.15)",
    )  # fmt: skip
    augment.add_argument(
        "--max-shift", type=nonnegative_float, default=2.0, metavar="PIXELS",
        help="shifts along x and y uniform in ±PIXELS, sub-pixel interpolated (default 2)",
    )  # fmt: skip
    job.set_defaults(func=run)


def spectrum(result: Any, n_rows: int) -> dict[str, np.ndarray]:
    """Return host copies: variance, ratio, cumulative ratio, the course's MSE per components kept."""
    ratio = backends.to_numpy(result.explained_variance_ratio).astype(np.float64)
    variance = backends.to_numpy(result.explained_variance).astype(np.float64)
    # the course's MSE: the discarded variance (biased, /N) = total − kept
    total = float(variance[0] / ratio[0]) if ratio[0] > 0 else 0.0  # all the variance
    mse = np.maximum((total - np.cumsum(variance)) * (n_rows - 1) / n_rows, 0.0)
    return {
        "variance": variance,
        "ratio": ratio,
        "cumulative": np.cumsum(ratio),
        "mse": mse,
        "mse_none": np.asarray(total * (n_rows - 1) / n_rows),
    }


def shown_components(k: int) -> list[int]:
    """Return the table's rows: the first ten components, then the 20th, 50th, 100th, 200th."""
    return sorted({*range(min(10, k)), *(i - 1 for i in (20, 50, 100, 200) if i <= k)})


def components_for(cumulative: np.ndarray, fraction: float) -> str:
    """How many components reach `fraction` of the variance (``> k`` when none of ours do)."""
    reached = np.flatnonzero(cumulative >= fraction)
    return str(reached[0] + 1) if reached.size else f"> {cumulative.shape[0]}"


def run(args: argparse.Namespace) -> int:
    """Run the PCA job: table, timing and (unless ``--no-plots``) the PNGs."""
    from m4ml_xp.datasets import load_mnist
    from m4ml_xp.pca import pca

    if args.augment is None and args.chunk_rows is not None:
        raise CLIError("--chunk-rows is for --augment: give --augment K too")
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
    base = spectrum(result, N)
    print(f"pca(method={args.method!r}, n_components={k}) in {seconds * 1e3:.1f} ms")
    print(f"  {'component':>9} {'variance':>11} {'ratio':>8} {'cumulative':>10}")
    for i in shown_components(k):
        print(
            f"  {i + 1:9d} {base['variance'][i]:11.5f} {base['ratio'][i]:8.4f} "
            f"{base['cumulative'][i]:10.4f}"
        )
    print(
        f"  reconstruction MSE per image with {k} components: {base['mse'][-1]:.4f} "
        f"(with none: {float(base['mse_none']):.4f})"
    )
    augmentation = augmented = None
    if args.augment is not None:
        augmentation = Augmentation(
            args.augment, args.seed, args.max_rotation, args.max_shear, args.max_shift
        )
        result, augmented = augment(args, augmentation, images, base, xp=xp, device=device)
    if args.no_plots:
        return 0
    plt = pca_plots.pyplot()
    if plt is None:
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shown = augmented if augmented is not None else base
    title = "eigen-digits: the first principal components"
    if augmented is not None:
        title = "eigen-digits of the augmented digits"
    pca_plots.eigendigits(plt, out / "eigendigits.png", backends.to_numpy(result.components), title)
    pca_plots.explained_variance(
        plt, out / "explained_variance.png", shown["cumulative"], shown["mse"]
    )
    coordinates = backends.to_numpy(
        (images - result.mean) @ xp.linalg.matrix_transpose(result.components[:2, :])
    )
    title = "MNIST on its first two components"
    if augmented is not None:
        title = "MNIST on the augmented digits' first two components"
    pca_plots.components_scatter(
        plt, out / "components_scatter.png", coordinates, backends.to_numpy(labels), title
    )
    written = ["eigendigits.png", "explained_variance.png", "components_scatter.png"]
    if augmented is not None and augmentation is not None:
        pca_plots.augmentation_spectrum(
            plt, out / "augmentation_spectrum.png", base["ratio"], augmented["ratio"],
            f"{args.augment} augmented copies",
        )  # fmt: skip
        made = AugmentedDigits(images, augmentation, chunk_rows=1, xp=xp, device=device)
        n, copies = min(N, 6), min(args.augment, 7)
        originals = backends.to_numpy(images[:n, :])
        samples = [backends.to_numpy(made.rows(c * N, c * N + n)) for c in range(copies)]
        pca_plots.augmented_samples(
            plt, out / "augmented_digits.png",
            [np.stack([originals[i], *(s[i] for s in samples)]) for i in range(n)],
        )  # fmt: skip
        written += ["augmentation_spectrum.png", "augmented_digits.png"]
    print(f"wrote {', '.join(written)} to {out}")
    return 0


def augment(
    args: argparse.Namespace,
    augmentation: Augmentation,
    images: Any,
    base: dict[str, np.ndarray],
    *,
    xp: Any,
    device: Any,
) -> tuple[Any, dict[str, np.ndarray]]:
    """Run and report the augmented PCA: throughput, both spectra side by side."""
    N, D = images.shape
    k = args.n_components
    chunk_rows = args.chunk_rows or default_chunk_rows(xp, device)
    n_rows = args.augment * N
    itemsize = xp.finfo(images.dtype).bits // 8
    print(
        f"augmenting: {args.augment:,} copies of each of the {N:,} digits = {n_rows:,} images "
        f"({n_rows * D * itemsize / 1e9:.3g} GB {args.dtype}), each copy rotated "
        f"±{augmentation.max_rotation:g}°, sheared ±{augmentation.max_shear:g}, shifted "
        f"±{augmentation.max_shift:g} px (seed {augmentation.seed}); made on the device "
        f"in chunks of {chunk_rows:,} rows and streamed"
    )
    run = augmented_pca(images, augmentation, k, xp=xp, device=device, chunk_rows=chunk_rows)
    print(
        f"augmented PCA of {run.n_rows:,} images in {run.seconds:.2f} s: "
        f"{run.n_rows / run.seconds:,.0f} images/s, {run.nbytes / run.seconds / 1e9:.3g} GB/s"
    )
    augmented = spectrum(run.result, run.n_rows)
    print("  explained variance ratio, digits → augmented:")
    print(f"  {'component':>9} {'ratio':>8} {'augmented':>9} {'cumulative':>10} {'augmented':>9}")
    for i in shown_components(k):
        print(
            f"  {i + 1:9d} {base['ratio'][i]:8.4f} {augmented['ratio'][i]:9.4f} "
            f"{base['cumulative'][i]:10.4f} {augmented['cumulative'][i]:9.4f}"
        )
    reach = ", ".join(
        f"{f:.0%}: {components_for(base['cumulative'], f)} → "
        f"{components_for(augmented['cumulative'], f)}"
        for f in (0.5, 0.8, 0.9)
    )
    print(f"  components for {reach}")
    print(
        f"  reconstruction MSE per image with {k} components: {augmented['mse'][-1]:.4f} "
        f"(with none: {float(augmented['mse_none']):.4f})"
    )
    return run.result, augmented
