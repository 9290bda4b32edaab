"""Course 1 linear algebra benchmarks."""

from __future__ import annotations

import numpy as np
import scipy.ndimage

from benchmarks.common import XPBenchmark
from m4ml_xp import gram_schmidt, power_iteration, rotation_matrix, transform_image


class TransformImage(XPBenchmark):
    """Rotate a batch of 28×28 digits (bilinear): the course's image application."""

    params = [*XPBenchmark.params, [100, 10_000]]
    param_names = [*XPBenchmark.param_names, "images"]

    def setup(self, backend, images):
        super().setup(backend)
        batch = np.random.default_rng(0).random((images, 28, 28))
        self.images = self.asarray(batch, dtype=self.xp.float32)
        self.T = self.asarray(np.asarray(rotation_matrix(0.5)), dtype=self.xp.float32)
        self.sync(transform_image(self.images, self.T))

    def time_transform_image(self, backend, images):
        self.sync(transform_image(self.images, self.T))


class TransformImageScipy:
    """The reference: scipy.ndimage.affine_transform, one image at a time."""

    params = [[100, 10_000]]
    param_names = ["images"]

    def setup(self, images):
        self.batch = np.random.default_rng(0).random((images, 28, 28)).astype(np.float32)
        self.M = np.asarray(rotation_matrix(-0.5))

    def time_scipy_affine_transform(self, images):
        for image in self.batch:
            scipy.ndimage.affine_transform(image, self.M, order=1)


class GramSchmidt(XPBenchmark):
    params = [*XPBenchmark.params, [(200, 50), (1000, 200)]]
    param_names = [*XPBenchmark.param_names, "shape"]

    def setup(self, backend, shape):
        super().setup(backend)
        self.A = self.asarray(np.random.default_rng(0).standard_normal(shape))
        self.sync(gram_schmidt(self.A))

    def time_gram_schmidt(self, backend, shape):
        self.sync(gram_schmidt(self.A))


class PowerIteration(XPBenchmark):
    params = [*XPBenchmark.params, [500, 2000]]
    param_names = [*XPBenchmark.param_names, "n"]

    def setup(self, backend, n):
        super().setup(backend)
        rng = np.random.default_rng(0)
        Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
        values = np.linspace(1.0, 2.0, n)
        values[-1] = 3.0
        self.A = self.asarray((Q * values) @ Q.T)
        self.sync(power_iteration(self.A).eigenvector)

    def time_power_iteration(self, backend, n):
        self.sync(power_iteration(self.A).eigenvector)
