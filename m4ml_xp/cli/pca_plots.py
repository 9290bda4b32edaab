"""The main job's PNGs: eigen-digits, variance / error curves, the digits on two components.

With ``--augment``: also the spectrum with and without augmentation and a few
augmented digits.  Every function takes host (NumPy) arrays and writes one file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def pyplot() -> Any:
    """Return ``matplotlib.pyplot`` on the Agg backend, or None (and say so) without it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install 'm4ml_xp[plot]'): no PNGs written")
        return None
    return plt


def _save(plt: Any, fig: Any, path: Path, *, tight: bool = True) -> None:
    """Write `fig` to `path` (100 dpi) and close it, laid out tight unless told not to."""
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def eigendigits(plt: Any, path: Path, components: np.ndarray, title: str) -> None:
    """Draw the first (up to) 16 components as 28×28 pictures, zero white."""
    grid = min(16, components.shape[0])
    fig, axes = plt.subplots(2, (grid + 1) // 2, figsize=(1.6 * ((grid + 1) // 2), 3.6))
    for i, ax in enumerate(np.ravel(axes)):
        ax.axis("off")
        if i < grid:
            limit = float(np.abs(components[i]).max())  # zero is white in every panel
            ax.imshow(components[i].reshape(28, 28), cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_title(f"{i + 1}", fontsize=8)
    fig.suptitle(title)
    _save(plt, fig, path, tight=False)


def explained_variance(plt: Any, path: Path, cumulative: np.ndarray, mse: np.ndarray) -> None:
    """Plot the cumulative explained variance and the reconstruction MSE per components kept."""
    k = cumulative.shape[0]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(np.arange(1, k + 1), cumulative, "-", color="steelblue")
    left.set(xlabel="components", ylabel="explained variance (cumulative)", ylim=(0, 1.02))
    right.semilogy(np.arange(1, k + 1), np.maximum(mse, 1e-12), "-", color="crimson")
    right.set(xlabel="components", ylabel="MSE per image", title="reconstruction error")
    _save(plt, fig, path)


def components_scatter(
    plt: Any, path: Path, coordinates: np.ndarray, digits: np.ndarray, title: str
) -> None:
    """Scatter the digits on their first two components, coloured by label."""
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    scatter = ax.scatter(coordinates[:, 0], coordinates[:, 1], c=digits, cmap="tab10", s=4)
    ax.legend(*scatter.legend_elements(), title="digit", fontsize=7, loc="best")
    ax.set(xlabel="component 1", ylabel="component 2", title=title)
    _save(plt, fig, path)


def augmentation_spectrum(
    plt: Any, path: Path, base: np.ndarray, augmented: np.ndarray, label: str
) -> None:
    """Plot the explained-variance ratio per component and cumulative, without and with augmentation."""
    k = base.shape[0]
    index = np.arange(1, k + 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.semilogy(index, base, "o-", ms=2, color="steelblue", label="digits")
    left.semilogy(index, augmented, "o-", ms=2, color="darkorange", label=label)
    left.set(xlabel="component", ylabel="explained variance ratio", title="spectrum")
    left.legend(fontsize=8)
    right.plot(index, np.cumsum(base), "-", color="steelblue", label="digits")
    right.plot(index, np.cumsum(augmented), "-", color="darkorange", label=label)
    right.set(xlabel="components", ylabel="cumulative ratio", ylim=(0, 1.02))
    right.legend(fontsize=8)
    _save(plt, fig, path)


def augmented_samples(plt: Any, path: Path, rows: list[np.ndarray]) -> None:
    """Draw a grid: one row per digit, its original then its first augmented copies."""
    n_rows, n_cols = len(rows), rows[0].shape[0]
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.0 * n_cols, 1.0 * n_rows), squeeze=False)
    for r, pictures in enumerate(rows):
        for c in range(n_cols):
            axes[r, c].axis("off")
            axes[r, c].imshow(pictures[c].reshape(28, 28), cmap="gray_r")
    axes[0, 0].set_title("original", fontsize=7)
    for c in range(1, n_cols):
        axes[0, c].set_title(f"copy {c}", fontsize=7)
    _save(plt, fig, path)
