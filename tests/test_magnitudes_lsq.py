"""Levenberg–Marquardt and curve fitting at any finite magnitude.

Scaling the residual by ``c`` leaves the minimiser unchanged (the cost scales
by ``c²``, the Jacobian by ``c``), so a fit of ``c · residual`` must return the
magnitude-1 parameters and ``converged=True`` for ``c`` across 1e±300 in
float64 and 1e±33 in float32 — the residual's sum of squares overflows beyond
1e±154 (float64) and 1e±19 (float32) — with finite ``fun``/``jac`` and no
silent NaN, inf or zero.
Likewise ``curve_fit`` with `sigma` scaled by ``c`` (same parameters; the
covariance unchanged, or times ``c²`` with ``absolute_sigma``) and with `y`
and the model scaled by ``c``.  Oracles: SciPy's ``least_squares(method="lm")``
and ``curve_fit`` in float64 on the magnitude-1 problem, scaled as the
mathematics says.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize
from array_api_compat import array_namespace
from array_api_compat import device as device_of
from hypothesis import given, settings
from hypothesis import strategies as st

import m4ml_xp as mx
from tests._helpers import asarray, to_numpy
from tests.conftest import Backend, examples

#: Random magnitudes per property (hypothesis draws an integer range's ends with raised
#: probability); every backend runs them, and JAX compiles per call.
MAGNITUDE_EXAMPLES = settings(max_examples=examples(10))

exponents = st.integers(-300, 300)  # float32: a ninth of it, 1e±33
DTYPES = ["float64", "float32"]
parametrize_dtype = pytest.mark.parametrize("dtype", DTYPES)
T = np.linspace(0, 4, 30)
Y = 3.0 * np.exp(-0.7 * T) + 0.01 * np.sin(7 * T)
RATES = np.array([0.5, 1.0, 2.0])
YS = 3.0 * np.exp(-RATES[:, None] * T) + 0.01 * np.sin(7 * T)
START = np.array([1.0, 1.0])
TIGHT = {"ftol": 1e-12, "xtol": 1e-12, "gtol": 1e-12}


def magnitude(exponent: int, dtype: str) -> float:
    return 10.0 ** (exponent if dtype == "float64" else exponent // 9)


def options(dtype: str) -> dict[str, float]:
    return TIGHT if dtype == "float64" else {}


def rtol(dtype: str) -> float:
    """Parameters agree with the float64 oracle to about this (float32: its rounding, ~1e3 eps)."""
    return 1e-8 if dtype == "float64" else 2e-4


def model_np(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    return p[0] * np.exp(-p[1] * t)


def reference() -> np.ndarray:
    fit = scipy.optimize.least_squares(
        lambda p: model_np(T, p) - Y, START, method="lm", ftol=1e-15, xtol=1e-15, gtol=1e-15
    )
    return fit.x


def finite(result) -> np.ndarray:
    out = np.asarray(to_numpy(result), dtype=np.float64)
    assert np.all(np.isfinite(out)), f"finite input gave a non-finite result: {out}"
    return out


def check_cost(cost: float, expected: float) -> None:
    """½‖f‖² as a float64: right where representable, inf where it overflows, 0 below."""
    if expected > 1e308:
        assert math.isinf(cost)
    elif expected > 1e-300:
        assert math.isclose(float(cost), expected, rel_tol=1e-3)
    else:
        assert 0.0 <= float(cost) <= 1e-290


class TestLevenbergMarquardtMagnitudes:
    @pytest.mark.parametrize(
        ("dtype", "c"),
        [("float32", 1e-30), ("float32", 1e30), ("float64", 1e-200), ("float64", 1e200)],
    )
    @pytest.mark.parametrize("batched", [False, True], ids=["single", "batched"])
    def test_parameters_of_any_magnitude(self, xp, dtype, c, batched):
        # parameters and data scaled alike: the Jacobian keeps the parameters' scale, and its
        # Gram matrix under- or overflowed (column norms 0 or inf: "converged" at the start)
        t = asarray(xp, np.arange(4.0, dtype=dtype))
        if str(t.dtype).rsplit(".", 1)[-1] != dtype:
            pytest.skip(f"{dtype} is not available here (JAX's x64 off)")
        y = asarray(xp, (c * (2 * np.arange(4.0) + 1)).astype(dtype))
        start = np.array([0.2 * c, 0.1 * c], dtype=dtype)
        if batched:
            rows = np.stack([np.arange(4.0), c * (2 * np.arange(4.0) + 1)]).astype(dtype)
            fit = mx.levenberg_marquardt_batched(  # per-fit data through `args` (Dask's chunks)
                lambda b, tb, yb: b[:, :1] * tb + b[:, 1:] - yb,
                asarray(xp, np.stack([start, 3 * start])),
                args=(asarray(xp, np.stack([rows[0]] * 2)), asarray(xp, np.stack([rows[1]] * 2))),
            )
            assert bool(np.all(to_numpy(fit.converged)))
            x = to_numpy(fit.x)
        else:
            fit = mx.levenberg_marquardt(lambda b: b[0] * t + b[1] - y, asarray(xp, start))
            assert fit.converged, fit.message
            x = to_numpy(fit.x)[None, :]
        assert x.dtype == np.dtype(dtype)
        expected = np.broadcast_to(np.array([2.0, 1.0]) * c, x.shape)
        np.testing.assert_allclose(x.astype(np.float64), expected, rtol=64 * np.finfo(dtype).eps)

    @pytest.mark.skip_xp_backend(
        Backend.JAX,
        reason="a single fit on JAX compiles once per residual function, and each magnitude "
        "is a new residual (~10 s of compilation per example); the batched tests cover JAX",
    )
    @parametrize_dtype
    @pytest.mark.parametrize("use_jac", [True, False], ids=["analytic", "differences"])
    @MAGNITUDE_EXAMPLES
    @given(exponent=exponents)
    def test_scaled_residual_gives_the_same_fit(self, xp, dtype, use_jac, exponent):
        c = magnitude(exponent, dtype)
        t, y = asarray(xp, T.astype(dtype)), asarray(xp, Y.astype(dtype))

        def residual(b):
            ns = array_namespace(b)
            return (b[0] * ns.exp(-b[1] * t) - y) * c

        def jac(b):
            ns = array_namespace(b)
            e = ns.exp(-b[1] * t)
            return ns.stack([e, -b[0] * t * e], axis=1) * c

        fit = mx.levenberg_marquardt(
            residual,
            asarray(xp, START.astype(dtype)),
            jac=jac if use_jac else None,
            **options(dtype),
        )
        assert fit.converged, fit.message
        expected = reference()
        np.testing.assert_allclose(finite(fit.x), expected, rtol=rtol(dtype))
        f_ref = model_np(T, expected) - Y
        # residuals below the smallest normal may be flushed to zero (JAX on CPU: FTZ)
        floor = 2 * float(np.finfo(dtype).tiny) / c
        np.testing.assert_allclose(finite(fit.fun) / c, f_ref, rtol=1e-3, atol=max(1e-4, floor))
        assert finite(fit.jac).shape == (30, 2)
        check_cost(fit.cost, 0.5 * float(f_ref @ f_ref) * c * c)

    @parametrize_dtype
    @MAGNITUDE_EXAMPLES
    @given(exponent=exponents)
    def test_batched_scaled_residual_gives_the_same_fits(self, xp, dtype, exponent):
        c = magnitude(exponent, dtype)
        t = T.astype(dtype)

        def residual(b, y):
            ns = array_namespace(b)
            return b[:, :1] * ns.exp(-b[:, 1:] * ns.asarray(t, device=device_of(b))) * c - y

        fit = mx.levenberg_marquardt_batched(
            residual,
            asarray(xp, np.tile(START, (3, 1)).astype(dtype), chunks=(2, 2)),
            args=(asarray(xp, (YS * c).astype(dtype), chunks=(2, 30)),),
            **options(dtype),
        )
        assert bool(np.all(to_numpy(fit.converged))), to_numpy(fit.status)
        for i, rate in enumerate(RATES):
            expected = scipy.optimize.least_squares(
                lambda p, i=i: model_np(T, p) - YS[i], START, method="lm", ftol=1e-15, xtol=1e-15
            ).x
            np.testing.assert_allclose(finite(fit.x)[i], expected, rtol=rtol(dtype))
            assert abs(expected[1] - rate) < 0.01
        finite(fit.fun), finite(fit.jac)
        cost = np.asarray(to_numpy(fit.cost), dtype=np.float64)
        assert not np.any(np.isnan(cost))
        assert np.all(cost >= 0)


class TestCurveFitMagnitudes:
    @staticmethod
    def model(x, p):
        ns = array_namespace(p)
        return p[0] * ns.exp(-p[1] * x)

    @staticmethod
    def scipy_fit(absolute_sigma: bool = False) -> tuple[np.ndarray, np.ndarray]:
        popt, pcov = scipy.optimize.curve_fit(
            lambda t, a, k: a * np.exp(-k * t),
            T,
            Y,
            p0=START,
            sigma=np.full(30, 0.5),
            absolute_sigma=absolute_sigma,
            method="lm",
            ftol=1e-15,
            xtol=1e-15,
        )
        return popt, np.sqrt(np.diag(pcov))

    @parametrize_dtype
    @pytest.mark.parametrize("absolute_sigma", [False, True], ids=["relative", "absolute"])
    @MAGNITUDE_EXAMPLES
    @given(exponent=exponents)
    def test_sigma_scaled_gives_the_same_fit(self, xp, dtype, absolute_sigma, exponent):
        c = magnitude(exponent, dtype)
        fit = mx.curve_fit(
            self.model,
            asarray(xp, T.astype(dtype)),
            asarray(xp, Y.astype(dtype)),
            asarray(xp, START.astype(dtype)),
            sigma=asarray(xp, np.full(30, 0.5 * c).astype(dtype)),
            absolute_sigma=absolute_sigma,
            **options(dtype),
        )
        assert fit.result.converged, fit.result.message
        popt, perr = self.scipy_fit(absolute_sigma)
        np.testing.assert_allclose(finite(fit.params), popt, rtol=rtol(dtype))
        # relative sigma: invariant; absolute: the errors scale with sigma (representable here)
        scale = c if absolute_sigma else 1.0
        np.testing.assert_allclose(finite(fit.stderr) / scale, perr, rtol=1e-3)
        cov = np.asarray(to_numpy(fit.cov), dtype=np.float64)
        assert not np.any(np.isnan(cov))
        if not absolute_sigma:
            np.testing.assert_allclose(np.diag(cov), perr**2, rtol=1e-3)

    @pytest.mark.skip_xp_backend(
        Backend.JAX,
        reason="a single fit on JAX compiles once per residual function, and each magnitude "
        "is a new residual (~10 s of compilation per example); the batched tests cover JAX",
    )
    @parametrize_dtype
    @MAGNITUDE_EXAMPLES
    @given(exponent=exponents)
    def test_y_and_model_scaled_give_the_same_fit(self, xp, dtype, exponent):
        c = magnitude(exponent, dtype)

        def model(x, p):
            return self.model(x, p) * c

        fit = mx.curve_fit(
            model,
            asarray(xp, T.astype(dtype)),
            asarray(xp, (Y * c).astype(dtype)),
            asarray(xp, START.astype(dtype)),
            **options(dtype),
        )
        assert fit.result.converged, fit.result.message
        popt, perr = self.scipy_fit()
        np.testing.assert_allclose(finite(fit.params), popt, rtol=rtol(dtype))
        np.testing.assert_allclose(finite(fit.stderr), perr, rtol=1e-3)

    @parametrize_dtype
    @MAGNITUDE_EXAMPLES
    @given(exponent=exponents)
    def test_batched_sigma_scaled_gives_the_same_fits(self, xp, dtype, exponent):
        c = magnitude(exponent, dtype)

        def model(x, p):
            ns = array_namespace(p)
            return p[:, :1] * ns.exp(-p[:, 1:] * x)

        fit = mx.curve_fit(
            model,
            asarray(xp, np.tile(T, (2, 1)).astype(dtype), chunks=(1, 30)),
            asarray(xp, np.tile(Y, (2, 1)).astype(dtype), chunks=(1, 30)),
            asarray(xp, np.tile(START, (2, 1)).astype(dtype), chunks=(1, 2)),
            sigma=asarray(xp, np.full((2, 30), 0.5 * c).astype(dtype), chunks=(1, 30)),
            **options(dtype),
        )
        assert bool(np.all(to_numpy(fit.result.converged)))
        popt, perr = self.scipy_fit()
        np.testing.assert_allclose(finite(fit.params), np.tile(popt, (2, 1)), rtol=rtol(dtype))
        np.testing.assert_allclose(finite(fit.stderr), np.tile(perr, (2, 1)), rtol=1e-3)
