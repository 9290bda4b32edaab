# %% [markdown]
# # An MNIST classifier trained by hand-written backpropagation
#
# A 784-128-10 network (ReLU, softmax + cross-entropy) trained with Adam on
# the first 8,000 MNIST test images and scored on the last 2,000 — the same
# `mlp_backprop` as the course's heart network, on a real task.
#
# Run: `python examples/mnist_mlp.py [--backend jax] [--data path/to/mnist]`

# %%
from __future__ import annotations

import argparse
import os
import time
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
    "--data", default=os.environ.get("M4ML_XP_DATA", HERE.parents[1] / "shared" / "data" / "mnist")
)
parser.add_argument("--epochs", type=int, default=10)
args, _ = parser.parse_known_args()
xp, device = backends.resolve_backend(args.backend)
OUT = HERE / "out"
OUT.mkdir(exist_ok=True)

# %% [markdown]
# ## Data: pixels / 255, the first 8,000 images to train, the last 2,000 to test

# %%
images, labels = mx.load_mnist(args.data, xp=xp, device=device, dtype=xp.float32)
X_train, y_train = images[:8000, :], labels[:8000]
X_test, y_test = images[8000:, :], labels[8000:]

# %% [markdown]
# ## Training with a validation curve

# %%
params = mx.init_mlp([784, 128, 10], seed=0, xp=xp, device=device, dtype=xp.float32, init="he")
options = {"activation": "relu", "output": "softmax"}
start = time.perf_counter()
result = mx.train_mlp(
    params,
    X_train,
    y_train,
    optimizer=mx.adam(1e-3),
    epochs=args.epochs,
    batch_size=100,
    loss="cross_entropy",
    validation=(X_test, y_test),
    progress=False,
    **options,
)
seconds = time.perf_counter() - start
scores = backends.to_numpy(mx.mlp_forward(result.params, X_test, **options)[-1])
predicted = scores.argmax(axis=1)
truth = backends.to_numpy(y_test)
accuracy = float(np.mean(predicted == truth))
print(f"{result.n_epochs} epochs in {seconds:.2f} s; test accuracy {accuracy:.2%}")

# %% [markdown]
# ## Learning curves, the confusion matrix and some mistakes

# %%
confusion = np.zeros((10, 10), dtype=int)
np.add.at(confusion, (truth, predicted), 1)
wrong = np.flatnonzero(predicted != truth)[:8]
pixels = backends.to_numpy(X_test)
fig = plt.figure(figsize=(12, 6.5))
ax_loss = fig.add_subplot(2, 2, 1)
epochs = np.arange(1, result.n_epochs + 1)
ax_loss.plot(epochs, result.losses, "o-", label="training")
ax_loss.plot(epochs, result.val_losses, "o-", label="test")
ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title=f"test accuracy {accuracy:.1%}")
ax_loss.legend()
ax_conf = fig.add_subplot(2, 2, 2)
ax_conf.imshow(np.log1p(confusion), cmap="Blues")
ax_conf.set(
    xlabel="predicted",
    ylabel="true",
    title="confusion (log scale)",
    xticks=range(10),
    yticks=range(10),
)
for k, index in enumerate(wrong):
    ax = fig.add_subplot(4, 8, 17 + k)
    ax.imshow(pixels[index].reshape(28, 28), cmap="gray_r")
    ax.set_title(f"{truth[index]} → {predicted[index]}", fontsize=9)
    ax.axis("off")
fig.tight_layout()
fig.savefig(OUT / "mnist_mlp.png", dpi=100)
print("wrote", OUT / "mnist_mlp.png")
