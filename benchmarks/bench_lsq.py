"""Course 2 least-squares benchmarks: batched Gaussian fits, one large fit, and SciPy's loop.

The issue's workload: 3-parameter Gaussians of 100 points with analytic
Jacobians (10,000 fits; ``M4ML_XP_BENCH_LARGE=1`` adds 1,000,000 for GPUs), and
one fit of 10,000 points.  ``m4ml-xp bench lsq`` prints the same comparison as
ratios in one run.
"""

from __future__ import annotations

from benchmarks.common import LARGE, SkipNotImplemented, XPBenchmark
from m4ml_xp import levenberg_marquardt, levenberg_marquardt_batched
from m4ml_xp.cli.harness import lsq as lsq_harness

FITS = [10_000, 1_000_000] if LARGE else [10_000]


class BatchedGaussianFits(XPBenchmark):
    """``levenberg_marquardt_batched`` on B independent fits of 100 points."""

    params = [*XPBenchmark.params, FITS]
    param_names = [*XPBenchmark.param_names, "fits"]

    def setup(self, backend, fits):
        super().setup(backend)
        if fits > 10_000 and backend in ("numpy", "torch:cpu", "jax.numpy:cpu"):
            raise SkipNotImplemented("a million fits is the GPU target")
        x, Y, _truth, starts = lsq_harness.gaussian_problems(fits, 100)
        residual, jac = lsq_harness.gaussian_fit_functions(self.asarray(x))
        self.Y, self.p0 = self.asarray(Y), self.asarray(starts)

        def solve(p0, Y):
            return levenberg_marquardt_batched(residual, p0, args=(Y,), jac=jac)

        if backend.startswith("jax"):  # one lax.while_loop, traced once
            import jax

            solve = jax.jit(solve)
        self.solve = solve
        self.time_fits(backend, fits)  # JIT compilation happens here, not in the timing

    def time_fits(self, backend, fits):
        self.sync(self.solve(self.p0, self.Y).x)

    def peakmem_fits(self, backend, fits):
        self.time_fits(backend, fits)


class SciPyLoop:
    """The reference: ``least_squares(method="lm")`` fit by fit (1,000 fits; × 10 for 10,000)."""

    def setup(self):
        self.x, self.Y, _truth, self.starts = lsq_harness.gaussian_problems(1_000, 100)

    def time_scipy_loop_1000_fits(self):
        lsq_harness.scipy_loop(self.x, self.Y, self.starts)


class SingleLargeFit(XPBenchmark):
    """One Gaussian fit of 10,000 points with the analytic Jacobian."""

    def setup(self, backend):
        super().setup(backend)
        x, Y, _truth, starts = lsq_harness.gaussian_problems(1, 10_000, seed=1)
        residual, jac = lsq_harness.gaussian_fit_functions(self.asarray(x))
        y = self.asarray(Y)
        self.residual = lambda p: residual(p[None, :], y)[0, :]
        self.jac = lambda p: jac(p[None, :], y)[0, ...]
        self.p0 = self.asarray(starts[0])
        self.time_fit(backend)

    def time_fit(self, backend):
        self.sync(levenberg_marquardt(self.residual, self.p0, jac=self.jac).x)


class SciPySingleFit:
    """The reference for :class:`SingleLargeFit`."""

    def setup(self):
        from scipy.optimize import least_squares

        self.least_squares = least_squares
        x, self.Y, _truth, starts = lsq_harness.gaussian_problems(1, 10_000, seed=1)
        self.residual, self.jac = lsq_harness.gaussian_fit_functions(x)
        self.p0 = starts[0]

    def time_least_squares(self):
        self.least_squares(
            lambda p: self.residual(p[None, :], self.Y)[0],
            self.p0,
            jac=lambda p: self.jac(p[None, :], self.Y)[0],
            method="lm",
        )
