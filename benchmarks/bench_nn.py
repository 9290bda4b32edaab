"""Course 2 MLP benchmarks: one epoch of 784-128-10 on t10k, every backend, and the references.

The data is MNIST t10k from ``M4ML_XP_DATA`` (or ../shared/data/mnist beside the
repository), else random data of the same shape: the timings do not depend on
the pixel values.
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import SkipNotImplemented, XPBenchmark, mnist_data
from m4ml_xp import backends, calculus, init_mlp, mlp_backprop, sgd, train_mlp
from m4ml_xp.cli.harness import common as harness


class MLPEpoch(XPBenchmark):
    """``train_mlp`` for one epoch: batch 100, SGD, ReLU + softmax/cross-entropy, float32."""

    def setup(self, backend):
        super().setup(backend)
        X, y = mnist_data()
        self.X, self.y = self.asarray(X), self.asarray(y)
        self.params = [
            (self.asarray(W), self.asarray(b))
            for W, b in init_mlp([784, 128, 10], seed=0, dtype=np.float32, init="he")
        ]
        self.optimizer = sgd(0.1)
        self.time_epoch(backend)  # JIT compilation happens here, not in the timing

    def time_epoch(self, backend):
        result = train_mlp(
            self.params,
            self.X,
            self.y,
            optimizer=self.optimizer,
            epochs=1,
            batch_size=100,
            activation="relu",
            output="softmax",
            loss="cross_entropy",
            progress=False,
        )
        self.sync(result.params)

    def peakmem_epoch(self, backend):
        self.time_epoch(backend)


class MLPBackprop(XPBenchmark):
    """One hand-written backprop of a 100-image batch (the step's core)."""

    def setup(self, backend):
        super().setup(backend)
        X, y = mnist_data()
        self.X, self.y = self.asarray(X[:100]), self.asarray(y[:100])
        self.params = [
            (self.asarray(W), self.asarray(b))
            for W, b in init_mlp([784, 128, 10], seed=0, dtype=np.float32, init="he")
        ]

    def time_backprop(self, backend):
        self.sync(
            mlp_backprop(
                self.params,
                self.X,
                self.y,
                activation="relu",
                output="softmax",
                loss="cross_entropy",
            ).cost
        )


class ReferenceEpochs:
    """The references in the same suite: torch autograd + optim.SGD, a jax lax.scan epoch."""

    params = [["torch autograd + SGD (cpu)", "jax lax.scan (cpu)"]]
    param_names = ["reference"]
    timeout = 600

    def setup(self, reference):
        X, y = mnist_data()
        params = init_mlp([784, 128, 10], seed=0, dtype=np.float32, init="he")
        order = np.random.default_rng(0).permutation(X.shape[0])
        try:
            if reference.startswith("torch"):
                self.run = harness.torch_epoch(params, X, y, order, 0.1, 100, "cpu")
            else:
                import jax

                self.run = harness.jax_scan_epoch(
                    params, X, y, order, 0.1, 100, jax.devices("cpu")[0]
                )
        except ImportError as exc:
            raise SkipNotImplemented(str(exc)) from None
        self.run()

    def time_epoch(self, reference):
        backends.sync(self.run())


class Jacobian(XPBenchmark):
    """Central-difference vs autodiff Jacobian of a 50 -> 50 map."""

    params = [*XPBenchmark.params, ["fd", "auto"]]
    param_names = [*XPBenchmark.param_names, "method"]

    def setup(self, backend, method):
        super().setup(backend)
        xp = self.xp
        self.x = self.asarray(np.linspace(-1, 1, 50))
        self.f = lambda v: xp.sin(v) * xp.cumulative_sum(v)
        self.sync(calculus.jacobian(self.f, self.x, method=method))

    def time_jacobian(self, backend, method):
        self.sync(calculus.jacobian(self.f, self.x, method=method))
