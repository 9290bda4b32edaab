"""Least squares on every backend: NIST StRD certified values, SciPy and scikit-learn as oracles."""

from __future__ import annotations

import functools
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize
from array_api_compat import array_namespace, is_dask_namespace
from array_api_compat import device as device_of
from hypothesis import given
from hypothesis import strategies as st

import m4ml_xp as mx
from m4ml_xp.errors import ConvergenceError, ConvergenceWarning, RankWarning
from tests._helpers import asarray, assert_close_to, eps, to_numpy
from tests.conftest import Backend, sizes


@pytest.fixture
def retrace():
    """Return a call that makes JAX trace the LM kernels anew (and make it at teardown).

    They are compiled once per residual *program*, reading module settings while traced:
    a test that patches one must retrace for the patch to reach the compiled kernel.
    """
    from m4ml_xp._xp import _control

    clear = _control._kernel_of_program.cache_clear
    yield clear
    clear()


NIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "nist_strd"
NIST_FILES = sorted(NIST.glob("*.dat")) if NIST.is_dir() else []
TIGHT = {"ftol": 1e-15, "xtol": 1e-15, "gtol": 1e-15}


def significant_digits(actual: np.ndarray, certified: np.ndarray) -> float:
    """NIST's log relative error: the number of agreeing significant digits (worst entry)."""
    relative = np.abs(actual - certified) / np.abs(certified)
    return float(-np.log10(max(relative.max(), 1e-16)))


def rss_certified(ss: float, certified_ss: float, y: np.ndarray, digits: float = 6) -> bool:
    """Whether a residual sum of squares agrees with NIST's to `digits`, or to rounding.

    Residuals evaluated in float64 carry errors of about eps·|y|, so ``Σ r²`` is
    known to ``2·sqrt(Σ r²)·eps·‖y‖`` at best: a near-exact fit's certified value
    (Lanczos1's 1.4e-25, computed in 500-digit arithmetic) has ~2.5 digits in float64
    — not even NIST's certified parameters give more.
    """
    floor = 2 * np.sqrt(certified_ss) * np.finfo(np.float64).eps * np.linalg.norm(y)
    difference = abs(ss - certified_ss)
    return difference <= floor or difference <= 10.0**-digits * abs(certified_ss)


# --------------------------------------------------------------------------- linear regression
class TestLinearRegression:
    @given(
        seed=st.integers(0, 2**32 - 1),
        n=sizes(5, 40),
        d=sizes(1, 4),
        k=sizes(1, 3),
    )
    def test_matches_lstsq_with_intercept(self, xp, seed, n, d, k):
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((n, d)) * 10.0 ** rng.integers(-2, 3, d)
        Y = (
            X @ rng.standard_normal((d, k))
            + rng.standard_normal(k)
            + 0.1 * rng.standard_normal((n, k))
        )
        fit = mx.linear_regression(asarray(xp, X), asarray(xp, Y))
        solution = np.linalg.lstsq(np.hstack([np.ones((n, 1)), X]), Y, rcond=None)[0]
        design = np.hstack([np.ones((n, 1)), X])
        tol = 100 * eps(fit.coef.dtype) * np.linalg.cond(design)  # backward-stable: eps · κ
        assert_close_to(fit.coef, solution[1:], rtol=tol, atol=tol)
        assert_close_to(fit.intercept, solution[0], rtol=tol, atol=tol)
        residual = Y - np.hstack([np.ones((n, 1)), X]) @ solution
        assert_close_to(fit.residual_ss, (residual**2).sum(axis=0), rtol=tol, atol=tol)
        assert fit.rank == d

    def test_matches_scikit_learn_single_target(self, xp, device):
        from sklearn.linear_model import LinearRegression

        rng = np.random.default_rng(0)
        X = rng.standard_normal((50, 3))
        y = X @ np.array([1.0, -2.0, 0.5]) + 3.0 + 0.01 * rng.standard_normal(50)
        reference = LinearRegression().fit(X, y)
        fit = mx.linear_regression(asarray(xp, X, device), asarray(xp, y, device))
        assert fit.coef.shape == (3,)
        assert fit.intercept.shape == ()
        assert device_of(fit.coef) == device
        assert_close_to(fit.coef, reference.coef_, rtol=1e-12)
        assert_close_to(fit.intercept, np.asarray(reference.intercept_), rtol=1e-12)

    def test_rank_deficient_warns_and_gives_minimum_norm(self, xp):
        rng = np.random.default_rng(1)
        a = rng.standard_normal(30)
        X = np.stack([a, 2 * a, rng.standard_normal(30)], axis=1)  # first two collinear
        y = X[:, 0] + X[:, 2] + 1.0
        with pytest.warns(RankWarning, match="rank 2 < 3"):
            fit = mx.linear_regression(asarray(xp, X), asarray(xp, y))
        Xc = X - X.mean(axis=0)
        expected = np.linalg.lstsq(Xc, y - y.mean(), rcond=None)[0]
        assert fit.rank == 2
        assert_close_to(fit.coef, expected, rtol=1e-10, atol=1e-12)

    def test_bad_inputs(self, xp):
        with pytest.raises(ValueError, match="same number of rows"):
            mx.linear_regression(asarray(xp, np.ones((5, 2))), asarray(xp, np.ones(4)))
        with pytest.raises(ValueError, match="`y` must contain only finite"):
            mx.linear_regression(
                asarray(xp, np.ones((3, 1))), asarray(xp, np.array([1.0, np.nan, 2.0]))
            )
        with pytest.raises(ValueError, match="`X` must be a 1-D or 2-D"):
            mx.linear_regression(asarray(xp, np.ones((3, 1, 1))), asarray(xp, np.ones(3)))


# --------------------------------------------------------------------------- Levenberg–Marquardt
def exponential_problem(xp, device=None):
    t = np.linspace(0, 4, 30)
    y = 3.0 * np.exp(-0.7 * t) + 0.01 * np.sin(7 * t)
    t_x, y_x = asarray(xp, t, device), asarray(xp, y, device)

    def residual(b):
        ns = array_namespace(b)
        return b[0] * ns.exp(-b[1] * t_x) - y_x

    def jac(b):
        ns = array_namespace(b)
        e = ns.exp(-b[1] * t_x)
        return ns.stack([e, -b[0] * t_x * e], axis=1)

    def residual_np(b):
        return b[0] * np.exp(-b[1] * t) - y

    def jac_np(b):
        e = np.exp(-b[1] * t)
        return np.stack([e, -b[0] * t * e], axis=1)

    return residual, jac, residual_np, jac_np


@functools.cache
def nist_problem(path, xp):
    """A NIST file's problem and residual, one function per file (JAX compiles it once)."""
    problem = mx.load_nist_strd(path, xp=xp, dtype=xp.float64)
    return problem, lambda b: problem.model(problem.x, b) - problem.y


class TestLevenbergMarquardt:
    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_a_parameter_the_residual_ignores(self, xp, dtype):
        # a zero Jacobian column: the LM parameter's slope Σ(s·uf)²/(s² + α)³ divided 0 by
        # an underflowed (s² + α)³ in float32 (NaN, then max_nfev): SciPy fits it to [2, 0]
        t = asarray(xp, np.arange(4.0, dtype=dtype))
        if str(t.dtype).rsplit(".", 1)[-1] != dtype:
            pytest.skip(f"{dtype} is not available here (JAX's x64 off)")
        x0 = asarray(xp, np.zeros(2, dtype=dtype))
        fit = mx.levenberg_marquardt(lambda p: p[0] * t + 0 * p[1] - 2 * t, x0)
        assert fit.converged
        assert fit.status > 0
        assert fit.nfev < 50
        expected = np.array([2.0, 0.0], dtype=dtype)
        assert_close_to(fit.x, expected, rtol=0, atol=8 * eps(np.dtype(dtype)), xp=xp)

    @pytest.mark.parametrize("use_jac", [True, False], ids=["analytic", "differences"])
    def test_matches_scipy_least_squares_lm(self, xp, device, use_jac):
        residual, jac, residual_np, jac_np = exponential_problem(xp, device)
        start = np.array([1.0, 1.0])
        reference = scipy.optimize.least_squares(
            residual_np, start, jac=jac_np if use_jac else "2-point", method="lm", **TIGHT
        )
        fit = mx.levenberg_marquardt(
            residual, asarray(xp, start, device), jac=jac if use_jac else None, **TIGHT
        )
        assert fit.converged
        assert fit.status in (1, 2, 3, 4)
        assert device_of(fit.x) == device
        assert_close_to(fit.x, reference.x, rtol=1e-9)
        assert fit.cost == pytest.approx(reference.cost, rel=1e-10)
        assert fit.fun.shape == (30,)
        assert fit.jac.shape == (30, 2)
        assert fit.message == mx.lsq.MESSAGES[fit.status]

    def test_default_tolerances_and_status_like_scipy(self, xp):
        residual, jac, residual_np, jac_np = exponential_problem(xp)
        reference = scipy.optimize.least_squares(residual_np, [1.0, 1.0], jac=jac_np, method="lm")
        fit = mx.levenberg_marquardt(residual, asarray(xp, np.array([1.0, 1.0])), jac=jac)
        assert fit.status == reference.status
        assert_close_to(fit.x, reference.x, rtol=1e-6)

    @pytest.mark.parametrize(
        ("options", "status"),
        [
            ({"ftol": 1e-15, "gtol": 1e-15, "xtol": 1e-3}, 3),
            ({"ftol": 1e-3, "gtol": 1e-15, "xtol": 1e-15}, 2),
        ],
    )
    def test_the_test_that_stopped_is_scipys(self, xp, options, status):
        # no other test ends on xtol: a status of 2 for it (or 3 for ftol) passed
        residual, jac, residual_np, jac_np = exponential_problem(xp)
        x0 = asarray(xp, np.array([1.0, 1.0]))
        if x0.dtype != xp.float64:
            pytest.skip("tolerances of 1e-15 are below float32's rounding (JAX's x64 off)")
        reference = scipy.optimize.least_squares(
            residual_np, [1.0, 1.0], jac=jac_np, method="lm", **options
        )
        fit = mx.levenberg_marquardt(residual, x0, jac=jac, **options)
        assert fit.status == reference.status == status
        assert fit.message == reference.message
        assert_close_to(fit.x, reference.x, rtol=1e-5)

    @pytest.mark.skipif(not NIST_FILES, reason=f"NIST StRD files not found at {NIST}")
    @pytest.mark.parametrize("path", NIST_FILES, ids=lambda p: p.stem)
    @pytest.mark.parametrize("start", [0, 1], ids=["start1", "start2"])
    def test_nist_certified_values(self, xp, backend, path, start):
        """Default options reach NIST's certified values (the polish after SciPy's tests)."""
        if backend is Backend.DASK:
            pytest.skip(
                "a host read per iteration of a lazy graph; Dask runs the exponential cases"
            )
        problem, residual = nist_problem(path, xp)
        fit = mx.levenberg_marquardt(residual, problem.starts[start, :])
        assert fit.converged
        certified = to_numpy(problem.certified)
        assert significant_digits(to_numpy(fit.x), certified) >= 6
        assert rss_certified(2 * float(fit.cost), problem.residual_ss, to_numpy(problem.y))

    def test_default_polish_reaches_the_optimum_scipy_stops_short_of(self, xp):
        """On the course's Gaussian, SciPy's 1e-8 tests stop ~1e-7 short; the polish does not."""
        x, y = mx.heights_data(xp=xp, dtype=xp.float64)
        start = asarray(xp, np.array([180.0, 10.0]))
        default = mx.curve_fit(gaussian, x, y, start)
        tight = mx.curve_fit(gaussian, x, y, start, **TIGHT)
        scipy_default = scipy.optimize.curve_fit(
            lambda t, mu, s: np.exp(-((t - mu) ** 2) / (2 * s**2)) / (np.sqrt(2 * np.pi) * s),
            to_numpy(x),
            to_numpy(y),
            p0=[180.0, 10.0],
            method="lm",
        )[0]
        optimum = to_numpy(tight.params)
        assert np.abs(scipy_default / optimum - 1).max() > 1e-9  # the oracle's shortfall
        assert_close_to(default.params, optimum, rtol=1e-10)
        assert default.result.converged
        assert default.result.status in (1, 2, 3, 4)

    def test_polish_ends_on_the_prediction_without_a_wasted_evaluation(self, xp, backend):
        """With an exact Jacobian the polish stops on the model's prediction of a step at
        rounding, before evaluating it: its last residual is the result's, one past SciPy's."""
        if backend is Backend.JAX:
            pytest.skip("records the residual's arguments: traced under jit")
        x, y = mx.heights_data(xp=xp, dtype=xp.float64)
        calls = []

        def residual(p):
            calls.append(to_numpy(p))
            return gaussian(x, p) - y

        def jac(p):
            g, d = gaussian(x, p), x - p[0]
            return xp.stack([g * d / p[1] ** 2, g * (d**2 / p[1] ** 3 - 1 / p[1])], axis=1)

        fit = mx.levenberg_marquardt(residual, asarray(xp, np.array([180.0, 10.0])), jac=jac)
        x_np, y_np = to_numpy(x), to_numpy(y)
        reference = scipy.optimize.least_squares(
            lambda p: to_numpy(gaussian(x_np, p)) - y_np,
            [180.0, 10.0],
            jac=lambda p: to_numpy(jac(asarray(xp, p))),
            method="lm",
        )
        assert fit.converged
        assert np.array_equal(calls[-1], to_numpy(fit.x))
        assert fit.nfev == len(calls) <= reference.nfev + 1

    def test_dask_computes_one_graph_per_evaluation(self, xp, backend):
        """On Dask the fit's own steps run on the chunks' library: the residual and the
        Jacobian get Dask arrays, and each of their results is computed once — no graph
        per elementwise step of the solver (before: 48 computes for 18 evaluations)."""
        if backend is not Backend.DASK:
            pytest.skip("Dask's graphs")
        from dask.callbacks import Callback

        residual, jac, *_ = exponential_problem(xp)
        seen, seen_jac = [], []

        def recorded(p):
            seen.append(type(p))
            return residual(p)

        def recorded_jac(p):
            seen_jac.append(type(p))
            return jac(p)

        class Count(Callback):
            computes = 0

            def _start(self, dsk):
                Count.computes += 1

        with Count():
            x0 = asarray(xp, np.array([1.0, 1.0]))
            fit = mx.levenberg_marquardt(recorded, x0, jac=recorded_jac)
        assert fit.converged
        assert {type(fit.x), *seen, *seen_jac} == {type(x0)}  # Dask in and out
        assert len(seen) == fit.nfev
        # one compute per evaluation, plus x0's two checks, the kernel's input and two reads
        assert Count.computes <= len(seen) + len(seen_jac) + 5

    def test_autodiff_jacobian_where_the_backend_differentiates(self, xp, backend):
        """jac=None on JAX and PyTorch: exact Jacobians, the analytic fit's iterations."""
        residual, jac, *_ = exponential_problem(xp)
        start = asarray(xp, np.array([1.0, 1.0]))
        automatic = mx.levenberg_marquardt(residual, start, **TIGHT)
        analytic = mx.levenberg_marquardt(residual, start, jac=jac, **TIGHT)
        differences = mx.levenberg_marquardt(residual, start, jac="3-point", **TIGHT)
        assert differences.nfev > differences.n_iter + 1  # the differences' evaluations count
        if backend not in (Backend.JAX, Backend.TORCH):  # differences: forward, then central
            assert automatic.nfev > automatic.n_iter + 1
            return
        assert automatic.nfev == analytic.nfev
        assert automatic.n_iter == analytic.n_iter
        assert_close_to(automatic.x, to_numpy(analytic.x), rtol=1e-13)
        assert_close_to(automatic.jac, to_numpy(analytic.jac), rtol=1e-13, atol=1e-15)

    def test_max_nfev_reports_status_zero(self, xp):
        residual, jac, *_ = exponential_problem(xp)
        with pytest.warns(ConvergenceWarning, match="maximum number of function evaluations"):
            fit = mx.levenberg_marquardt(
                residual, asarray(xp, np.array([1.0, 1.0])), jac=jac, max_nfev=2
            )
        assert fit.status == 0
        assert not fit.converged
        with pytest.raises(ConvergenceError):
            mx.levenberg_marquardt(
                residual,
                asarray(xp, np.array([1.0, 1.0])),
                jac=jac,
                max_nfev=2,
                raise_on_failure=True,
            )

    def test_rank_deficient_problem_converges(self, xp):
        # b0 and b1 enter only as their sum: the Jacobian has rank 1 everywhere
        t = asarray(xp, np.linspace(0, 1, 10))
        y = asarray(xp, 2.0 * np.linspace(0, 1, 10))
        fit = mx.levenberg_marquardt(
            lambda b: (b[0] + b[1]) * t - y, asarray(xp, np.array([0.3, 0.1]))
        )
        assert fit.converged
        assert float(to_numpy(fit.x).sum()) == pytest.approx(2.0, rel=1e-8)

    def test_non_finite_trial_steps_are_rejected(self, xp):
        # log(b) is NaN for b < 0 and -inf at 0: the first steps overshoot there (the
        # user's log warns; a step of exactly the trust radius lands on b = 0)
        y = asarray(xp, np.full(5, np.log(0.01)))
        with np.errstate(invalid="ignore", divide="ignore"):
            fit = mx.levenberg_marquardt(
                lambda b: xp.log(b[0]) + 0 * y - y, asarray(xp, np.array([5.0]))
            )
        assert fit.converged
        assert float(to_numpy(fit.x)[0]) == pytest.approx(0.01, rel=1e-6)

    def test_bad_inputs(self, xp):
        x0 = asarray(xp, np.array([1.0, 1.0]))
        residual, *_ = exponential_problem(xp)
        with pytest.raises(ValueError, match="at least as many residuals as parameters"):
            mx.levenberg_marquardt(lambda b: b[:1], x0)
        with pytest.raises(ValueError, match="`bounds` are not supported"):
            mx.levenberg_marquardt(residual, x0, bounds=(0, 10))
        with pytest.raises(ValueError, match="`ftol` must be in"):
            mx.levenberg_marquardt(residual, x0, ftol=-1e-8)
        with pytest.raises(ValueError, match="`x0` must contain only finite"):
            mx.levenberg_marquardt(residual, asarray(xp, np.array([np.nan, 1.0])))
        with pytest.raises(TypeError, match="`residual` must return an array"):
            mx.levenberg_marquardt(lambda b: 1.0, x0)
        with pytest.raises(ValueError, match="`residual` must return a 1-D"):
            mx.levenberg_marquardt(lambda b: b[:, None] * b, x0)
        with pytest.raises(ValueError, match="`jac` must return the \\(30, 2\\) Jacobian"):
            mx.levenberg_marquardt(residual, x0, jac=lambda b: b)
        with pytest.raises(ValueError, match="`jac` must be one of"):
            mx.levenberg_marquardt(residual, x0, jac="5-point")
        with pytest.raises(ValueError, match="`residual` is not finite at `x0`"):
            mx.levenberg_marquardt(lambda b: b * float("inf"), x0)


# --------------------------------------------------------------------------- NIST loader
class TestLoadNistStrd:
    def test_a_name_that_is_not_text_is_refused(self):
        with pytest.raises(TypeError, match="`name_or_path` must be a problem name or a path"):
            mx.load_nist_strd(5)

    @pytest.mark.skipif(not NIST_FILES, reason=f"NIST StRD files not found at {NIST}")
    @pytest.mark.parametrize("path", NIST_FILES, ids=lambda p: p.stem)
    def test_certified_parameters_give_certified_rss(self, path):
        problem = mx.load_nist_strd(path)
        residual = to_numpy(problem.y) - to_numpy(problem.model(problem.x, problem.certified))
        assert (
            significant_digits(np.asarray(residual @ residual), np.asarray(problem.residual_ss))
            >= 9
        )
        assert problem.starts.shape == (2, problem.certified.shape[0])
        batch = problem.model(problem.x, np.stack([problem.certified, problem.starts[0]]))
        assert batch.shape == (2, problem.y.shape[0])

    def test_arrays_on_the_requested_backend(self, xp, device):
        if not NIST_FILES:
            pytest.skip(f"NIST StRD files not found at {NIST}")
        problem = mx.load_nist_strd(NIST_FILES[0], xp=xp, device=device)
        assert device_of(problem.x) == device
        assert device_of(problem.model(problem.x, problem.certified)) == device

    def test_corrupt_files_name_the_file(self, tmp_path):
        bad = tmp_path / "Broken.dat"
        bad.write_text("NIST/ITL StRD\nnothing else\n")
        with pytest.raises(ValueError, match=r"Broken\.dat"):
            mx.load_nist_strd(bad)
        if NIST_FILES:
            lines = NIST_FILES[0].read_text().splitlines()
            truncated = tmp_path / "Truncated.dat"
            truncated.write_text("\n".join(lines[:-5]) + "\n")
            with pytest.raises(ValueError, match=r"Truncated\.dat: corrupt NIST StRD file"):
                mx.load_nist_strd(truncated)
            evil = tmp_path / "Evil.dat"
            text = "\n".join(lines)
            evil.write_text(
                re.sub(r"^(\s*y\s*=\s*)", r"\1__import__('os') + ", text, count=1, flags=re.M)
            )
            with pytest.raises(ValueError, match="unknown name '__import__'"):
                mx.load_nist_strd(evil)
        with pytest.raises(FileNotFoundError, match="no NIST StRD file"):
            mx.load_nist_strd(tmp_path / "Absent")


# ------------------------------------------------------- NIST's higher-difficulty problems
# Data, starts and certified parameters typed in from NIST's StRD pages (public domain,
# https://www.itl.nist.gov/div898/strd/nls/nls_main.shtml): badly scaled, nearly singular
# problems beyond the files in ../shared — the solver is not tuned to those.
def _exp(x):
    return array_namespace(x).exp(x)


HARD = {
    "MGH09": (
        lambda x, b: b[0] * (x**2 + x * b[1]) / (x**2 + x * b[2] + b[3]),
        [4.0, 2.0, 1.0, 0.5, 0.25, 0.167, 0.125, 0.1, 0.0833, 0.0714, 0.0625],
        [0.1957, 0.1947, 0.1735, 0.16, 0.0844, 0.0627, 0.0456, 0.0342, 0.0323, 0.0235, 0.0246],
        [[25, 39, 41.5, 39], [0.25, 0.39, 0.415, 0.39]],
        [1.9280693458e-01, 1.9128232873e-01, 1.2305650693e-01, 1.3606233068e-01],
    ),
    "MGH10": (
        lambda x, b: b[0] * _exp(b[1] / (x + b[2])),
        [50.0 + 5 * i for i in range(16)],
        [34780, 28610, 23650, 19630, 16370, 13720, 11540, 9744,
         8261, 7030, 6005, 5147, 4427, 3820, 3307, 2872],
        [[2, 400000, 25000], [0.02, 4000, 250]],
        [5.6096364710e-03, 6.1813463463e03, 3.4522363462e02],
    ),
    "BoxBOD": (
        lambda x, b: b[0] * (1 - _exp(-b[1] * x)),
        [1.0, 2, 3, 5, 7, 10],
        [109.0, 149, 149, 191, 213, 224],
        [[1, 1], [100, 0.75]],
        [2.1380940889e02, 5.4723748542e-01],
    ),
    "Rat42": (
        lambda x, b: b[0] / (1 + _exp(b[1] - b[2] * x)),
        [9.0, 14, 21, 28, 42, 57, 63, 70, 79],
        [8.93, 10.8, 18.59, 22.33, 39.35, 56.11, 61.73, 64.62, 67.08],
        [[100, 1, 0.1], [75, 2.5, 0.07]],
        [7.2462237576e01, 2.6180768402e00, 6.7359200066e-02],
    ),
    "Rat43": (
        lambda x, b: b[0] / (1 + _exp(b[1] - b[2] * x)) ** (1 / b[3]),
        [float(i) for i in range(1, 16)],
        [16.08, 33.83, 65.8, 97.2, 191.55, 326.2, 386.87, 520.53,
         590.03, 651.92, 724.93, 699.56, 689.96, 637.56, 717.41],
        [[100, 10, 1, 1], [700, 5, 0.75, 1.3]],
        [6.9964151270e02, 5.2771253025e00, 7.5962938329e-01, 1.2792483859e00],
    ),
    "MGH17": (
        lambda x, b: b[0] + b[1] * _exp(-x * b[3]) + b[2] * _exp(-x * b[4]),
        [10.0 * i for i in range(33)],
        [0.844, 0.908, 0.932, 0.936, 0.925, 0.908, 0.881, 0.85, 0.818, 0.784, 0.751,
         0.718, 0.685, 0.658, 0.628, 0.603, 0.58, 0.558, 0.538, 0.522, 0.506, 0.49,
         0.478, 0.467, 0.457, 0.448, 0.438, 0.431, 0.424, 0.42, 0.414, 0.411, 0.406],
        [[50, 150, -100, 1, 2], [0.5, 1.5, -1, 0.01, 0.02]],
        [3.7541005211e-01, 1.9358469127e00, -1.4646871366e00, 1.2867534640e-02, 2.2122699662e-02],
    ),
}  # fmt: skip


@functools.cache
def hard_residual(xp, name):
    """The residual of a typed-in problem, one function per problem (JAX compiles it once)."""
    model, x, y, *_ = HARD[name]
    x_b, y_b = asarray(xp, np.asarray(x)), asarray(xp, np.asarray(y, dtype=float))
    return lambda b: model(x_b, b) - y_b


# trial steps far from the start overflow exp() (inf − inf in MGH17's model): those steps
# are rejected; NumPy warns about them
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
class TestNISTHigherDifficulty:
    @pytest.mark.parametrize("start", [0, 1], ids=["start1", "start2"])
    @pytest.mark.parametrize("name", sorted(HARD))
    def test_single_fit_certified(self, xp, backend, name, start):
        """Default options, as :meth:`TestLevenbergMarquardt.test_nist_certified_values`."""
        if backend is Backend.DASK:
            pytest.skip("a host read per iteration of a lazy graph; the batched test runs them")
        *_, starts, certified = HARD[name]
        fit = mx.levenberg_marquardt(
            hard_residual(xp, name), asarray(xp, np.asarray(starts[start], dtype=float))
        )
        assert fit.converged
        assert significant_digits(to_numpy(fit.x), np.asarray(certified)) >= 6

    @pytest.mark.parametrize("name", sorted(HARD))
    def test_both_starts_batched(self, xp, name):
        model, x, y, starts, certified = HARD[name]
        X = asarray(xp, np.tile(x, (2, 1)), chunks=(1, -1))
        Y = asarray(xp, np.tile(np.asarray(y, dtype=float), (2, 1)), chunks=(1, -1))
        n = len(certified)
        fit = mx.levenberg_marquardt_batched(
            lambda b, x, y: model(x, [b[:, i : i + 1] for i in range(n)]) - y,
            asarray(xp, np.asarray(starts, dtype=float), chunks=(1, -1)),
            args=(X, Y),
            **TIGHT,
            max_nfev=20_000,
        )
        for k in range(2):
            assert bool(to_numpy(fit.converged[k]))
            assert significant_digits(to_numpy(fit.x[k, :]), np.asarray(certified)) >= 6


# --------------------------------------------------------------------------- curve_fit and the course's data
def gaussian(x, p):
    xp = array_namespace(x, p)
    return xp.exp(-((x - p[0]) ** 2) / (2 * p[1] ** 2)) / (math.sqrt(2 * math.pi) * p[1])


class TestCurveFit:
    def test_a_covariance_that_cannot_be_estimated_warns_like_scipy(self, xp):
        # SciPy's curve_fit: OptimizeWarning "Covariance of the parameters could not be estimated"
        if is_dask_namespace(xp):
            pytest.skip("Dask's covariance is lazy: it is not read to warn")
        x = asarray(xp, np.arange(5.0))
        y = asarray(xp, 2 * np.arange(5.0))
        with pytest.warns(RankWarning, match="covariance of the parameters could not be estimated"):
            fit = mx.curve_fit(lambda t, p: (p[0] + p[1]) * t, x, y, asarray(xp, np.zeros(2)))
        assert np.isinf(to_numpy(fit.stderr)).all()

    def test_an_unknown_option_names_curve_fit(self):
        x = np.arange(3.0)
        with pytest.raises(TypeError, match="curve_fit got an unexpected option 'foo'"):
            mx.curve_fit(lambda x, p: p[0] * x, x, x, np.ones(1), foo=1)
        with pytest.raises(TypeError, match="unexpected option 'raise_on_failure'"):  # one fit's
            mx.curve_fit(lambda x, p: p[:, :1] * x, x, np.ones((2, 3)), np.ones((2, 1)),
                         raise_on_failure=True)  # fmt: skip

    @pytest.mark.parametrize("weighted", [False, True])
    def test_matches_scipy_curve_fit(self, xp, device, weighted):
        rng = np.random.default_rng(2)
        x = np.linspace(0, 5, 40)
        y = 2.5 * np.exp(-1.3 * x) + 0.3 + 0.01 * rng.standard_normal(40)
        sigma = 0.01 + 0.02 * rng.random(40) if weighted else None
        popt, pcov = scipy.optimize.curve_fit(
            lambda t, a, b, c: a * np.exp(-b * t) + c,
            x,
            y,
            p0=[1.0, 1.0, 0.0],
            sigma=sigma,
            method="lm",
            **TIGHT,
        )
        fit = mx.curve_fit(
            lambda t, p: p[0] * array_namespace(t).exp(-p[1] * t) + p[2],
            asarray(xp, x, device),
            asarray(xp, y, device),
            asarray(xp, np.array([1.0, 1.0, 0.0]), device),
            sigma=None if sigma is None else asarray(xp, sigma, device),
            **TIGHT,
        )
        assert device_of(fit.params) == device
        assert_close_to(fit.params, popt, rtol=1e-8)
        assert_close_to(fit.cov, pcov, rtol=1e-6, atol=1e-12)
        assert_close_to(fit.stderr, np.sqrt(np.diag(pcov)), rtol=1e-6)

    def test_bad_inputs(self, xp):
        x, y = asarray(xp, np.linspace(0, 1, 5)), asarray(xp, np.ones(5))
        p0 = asarray(xp, np.array([1.0, 1.0]))
        with pytest.raises(ValueError, match="`model` must return an array shaped like `y`"):
            mx.curve_fit(lambda t, p: t[:3] * p[0], x, y, p0)
        with pytest.raises(ValueError, match="`sigma` must be positive"):
            mx.curve_fit(lambda t, p: t * p[0] + p[1], x, y, p0, sigma=asarray(xp, np.zeros(5)))
        with pytest.raises(TypeError, match="`model` must be a callable"):
            mx.curve_fit(None, x, y, p0)

    def test_errors_name_the_callers_arguments(self, xp):
        x_np = np.linspace(0, 1, 5)
        x, y = asarray(xp, x_np), asarray(xp, np.ones(5))
        p0 = asarray(xp, np.array([1.0, 1.0]))

        def line(t, p):
            return t * p[0] + p[1]

        x_nan = x_np.copy()
        x_nan[2] = np.nan
        with pytest.raises(ValueError, match="`x` must contain only finite values"):
            mx.curve_fit(line, asarray(xp, x_nan), y, p0)
        with pytest.raises(
            ValueError, match=r"`x` must have an axis \(first or last\) of length 5"
        ):
            mx.curve_fit(lambda t, p: p[0] + 0 * y, asarray(xp, x_np[:4]), y, p0)
        with pytest.raises(TypeError, match="`x` must have a real floating or integer dtype"):
            mx.curve_fit(line, xp.astype(x, xp.complex128), y, p0)
        with pytest.raises(ValueError, match="`y` must have at least as many observations"):
            mx.curve_fit(line, x[:1], y[:1], p0)
        with pytest.raises(ValueError, match="`model` is not finite at `p0`"):
            mx.curve_fit(lambda t, p: line(t, p) * math.inf, x, y, p0)
        with pytest.raises(TypeError, match="`model` must return an array"):
            mx.curve_fit(lambda t, p: 1.0, x, y, p0)


class TestBatchedMachinery:
    """The two shortcuts of the batched solver, which the fits above may not all reach."""

    def test_replace_rows_computes_only_the_masked_rows(self, xp, backend):
        from m4ml_xp import _xp

        if backend is Backend.DASK:
            pytest.skip("the batched solver runs Dask chunks as NumPy arrays")
        a = np.arange(12.0).reshape(4, 3)
        seen = []

        def negate(rows):
            seen.append(rows.shape[0])
            return (-rows,)

        for mask in ([True, False, True, False], [False] * 4, [True] * 4):
            (out,) = _xp.replace_rows(
                asarray(xp, np.array(mask)), negate, [asarray(xp, a)], [asarray(xp, a)], xp=xp
            )
            expected = np.where(np.array(mask)[:, None], -a, a)
            np.testing.assert_array_equal(to_numpy(out), expected)
        if backend is not Backend.JAX:  # JAX evaluates every row under lax.cond
            assert seen == [2, 4]
        # past `dense_from`, every row is computed and the unmasked ones discarded
        mask = np.array([True, True, True, False])
        seen.clear()
        for dense_from, rows in ((0.75, 4), (0.8, 3)):
            (out,) = _xp.replace_rows(
                asarray(xp, mask), negate, [asarray(xp, a)], [asarray(xp, a)], xp=xp,
                dense_from=dense_from,
            )  # fmt: skip
            np.testing.assert_array_equal(to_numpy(out), np.where(mask[:, None], -a, a))
            assert seen[-1] == (4 if backend is Backend.JAX else rows)

    @pytest.mark.parametrize("data", ["args", "closure"])
    def test_retiring_finished_fits_changes_nothing(self, xp, backend, monkeypatch, data):
        """Fits that finish leave the working set — with per-fit `args` (the rows passed on)
        and with a closure (still called on all B rows, the finished ones at their starts) —
        and every result is the one of a run that keeps them."""
        from m4ml_xp import _xp

        if backend in (Backend.DASK, Backend.JAX):
            pytest.skip("JAX keeps every row (static shapes); Dask chunks run as NumPy arrays")
        residual, Y, _, starts = batched_exponentials(xp, 8, 5)
        starts[::2] = [[2.0, 1.0, 0.0]]  # different iteration counts: some fits finish early
        x0 = asarray(xp, starts)
        widths, closure_rows = [], []
        original = _xp.while_any

        def run(keep):
            def while_any(active, body, state, *, xp, retire=False):
                def recorded(s):
                    widths.append(s.x.shape[0])
                    return body(s)

                return original(active, recorded, state, xp=xp, retire=retire and keep)

            widths.clear()
            monkeypatch.setattr(_xp, "while_any", while_any)
            if data == "args":
                return mx.levenberg_marquardt_batched(residual, x0, args=(Y,))
            return mx.levenberg_marquardt_batched(
                lambda b: closure_rows.append(b.shape[0]) or residual(b, Y), x0
            )

        retired = run(keep=True)
        assert min(widths) < 8  # the working set shrank
        kept = run(keep=False)
        assert min(widths) == 8
        assert set(closure_rows) <= {8}  # a closure always sees every fit
        assert len(set(to_numpy(kept.n_iter).tolist())) > 1
        for a, b in zip(retired, kept, strict=True):
            np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-12, atol=1e-14)

    def test_ill_conditioned_fits_beside_well_conditioned_ones(self, xp):
        """A fit whose Jacobian is too ill-conditioned for the Gram route takes the SVD
        inside the same batch; each fit still equals its single (SVD) fit."""
        t = np.linspace(0, 1, 40)
        ks = np.array([1.0, 1e-4, 2.0])  # k → 0: exp(−kt) ≈ 1 − kt, columns a and c nearly parallel
        Y = 2.0 * np.exp(-ks[:, None] * t) + 0.5

        def residual(b, y):
            ns = array_namespace(b)
            return b[:, :1] * ns.exp(-b[:, 1:2] * ns.asarray(t, device=device_of(b))) + b[:, 2:] - y

        x0 = np.column_stack([np.full(3, 2.0), ks * 1.1, np.full(3, 0.5)])
        fit = mx.levenberg_marquardt_batched(
            residual,
            asarray(xp, x0, chunks=(2, 3)),
            args=(asarray(xp, Y, chunks=(2, 40)),),
            **TIGHT,
        )
        e = np.exp(-1e-4 * t)
        J = np.stack([e, -2.0 * t * e, np.ones_like(t)], axis=1)
        assert np.linalg.cond(J / np.linalg.norm(J, axis=0)) > np.finfo(float).eps ** -0.25
        truth = np.column_stack([np.full(3, 2.0), ks, np.full(3, 0.5)])
        for i in range(3):  # noise-free data: the truth is the exact solution
            np.testing.assert_allclose(to_numpy(fit.x[i, :]), truth[i], rtol=1e-6)
            one = scipy.optimize.least_squares(
                lambda b, i=i: b[0] * np.exp(-b[1] * t) + b[2] - Y[i], x0[i], method="lm", **TIGHT
            )
            assert float(to_numpy(fit.cost[i])) <= one.cost + 1e-20


# ----------------------------------------------------- the batched solver's decompositions
def symmetric_batch(kind: str, n: int, B: int, seed: int) -> np.ndarray:
    """B symmetric n × n matrices (float64) of one `kind`."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((B, n, n)))
    if kind == "random":
        A = rng.standard_normal((B, n, n))
        return A + np.swapaxes(A, 1, 2)
    if kind == "degenerate":  # repeated eigenvalues: two or three equal, and a zero
        values = rng.choice([-2.0, 0.0, 1.0, 1.0, 3.0], size=(B, n))
        values[:, 1:] = values[:, :1] if n > 2 else values[:, 1:]
        return Q @ (values[:, :, None] * np.swapaxes(Q, 1, 2))
    if kind == "diagonal":
        return rng.standard_normal((B, n))[:, :, None] * np.eye(n)
    # badly scaled: D·S·D with D spanning 16 orders of magnitude (a Gram matrix's shape)
    D = 10.0 ** rng.uniform(-8, 8, (B, n))
    S = rng.standard_normal((B, n, n))
    S = S @ np.swapaxes(S, 1, 2)
    return D[:, :, None] * S * D[:, None, :]


def gaussian_batch(B: int, seed: int) -> tuple:
    """B noisy Gaussian fits of 100 points, the benchmark's problem."""
    rng = np.random.default_rng(seed)
    t = np.linspace(-5.0, 5.0, 100)
    truth = np.column_stack([rng.uniform(1, 3, B), rng.uniform(-1, 1, B), rng.uniform(0.5, 2, B)])
    Y = truth[:, :1] * np.exp(-((t - truth[:, 1:2]) ** 2) / (2 * truth[:, 2:] ** 2))
    Y = Y + 0.05 * rng.standard_normal((B, 100))
    return t, Y, np.column_stack([Y.max(axis=1), t[Y.argmax(axis=1)], np.ones(B)])


class TestBatchedDecompositions:
    """The batched solver's eigendecompositions: Jacobi for small n, library calls in chunks."""

    @given(
        kind=st.sampled_from(["random", "degenerate", "diagonal", "badly scaled"]),
        n=st.integers(1, 4),
        dtype=st.sampled_from(["float32", "float64"]),
        seed=st.integers(0, 2**32 - 1),
    )
    def test_jacobi_eigh_is_an_eigendecomposition(self, xp, backend, kind, n, dtype, seed):
        from m4ml_xp._lm_linalg import _jacobi_eigh

        if backend is Backend.DASK:
            pytest.skip("the batched solver runs Dask chunks as NumPy arrays")
        A = symmetric_batch(kind, n, 6, seed).astype(dtype)
        A_b = asarray(xp, A)
        decompose = lambda S: _jacobi_eigh(S, xp=xp)  # noqa: E731
        if backend is Backend.JAX:  # a pure kernel: also compiled
            import jax

            decompose = jax.jit(decompose)
        w_b, W_b = decompose(A_b)
        for out in (w_b, W_b):
            assert out.dtype == A_b.dtype
            assert device_of(out) == device_of(A_b)
        w, W = to_numpy(w_b).astype(float), to_numpy(W_b).astype(float)
        A = A.astype(float)
        scale = np.linalg.norm(A, axis=(1, 2))[:, None]  # ‖A‖_F per matrix
        tol = 20 * n * eps(A_b.dtype)
        assert np.all(np.diff(w, axis=1) >= 0)  # ascending, like eigh
        assert np.all(np.abs(w - np.linalg.eigvalsh(A)) <= tol * scale)
        reconstructed = W @ (w[:, :, None] * np.swapaxes(W, 1, 2))
        assert np.all(np.abs(reconstructed - A).max(axis=(1, 2)) <= tol * scale[:, 0])
        np.testing.assert_allclose(
            np.swapaxes(W, 1, 2) @ W, np.broadcast_to(np.eye(n), W.shape), rtol=0, atol=tol
        )

    @pytest.mark.parametrize("route", ["jacobi", "library eigh"])
    def test_small_chunks_change_nothing(self, xp, backend, route, monkeypatch, retrace):
        """The large-batch path: decompositions in chunks of 2 fits give the one-call results."""
        from m4ml_xp import _lm_linalg as lsq

        t = np.linspace(0, 1, 40)
        ks = np.array([1.0, 1e-4, 2.0, 1e-4, 0.5, 3e-4, 3.0])  # k → 0: the SVD route
        Y = 2.0 * np.exp(-ks[:, None] * t) + 0.5

        def residual(b, y):
            ns = array_namespace(b)
            return b[:, :1] * ns.exp(-b[:, 1:2] * ns.asarray(t, device=device_of(b))) + b[:, 2:] - y

        x0 = np.column_stack([np.full(7, 2.0), ks * 1.1, np.full(7, 0.5)])

        def solve():  # NumPy results: Dask's are computed while the settings hold
            fit = mx.levenberg_marquardt_batched(
                lambda b, y: residual(b, y),
                asarray(xp, x0, chunks=(3, 3)),
                args=(asarray(xp, Y, chunks=(3, 40)),),
                **TIGHT,
            )
            return type(fit)(*(to_numpy(a) for a in fit))

        if route == "library eigh":  # n = 3 as a stand-in for the matrices too large for Jacobi
            monkeypatch.setattr(lsq, "_JACOBI_MAX_N", 0)
        retrace()
        whole = solve()  # on JAX under jit: the chunks have static shapes inside lax.cond
        sizes = []
        in_chunks = lsq._in_chunks

        def recording(function, arrays, *, xp):
            def chunk(*rows):
                sizes.append(rows[0].shape[0])
                return function(*rows)

            return in_chunks(chunk, arrays, xp=xp)

        monkeypatch.setattr(lsq, "_in_chunks", recording)
        monkeypatch.setattr(lsq, "_DECOMPOSITION_CHUNK", 2)
        retrace()
        chunked = solve()
        assert len(sizes) >= 2  # more than one chunk, none larger than the chunk size
        assert max(sizes) <= 2
        for a, b in zip(whole, chunked, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(whole.status, chunked.status)
        truth = np.column_stack([np.full(7, 2.0), ks, np.full(7, 0.5)])
        for i in range(7):  # noise-free data: the truth is the exact solution
            assert chunked.converged[i]
            np.testing.assert_allclose(chunked.x[i], truth[i], rtol=1e-6)
            one = scipy.optimize.least_squares(
                lambda b, i=i: b[0] * np.exp(-b[1] * t) + b[2] - Y[i], x0[i], method="lm", **TIGHT
            )
            assert chunked.cost[i] <= one.cost + 1e-20

    def test_gaussian_fits_match_scipy_on_both_routes(self, xp, backend, monkeypatch, retrace):
        """The benchmark's Gaussian fits, Jacobi and library eigh: each fit is SciPy's."""
        from m4ml_xp import _lm_linalg as lsq

        t, Y, starts = gaussian_batch(6, 11)

        def residual(p, y):
            ns = array_namespace(p)
            tt = ns.asarray(t, device=device_of(p))
            return p[:, :1] * ns.exp(-((tt - p[:, 1:2]) ** 2) / (2 * p[:, 2:] ** 2)) - y

        def solve():  # NumPy results: Dask's are computed while the settings hold
            fit = mx.levenberg_marquardt_batched(
                lambda b, y: residual(b, y),
                asarray(xp, starts, chunks=(4, 3)),
                args=(asarray(xp, Y, chunks=(4, 100)),),
            )
            return type(fit)(*(to_numpy(a) for a in fit))

        ran_jacobi, jacobi_eigh = [], lsq._jacobi_eigh
        monkeypatch.setattr(
            lsq, "_jacobi_eigh", lambda A, *, xp: ran_jacobi.append(1) or jacobi_eigh(A, xp=xp)
        )
        retrace()
        jacobi = solve()
        assert ran_jacobi
        ran_jacobi.clear()
        monkeypatch.setattr(lsq, "_JACOBI_MAX_N", 0)
        retrace()
        library = solve()
        assert not ran_jacobi  # the library's eigh took over
        np.testing.assert_array_equal(jacobi.status, library.status)
        # the same iterations up to the polish's last steps, which end at rounding level
        assert np.abs(jacobi.n_iter - library.n_iter).max() <= 2
        for i in range(6):
            one = scipy.optimize.least_squares(
                lambda p, i=i: p[0] * np.exp(-((t - p[1]) ** 2) / (2 * p[2] ** 2)) - Y[i],
                starts[i],
                method="lm",
            )
            assert one.success
            for fit in (jacobi, library):
                assert fit.converged[i]
                np.testing.assert_allclose(fit.x[i], one.x, rtol=1e-6, atol=1e-9)


class TestCurveFitBatched:
    @pytest.mark.parametrize("sigma_kind", [None, "shared", "per fit"])
    @pytest.mark.parametrize("x_kind", ["shared", "per fit"])
    def test_each_fit_matches_scipy_curve_fit(self, xp, device, sigma_kind, x_kind):
        B, m = 5, 40
        rng = np.random.default_rng(4)
        X = np.sort(rng.uniform(0, 5, (B, m)), axis=1) if x_kind == "per fit" else None
        x = X if X is not None else np.linspace(0, 5, m)
        a, k, c = rng.uniform(1, 3, B), rng.uniform(0.5, 2, B), rng.uniform(-1, 1, B)
        Y = a[:, None] * np.exp(-k[:, None] * x) + c[:, None] + 0.01 * rng.standard_normal((B, m))
        sigma = {
            None: None,
            "shared": 0.01 + 0.02 * rng.random(m),
            "per fit": 0.01 + 0.02 * rng.random((B, m)),
        }[sigma_kind]

        def model(t, p):
            return p[:, :1] * array_namespace(p).exp(-p[:, 1:2] * t) + p[:, 2:]

        fit = mx.curve_fit(
            model,
            asarray(xp, x, device, chunks=(2, m) if X is not None else None),
            asarray(xp, Y, device, chunks=(2, m)),
            asarray(xp, np.tile([1.0, 1.0, 0.0], (B, 1)), device, chunks=(2, 3)),
            sigma=None if sigma is None else asarray(xp, sigma, device),
            **TIGHT,
        )
        assert fit.params.shape == (B, 3)
        assert fit.cov.shape == (B, 3, 3)
        assert device_of(fit.stderr) == device
        assert bool(to_numpy(xp.all(fit.result.converged)))
        params, cov, stderr = to_numpy(fit.params), to_numpy(fit.cov), to_numpy(fit.stderr)
        for i in range(B):
            popt, pcov = scipy.optimize.curve_fit(
                lambda t, a, b, c: a * np.exp(-b * t) + c,
                x[i] if X is not None else x,
                Y[i],
                p0=[1.0, 1.0, 0.0],
                sigma=None if sigma is None else (sigma[i] if sigma.ndim == 2 else sigma),
                method="lm",
                **TIGHT,
            )
            np.testing.assert_allclose(params[i], popt, rtol=1e-8)
            np.testing.assert_allclose(cov[i], pcov, rtol=1e-6, atol=1e-12)
            np.testing.assert_allclose(stderr[i], np.sqrt(np.diag(pcov)), rtol=1e-6)

    def test_no_degrees_of_freedom_give_infinite_covariance(self, xp):
        x = asarray(xp, np.array([0.0, 1.0]))
        Y = asarray(xp, np.array([[1.0, 3.0], [0.0, -1.0]]))
        with warnings.catch_warnings(record=True) as caught:  # Dask's covariance is lazy: unread
            warnings.simplefilter("always", RankWarning)
            fit = mx.curve_fit(
                lambda t, p: p[:, :1] * t + p[:, 1:], x, Y, asarray(xp, np.zeros((2, 2)))
            )
        assert_close_to(fit.params, np.array([[2.0, 1.0], [-1.0, 0.0]]), rtol=1e-10, atol=1e-12)
        assert np.isinf(to_numpy(fit.cov)).all()
        messages = [str(w.message) for w in caught if w.category is RankWarning]
        expected = [] if is_dask_namespace(xp) else ["of 2 of 2 fits could not be estimated"]
        assert [m for m in messages if any(e in m for e in expected)] == messages
        assert len(messages) == len(expected)

    def test_bad_inputs(self, xp):
        x, Y = asarray(xp, np.linspace(0, 1, 5)), asarray(xp, np.ones((3, 5)))
        p0 = asarray(xp, np.ones((3, 2)))

        def line(t, p):
            return p[:, :1] * t + p[:, 1:]

        with pytest.raises(ValueError, match="`p0` must have one row per fit: 3 rows"):
            mx.curve_fit(line, x, Y, asarray(xp, np.ones((2, 2))))
        with pytest.raises(ValueError, match="`p0` must be a 2-D"):
            mx.curve_fit(line, x, Y, asarray(xp, np.ones(2)))
        with pytest.raises(ValueError, match="`model` must return an array shaped like `y`"):
            mx.curve_fit(lambda t, p: line(t, p)[:, :4], x, Y, p0)
        with pytest.raises(ValueError, match="`sigma` must have the shape of `y`"):
            mx.curve_fit(line, x, Y, p0, sigma=asarray(xp, np.ones(4)))
        bad = np.ones((3, 5))
        bad[1, 2] = np.inf
        with pytest.raises(ValueError, match="`y` must contain only finite"):
            to_numpy(mx.curve_fit(line, x, asarray(xp, bad), p0).params)
        x_nan = np.linspace(0, 1, 5)
        x_nan[0] = np.nan
        with pytest.raises(ValueError, match="`x` must contain only finite"):
            to_numpy(mx.curve_fit(line, asarray(xp, x_nan), Y, p0).params)
        with pytest.raises(ValueError, match="`y` must have at least as many observations"):
            mx.curve_fit(line, x[:1], Y[:, :1], p0)


class TestHeights:
    def test_course_histogram(self, xp):
        x, y = mx.heights_data(xp=xp, dtype=xp.float64)
        x_np, y_np = to_numpy(x), to_numpy(y)
        np.testing.assert_allclose(x_np, 50 + 2.5 * np.arange(100) + 1.25)
        assert (y_np * 2.5).sum() == pytest.approx(1.0, rel=1e-14)
        nonzero = np.flatnonzero(y_np)
        np.testing.assert_allclose(x_np[nonzero] - 1.25, 160 + 2.5 * np.arange(16))

    def test_steepest_descent_then_lm_fits_the_gaussian(self, xp):
        """The course: 50 steps of −2000·∇χ² from μ=155, σ=6, then a proper solver."""
        x, y = mx.heights_data(xp=xp, dtype=xp.float64)

        def chi2_gradient(p):
            r = y - gaussian(x, p)
            return -2 * (mx.jacobian(lambda q: gaussian(x, q), p, method="fd").T @ r)

        descent = mx.gradient_descent(
            chi2_gradient, asarray(xp, np.array([155.0, 6.0])), lr=2000.0, n_steps=50
        )
        path = [descent.path[i, :] for i in range(descent.path.shape[0])]
        chi2 = [float(to_numpy(xp.sum((y - gaussian(x, p)) ** 2))) for p in path]
        assert chi2[-1] < chi2[0]
        fit = mx.curve_fit(gaussian, x, y, descent.x, **TIGHT)
        reference = scipy.optimize.curve_fit(
            lambda t, mu, s: np.exp(-((t - mu) ** 2) / (2 * s**2)) / (np.sqrt(2 * np.pi) * s),
            to_numpy(x),
            to_numpy(y),
            p0=[180.0, 10.0],
            method="lm",
            **TIGHT,
        )[0]
        assert_close_to(fit.params, reference, rtol=1e-8)
        assert 2 * fit.result.cost <= min(chi2)


# --------------------------------------------------------------------------- batched
EXPONENTIAL_TIMES = np.linspace(0, 4, 30)


def exponential_curves(b, y):
    """Residuals (B, 30) of the curves a·exp(−k t) + c for parameters b (B, 3) and data y.

    One function for every test, the data passed as an argument: a compiling backend
    can reuse one program for all of them."""
    ns = array_namespace(b)
    t = ns.asarray(EXPONENTIAL_TIMES, device=device_of(b))
    return b[:, :1] * ns.exp(-b[:, 1:2] * t) + b[:, 2:] - y


def batched_exponentials(xp, B, seed, device=None):
    """B noisy curves a·exp(−k t) + c: ``residual(b, Y)`` (B, 3) -> (B, 30), the data Y, the
    single-fit residual of curve i (NumPy data), the starts.  Dask splits the batch in chunks
    of 2 fits."""
    rng = np.random.default_rng(seed)
    t = EXPONENTIAL_TIMES
    truth = np.stack([rng.uniform(1, 4, B), rng.uniform(0.3, 2, B), rng.uniform(-1, 1, B)], axis=1)
    Y = (
        truth[:, :1] * np.exp(-truth[:, 1:2] * t)
        + truth[:, 2:]
        + 0.01 * rng.standard_normal((B, 30))
    )

    def single(i, ns, dev=None):
        t_i, y_i = ns.asarray(t, device=dev), ns.asarray(Y[i, :], device=dev)
        return lambda b: b[0] * ns.exp(-b[1] * t_i) + b[2] - y_i

    return (
        exponential_curves,
        asarray(xp, Y, device, chunks=(2, 30)),
        single,
        np.tile([1.0, 1.0, 0.0], (B, 1)),
    )


class TestLevenbergMarquardtBatched:
    def test_a_jac_not_finite_at_the_start_is_refused(self, xp, backend):
        # its NaN entries were zeroed: the fit ran to max_nfev and returned a NaN `jac`
        t = asarray(xp, np.arange(4.0))
        nan_jac = [np.arange(4.0), np.full(4, np.nan)]

        def jac(b):
            return array_namespace(b).stack([t, asarray(xp, nan_jac[1])], axis=1)

        with pytest.raises(ValueError, match="`jac` returns values that are not finite at `x0`"):
            mx.levenberg_marquardt(lambda b: b[0] * t + b[1] - (2 * t + 1), xp.zeros(2), jac=jac)
        if backend is Backend.DASK:
            return  # per-fit data through `args` below; Dask's closures over chunks are refused
        Y = asarray(xp, np.stack([2 * np.arange(4.0) + 1] * 2))
        second = asarray(xp, np.array([[1.0], [np.nan]]))  # the second fit's `jac` column: NaN

        def batched_jac(b, y, column):
            ones = array_namespace(b).ones_like(y)
            return array_namespace(b).stack([t * ones, column * ones], axis=2)

        with pytest.warns(ConvergenceWarning, match="1 of 2 fits"):
            fit = mx.levenberg_marquardt_batched(
                lambda b, y, column: b[:, :1] * t + b[:, 1:] - y, xp.zeros((2, 2)),
                args=(Y, second), jac=batched_jac,
            )  # fmt: skip
        assert to_numpy(fit.status).tolist()[1] == -3
        assert fit.message[1] == "The Jacobian `jac` returned is not finite at the start."
        assert_close_to(fit.x[0, :], np.array([2.0, 1.0]), rtol=1e-5, xp=xp, dtype=fit.x.dtype)

    @given(seed=st.integers(0, 2**32 - 1), B=sizes(1, 6))
    def test_equals_single_fits(self, xp, backend, seed, B):
        residual, Y, single, starts = batched_exponentials(xp, B, seed)
        batch = mx.levenberg_marquardt_batched(
            residual, asarray(xp, starts, chunks=(2, 3)), args=(Y,)
        )
        assert batch.x.shape == (B, 3)
        assert batch.status.shape == (B,)
        for i in range(B):
            # Dask solves each chunk with NumPy: its single-fit oracle is NumPy's single fit.
            # On JAX the closures over each curve's data share one compiled solve
            ns = np if backend is Backend.DASK else xp
            with (
                warnings.catch_warnings()
            ):  # a near-degenerate draw may exhaust max_nfev: compared too
                warnings.simplefilter("ignore", ConvergenceWarning)
                one = mx.levenberg_marquardt(single(i, ns), ns.asarray(starts[i]))
            # which test fires first can differ at a tolerance's edge; convergence may not
            assert bool(to_numpy(batch.converged[i])) == one.converged
            if one.converged:  # unconverged runs drift apart along a flat valley: not comparable
                # the same iteration; only the batched SVD's rounding differs
                assert_close_to(batch.x[i, :], to_numpy(one.x), rtol=1e-6, atol=1e-8)
                assert float(to_numpy(batch.cost[i])) == pytest.approx(one.cost, rel=1e-8)

    def test_closure_equals_args_and_keeps_the_device(self, xp, backend, device):
        residual, Y, _, starts = batched_exponentials(xp, 3, 7, device)
        x0 = asarray(xp, starts, device, chunks=(2, 3))
        # central differences throughout: jac=None's forward-to-central switch is per fit
        # with `args` and for the whole batch with a closure (its fits cannot be split)
        with_args = mx.levenberg_marquardt_batched(residual, x0, args=(Y,), jac="3-point")
        for field in with_args:
            assert array_namespace(field) is array_namespace(x0)
            assert device_of(field) == device_of(x0)
        if backend is Backend.DASK:  # chunks see NumPy blocks: a closure over Dask is refused
            with pytest.raises(TypeError, match="pass per-fit data through `args`"):
                mx.levenberg_marquardt_batched(lambda b: residual(b, Y), x0)
            assert with_args.x.chunks[0] == (2, 1)
            return
        closure = mx.levenberg_marquardt_batched(lambda b: residual(b, Y), x0, jac="3-point")
        np.testing.assert_array_equal(to_numpy(closure.x), to_numpy(with_args.x))
        np.testing.assert_array_equal(to_numpy(closure.status), to_numpy(with_args.status))

    def test_analytic_jacobian_with_args(self, xp):
        residual, Y, _, starts = batched_exponentials(xp, 4, 3)

        def jac(b, y):
            ns = array_namespace(b)
            t = ns.asarray(np.linspace(0, 4, 30), device=device_of(b))
            e = ns.exp(-b[:, 1:2] * t)
            return ns.stack([e, -b[:, :1] * t * e, ns.ones_like(e)], axis=2)

        x0 = asarray(xp, starts, chunks=(2, 3))
        analytic = mx.levenberg_marquardt_batched(residual, x0, args=(Y,), jac=jac)
        differences = mx.levenberg_marquardt_batched(residual, x0, args=(Y,), jac="3-point")
        assert bool(to_numpy(xp.all(analytic.converged)))
        assert_close_to(analytic.x, to_numpy(differences.x), rtol=1e-7, atol=1e-9)
        assert to_numpy(analytic.nfev).max() < to_numpy(differences.nfev).min()

    @pytest.mark.skipif(not NIST_FILES, reason=f"NIST StRD files not found at {NIST}")
    @pytest.mark.parametrize("path", NIST_FILES, ids=lambda p: p.stem)
    def test_nist_both_starts_in_one_call(self, xp, path):
        problem = mx.load_nist_strd(path, xp=xp, dtype=xp.float64)
        N = problem.y.shape[0]
        X = asarray(xp, np.tile(to_numpy(problem.x), (2, 1)), chunks=(1, N))
        Y = asarray(xp, np.tile(to_numpy(problem.y), (2, 1)), chunks=(1, N))
        fit = mx.levenberg_marquardt_batched(
            lambda b, x, y: problem.model(x, b) - y,
            asarray(xp, to_numpy(problem.starts), chunks=(1, -1)),
            args=(X, Y),
            **TIGHT,
            max_nfev=10_000,
        )
        certified = to_numpy(problem.certified)
        for k in range(2):
            assert bool(to_numpy(fit.converged[k]))
            assert significant_digits(to_numpy(fit.x[k, :]), certified) >= 6

    def test_runs_under_jax_jit(self, xp, backend):
        if backend is not Backend.JAX:
            pytest.skip("jit is JAX's")
        import jax

        residual, Y, _, starts = batched_exponentials(xp, 4, 0)
        eager = mx.levenberg_marquardt_batched(residual, asarray(xp, starts), args=(Y,))
        jitted = jax.jit(lambda x0, y: mx.levenberg_marquardt_batched(residual, x0, args=(y,)))(
            asarray(xp, starts), Y
        )
        assert_close_to(jitted.x, to_numpy(eager.x), rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(to_numpy(jitted.status), to_numpy(eager.status))

    def test_a_bad_fit_does_not_stop_the_batch(self, xp):
        residual, Y, _, starts = batched_exponentials(xp, 3, 1)

        def with_log(b, y):  # fit 1 starts where log is undefined
            ns = array_namespace(b)
            return residual(b, y) + 0 * ns.log(b[:, 2:] + 1.0)

        starts[1, 2] = -3.0
        with warnings.catch_warnings(record=True) as caught:  # Dask computes in other threads
            warnings.simplefilter("always")
            fit = mx.levenberg_marquardt_batched(
                with_log, asarray(xp, starts, chunks=(2, 3)), args=(Y,)
            )
            status = to_numpy(fit.status)
            messages = fit.message  # Dask: computed again, warning again
        reported = [str(w.message) for w in caught if w.category is mx.ConvergenceWarning]
        if not is_dask_namespace(xp):  # lazy results are not read at the call
            assert len(reported) == 1
            assert "1 of 3 fits" in reported[0]
        assert status[1] == -2
        assert status[0] > 0
        assert status[2] > 0
        assert messages[1] == mx.lsq.MESSAGES[-2]
        assert messages[0] == mx.lsq.MESSAGES[int(status[0])]

    def test_bad_inputs(self, xp):
        residual, Y, _, starts = batched_exponentials(xp, 2, 0)
        x0 = asarray(xp, starts)
        with pytest.raises(ValueError, match="`x0_batch` must be a 2-D"):
            mx.levenberg_marquardt_batched(residual, asarray(xp, starts[0]), args=(Y,))
        with pytest.raises(ValueError, match=r"`residual` must return a \([12], m\) array"):
            mx.levenberg_marquardt_batched(lambda b, y: y[0, :], x0, args=(Y,))
        with pytest.raises(ValueError, match="`bounds` are not supported"):
            mx.levenberg_marquardt_batched(residual, x0, args=(Y,), bounds=(0, 1))
        with pytest.raises(ValueError, match="`args\\[0\\]` must have the batch axis first"):
            mx.levenberg_marquardt_batched(residual, x0, args=(Y[:1, :],))
        with pytest.raises(TypeError, match="`args` must be a tuple"):
            mx.levenberg_marquardt_batched(residual, x0, args=Y)
        bad = starts.copy()
        bad[0, 0] = np.nan
        with pytest.raises(ValueError, match="`x0_batch` must contain only finite"):
            to_numpy(mx.levenberg_marquardt_batched(residual, asarray(xp, bad), args=(Y,)).x)
        with pytest.raises(ValueError, match="at least as many residuals as parameters"):
            mx.levenberg_marquardt_batched(lambda b, y: y[:, :2], x0, args=(Y,))
