"""Course 2 least squares: batched Gaussian fits and one large fit, beside SciPy's least_squares.

The issue's workload: 3-parameter Gaussians of 100 points with analytic
Jacobians (10,000 fits; ``M4ML_XP_BENCH_LARGE=1`` adds 1,000,000 for GPUs), and
one fit of 10,000 points.  ``m4ml-xp bench lsq`` prints the same comparison as
ratios in one run.
"""

from __future__ import annotations

from benchmarks.common import GPU_LABELS, Benchmark, implementations, sizes
from m4ml_xp import levenberg_marquardt, levenberg_marquardt_batched
from m4ml_xp.cli.harness import lsq as lsq_harness

FITS = sizes([10_000], [1_000], large=[1_000_000])


class BatchedGaussianFits(Benchmark):
    """B independent fits of 100 points: ``levenberg_marquardt_batched`` vs a SciPy loop."""

    params = [implementations("scipy least_squares loop"), FITS]
    param_names = [*Benchmark.param_names, "fits"]

    def prepare(self, implementation, fits):
        if fits > 10_000 and implementation not in GPU_LABELS:
            raise self.not_applicable(implementation, "a million fits is the GPU target")
        x, Y, _truth, starts = lsq_harness.gaussian_problems(fits, 100)
        if implementation == "scipy least_squares loop":
            return lambda: lsq_harness.scipy_loop(x, Y, starts)
        # on Dask the fits are solved chunk by chunk and the functions see NumPy chunks:
        # they must not close over a Dask array
        on_dask = implementation == "m4ml_xp[dask]"
        residual, jac = lsq_harness.gaussian_fit_functions(x if on_dask else self.asarray(x))
        Y_xp, p0 = self.asarray(Y), self.asarray(starts)

        def solve(p0, Y):
            return levenberg_marquardt_batched(residual, p0, args=(Y,), jac=jac).x

        if implementation.startswith("m4ml_xp[jax"):  # one lax.while_loop, traced once
            import jax

            solve = jax.jit(solve)
        return lambda: solve(p0, Y_xp)

    def time_fits(self, implementation, fits):
        self.run()

    def peakmem_fits(self, implementation, fits):
        self.run()


class SingleLargeFit(Benchmark):
    """One Gaussian fit of 10,000 points with the analytic Jacobian."""

    params = [implementations("scipy least_squares"), sizes([10_000], [1_000])]
    param_names = [*Benchmark.param_names, "points"]

    def prepare(self, implementation, points):
        x, Y, _truth, starts = lsq_harness.gaussian_problems(1, points, seed=1)
        if implementation == "scipy least_squares":
            from scipy.optimize import least_squares

            residual, jac = lsq_harness.gaussian_fit_functions(x)
            return lambda: (
                least_squares(
                    lambda p: residual(p[None, :], Y)[0],
                    starts[0],
                    jac=lambda p: jac(p[None, :], Y)[0],
                    method="lm",
                ).x
            )
        residual, jac = lsq_harness.gaussian_fit_functions(self.asarray(x))
        y = self.asarray(Y)
        p0 = self.asarray(starts[0])
        return lambda: (
            levenberg_marquardt(
                lambda p: residual(p[None, :], y)[0, :],
                p0,
                jac=lambda p: jac(p[None, :], y)[0, ...],
            ).x
        )

    def time_fit(self, implementation, points):
        self.run()
