# %% [markdown]
# # Backpropagation: a 1-6-7-2 network learns the heart curve — the Course 2 project
#
# The course's network has the sigmoid on every layer and the cost
# `C = ‖a3 − y‖² / N`. Its gradients are the chain rule written out
# (`mlp_backprop`, no automatic differentiation), and training moves every
# parameter at once by `−aggression · ∂C/∂P` (`sgd(7)`, full batch).
#
# Run: `python examples/nn_backprop_heart.py [--backend jax] [--epochs 20000]`

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
parser.add_argument("--epochs", type=int, default=5000)
parser.add_argument("--aggression", type=float, default=7.0)
args, _ = parser.parse_known_args()
xp, device = backends.resolve_backend(args.backend)
OUT = HERE / "out"
OUT.mkdir(exist_ok=True)

# %% [markdown]
# ## The training data and the untrained network

# %%
X, Y = mx.heart_curve(100, xp=xp, device=device, dtype=xp.float64)
params = mx.init_mlp([1, 6, 7, 2], seed=0, xp=xp, device=device, dtype=xp.float64)
start = mx.mlp_backprop(params, X, Y)
print(f"untrained cost C = {float(start.cost):.4f}")
print("gradient shapes:", [(tuple(dW.shape), tuple(db.shape)) for dW, db in start.grads])

# %% [markdown]
# ## Training: every parameter moves by −aggression · ∂C/∂P

# %%
result = mx.train_mlp(
    params, X, Y, optimizer=mx.sgd(args.aggression), epochs=args.epochs, progress=False
)
print(f"{result.message}: cost {result.losses[-1]:.5f}")

# %% [markdown]
# ## The fitted curve against the heart

# %%
x_fine = xp.asarray(np.linspace(0, 1, 400)[:, None], device=device, dtype=xp.float64)
fitted = backends.to_numpy(mx.mlp_forward(result.params, x_fine)[-1])
untrained = backends.to_numpy(mx.mlp_forward(params, x_fine)[-1])
target = backends.to_numpy(Y)
fig, (ax_curve, ax_cost) = plt.subplots(1, 2, figsize=(11, 4.5))
ax_curve.plot(target[:, 0], target[:, 1], "o", ms=3, color="crimson", label="training data")
ax_curve.plot(fitted[:, 0], fitted[:, 1], "-", color="black", label="trained network")
ax_curve.plot(untrained[:, 0], untrained[:, 1], ":", color="grey", label="untrained")
ax_curve.set(xlabel="output 1", ylabel="output 2", title="network output traced over x ∈ [0, 1)")
ax_curve.set_aspect("equal")
ax_curve.legend(loc="lower right")
ax_cost.semilogy(np.arange(1, len(result.losses) + 1), result.losses)
ax_cost.set(xlabel="epoch (one full-batch step)", ylabel="cost C", title="training cost")
fig.tight_layout()
fig.savefig(OUT / "nn_backprop_heart.png", dpi=100)
print("wrote", OUT / "nn_backprop_heart.png")
