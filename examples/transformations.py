# %% [markdown]
# # Transformations — Gram–Schmidt, reflections and rotated MNIST digits (Course 1)
#
# Gram–Schmidt builds an orthonormal basis; a reflection mirrors in the plane
# spanned by the first basis vectors; and a batch of MNIST digits is rotated,
# sheared and mirrored by `transform_image` — one call for the whole batch.
#
# Run: `python examples/transformations.py [--backend torch] [--data DIR]`

# %%
from __future__ import annotations

import argparse
import os
from pathlib import Path

import matplotlib

matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
import matplotlib.pyplot as plt
import numpy as np

import m4ml_xp as mx
from m4ml_xp import backends

HERE = Path(__file__).resolve().parent
parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--backend", default="numpy", choices=sorted(backends.BACKENDS))
parser.add_argument(
    "--data", default=os.environ.get("M4ML_XP_DATA", HERE.parents[1] / "shared" / "data" / "mnist")
)
args, _ = parser.parse_known_args()
xp, device = backends.resolve_backend(args.backend)
OUT = HERE / "out"
OUT.mkdir(exist_ok=True)

# %% [markdown]
# ## Gram–Schmidt: orthonormal columns, dependent ones become zero

# %%
A = xp.asarray(
    [[1.0, 0.0, 2.0, 6.0], [0.0, 1.0, 8.0, 2.0], [2.0, 8.0, 3.0, 1.0], [1.0, -6.0, 2.0, 3.0]],
    device=device,
    dtype=xp.float64,
)
E = mx.gram_schmidt(A)
print("dimension of the span:", mx.span_dimension(A))
print("EᵀE =\n", np.round(np.asarray((E.T @ E).tolist()), 12))

# %% [markdown]
# ## A reflection: mirror in the plane of the first two basis vectors

# %%
basis = xp.asarray(
    [[1.0, 0.0, 1.0], [1.0, 1.0, 0.0], [0.0, 1.0, 1.0]], device=device, dtype=xp.float64
)
T = mx.reflection_matrix(basis)
print("T =\n", np.round(np.asarray(T.tolist()), 6))
print("T @ T = I:", np.allclose(np.asarray((T @ T).tolist()), np.eye(3)))

# %% [markdown]
# ## A batch of MNIST digits, transformed about their centres

# %%
images, labels = mx.load_mnist(args.data, limit=8, xp=xp, device=device)
digits = xp.reshape(images, (-1, 28, 28))
transforms = {
    "original": np.eye(2),
    "rotated 30°": np.asarray(mx.rotation_matrix(np.pi / 6).tolist()),
    "sheared": np.asarray(mx.shear_matrix(0.4).tolist()),
    "mirrored": np.asarray(mx.scaling_matrix([-1.0, 1.0]).tolist()),
    "shrunk": np.eye(2) * 0.7,
}
results = {
    name: np.asarray(
        mx.transform_image(digits, xp.asarray(matrix, dtype=digits.dtype, device=device)).tolist()
    )
    for name, matrix in transforms.items()
}
fig, axes = plt.subplots(len(transforms), 8, figsize=(10, 1.4 * len(transforms)))
for row, (name, batch) in enumerate(results.items()):
    for col in range(8):
        axes[row, col].imshow(batch[col], cmap="gray_r", vmin=0, vmax=1)
        axes[row, col].set_xticks([])
        axes[row, col].set_yticks([])
    axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center")
fig.suptitle("MNIST digits under 2×2 transformations (bilinear, about the centre)")
fig.tight_layout()
fig.savefig(OUT / "transformations.png", dpi=100)
print("wrote", OUT / "transformations.png")
