"""Course 3 PCA benchmarks: MNIST t10k (10,000 × 784) and the 70,000 × 784 shifted
matrix, k = 50, float32, on every backend, and scikit-learn's solvers.

Besides the time, each fit reports asv's ``peakmem`` (the process's peak RSS,
input included), ``track_memory_added`` (the peak memory a NumPy fit allocates
÷ the input's size; the issue's goal is <= 1.2) and ``track_eigenvalue_error``
(the largest relative error of the 50 eigenvalues against float64 LAPACK; goal
<= 1e-6 for the covariance route).  ``m4ml-xp bench pca`` prints the same
comparison as ratios in one run.
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import SkipNotImplemented, XPBenchmark, mnist_data
from m4ml_xp import backends, pca
from m4ml_xp.cli.harness.pca import peak_memory_ratio, reference_eigenvalues, shifted_mnist

K = 50
DATASETS = ["t10k", "t10k+shifts"]


def _matrix(dataset: str) -> np.ndarray:
    images = mnist_data()[0].astype(np.float32)
    return images if dataset == "t10k" else shifted_mnist(images)


class MnistPCA(XPBenchmark):
    """``pca(X, 50, method=...)`` on the backend under test."""

    params = [*XPBenchmark.params, DATASETS, ["covariance_eigh", "randomized"]]
    param_names = [*XPBenchmark.param_names, "data", "method"]

    def setup(self, backend, dataset, method):
        super().setup(backend)
        self.X_host = _matrix(dataset)
        self.X = self.asarray(self.X_host)
        self.method = method
        self.time_fit(backend, dataset, method)  # JIT/warm-up outside the timing

    def fit(self):
        result = pca(self.X, K, method=self.method, seed=0)
        self.sync(result.components)
        return result

    def time_fit(self, backend, dataset, method):
        self.fit()

    def peakmem_fit(self, backend, dataset, method):
        self.fit()

    def track_memory_added(self, backend, dataset, method):
        if backend != "numpy":
            raise SkipNotImplemented("tracemalloc sees NumPy's buffers only")
        return peak_memory_ratio(self.fit, self.X_host.nbytes)

    track_memory_added.unit = "x input"

    def track_eigenvalue_error(self, backend, dataset, method):
        truth = reference_eigenvalues(self.X_host, K)
        values = backends.to_numpy(self.fit().explained_variance).astype(np.float64)
        return float(np.max(np.abs(values - truth) / truth))

    track_eigenvalue_error.unit = "relative"


class HandWrittenEigh(XPBenchmark):
    """The in-library baseline: ``eigh(XcᵀXc)`` written directly (the GPU goal: ours <= 1.2x)."""

    params = [*XPBenchmark.params, DATASETS]
    param_names = [*XPBenchmark.param_names, "data"]

    def setup(self, backend, dataset):
        super().setup(backend)
        self.X = self.asarray(_matrix(dataset))
        self.time_eigh(backend, dataset)

    def time_eigh(self, backend, dataset):
        xp = self.xp
        centred = self.X - xp.mean(self.X, axis=0)
        self.sync(xp.linalg.eigh(xp.linalg.matrix_transpose(centred) @ centred)[1])


class ScikitLearnPCA:
    """The reference: scikit-learn's ``PCA(50, svd_solver=...)`` on the same float32 data."""

    params = [DATASETS, ["full", "covariance_eigh", "randomized"]]
    param_names = ["data", "svd_solver"]
    timeout = 600

    def setup(self, dataset, solver):
        try:
            from sklearn.decomposition import PCA
        except ImportError:
            raise SkipNotImplemented("scikit-learn is not installed") from None
        self.X = _matrix(dataset)
        self.model = lambda: PCA(K, svd_solver=solver, random_state=0).fit(self.X)

    def time_fit(self, dataset, solver):
        self.model()

    def peakmem_fit(self, dataset, solver):
        self.model()

    def track_memory_added(self, dataset, solver):
        return peak_memory_ratio(self.model, self.X.nbytes)

    track_memory_added.unit = "x input"

    def track_eigenvalue_error(self, dataset, solver):
        truth = reference_eigenvalues(self.X, K)
        return float(np.max(np.abs(self.model().explained_variance_ - truth) / truth))

    track_eigenvalue_error.unit = "relative"
