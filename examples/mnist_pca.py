# %% [markdown]
# # PCA of MNIST — the Course 3 project
#
# The course's steps through the library: scale the pixels by 1/255, centre
# (subtract the mean image), the eigendecomposition of the covariance sorted by
# decreasing eigenvalue, the projection onto the top components, the
# reconstruction and its per-image mean squared error as a function of the
# number of components — which equals the sum of the discarded eigenvalues —
# and the N < D route (an N × N Gram matrix) giving the same reconstruction.
#
# Run: `python examples/mnist_pca.py [--backend jax] [--data DIR]` (default: the
# digits in `$M4ML_XP_DATA`, else the sample shipped with the package).

# %%
from __future__ import annotations

import argparse
import os
from pathlib import Path

import matplotlib

if not os.environ.get("MPLBACKEND"):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import m4ml_xp as mx
from m4ml_xp import backends

HERE = Path(__file__).resolve().parent
parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--backend", default="numpy", choices=sorted(backends.BACKENDS))
parser.add_argument(
    "--data", default=None, help="MNIST directory (default: $M4ML_XP_DATA or the sample)"
)
parser.add_argument("--limit", type=int, default=2000)
args, _ = parser.parse_known_args()
xp, device = backends.resolve_backend(args.backend)
OUT = HERE / "out"
OUT.mkdir(exist_ok=True)

# %% [markdown]
# ## The data: N images as rows of 784 pixels in [0, 1]

# %%
images, labels = mx.load_mnist(args.data, limit=args.limit, xp=xp, device=device, dtype=xp.float64)
N, D = images.shape
print(f"{N} images × {D} pixels; mean pixel {float(xp.mean(images)):.4f}")

# %% [markdown]
# ## The covariance's eigenvalues, sorted, and the course's MSE curve
#
# The course's covariance divides by N; `explained_variance` divides by N − 1.

# %%
full = mx.pca(images, min(N, D) - 1, method="covariance_eigh")
principal_values = backends.to_numpy(full.explained_variance) * (N - 1) / N
total = float(xp.sum(xp.linalg.diagonal(mx.cov(images))))
discarded = total - np.cumsum(principal_values)
ks = [1, 2, 5, 10, 20, 50, 100, 200]
mse = []
for k in ks:
    result = mx.pca(images, k, method="covariance_eigh")
    mse.append(float(mx.reconstruction_error(images, result)))
    print(f"k = {k:3d}: MSE per image {mse[-1]:.4f} = discarded eigenvalues {discarded[k - 1]:.4f}")
    assert abs(mse[-1] - discarded[k - 1]) <= 1e-8 * total

# %% [markdown]
# ## N < D: the Gram matrix route gives the same reconstruction

# %%
few = images[:500, :]
by_gram = mx.pca(few, 50, method="gram")
by_covariance = mx.pca(few, 50, method="covariance_eigh")
difference = float(
    xp.max(xp.abs(mx.reconstruct(few, by_gram) - mx.reconstruct(few, by_covariance)))
)
print(f"500 images, 50 components: Gram route vs covariance route, max difference {difference:.2e}")
assert difference < 1e-8

# %% [markdown]
# ## Plots: eigenvalues and MSE, originals and reconstructions

# %%
fig, (ax_values, ax_mse) = plt.subplots(1, 2, figsize=(11, 4))
ax_values.semilogy(np.arange(1, len(principal_values) + 1), principal_values)
ax_values.set(xlabel="component", ylabel="eigenvalue of S = X̄ᵀX̄/N", title="sorted eigenvalues")
ax_mse.plot(ks, mse, "o-", color="crimson", label="MSE of the reconstruction")
ax_mse.plot(
    np.arange(1, 201), discarded[:200], ":", color="black", label="sum of discarded eigenvalues"
)
ax_mse.set(xlabel="components kept", ylabel="mean squared error per image", xscale="log")
ax_mse.legend()
fig.tight_layout()
fig.savefig(OUT / "mnist_pca_spectrum.png", dpi=100)

shown = images[:8, :]
fig, axes = plt.subplots(len(ks[:5]) + 1, 8, figsize=(8, 6.5))
for row, k in enumerate([None, *ks[:5]]):
    rebuilt = (
        shown if k is None else mx.reconstruct(shown, mx.pca(images, k, method="covariance_eigh"))
    )
    pictures = backends.to_numpy(rebuilt)
    for column in range(8):
        axes[row, column].imshow(pictures[column].reshape(28, 28), cmap="gray", vmin=0, vmax=1)
        axes[row, column].axis("off")
    axes[row, 0].set_title("original" if k is None else f"k = {k}", fontsize=8, loc="left")
fig.tight_layout()
fig.savefig(OUT / "mnist_pca_reconstructions.png", dpi=100)
print("wrote", OUT / "mnist_pca_spectrum.png", "and", OUT / "mnist_pca_reconstructions.png")
