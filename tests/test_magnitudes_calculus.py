"""Calculus and optimisers at any finite magnitude: the answer for ``c·input`` is the
magnitude-1 answer scaled as the mathematics says, for ``c`` across 1e±150 (float64)
and 1e±15 (float32), on every backend — never a silent wrong, NaN, inf or zero answer.

The scaling laws (a line each):

- ``newton_raphson(c·f)``: the same root; ``newton_raphson(f(x/c), x0=c·x0)``: ``c·root``.
- ``jacobian(c·f) = c·J``; ``jacobian(f(x/c), c·x) = J/c``.
- ``hessian(c·f) = c·H``; ``hessian(f(x/c), c·x) = H/c²``.
- ``newton_step(c·J, c·H)``: the same step; ``newton_step(J/c, H/c²) = c·step``.
- ``sandpit_step(J/c, H/c², gamma=c²·gamma, max_newton_norm=c·M) = c·sandpit_step(J, H)``.
- ``lagrange_multipliers(c·f, g)``: ``(x, c·λ)``; ``(f, c·g)``: ``(x, λ/c)``;
  ``(f(x/c), g(x/c), c·x0)``: ``(c·x, λ)``.
- ``sgd``/``momentum`` updates are linear in the gradient; ``adam(c·g, eps=c·eps)`` is
  ``adam(g, eps)`` (``eps=0``: invariant).
- ``gradient_descent(c·∇f, lr=lr/c)``: the same path; ``minimize`` (default, relative
  ``tol``) of ``c·f`` with ``adam(eps=0)``: the same run; with ``momentum(lr/c)``: the
  same minimiser; of ``f(x/c)`` with ``momentum(c²·lr)``: ``c·x*``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from array_api_compat import array_namespace
from hypothesis import given, settings
from hypothesis import strategies as st

import m4ml_xp as mx
from m4ml_xp.errors import ConvergenceWarning
from tests._helpers import asarray, eps, to_numpy
from tests.conftest import Backend, examples

#: Random magnitudes per property (hypothesis draws an integer range's ends with raised
#: probability); every backend runs them, and JAX compiles per call.
MAGNITUDE_EXAMPLES = settings(max_examples=examples(10))

AUTODIFF = {Backend.JAX, Backend.TORCH}
EXPONENTS = {"float64": 150, "float32": 15}
DTYPES = pytest.mark.parametrize("dtype", ["float64", "float32"])


def _scale(data: st.DataObject, dtype: str) -> float:
    """``c = 10**k``, k drawn across the dtype's range (always including the ends)."""
    top = EXPONENTS[dtype]
    k = data.draw(st.one_of(st.sampled_from([-top, top]), st.integers(-top, top)), label="k")
    return 10.0**k


def _methods(backend: Backend) -> list[str]:
    return ["fd", "auto"] + (["autodiff"] if backend in AUTODIFF else [])


def _fd_rtol(dtype: str, order: int = 1) -> float:
    e = float(np.finfo(dtype).eps)
    return 100 * e ** (2 / 3) if order == 1 else 50 * e**0.5


def _check(actual, expected, *, rtol: float, atol: float = 0.0, dtype: str) -> None:
    got = to_numpy(actual)
    assert got.dtype == np.dtype(dtype)
    assert np.all(np.isfinite(got)), f"non-finite result {got}"
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


# --------------------------------------------------------------------------- test functions
def _circle_line(v):
    """Root (√2, √2): ``[x² + y² − 4, x − y]``."""
    xp = array_namespace(v)
    return xp.stack([v[0] ** 2 + v[1] ** 2 - 4.0, v[0] - v[1]])


def _smooth(v):
    """A vector function with a dense, non-trivial Jacobian."""
    xp = array_namespace(v)
    return xp.stack([v[0] ** 2 * v[1], xp.sin(v[1]) * v[0], xp.exp(v[0] / 4) + v[1] ** 3])


def _smooth_jacobian(p):
    x, y = p
    return np.array(
        [[2 * x * y, x**2], [math.sin(y), x * math.cos(y)], [math.exp(x / 4) / 4, 3 * y**2]]
    )


def _scalar(v):
    xp = array_namespace(v)
    return v[0] ** 2 * v[1] + xp.sin(v[1]) + v[0] ** 4 / 4


def _scalar_hessian(p):
    x, y = p
    return np.array([[2 * y + 3 * x**2, 2 * x], [2 * x, -math.sin(y)]])


POINT = np.array([0.7, -1.3])


# --------------------------------------------------------------------------- Newton–Raphson
class TestNewtonRaphsonMagnitudes:
    @DTYPES
    @MAGNITUDE_EXAMPLES
    @given(data=st.data())
    def test_scaled_function_same_root_1d(self, xp, backend, dtype, data):
        c = _scale(data, dtype)
        tol = 16 * eps(dtype)
        for method in _methods(backend):
            x0 = asarray(xp, np.asarray(1.0, dtype=dtype))
            result = mx.newton_raphson(lambda x, c=c: c * (x**2 - 2.0), None, x0, method=method)
            assert result.converged, result.status
            _check(result.root, math.sqrt(2.0), rtol=tol, dtype=dtype)
        result = mx.newton_raphson(lambda x: c * (x**2 - 2.0), lambda x: c * (2 * x), x0)
        assert result.converged
        _check(result.root, math.sqrt(2.0), rtol=tol, dtype=dtype)

    @DTYPES
    @MAGNITUDE_EXAMPLES
    @given(data=st.data())
    def test_scaled_argument_scales_the_root_1d(self, xp, backend, dtype, data):
        # the root of f(x/c) is c·root: steps and the convergence test must be relative
        c = _scale(data, dtype)
        for method in _methods(backend):
            x0 = asarray(xp, np.asarray(c, dtype=dtype))
            result = mx.newton_raphson(lambda x, c=c: (x / c) ** 2 - 2.0, None, x0, method=method)
            assert result.converged, result.status
            _check(result.root, c * math.sqrt(2.0), rtol=16 * eps(dtype), dtype=dtype)

    @DTYPES
    @MAGNITUDE_EXAMPLES
    @given(data=st.data(), scale_x=st.booleans())
    def test_system_at_any_magnitude(self, xp, backend, dtype, data, scale_x):
        c = _scale(data, dtype)
        for method in _methods(backend):
            if scale_x:  # root of F(x/c) from c·x0 is c·root
                start, expected = c * np.array([1.0, 2.0]), c * math.sqrt(2.0) * np.ones(2)

                def f(v, c=c):
                    return _circle_line(v / c)
            else:  # root of c·F is the root of F
                start, expected = np.array([1.0, 2.0]), math.sqrt(2.0) * np.ones(2)

                def f(v, c=c):
                    return c * _circle_line(v)

            result = mx.newton_raphson(f, None, asarray(xp, start.astype(dtype)), method=method)
            assert result.converged, result.status
            _check(result.root, expected, rtol=32 * eps(dtype), dtype=dtype)


# --------------------------------------------------------------------------- derivatives
class TestDerivativeMagnitudes:
    @DTYPES
    @MAGNITUDE_EXAMPLES
    @given(data=st.data())
    def test_jacobian_of_scaled_function(self, xp, backend, dtype, data):
        c = _scale(data, dtype)
        x = asarray(xp, POINT.astype(dtype))
        for method in _methods(backend):
            J = mx.jacobian(lambda v, c=c: c * _smooth(v), x, method=method)
            expected = c * _smooth_jacobian(POINT)
            _check(J, expected, rtol=_fd_rtol(dtype), atol=_fd_rtol(dtype) * c, dtype=dtype)

    @DTYPES
    @MAGNITUDE_EXAMPLES
    @given(data=st.data())
    def test_jacobian_of_scaled_argument(self, xp, backend, dtype, data):
        c = _scale(data, dtype)
        x = asarray(xp, (c * POINT).astype(dtype))
        for method in _methods(backend):
            J = mx.jacobian(lambda v, c=c: _smooth(v / c), x, method=method)
            expected = _smooth_jacobian(POINT) / c
            _check(J, expected, rtol=_fd_rtol(dtype), atol=_fd_rtol(dtype) / c, dtype=dtype)

    @DTYPES
    @MAGNITUDE_EXAMPLES
    @given(data=st.data())
    def test_hessian_of_scaled_function(self, xp, backend, dtype, data):
        c = _scale(data, dtype)
        x = asarray(xp, POINT.astype(dtype))
        for method in _methods(backend):
            H = mx.hessian(lambda v, c=c: c * _scalar(v), x, method=method)
            rtol = _fd_rtol(dtype, order=2)
            _check(H, c * _scalar_hessian(POINT), rtol=rtol, atol=rtol * c, dtype=dtype)

    @DTYPES
    @MAGNITUDE_EXAMPLES
    @given(data=st.data())
    def test_hessian_of_scaled_argument(self, xp, backend, dtype, data):
        c = _scale(data, dtype)
        x = asarray(xp, (c * POINT).astype(dtype))
        for method in _methods(backend):
            H = mx.hessian(lambda v, c=c: _scalar(v / c), x, method=method)
            rtol = _fd_rtol(dtype, order=2)
            expected = _scalar_hessian(POINT) / c / c
            _check(H, expected, rtol=rtol, atol=rtol / c / c, dtype=dtype)


class TestStepMagnitudes:
    J = np.array([1.0, -2.0])
    H = np.array([[3.0, 1.0], [1.0, 2.0]])

    @DTYPES
    @MAGNITUDE_EXAMPLES
    @given(data=st.data())
    def test_newton_step(self, xp, dtype, data):
        c = _scale(data, dtype)
        step = np.linalg.solve(-self.H, self.J)
        same = mx.newton_step(
            asarray(xp, (c * self.J).astype(dtype)), asarray(xp, (c * self.H).astype(dtype))
        )
        _check(same, step, rtol=16 * eps(dtype), dtype=dtype)
        J, H = asarray(xp, (self.J / c).astype(dtype)), asarray(xp, (self.H / c / c).astype(dtype))
        _check(mx.newton_step(J, H), c * step, rtol=16 * eps(dtype), dtype=dtype)

    @DTYPES
    @MAGNITUDE_EXAMPLES
    @given(data=st.data(), uphill=st.booleans())
    def test_sandpit_step(self, xp, dtype, data, uphill):
        c = _scale(data, dtype)
        H_np = -self.H if uphill else self.H
        base = to_numpy(
            mx.sandpit_step(asarray(xp, self.J), asarray(xp, H_np), max_newton_norm=3.0)
        )
        J, H = asarray(xp, (self.J / c).astype(dtype)), asarray(xp, (H_np / c / c).astype(dtype))
        got = mx.sandpit_step(J, H, gamma=0.5 * c * c, max_newton_norm=3.0 * c)
        _check(got, c * base, rtol=16 * eps(dtype), dtype=dtype)

    def test_sandpit_newton_accepted_for_tiny_gradients(self, xp):
        # step·(−J) = 1e-400 underflowed to 0 and read as "uphill"
        J = asarray(xp, np.array([1e-200, 0.0]))
        got = mx.sandpit_step(J, asarray(xp, np.eye(2)))
        _check(got, [-1e-200, 0.0], rtol=4 * eps("float64"), dtype="float64")


# --------------------------------------------------------------------------- Lagrange
def _product(v):
    return v[0] * v[1]


def _circle(v):
    return v[0] ** 2 + v[1] ** 2 - 2.0


class TestLagrangeMagnitudes:
    """Maximise xy on the circle x² + y² = 2: x = (1, 1), λ = 1/2."""

    @DTYPES
    @MAGNITUDE_EXAMPLES
    @given(data=st.data(), which=st.sampled_from(["f", "g", "x"]))
    def test_scaling_law(self, xp, backend, dtype, data, which):
        c = _scale(data, dtype)
        rtol = 100 * eps(dtype) ** 0.5
        x0, x_expected, lam_expected = np.array([0.8, 1.1]), np.ones(2), 0.5
        if which == "f":
            f, g, lam_expected = (lambda v, c=c: c * _product(v)), _circle, c * 0.5
        elif which == "g":
            f, g, lam_expected = _product, (lambda v, c=c: c * _circle(v)), 0.5 / c
        else:
            f, g = (lambda v, c=c: _product(v / c)), (lambda v, c=c: _circle(v / c))
            x0, x_expected = c * x0, c * x_expected
        for method in _methods(backend):
            result = mx.lagrange_multipliers(f, g, asarray(xp, x0.astype(dtype)), method=method)
            assert result.converged, result.status
            _check(result.x, x_expected, rtol=rtol, dtype=dtype)
            _check(result.lam, lam_expected, rtol=rtol, dtype=dtype)


# --------------------------------------------------------------------------- optimisers
class TestOptimizerMagnitudes:
    @DTYPES
    @MAGNITUDE_EXAMPLES
    @given(data=st.data())
    def test_sgd_and_momentum_are_linear(self, xp, dtype, data):
        c = _scale(data, dtype)
        g = np.array([1.5, -0.25])
        for opt in (mx.sgd(0.1), mx.momentum(0.1, beta=0.5)):
            state = opt.init(asarray(xp, np.zeros(2, dtype=dtype)))
            for _ in range(3):
                updates, state = opt.update(asarray(xp, (c * g).astype(dtype)), state)
            base_state = opt.init(asarray(xp, np.zeros(2, dtype=dtype)))
            for _ in range(3):
                base, base_state = opt.update(asarray(xp, g.astype(dtype)), base_state)
            _check(updates, c * to_numpy(base), rtol=8 * eps(dtype), dtype=dtype)

    @DTYPES
    @MAGNITUDE_EXAMPLES
    @given(data=st.data(), eps_value=st.sampled_from([0.0, 1e-8]))
    def test_adam_invariant_with_eps_scaled_like_the_gradient(self, xp, dtype, data, eps_value):
        c = _scale(data, dtype)
        grads = [np.array([1.5, -0.25, 0.0]), np.array([-0.5, 2.0, 0.0])]
        scaled, base = mx.adam(0.1, eps=c * eps_value), mx.adam(0.1, eps=eps_value)
        s_state = scaled.init(asarray(xp, np.zeros(3, dtype=dtype)))
        b_state = base.init(asarray(xp, np.zeros(3, dtype=dtype)))
        for g in grads:
            s_up, s_state = scaled.update(asarray(xp, (c * g).astype(dtype)), s_state)
            b_up, b_state = base.update(asarray(xp, g.astype(dtype)), b_state)
            # a coordinate whose gradients are all 0 steps by 0 (eps = 0: not 0/0 = NaN)
            _check(s_up, to_numpy(b_up), rtol=16 * eps(dtype), dtype=dtype)
        assert to_numpy(b_up)[2] == 0.0

    @DTYPES
    @MAGNITUDE_EXAMPLES
    @given(data=st.data())
    def test_gradient_descent_with_lr_over_c(self, xp, dtype, data):
        c = _scale(data, dtype)
        x0 = asarray(xp, np.array([1.0, -2.0], dtype=dtype))
        base = mx.gradient_descent(lambda x: 2 * x, x0, lr=0.25, n_steps=4)
        got = mx.gradient_descent(lambda x, c=c: c * (2 * x), x0, lr=0.25 / c, n_steps=4)
        _check(got.path, to_numpy(base.path), rtol=16 * eps(dtype), dtype=dtype)

    @DTYPES
    @MAGNITUDE_EXAMPLES
    @given(data=st.data())
    def test_minimize_adam_same_run_for_scaled_function(self, xp, dtype, data):
        c = _scale(data, dtype)
        x0 = asarray(xp, np.array([0.0, 1.0], dtype=dtype))

        def grad(x, c=1.0):
            return c * (2.0 * (x - 3.0))

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed number of steps
            base = mx.minimize(grad, x0, optimizer=mx.adam(0.1, eps=0.0), max_iter=40)
            got = mx.minimize(
                lambda x, c=c: grad(x, c), x0, optimizer=mx.adam(0.1, eps=0.0), max_iter=40
            )
        assert (got.status, got.n_iter) == (base.status, base.n_iter)
        # the same run up to rounding, which 40 sign-like Adam steps amplify (JAX's fusion)
        _check(got.x, to_numpy(base.x), rtol=10 * eps(dtype) ** 0.5, dtype=dtype)

    @DTYPES
    @MAGNITUDE_EXAMPLES
    @given(data=st.data(), scale_x=st.booleans())
    def test_minimize_momentum_default_tol_is_relative(self, xp, dtype, data, scale_x):
        # an absolute tol "converged" at x0 for tiny c and never for huge c
        c = _scale(data, dtype)
        if scale_x:  # minimise f(x/c) from c·x0: x* = c·3, lr scaled by c²
            x0, expected, lr = c * np.array([0.0, 1.0]), c * 3.0, 0.1 * c * c

            def grad(x, c=c):
                return 2.0 * (x / c - 3.0) / c
        else:  # minimise c·f: x* = 3, lr scaled by 1/c
            x0, expected, lr = np.array([0.0, 1.0]), 3.0, 0.1 / c

            def grad(x, c=c):
                return c * (2.0 * (x - 3.0))

        result = mx.minimize(grad, asarray(xp, x0.astype(dtype)), optimizer=mx.momentum(lr))
        assert result.converged, result.status
        _check(result.x, np.full(2, expected), rtol=100 * eps(dtype) ** 0.5, dtype=dtype)
        # the default tol: eps^(2/3) of the starting gradient's max-norm (x cannot tell it
        # from eps^(1/2) at this rtol; the gradient it stopped at can)
        g0 = float(np.max(np.abs(grad(x0.astype(np.float64)))))
        assert result.grad_norm <= 1.01 * eps(dtype) ** (2 / 3) * g0


# --------------------------------------------------------------------------- nn
class TestMlpMagnitudes:
    """No simple scaling law: finite inputs of any magnitude give finite results, or
    :func:`train_mlp` stops with ``status="diverged"`` and a warning (never silently)."""

    COMBOS = (
        ("relu", "linear", "squared_error"),
        ("sigmoid", "softmax", "cross_entropy"),
        ("tanh", "sigmoid", "cross_entropy"),
        ("relu", "sigmoid", "squared_error"),
    )

    @DTYPES
    @MAGNITUDE_EXAMPLES
    @given(data=st.data())
    def test_finite_or_diverged(self, xp, dtype, data):
        c = _scale(data, dtype)
        rng = np.random.default_rng(0)
        X = asarray(xp, (c * rng.standard_normal((5, 3))).astype(dtype))
        Y = asarray(xp, np.eye(2, dtype=dtype)[[0, 1, 1, 0, 1]])
        params = mx.init_mlp([3, 4, 2], seed=0, dtype=X.dtype, xp=xp)
        activation, output, loss = data.draw(st.sampled_from(self.COMBOS), label="combo")
        options = {"activation": activation, "output": output}
        for a in mx.mlp_forward(params, X, **options):
            assert np.all(np.isfinite(to_numpy(a)))
        grads, cost = mx.mlp_backprop(params, X, Y, loss=loss, **options)
        assert math.isfinite(float(to_numpy(cost)))
        for layer in grads:
            for g in layer:
                assert np.all(np.isfinite(to_numpy(g)))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            # a diverging epoch overflows (NumPy says so too); the cost check catches it
            warnings.filterwarnings("ignore", "(overflow|invalid value)", RuntimeWarning)
            result = mx.train_mlp(
                params, X, Y, optimizer=mx.sgd(0.1), epochs=2, loss=loss, **options
            )
        for layer in result.params:
            for p in layer:
                assert np.all(np.isfinite(to_numpy(p)))
        if result.status == 2:  # diverged
            assert any(issubclass(w.category, ConvergenceWarning) for w in caught)
