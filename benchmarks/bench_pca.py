"""Course 3 PCA: k = 50 on MNIST t10k (10,000 × 784) and the 70,000 × 784 shifted matrix,
float32, m4ml_xp on every backend beside scikit-learn's solver of the same name.

Besides the time, each fit reports asv's ``peakmem`` (the process's peak RSS,
input included), ``track_memory_added`` (the peak memory a NumPy fit allocates
÷ the input's size; the issue's goal is <= 1.2) and ``track_eigenvalue_error``
(the largest relative error of the 50 eigenvalues against float64 LAPACK; goal
<= 1e-6 for the covariance route).  ``m4ml-xp bench pca`` prints the same
comparison as ratios in one run, with scikit-learn's full SVD too.
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import (
    Benchmark,
    implementations,
    mnist_data,
    our_implementations,
    sizes,
)
from m4ml_xp import backends, pca
from m4ml_xp.cli.harness.pca import peak_memory_ratio, reference_eigenvalues, shifted_mnist

K = 50
DATASETS = sizes(["t10k", "t10k+shifts"], ["t10k[:2000]"])
METHODS = sizes(["covariance_eigh", "randomized"], ["covariance_eigh"])


def _matrix(dataset: str) -> np.ndarray:
    if dataset == "t10k[:2000]":
        return mnist_data(2_000)[0].astype(np.float32)
    images = mnist_data()[0].astype(np.float32)
    return images if dataset == "t10k" else shifted_mnist(images)


class MnistPCA(Benchmark):
    """``pca(X, 50, method=...)`` vs ``sklearn.decomposition.PCA(50, svd_solver=...)``."""

    params = [implementations("scikit-learn"), DATASETS, METHODS]
    param_names = [*Benchmark.param_names, "data", "method"]

    def prepare(self, implementation, dataset, method):
        self.X_host = _matrix(dataset)
        if implementation == "scikit-learn":
            from sklearn.decomposition import PCA

            def fit():
                model = PCA(K, svd_solver=method, random_state=0).fit(self.X_host)
                return model.explained_variance_

            return fit
        if implementation == "m4ml_xp[dask]" and method != "covariance_eigh":
            raise self.not_applicable(implementation, "Dask arrays take covariance_eigh only")
        X = self.asarray(self.X_host)
        return lambda: pca(X, K, method=method, seed=0).explained_variance

    def time_fit(self, implementation, dataset, method):
        self.run()

    def peakmem_fit(self, implementation, dataset, method):
        self.run()

    def track_eigenvalue_error(self, implementation, dataset, method):
        truth = reference_eigenvalues(self.X_host, K)
        values = backends.to_numpy(self.run()).astype(np.float64)
        return float(np.max(np.abs(values - truth) / truth))

    track_eigenvalue_error.unit = "relative"


class MnistPCAMemory(Benchmark):
    """Peak memory a fit allocates ÷ the input's size (tracemalloc sees NumPy's buffers only,
    so: m4ml_xp on NumPy and scikit-learn)."""

    params = [
        [label for label in MnistPCA.params[0] if label in ("m4ml_xp[numpy]", "scikit-learn")],
        DATASETS,
        METHODS,
    ]
    param_names = MnistPCA.param_names
    prepare = MnistPCA.prepare

    def track_memory_added(self, implementation, dataset, method):
        return peak_memory_ratio(self.run, self.X_host.nbytes)

    track_memory_added.unit = "x input"


class HandWrittenEigh(Benchmark):
    """The in-library baseline: ``eigh(XcᵀXc)`` written directly on each backend's namespace
    (the GPU goal: ``pca`` <= 1.2x this); the parameter is the namespace, not m4ml_xp.
    Not on Dask: ``dask.array.linalg`` has no ``eigh``."""

    params = [[label for label in our_implementations() if label != "m4ml_xp[dask]"], DATASETS]
    param_names = ["namespace", "data"]

    def prepare(self, implementation, dataset):
        X = self.asarray(_matrix(dataset))
        xp = self.xp

        def by_hand():
            centred = X - xp.mean(X, axis=0)
            return xp.linalg.eigh(xp.linalg.matrix_transpose(centred) @ centred)[1]

        return by_hand

    def time_eigh(self, implementation, dataset):
        self.run()
