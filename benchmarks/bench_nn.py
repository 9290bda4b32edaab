"""Course 2 MLP: one epoch of 784-128-10 on t10k and one backprop, beside torch autograd / JAX.

The data is MNIST t10k from ``M4ML_XP_DATA`` (or ../shared/data/mnist beside the
repository), else random data of the same shape: the timings do not depend on
the pixel values.  The references run on the CPU.
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import Benchmark, implementations, mnist_data, sizes
from m4ml_xp import calculus, init_mlp, mlp_backprop, sgd, train_mlp
from m4ml_xp.cli.harness import common as harness

IMAGES = sizes([10_000], [1_000])
LAYERS = [784, 128, 10]
LEARNING_RATE = 0.1
BATCH = 100


def _start() -> list[tuple[np.ndarray, np.ndarray]]:
    return init_mlp(LAYERS, seed=0, dtype=np.float32, init="he")


class MLPEpoch(Benchmark):
    """``train_mlp`` for one epoch: batch 100, SGD, ReLU + softmax/cross-entropy, float32."""

    params = [implementations("torch autograd", "jax lax.scan"), IMAGES]
    param_names = [*Benchmark.param_names, "images"]

    def prepare(self, implementation, images):
        X, y = mnist_data(images)
        order = np.random.default_rng(0).permutation(X.shape[0])
        if implementation == "torch autograd":
            return harness.torch_epoch(_start(), X, y, order, LEARNING_RATE, BATCH, "cpu")
        if implementation == "jax lax.scan":
            import jax

            device = jax.devices("cpu")[0]
            return harness.jax_scan_epoch(_start(), X, y, order, LEARNING_RATE, BATCH, device)
        X_xp, y_xp = self.asarray(X), self.asarray(y)
        params = [(self.asarray(W), self.asarray(b)) for W, b in _start()]
        optimizer = sgd(LEARNING_RATE)
        return lambda: (
            train_mlp(
                params,
                X_xp,
                y_xp,
                optimizer=optimizer,
                epochs=1,
                batch_size=BATCH,
                activation="relu",
                output="softmax",
                loss="cross_entropy",
                progress=False,
            ).params
        )

    def time_epoch(self, implementation, images):
        self.run()

    def peakmem_epoch(self, implementation, images):
        self.run()


class MLPBackprop(Benchmark):
    """The gradient of one 100-image batch: hand-written backprop vs torch autograd."""

    params = [implementations("torch autograd")]

    def prepare(self, implementation):
        X, y = mnist_data(BATCH)
        if implementation == "torch autograd":
            import torch
            import torch.nn.functional as F

            Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
            leaves = [torch.tensor(a, requires_grad=True) for layer in _start() for a in layer]

            def autograd():
                W1, b1, W2, b2 = leaves
                loss = F.cross_entropy(torch.relu(Xt @ W1 + b1) @ W2 + b2, yt)
                return torch.autograd.grad(loss, leaves)

            return autograd
        X_xp, y_xp = self.asarray(X), self.asarray(y)
        params = [(self.asarray(W), self.asarray(b)) for W, b in _start()]
        return lambda: (
            mlp_backprop(
                params, X_xp, y_xp, activation="relu", output="softmax", loss="cross_entropy"
            ).grads
        )

    def time_backprop(self, implementation):
        self.run()


class Jacobian(Benchmark):
    """Central-difference vs autodiff Jacobian of a 50 -> 50 map (ours only: no reference)."""

    params = [implementations(), ["fd", "auto"]]
    param_names = [*Benchmark.param_names, "method"]

    def prepare(self, implementation, method):
        xp = self.xp
        x = self.asarray(np.linspace(-1, 1, 50))
        return lambda: calculus.jacobian(
            lambda v: xp.sin(v) * xp.cumulative_sum(v), x, method=method
        )

    def time_jacobian(self, implementation, method):
        self.run()
