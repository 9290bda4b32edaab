"""Course 1 linear algebra: m4ml_xp on every backend beside SciPy / NumPy's LAPACK routines."""

from __future__ import annotations

import numpy as np
import scipy.ndimage

from benchmarks.common import Benchmark, implementations, sizes
from m4ml_xp import gram_schmidt, power_iteration, rotation_matrix, transform_image


class TransformImage(Benchmark):
    """Rotate a batch of 28×28 digits (bilinear); scipy.ndimage does one image at a time."""

    params = [implementations("scipy.ndimage"), sizes([100, 10_000], [100])]
    param_names = [*Benchmark.param_names, "images"]

    def prepare(self, implementation, images):
        batch = np.random.default_rng(0).random((images, 28, 28)).astype(np.float32)
        if implementation == "scipy.ndimage":
            inverse = np.asarray(rotation_matrix(-0.5))

            def loop():
                for image in batch:
                    scipy.ndimage.affine_transform(image, inverse, order=1)

            return loop
        stack = self.asarray(batch)
        T = self.asarray(np.asarray(rotation_matrix(0.5)), dtype=self.xp.float32)
        return lambda: transform_image(stack, T)

    def time_transform_image(self, implementation, images):
        self.run()


class GramSchmidt(Benchmark):
    """Orthonormal columns; the reference is LAPACK's Householder QR (numpy.linalg.qr)."""

    params = [implementations("numpy.linalg.qr"), sizes([(200, 50), (1000, 200)], [(100, 20)])]
    param_names = [*Benchmark.param_names, "shape"]

    def prepare(self, implementation, shape):
        A = np.random.default_rng(0).standard_normal(shape)
        if implementation == "numpy.linalg.qr":
            return lambda: np.linalg.qr(A)
        A_xp = self.asarray(A)
        return lambda: gram_schmidt(A_xp)

    def time_gram_schmidt(self, implementation, shape):
        self.run()


class PowerIteration(Benchmark):
    """The dominant eigenpair of a symmetric matrix; the reference is ARPACK (scipy eigsh)."""

    params = [implementations("scipy eigsh"), sizes([500, 2000], [300])]
    param_names = [*Benchmark.param_names, "n"]

    def prepare(self, implementation, n):
        rng = np.random.default_rng(0)
        Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
        values = np.linspace(1.0, 2.0, n)
        values[-1] = 3.0
        A = (Q * values) @ Q.T
        if implementation == "scipy eigsh":
            from scipy.sparse.linalg import eigsh

            return lambda: eigsh(A, k=1, which="LA")
        A_xp = self.asarray(A)
        return lambda: power_iteration(A_xp).eigenvector

    def time_power_iteration(self, implementation, n):
        self.run()
